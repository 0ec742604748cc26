// SPDX-License-Identifier: Apache-2.0
// tests/shim/resolver_shim.c — a resolver the tests control, loaded with LD_PRELOAD.
//
// getaddrinfo answers names that end in ".ssx-test" from the file $SSX_TEST_RESOLVE_FILE, read
// again on every call: one line "IPV4 [delay=MS]" (the delay makes the lookup slow, to show that
// a slow lookup never holds up the tunnel's workers); a missing file, an empty one or "fail"
// fail the lookup (EAI_NONAME). Every other name goes to the C library's getaddrinfo.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);
typedef void (*freeaddrinfo_fn)(struct addrinfo *);

// Our answers carry this as ai_canonname: freeaddrinfo tells them from the C library's by it.
static char shim_marker[] = "ssx-test-shim";

struct shim_answer {
  struct addrinfo info;
  struct sockaddr_in address;
};

static int is_test_name(const char *node) {
  static const char suffix[] = ".ssx-test";
  size_t n = node != NULL ? strlen(node) : 0;
  return n >= sizeof suffix - 1 && strcmp(node + n - (sizeof suffix - 1), suffix) == 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
  if (!is_test_name(node)) {
    getaddrinfo_fn real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    return real(node, service, hints, res);
  }
  const char *path = getenv("SSX_TEST_RESOLVE_FILE");
  FILE *f = path != NULL ? fopen(path, "r") : NULL;
  if (f == NULL) return EAI_NONAME;
  char line[128] = {0};
  char *got = fgets(line, sizeof line, f);
  fclose(f);
  if (got == NULL) return EAI_NONAME;
  char text[64] = {0};
  int delay_ms = 0;
  if (sscanf(line, "%63s delay=%d", text, &delay_ms) < 1) return EAI_NONAME;
  if (delay_ms > 0) {
    struct timespec pause = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
  }
  struct shim_answer *answer = calloc(1, sizeof *answer);
  if (answer == NULL) return EAI_MEMORY;
  if (inet_pton(AF_INET, text, &answer->address.sin_addr) != 1) {
    free(answer);
    return EAI_NONAME;
  }
  answer->address.sin_family = AF_INET;
  answer->address.sin_port = htons((unsigned short)(service != NULL ? atoi(service) : 0));
  answer->info.ai_family = AF_INET;
  answer->info.ai_socktype = SOCK_STREAM;
  answer->info.ai_protocol = IPPROTO_TCP;
  answer->info.ai_addr = (struct sockaddr *)&answer->address;
  answer->info.ai_addrlen = sizeof answer->address;
  answer->info.ai_canonname = shim_marker;
  *res = &answer->info;
  return 0;
}

void freeaddrinfo(struct addrinfo *ai) {
  if (ai != NULL && ai->ai_canonname == shim_marker) {
    free(ai);
    return;
  }
  freeaddrinfo_fn real = (freeaddrinfo_fn)dlsym(RTLD_NEXT, "freeaddrinfo");
  real(ai);
}
