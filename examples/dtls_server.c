// SPDX-License-Identifier: Apache-2.0
/* dtls_server.c — a UDP service secured with DTLS: one non-blocking socket, every client.
 *
 *   dtls_server PORT
 *
 * Binds 127.0.0.1:PORT (0: any free port; the port is printed), then answers each datagram with
 * "PRINCIPAL: DATAGRAM", where PRINCIPAL is the verified identity of the client that sent it
 * (ssx_recvfrom's address + ssx_query_socket_security for that address), or "anonymous". New
 * clients get a stateless cookie first (ssx keeps nothing for them until they return it).
 * The event loop sleeps exactly as long as ssx_timeout_ms allows: a handshake waiting for a lost
 * datagram is resent on time without a timer of the program's own. Policy: $SSX_POLICY. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <ssx/ssx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
  struct sockaddr_in local;
  socklen_t local_len = sizeof local;
  int fd;

  if (argc < 2) {
    fprintf(stderr, "usage: dtls_server PORT\n");
    return 2;
  }
  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  /* Secure it before bind: a socket bound after this accepts new peers as a DTLS server. */
  if (fd < 0 || ssx_set_socket_security(fd, NULL, 0) != 0) {
    fprintf(stderr, "dtls_server: %s\n", ssx_last_error());
    return 1;
  }
  memset(&local, 0, sizeof local);
  local.sin_family = AF_INET;
  local.sin_port = htons((unsigned short)atoi(argv[1]));
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0 ||
      getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) {
    perror("dtls_server: bind");
    return 1;
  }
  printf("listening on %u\n", ntohs(local.sin_port));
  fflush(stdout);

  for (;;) {
    char data[1200], reply[1400];
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    struct ssx_security_info *info = NULL;
    const char *who = "anonymous";
    ssize_t n = ssx_recvfrom(fd, data, sizeof data - 1, 0, (struct sockaddr *)&from, &from_len);
    if (n < 0) {
      struct pollfd p;
      if (errno != EAGAIN) {
        fprintf(stderr, "dtls_server: %s\n", ssx_last_error());
        continue;
      }
      /* Nothing ready: wait for a datagram or for ssx's next timer, whichever comes first. */
      p.fd = fd;
      p.events = POLLIN;
      p.revents = 0;
      poll(&p, 1, ssx_timeout_ms(fd));
      continue;
    }
    data[n] = '\0';
    /* Who sent it: the association of that address, authenticated by its handshake. */
    if (ssx_query_socket_security(fd, (struct sockaddr *)&from, from_len, &info) == 0 &&
        info->peer_principal != NULL) {
      who = info->peer_principal;
    }
    snprintf(reply, sizeof reply, "%s: %s", who, data);
    if (ssx_sendto(fd, reply, strlen(reply), 0, (struct sockaddr *)&from, from_len) < 0) {
      fprintf(stderr, "dtls_server: reply: %s\n", ssx_last_error());
    }
    ssx_free_security_info(info);
  }
}
