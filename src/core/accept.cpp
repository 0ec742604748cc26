// SPDX-License-Identifier: Apache-2.0
// core/accept.cpp — SecureSocket::accept: taking connections from a listener and, for blocking
// listeners, handshaking many of them at once.
//
// A blocking ssx_accept must return a connection whose handshake is done, yet one client that
// connects and then sends nothing (or sends slowly) must not hold up the clients behind it for
// the whole handshake timeout. So a blocking listener keeps the connections it has accepted but
// not yet handed out (PendingAccepts, at most kMaxPendingHandshakes) and ssx_accept polls the
// listener and all of them together, stepping whichever is ready, and returns the first that
// completes (or the first that fails, closed, with its reason, as before). The rest stay pending
// for the next call. One thread at a time drives a listener's pending handshakes (the `driver`
// mutex); other threads calling ssx_accept on it wait their turn, bounded by SO_RCVTIMEO.

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "core/secure_socket.hpp"

namespace ssx::core {

// Connections never handed out end with the listener (no close_notify: none is established).
SecureSocket::PendingAccepts::~PendingAccepts() {
  for (const auto &s : sockets) ::close(s->fd());
}

void SecureSocket::Turn::lock() {
  std::unique_lock l(mu_);
  free_.wait(l, [this] { return !taken_; });
  taken_ = true;
}

bool SecureSocket::Turn::try_lock() {
  std::lock_guard l(mu_);
  if (taken_) return false;
  taken_ = true;
  return true;
}

bool SecureSocket::Turn::try_lock_until(net::Clock::time_point deadline) {
  std::unique_lock l(mu_);
  if (!free_.wait_until(l, deadline, [this] { return !taken_; })) return false;
  taken_ = true;
  return true;
}

void SecureSocket::Turn::unlock() {
  {
    std::lock_guard l(mu_);
    taken_ = false;
  }
  free_.notify_one();
}

Result<std::shared_ptr<SecureSocket>> SecureSocket::accept(sockaddr *address, socklen_t *length) {
  {
    Lock lock(mu_);
    if (state_ == State::configured) {
      // Checked, so that accept on a socket that is not listening changes nothing.
      if (!is_listening(fd_)) return fail(EINVAL, "not a listening socket: call listen(2) first");
      transition(State::listener, 0);
    }
    if (state_ != State::listener) return fail(EINVAL, "not a listening socket");
    if (!pending_) pending_ = std::make_unique<PendingAccepts>();
  }
  if (!net::is_nonblocking(fd_)) return accept_blocking(address, length);
  // Non-blocking listener. Connections a blocking ssx_accept left pending (the application has
  // since made the listener non-blocking) are handed out first, as still handshaking.
  std::unique_lock driver(pending_->driver, std::try_to_lock);
  if (driver.owns_lock() && !pending_->sockets.empty()) {
    auto child = std::move(pending_->sockets.front());
    pending_->sockets.erase(pending_->sockets.begin());
    const int flags = ::fcntl(child->fd(), F_GETFL);
    if (flags >= 0) ::fcntl(child->fd(), F_SETFL, flags | O_NONBLOCK);
    child->copy_peer_address(address, length);
    return child;
  }
  driver = {};
  return accept_one(address, length, true);
}

Result<std::shared_ptr<SecureSocket>> SecureSocket::accept_one(sockaddr *address, socklen_t *length,
                                                               bool nonblocking_listener) {
  AppSettings app;
  {
    Lock lock(mu_);
    app = app_;
  }
  // The listener's lock is not held while accept(2) blocks: other threads may use it meanwhile.
  int child_fd = -1;
  do {
    child_fd =
        ::accept4(fd_, address, length, SOCK_CLOEXEC | (nonblocking_listener ? SOCK_NONBLOCK : 0));
  } while (child_fd < 0 && errno == EINTR);
  if (child_fd < 0) {
    const int error = errno;
    if (error == EAGAIN || error == EWOULDBLOCK) return fail(EAGAIN, SSX_REASON_WOULD_BLOCK);
    return fail(error, std::string("accept: ") + std::strerror(error));
  }
  auto child = std::make_shared<SecureSocket>(child_fd, std::move(app));
  // Nobody else can see |child| yet: its lock is uncontended, and begin_inbound's policy lookup
  // (which may rebuild a changed policy) holds up no other socket.
  Lock child_lock(child->mu_);
  if (auto r = child->begin_inbound(); !r) {
    ::close(child_fd);
    return r.error();
  }
  return child;
}

Result<std::shared_ptr<SecureSocket>> SecureSocket::accept_blocking(sockaddr *address,
                                                                    socklen_t *length) {
  // SO_RCVTIMEO bounds a blocking accept(2); it bounds this call too (EAGAIN), turn included.
  const net::Deadline timeout = net::socket_timeout(fd_, true);
  std::unique_lock driver(pending_->driver, std::defer_lock);
  if (!timeout) {
    driver.lock();
  } else if (!driver.try_lock_until(*timeout)) {
    return fail(EAGAIN, "no connection was accepted within SO_RCVTIMEO");
  }
  auto &pending = pending_->sockets;
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    const bool room = pending.size() < kMaxPendingHandshakes;
    fds.push_back(pollfd{fd_, static_cast<short>(room ? POLLIN : 0), 0});
    net::Deadline wake = timeout;
    for (const auto &s : pending) {
      fds.push_back(pollfd{s->fd(), s->wants(), 0});
      const auto at = s->handshake_deadline();
      if (!wake || at < *wake) wake = at;
    }
    int wait_ms = -1;
    if (wake) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(*wake - net::Clock::now()).count();
      wait_ms = static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
    }
    if (::poll(fds.data(), fds.size(), wait_ms) < 0) {
      const int error = errno;
      if (error == EINTR) continue;
      return fail(error, std::string("poll: ") + std::strerror(error));
    }
    const auto now = net::Clock::now();
    // Pending handshakes that can move, or whose time is up, first: they were here before any
    // connection still in the kernel's queue.
    for (size_t i = 0; i < pending.size(); ++i) {
      if (fds[i + 1].revents == 0 && now < pending[i]->handshake_deadline()) continue;
      auto done = pending[i]->step_handshake();
      if (done && !*done) continue;  // still handshaking
      auto child = std::move(pending[i]);
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
      child->copy_peer_address(address, length);
      if (!done) {
        // This connection failed; the listener and the other pending handshakes go on.
        ::close(child->fd());
        return done.error();
      }
      return child;
    }
    if (fds[0].revents != 0) {
      auto child = accept_one(address, length, false);
      if (!child) return child.error();
      auto done = (*child)->step_handshake();
      if (!done) {
        ::close((*child)->fd());
        return done.error();
      }
      if (*done) return child;  // AF_UNIX, or cleartext whose first byte was already there
      pending.push_back(std::move(*child));
      continue;  // poll again at once: its ClientHello may have arrived meanwhile
    }
    if (timeout && net::Clock::now() >= *timeout) {
      return fail(EAGAIN, "no connection completed its handshake within SO_RCVTIMEO");
    }
  }
}

Result<bool> SecureSocket::step_handshake() {
  Lock lock(mu_);
  auto r = drive(lock, true);
  if (r) return true;
  if (state_ != State::failed && r.error().code == EAGAIN) return false;
  return r.error();
}

net::Clock::time_point SecureSocket::handshake_deadline() const {
  Lock lock(mu_);
  return hello_deadline_ != net::Clock::time_point{} ? hello_deadline_ : deadline_;
}

void SecureSocket::copy_peer_address(sockaddr *address, socklen_t *length) const {
  if (address == nullptr || length == nullptr) return;
  Lock lock(mu_);
  std::memcpy(address, &peer_, std::min<size_t>(*length, peer_len_));
  *length = peer_len_;
}

}  // namespace ssx::core
