// SPDX-License-Identifier: Apache-2.0
/* The version three ways must agree: the generated header's macros, its string, and what the
 * library returns at run time (built from the same CMake project version). */
#include <ssx/ssx.h>
#include <ssx/version.h>
#include <stdio.h>
#include <string.h>

#define STR2(x) #x
#define STR(x) STR2(x)

int main(void) {
  const char *expected =
      STR(SSX_VERSION_MAJOR) "." STR(SSX_VERSION_MINOR) "." STR(SSX_VERSION_PATCH);
  if (strcmp(SSX_VERSION_STRING, expected) != 0) {
    fprintf(stderr, "SSX_VERSION_STRING %s != %s\n", SSX_VERSION_STRING, expected);
    return 1;
  }
  if (strcmp(ssx_version(), SSX_VERSION_STRING) != 0) {
    fprintf(stderr, "ssx_version() %s != SSX_VERSION_STRING %s\n", ssx_version(),
            SSX_VERSION_STRING);
    return 1;
  }
  if (SSX_VERSION_NUMBER !=
      SSX_VERSION_MAJOR * 10000 + SSX_VERSION_MINOR * 100 + SSX_VERSION_PATCH) {
    fprintf(stderr, "SSX_VERSION_NUMBER is wrong\n");
    return 1;
  }
  printf("ssx %s\n", ssx_version());
  return 0;
}
