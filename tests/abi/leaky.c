// SPDX-License-Identifier: Apache-2.0
/* A shared library that exports one ssx_ symbol and one foreign symbol: the export check must
 * reject it (Abi.CheckRejectsForeignSymbols). */
int ssx_abi_fixture(void);
int leaked_helper(void);
int ssx_abi_fixture(void) {
  return 0;
}
int leaked_helper(void) {
  return 1;
}
