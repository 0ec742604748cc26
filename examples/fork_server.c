// SPDX-License-Identifier: Apache-2.0
/* fork_server.c — a fork-per-connection server secured with ssx, as ssx.h ("Processes") says.
 *
 *   fork_server [--mistake] [PORT [ADDRESS]]      (defaults: 0 = any free port, 127.0.0.1)
 *
 * Prints "listening on ADDRESS:PORT", then for each connection forks a child that reads the
 * client's request up to its close_notify, answers "served by pid N: " and the request, and ends
 * with close_notify (ssx_close). The handoff:
 *   - the parent accepts on a non-blocking listener, so ssx_accept returns at once and the
 *     handshake is left to the child: a slow or silent client holds up its own child only;
 *   - after fork() the child goes on with the connection through ssx as if it had accepted it
 *     (its first call claims it), and closes the listener it does not need;
 *   - the parent calls ssx_release(fd) and close(fd) — never ssx_close, which is for the process
 *     that ends the connection — and goes back to accept.
 * --mistake makes the parent finish the handshake itself (as a blocking ssx_accept would) and
 * then call ssx_close(fd) instead, before the child answers (the child waits for it), to show
 * that ssx contains the mistake: the parent's ssx_close sends no close_notify on a connection
 * its child holds, and the client still gets the child's whole answer.
 * TLS versions, certificates and trust come from the policy ($SSX_POLICY, docs/policy.md). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <ssx/ssx.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REQUEST 65536

/* serve runs in the child: the connection is its own now. */
static int serve(int fd, int parent_done) {
  static char request[MAX_REQUEST];
  size_t got = 0;
  ssize_t n;
  char head[64];

  /* Blocking from here on: ssx_handshake finishes the handshake (bounded by the policy's
   * handshake_timeout_ms), ssx_recv and ssx_send wait as needed. */
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  if (ssx_handshake(fd) != 0) {
    fprintf(stderr, "fork_server[%d]: handshake: %s\n", (int)getpid(), ssx_last_error());
    ssx_close(fd);
    return 1;
  }
  while ((n = ssx_recv(fd, request + got, sizeof request - got, 0)) > 0) {
    got += (size_t)n;
    if (got == sizeof request) break; /* bounded: answer what fits */
  }
  if (n < 0) {
    fprintf(stderr, "fork_server[%d]: recv: %s\n", (int)getpid(), ssx_last_error());
    ssx_abort(fd);
    return 1;
  }
  if (parent_done >= 0) { /* --mistake: answer only after the parent's ssx_close */
    char byte;
    while (read(parent_done, &byte, 1) < 0 && errno == EINTR) {
    }
  }
  snprintf(head, sizeof head, "served by pid %d: ", (int)getpid());
  if (ssx_send(fd, head, strlen(head), 0) < 0 || (got > 0 && ssx_send(fd, request, got, 0) < 0)) {
    fprintf(stderr, "fork_server[%d]: send: %s\n", (int)getpid(), ssx_last_error());
    ssx_abort(fd);
    return 1;
  }
  return ssx_close(fd) == 0 ? 0 : 1; /* close_notify: the client sees a clean end */
}

int main(int argc, char **argv) {
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  struct ssx_security_settings settings = {SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
  int mistake = 0, arg = 1, listener;

  if (argc > 1 && strcmp(argv[1], "--mistake") == 0) {
    mistake = 1;
    arg++;
  }
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)(argc > arg ? atoi(argv[arg]) : 0));
  if (inet_pton(AF_INET, argc > arg + 1 ? argv[arg + 1] : "127.0.0.1", &addr.sin_addr) != 1) {
    fprintf(stderr, "usage: fork_server [--mistake] [PORT [IPv4 ADDRESS]]\n");
    return 2;
  }
  signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */

  listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) {
    perror("fork_server: socket");
    return 1;
  }
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ssx_set_socket_security(listener, &settings, sizeof settings) != 0) {
    fprintf(stderr, "fork_server: %s\n", ssx_last_error());
    return 1;
  }
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 128) != 0 ||
      getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
    perror("fork_server: bind/listen");
    return 1;
  }
  char text[INET_ADDRSTRLEN];
  printf("listening on %s:%u\n", inet_ntop(AF_INET, &addr.sin_addr, text, sizeof text),
         (unsigned)ntohs(addr.sin_port));
  fflush(stdout);

  for (;;) {
    struct pollfd p = {listener, POLLIN, 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) {
      perror("fork_server: poll");
      return 1;
    }
    /* Non-blocking listener: the connection comes back at once, its handshake not yet done. */
    int fd = ssx_accept(listener, NULL, NULL);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        fprintf(stderr, "fork_server: accept: %s\n", ssx_last_error());
      }
      continue;
    }
    int done[2] = {-1, -1};
    if (mistake) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      if (ssx_handshake(fd) != 0) {
        fprintf(stderr, "fork_server: handshake: %s\n", ssx_last_error());
        ssx_close(fd);
        continue;
      }
      if (pipe2(done, O_CLOEXEC) != 0) {
        perror("fork_server: pipe");
        ssx_abort(fd);
        continue;
      }
    }
    pid_t pid = fork();
    if (pid == 0) {
      ssx_close(listener); /* the child serves one connection and never accepts */
      if (done[1] >= 0) close(done[1]);
      _exit(serve(fd, done[0]));
    }
    if (pid < 0) {
      perror("fork_server: fork");
      ssx_abort(fd); /* nobody else holds it: end it here */
    } else if (mistake) {
      /* The common mistake: ssx_close in the parent. ssx sees that the child may be using the
       * connection and closes the parent's descriptor without sending close_notify. */
      ssx_close(fd);
      if (write(done[1], "x", 1) != 1) perror("fork_server: write");
    } else {
      ssx_release(fd); /* forget the TLS state here; nothing is sent */
      close(fd);       /* the child's descriptor keeps the connection open */
    }
    if (done[0] >= 0) close(done[0]);
    if (done[1] >= 0) close(done[1]);
  }
}
