// SPDX-License-Identifier: Apache-2.0
/* A C program using the installed libssx: the headers, the version, and the policy loader (which
 * pulls toml++ and the C++ runtime into a static link, so a wrong link line fails here).
 * Usage: consumer DIR (a writable scratch directory). Exit 0 when everything behaved. */
#include <errno.h>
#include <ssx/ssx.h>
#include <stdio.h>
#include <string.h>

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL) return -1;
  int ok = fputs(text, f) >= 0;
  return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  if (strcmp(ssx_version(), SSX_VERSION_STRING) != 0) {
    fprintf(stderr, "library %s, headers %s\n", ssx_version(), SSX_VERSION_STRING);
    return 1;
  }
  char good[4096], bad[4096];
  snprintf(good, sizeof good, "%s/good.toml", argv[1]);
  snprintf(bad, sizeof bad, "%s/bad.toml", argv[1]);
  if (write_file(good, "version = 1\n[defaults]\nmin_tls_version = \"1.3\"\n") != 0 ||
      write_file(bad, "version = 1\n[defaults]\nmin_tls_version = 1.3\n") != 0) {
    perror("write policy");
    return 1;
  }
  if (ssx_load_policy(good) != 0) {
    fprintf(stderr, "valid policy rejected: %s\n", ssx_last_error());
    return 1;
  }
  if (ssx_load_policy(bad) == 0 || errno != EINVAL ||
      strstr(ssx_last_error(), "bad.toml:3:") == NULL) {
    fprintf(stderr, "invalid policy not rejected as expected: %s\n", ssx_last_error());
    return 1;
  }
  printf("C consumer: ssx %s, policy loader ok\n", ssx_version());
  return 0;
}
