// SPDX-License-Identifier: Apache-2.0
/* epoll_server.c — a single-threaded, non-blocking echo server on epoll, secured with ssx.
 *
 *   epoll_server [PORT [ADDRESS]]      (defaults: 0 = any free port, 127.0.0.1)
 *
 * Prints "listening on ADDRESS:PORT" once ready, then echoes what each client sends and ends
 * each connection with close_notify after the client's. Many clients are served at once, their
 * handshakes interleaved, and none can stall another:
 *   - the listener and every connection are non-blocking; ssx_accept returns a connection whose
 *     handshake goes on in the loop (ssx_handshake), so a client that never finishes it costs a
 *     slot, not the loop's time;
 *   - the loop uses edge-triggered epoll and the rule of ssx.h: read until ssx_recv fails with
 *     EAGAIN. ssx reads TLS records ahead, so data can wait inside ssx while the kernel says the
 *     socket is idle; reading to EAGAIN drains it. A connection that used up its turn's budget
 *     (fairness) has not reached EAGAIN: it goes on a ready list and is served again without
 *     waiting. (A level-triggered loop that reads once per wake-up would instead check
 *     ssx_wants(fd) & SSX_POLLPENDING before waiting on a connection again.);
 *   - timeouts: ssx checks the policy's handshake timeouts when ssx_handshake runs, so the loop
 *     wakes at least once a second and drives every unfinished handshake; established
 *     connections that move nothing for the policy's idle_timeout_ms (default here 60 s) are
 *     reset with ssx_abort;
 *   - bounded: at most MAX_CONNECTIONS at once (more are accepted and closed at once), and at
 *     most one buffer of unsent echo per connection (it stops reading until the echo is sent).
 * TLS versions, certificates and trust come from the policy ($SSX_POLICY, docs/policy.md). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <ssx/ssx.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 4096
#define BUFFER_SIZE 16384
#define TURN_BUDGET (4 * BUFFER_SIZE) /* bytes one connection may move per turn */
#define DEFAULT_IDLE_MS 60000

enum phase { HANDSHAKING, OPEN, DEAD };

struct conn {
  int fd;
  enum phase phase;
  int64_t idle_ms;   /* the policy's idle_timeout_ms, or DEFAULT_IDLE_MS */
  int64_t last_move; /* monotonic ms of the last byte moved (or the accept) */
  int peer_done;     /* the client's close_notify has been read */
  int ready;         /* on the ready list: served again without waiting */
  size_t out_off, out_len;
  char out[BUFFER_SIZE]; /* echo not yet sent */
  struct conn *next;     /* all connections */
  struct conn *next_ready;
};

static struct conn *all_conns;
static struct conn *ready_list;
static size_t conn_count;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drop(struct conn *c, int abort_it, const char *why) {
  if (why != NULL) fprintf(stderr, "epoll_server: fd %d: %s\n", c->fd, why);
  /* Closing removes the fd from the epoll set; the struct is freed after this turn, since
   * other events of the same epoll_wait may still point at it. */
  if (abort_it) {
    ssx_abort(c->fd);
  } else {
    ssx_close(c->fd);
  }
  c->fd = -1;
  c->phase = DEAD;
  conn_count--;
}

static void make_ready(struct conn *c) {
  if (!c->ready) {
    c->ready = 1;
    c->next_ready = ready_list;
    ready_list = c;
  }
}

static void on_established(struct conn *c) {
  struct ssx_security_info *info = NULL;
  c->phase = OPEN;
  c->idle_ms = DEFAULT_IDLE_MS;
  if (ssx_query_socket_security(c->fd, NULL, 0, &info) == 0) {
    if (info->idle_timeout_ms >= 0) c->idle_ms = info->idle_timeout_ms; /* 0: no limit */
    ssx_free_security_info(info);
  }
}

/* serve gives |c| one turn: finish the handshake, then echo until ssx says EAGAIN, the budget is
 * spent, or the connection ends. */
static void serve(struct conn *c) {
  size_t moved = 0;
  if (c->phase == HANDSHAKING) {
    if (ssx_handshake(c->fd) != 0) {
      if (errno != EAGAIN) drop(c, 0, ssx_last_error());
      return; /* EAGAIN: epoll reports the next step (EPOLLIN/EPOLLOUT are both registered) */
    }
    on_established(c);
    /* Data may have come with the handshake's last flight and sit in ssx: go on reading now. */
  }
  while (c->phase == OPEN) {
    if (moved >= TURN_BUDGET) { /* fair share used: let the others run, come back at once */
      make_ready(c);
      return;
    }
    if (c->out_off < c->out_len) {
      ssize_t n = ssx_send(c->fd, c->out + c->out_off, c->out_len - c->out_off, 0);
      if (n < 0) {
        if (errno != EAGAIN) drop(c, 1, ssx_last_error());
        return; /* EAGAIN: wait for EPOLLOUT; reading stops until the echo is out */
      }
      c->out_off += (size_t)n;
      moved += (size_t)n;
      c->last_move = now_ms();
      continue;
    }
    if (c->peer_done) { /* all echoed: end our side cleanly and close */
      if (ssx_shutdown(c->fd, SHUT_WR) != 0 && errno == EAGAIN) return; /* retried on EPOLLOUT */
      drop(c, 0, NULL);
      return;
    }
    c->out_off = c->out_len = 0;
    ssize_t n = ssx_recv(c->fd, c->out, sizeof c->out, 0);
    if (n > 0) {
      c->out_len = (size_t)n;
      moved += (size_t)n;
      c->last_move = now_ms();
    } else if (n == 0) {
      c->peer_done = 1;
    } else if (errno == EAGAIN) {
      /* ssx holds nothing complete: the next input comes through the socket and epoll. */
      return;
    } else {
      drop(c, 1, ssx_last_error()); /* ECONNRESET: truncated; EPROTO: corrupt records */
      return;
    }
  }
}

/* sweep drives unfinished handshakes (so that ssx's handshake timeouts fire) and resets idle
 * connections. */
static void sweep(void) {
  int64_t now = now_ms();
  for (struct conn *c = all_conns; c != NULL; c = c->next) {
    if (c->phase == HANDSHAKING) {
      serve(c);
    } else if (c->phase == OPEN && c->idle_ms > 0 && now - c->last_move > c->idle_ms) {
      drop(c, 1, "idle timeout");
    }
  }
}

static void reap(void) {
  struct conn **p = &all_conns;
  while (*p != NULL) {
    struct conn *c = *p;
    if (c->phase == DEAD && !c->ready) {
      *p = c->next;
      free(c);
    } else {
      p = &c->next;
    }
  }
}

static void accept_all(int listener, int epfd) {
  for (;;) {
    int fd = ssx_accept(listener, NULL, NULL); /* non-blocking listener: returns at once */
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        fprintf(stderr, "epoll_server: accept: %s\n", ssx_last_error());
        return; /* try again at the next wake-up */
      }
      /* That connection failed (refused by policy, not TLS, ...); the listener goes on. */
      fprintf(stderr, "epoll_server: accept: %s\n", ssx_last_error());
      continue;
    }
    struct conn *c = conn_count < MAX_CONNECTIONS ? calloc(1, sizeof *c) : NULL;
    if (c == NULL) {
      ssx_abort(fd);
      continue;
    }
    c->fd = fd;
    c->phase = HANDSHAKING;
    c->last_move = now_ms();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ssx_abort(fd);
      free(c);
      continue;
    }
    c->next = all_conns;
    all_conns = c;
    conn_count++;
    serve(c); /* the ClientHello may be here already */
  }
}

int main(int argc, char **argv) {
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  struct ssx_security_settings settings = {SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
  struct epoll_event events[64];
  struct epoll_event lev;
  int64_t last_sweep;
  int listener, epfd;

  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)(argc > 1 ? atoi(argv[1]) : 0));
  if (inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &addr.sin_addr) != 1) {
    fprintf(stderr, "usage: epoll_server [PORT [IPv4 ADDRESS]]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* ssx never raises it; this is for anything else */

  listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) {
    perror("epoll_server: socket");
    return 1;
  }
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ssx_set_socket_security(listener, &settings, sizeof settings) != 0) {
    fprintf(stderr, "epoll_server: %s\n", ssx_last_error());
    return 1;
  }
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 512) != 0 ||
      getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
    perror("epoll_server: bind/listen");
    return 1;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  lev.events = EPOLLIN;
  lev.data.ptr = NULL; /* NULL: the listener */
  if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev) != 0) {
    perror("epoll_server: epoll");
    return 1;
  }
  char text[INET_ADDRSTRLEN];
  printf("listening on %s:%u\n", inet_ntop(AF_INET, &addr.sin_addr, text, sizeof text),
         (unsigned)ntohs(addr.sin_port));
  fflush(stdout);

  last_sweep = now_ms();
  for (;;) {
    /* Connections on the ready list have input or output to go on with: do not sleep. */
    int n = epoll_wait(epfd, events, 64, ready_list != NULL ? 0 : 1000);
    if (n < 0 && errno != EINTR) {
      perror("epoll_server: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c == NULL) {
        accept_all(listener, epfd);
      } else if (c->phase != DEAD) {
        serve(c);
      }
    }
    /* One more turn for each connection that used up its budget. */
    struct conn *ready = ready_list;
    ready_list = NULL;
    while (ready != NULL) {
      struct conn *c = ready;
      ready = c->next_ready;
      c->ready = 0;
      if (c->phase != DEAD) serve(c);
    }
    if (now_ms() - last_sweep >= 1000) {
      sweep();
      last_sweep = now_ms();
    }
    reap();
  }
}
