// SPDX-License-Identifier: Apache-2.0
/* Compiles ssx.h as strict C99 (-pedantic, no extensions) and links against libssx, so the public
 * header stays usable from C. It also checks, at run time, values a C caller relies on. */
#include <errno.h>
#include <ssx/ssx.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

int main(void) {
  struct ssx_security_settings settings = {SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
  struct ssx_security_info *info = NULL;
  int fds[2];

  CHECK(SSX_PROTOCOL_DEFAULT == 0);
  CHECK((SSX_INFO_ENCRYPTED & SSX_INFO_SECURED) == 0); /* distinct bits */
  CHECK(ssx_version() != NULL && strlen(ssx_version()) > 0);
  CHECK(ssx_last_error() != NULL);

  /* A pipe is not a socket: the C entry points must say so with ENOTSOCK. */
  CHECK(pipe(fds) == 0);
  errno = 0;
  CHECK(ssx_set_socket_security(fds[0], &settings, sizeof settings) == -1);
  CHECK(errno == ENOTSOCK);
  CHECK(strlen(ssx_last_error()) > 0);
  CHECK(ssx_last_error_reason() == SSX_REASON_UNSUPPORTED);
  CHECK(strcmp(ssx_reason_name(SSX_REASON_NAME_MISMATCH), "NAME_MISMATCH") == 0);
  CHECK(strcmp(ssx_reason_name(-7), "UNKNOWN") == 0);
  CHECK(SSX_REASON_NONE == 0);
  CHECK(sizeof(struct ssx_security_settings) >= SSX_SECURITY_SETTINGS_SIZE_V1);
  close(fds[0]);
  close(fds[1]);

  errno = 0;
  CHECK(ssx_query_socket_security(-1, NULL, 0, &info) == -1);
  CHECK(errno == EBADF);
  ssx_free_security_info(NULL);

  /* Event-loop and handoff calls: plain C types, callable on anything. */
  CHECK(ssx_pending(-1) == 0);
  CHECK((ssx_wants(-1) & SSX_POLLPENDING) == 0);
  errno = 0;
  CHECK(ssx_release(-1) == -1);
  CHECK(errno == EBADF);

  { /* Links; not called, since it would read the machine's policy file. */
    int (*reload)(void) = ssx_reload_policy;
    ssize_t (*sendmsg_fn)(int, const struct msghdr *, int) = ssx_sendmsg;
    ssize_t (*recvmsg_fn)(int, struct msghdr *, int) = ssx_recvmsg;
    CHECK(reload != NULL);
    CHECK(sendmsg_fn != NULL && recvmsg_fn != NULL);
  }

  if (failures == 0) printf("c header: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
