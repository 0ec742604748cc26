// SPDX-License-Identifier: Apache-2.0
/* client.c — a C program that talks to a server securely with ssx.
 *
 *   client HOST PORT TARGET_NAME [MESSAGE]
 *
 * Requires encryption, names the server it expects, connects, sends MESSAGE (default "hello"),
 * prints the reply and what security the connection got. Which TLS versions, ciphers, trust and
 * client certificate apply is the administrator's business: see $SSX_POLICY / docs/policy.md. */
#include <netdb.h>
#include <ssx/ssx.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int fail(const char *what) {
  /* ssx_last_error() says why in words; the reason code is what a program can act on. */
  fprintf(stderr, "client: %s: %s (%s)\n", what, ssx_last_error(),
          ssx_reason_name(ssx_last_error_reason()));
  return 1;
}

int main(int argc, char **argv) {
  struct addrinfo hints, *addr = NULL;
  struct ssx_security_settings settings = {SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
  struct ssx_security_info *info = NULL;
  const char *message = argc > 4 ? argv[4] : "hello";
  char reply[4096];
  ssize_t n;
  int fd, rc;

  if (argc < 4) {
    fprintf(stderr, "usage: client HOST PORT TARGET_NAME [MESSAGE]\n");
    return 2;
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo(argv[1], argv[2], &hints, &addr);
  if (rc != 0) {
    fprintf(stderr, "client: %s: %s\n", argv[1], gai_strerror(rc));
    return 2;
  }
  fd = socket(addr->ai_family, SOCK_STREAM, 0);
  if (fd < 0) {
    perror("client: socket");
    freeaddrinfo(addr);
    return 1;
  }
  if (ssx_set_socket_security(fd, &settings, sizeof settings) != 0) return fail("set security");
  if (ssx_set_socket_peer_target_name(fd, argv[3], NULL, 0) != 0) return fail("target name");
  rc = ssx_connect(fd, addr->ai_addr, addr->ai_addrlen);
  freeaddrinfo(addr);
  if (rc != 0) return fail("connect");

  if (ssx_query_socket_security(fd, NULL, 0, &info) == 0) {
    printf("connected: %s %s, group %s, server \"%s\"%s\n", info->version, info->cipher,
           info->group ? info->group : "?", info->peer_principal ? info->peer_principal : "?",
           (info->flags & SSX_INFO_PEER_NAME_VERIFIED) ? " (name verified)" : "");
    ssx_free_security_info(info);
  }
  if (ssx_send(fd, message, strlen(message), 0) < 0) return fail("send");
  if (ssx_shutdown(fd, SHUT_WR) != 0) return fail("shutdown");
  while ((n = ssx_recv(fd, reply, sizeof reply, 0)) > 0) fwrite(reply, 1, (size_t)n, stdout);
  if (n < 0) return fail("receive");
  printf("\n");
  ssx_close(fd);
  return 0;
}
