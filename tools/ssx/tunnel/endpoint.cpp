// SPDX-License-Identifier: Apache-2.0
#include "endpoint.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/next_wait.hpp"
#include "ssx/ssx.h"

namespace ssx::cli::tunnel {

void Endpoint::ready(unsigned events) {
  if ((events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0) {
    read_wait = write_wait = setup_wait = 0;
    return;
  }
  short got = 0;
  if ((events & EPOLLIN) != 0) got |= POLLIN;
  if ((events & EPOLLOUT) != 0) got |= POLLOUT;
  if ((read_wait & got) != 0) read_wait = 0;
  if ((write_wait & got) != 0) write_wait = 0;
  if ((setup_wait & got) != 0) setup_wait = 0;
}

IoResult failure_of(int error, bool secured, int fd, bool for_write) {
  IoResult r;
  r.error = error;
  if (error == EAGAIN || error == EWOULDBLOCK) {
    r.error = EAGAIN;
    // Never "wait for nothing" after EAGAIN: that would spin. Assume the direction's own event.
    // SSX_POLLPENDING is not waited for: after EAGAIN from ssx_recv nothing is held (it would
    // have been returned), and held input does not concern a write; the read side reads until
    // EAGAIN, so nothing held is ever left behind an edge that already fired.
    const short fallback = for_write ? POLLOUT : POLLIN;
    r.wants = secured ? cli::next_wait(fd, fallback).events : fallback;
  } else {
    r.message = secured ? ssx_last_error() : std::strerror(error);
  }
  return r;
}

IoResult Endpoint::read(std::span<char> into) {
  ssize_t n;
  do {
    n = secured ? ssx_recv(fd, into.data(), into.size(), 0)
                : ::recv(fd, into.data(), into.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return IoResult{n, 0, 0, {}};
  return failure_of(errno, secured, fd, false);
}

IoResult Endpoint::write(std::span<const char> from) {
  ssize_t n;
  do {
    n = secured ? ssx_send(fd, from.data(), from.size(), 0)
                : ::send(fd, from.data(), from.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n > 0) return IoResult{n, 0, 0, {}};
  if (n == 0) return failure_of(EAGAIN, secured, fd, true);
  return failure_of(errno, secured, fd, true);
}

IoResult Endpoint::shutdown_write() {
  int rc = secured ? ssx_shutdown(fd, SHUT_WR) : ::shutdown(fd, SHUT_WR);
  if (rc == 0) return IoResult{0, 0, 0, {}};
  IoResult r = failure_of(errno, secured, fd, true);
  // close_notify could not be written yet: it waits for room to send, whatever ssx_wants()
  // says (ssx_shutdown does not update it).
  if (r.again()) r.wants = POLLOUT;
  return r;
}

void Endpoint::close() {
  if (fd < 0) return;
  if (secured) {
    ssx_close(fd);
  } else {
    reset_on_close(false);  // an orderly end: FIN after the last byte
    ::close(fd);
  }
  fd = -1;
  state = State::closed;
}

void Endpoint::abort() {
  if (fd < 0) return;
  // Not ssx_close: its close_notify would tell the peer "this is the complete stream". ssx_abort
  // resets the connection (secured or cleartext alike), so the peer sees a truncation.
  ssx_abort(fd);
  fd = -1;
  state = State::closed;
}

int Endpoint::release() {
  int released = fd;
  fd = -1;
  state = State::closed;
  return released;
}

void Endpoint::reset_on_close(bool on) const {
  if (fd < 0) return;
  linger l{on ? 1 : 0, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void Endpoint::keepalive(unsigned idle_s) const {
  if (fd < 0 || idle_s == 0) return;
  int on = 1;
  int idle = static_cast<int>(idle_s);
  int interval = std::max(1, idle / 4);
  int count = 4;
  unsigned user_timeout_ms = (idle_s + static_cast<unsigned>(interval * count)) * 1000U;
  (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}

}  // namespace ssx::cli::tunnel
