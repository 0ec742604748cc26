// SPDX-License-Identifier: Apache-2.0
#include "worker.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "errno_name.hpp"
#include "log.hpp"
#include "ssx/ssx.h"

namespace ssx::cli::tunnel {
namespace {

constexpr auto kTick = std::chrono::milliseconds(200);
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr int kAcceptBatch = 256;  // per turn, so that accepting cannot starve forwarding
constexpr int kMaxEvents = 256;
// After a fatal alert: how long the peer's further bytes are read and dropped before closing,
// how many, and how many descriptors may be in that state at once (past it: closed at once).
constexpr auto kAlertLinger = std::chrono::milliseconds(1000);
constexpr size_t kAlertLingerBytes = size_t{256} * 1024;
constexpr size_t kMaxClosing = 1024;

HandshakeBudget::Limits budget_limits(const Options &o) {
  HandshakeBudget::Limits limits;
  limits.total = o.max_handshakes != 0 ? o.max_handshakes : derive_budget(o.workers);
  limits.per_source = o.max_handshakes_per_source;
  return limits;
}

int ms_until(Clock::time_point when) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(when - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left) + 1;
}

}  // namespace

Worker::Worker(Shared &shared, unsigned index, int listen_fd)
    : shared_(shared),
      counters_(shared.metrics.worker(index)),
      listen_fd_(listen_fd),
      budget_(budget_limits(shared.options)) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error(std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &wake_handle_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = &listener_handle_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
    throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  accept_more_ = true;  // connections may have queued before the listener joined epoll
}

Worker::~Worker() {
  while (live_ != nullptr) {
    Connection *c = live_;
    c->shut_down();  // retires (unlinks) it
  }
  reap();
  for (Connection *c : retired_) delete c;
  for (Closing &c : closing_) finish_closing(c);
  closing_.clear();
  close_listener();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void Worker::wake() {
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

bool Worker::watch(Endpoint &e) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = static_cast<Handle *>(&e);
  return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, e.fd, &ev) == 0;
}

void Worker::requeue(Connection *c) {
  if (c->queued) return;
  c->queued = true;
  runnable_.push_back(c);
}

void Worker::unlink(Connection *c) {
  if (c->prev != nullptr) c->prev->next = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  if (live_ == c) live_ = c->next;
  c->prev = c->next = nullptr;
  --live_count_;
}

void Worker::retire(Connection *c) {
  unlink(c);
  retired_.push_back(c);
}

void Worker::reap() {
  // Closing entries may be named by events of this turn until it ends: erased only here.
  closing_.remove_if([](const Closing &c) { return c.fd < 0; });
  size_t kept = 0;
  for (Connection *c : retired_) {
    if (c->queued) {
      retired_[kept++] = c;  // still in runnable_; freed on a later turn
    } else {
      delete c;
    }
  }
  retired_.resize(kept);
}

void Worker::setup_finished(Connection *c) {
  budget_.finished(c);
  counters_.setting_up.store(budget_.size(), std::memory_order_relaxed);
}

void Worker::shed_for(const std::vector<HandshakeBudget::Token> &tokens, const char *why) {
  for (HandshakeBudget::Token t : tokens) {
    // Only live connections are in the budget (end() takes them out), so the cast is safe.
    const_cast<Connection *>(static_cast<const Connection *>(t))->shed(why);
  }
}

void Worker::close_after_alert(int fd) {
  // The alert went out with the failed handshake step; a FIN follows it.
  (void)::shutdown(fd, SHUT_WR);
  if (closing_.size() >= kMaxClosing) {
    ssx_close(fd);
    return;
  }
  Closing &c = closing_.emplace_back();
  c.fd = fd;
  c.deadline = Clock::now() + kAlertLinger;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = static_cast<Handle *>(&c);
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    finish_closing(c);
    return;
  }
  drain(c);
}

void Worker::drain(Closing &c) {
  if (c.fd < 0) return;
  char sink[16384];
  for (;;) {
    // Raw recv: the connection failed; its bytes are only read to be dropped.
    ssize_t n = ::recv(c.fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0) {
      c.discarded += static_cast<size_t>(n);
      if (c.discarded <= kAlertLingerBytes) continue;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;  // wait for more, or for the peer's FIN, until the deadline
    }
    finish_closing(c);  // the peer closed (or failed, or sent too much): done
    return;
  }
}

void Worker::finish_closing(Closing &c) {
  if (c.fd < 0) return;
  ssx_close(c.fd);  // forgets the failed connection's state; nothing more is sent
  c.fd = -1;
}

void Worker::accepted(int fd, const sockaddr_storage &client) {
  WorkerCounters::add(counters_.accepted, 1);
  auto *c = new Connection(*this, shared_.next_id.fetch_add(1, std::memory_order_relaxed), client);
  c->next = live_;
  if (live_ != nullptr) live_->prev = c;
  live_ = c;
  ++live_count_;
  // Room for the newcomer first: the oldest unfinished handshakes (overall, or from this source)
  // go when the budget is full. The newcomer is never the one shed.
  shed_for(budget_.admit(c, client), "shed: oldest unfinished handshake, budget full");
  counters_.setting_up.store(budget_.size(), std::memory_order_relaxed);
  c->start(fd);
}

void Worker::accept_failed(int err, const std::string &message, const sockaddr_storage &client) {
  WorkerCounters::add(counters_.accepted, 1);
  auto *c = new Connection(*this, shared_.next_id.fetch_add(1, std::memory_order_relaxed), client);
  c->next = live_;
  if (live_ != nullptr) live_->prev = c;
  live_ = c;
  ++live_count_;
  c->reject(err, message);
}

void Worker::accept_pending() {
  accept_more_ = false;
  if (listen_fd_ < 0 || Clock::now() < accept_paused_until_) return;
  const bool server = shared_.options.mode == Mode::server;
  for (int i = 0; i < kAcceptBatch; ++i) {
    // No admission limit here: everything is accepted, and the handshake budget sheds the
    // oldest unfinished handshakes (accepted()). Leaving connections in the kernel's queue would
    // let whoever fills it first (idle connections cost an attacker nothing) lock others out.
    sockaddr_storage client{};
    socklen_t len = sizeof client;
    auto *address = reinterpret_cast<sockaddr *>(&client);
    int fd = server ? ssx_accept(listen_fd_, address, &len)
                    : ::accept4(listen_fd_, address, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      accepted(fd, client);
      continue;
    }
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR || err == ECONNABORTED) continue;
    if ((err == EMFILE || err == ENFILE) && budget_.size() > 0) {
      // Out of descriptors: the oldest unfinished handshake makes room for the newcomer.
      shed_for({budget_.oldest()}, "shed: oldest unfinished handshake, out of descriptors");
      continue;
    }
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      // Out of descriptors or memory: leave connections queued and try again shortly.
      shared_.log.repeated(LogLevel::error, "accept:" + errno_name(err), "accept_failed",
                           "cannot accept: " + errno_name(err) + " (" + std::strerror(err) +
                               "); retrying in " + std::to_string(kAcceptPause.count()) + " ms");
      accept_paused_until_ = Clock::now() + kAcceptPause;
      return;
    }
    if (server && client.ss_family != 0) {
      // ssx_accept accepted a connection whose handshake failed at once; it is closed.
      accept_failed(err, ssx_last_error(), client);
      continue;
    }
    shared_.log.repeated(LogLevel::error, "accept:" + errno_name(err), "accept_failed",
                         "accept failed: " + errno_name(err) + " (" +
                             (server ? std::string(ssx_last_error()) : std::strerror(err)) + ")");
    accept_paused_until_ = Clock::now() + kAcceptPause;
    return;
  }
  accept_more_ = true;
}

void Worker::close_listener() {
  if (listen_fd_ < 0) return;
  ssx_close(listen_fd_);  // also right for the cleartext listener of client mode
  listen_fd_ = -1;
}

void Worker::tick(Clock::time_point now) {
  for (Connection *c = live_; c != nullptr;) {
    Connection *next = c->next;  // tick may retire c (never another connection)
    c->tick(now);
    c = next;
  }
  for (Closing &c : closing_) {
    if (now >= c.deadline) finish_closing(c);
  }
  if (listen_fd_ >= 0 && accept_paused_until_ != Clock::time_point{} &&
      now >= accept_paused_until_) {
    accept_paused_until_ = {};
    accept_more_ = true;
  }
}

void Worker::run() {
  epoll_event events[kMaxEvents];
  auto next_tick = Clock::now() + kTick;
  bool draining = false;
  for (;;) {
    if (!draining && shared_.stopping.load(std::memory_order_acquire)) {
      // Stop accepting. What the kernel already queued on this listener would be reset by
      // close(2), so take it first and let it drain with the rest.
      draining = true;
      for (int i = 0; i < 64 && listen_fd_ >= 0; ++i) {
        accept_paused_until_ = {};
        accept_pending();
        if (!accept_more_) break;
      }
      close_listener();
      accept_more_ = false;
    }
    if (draining) {
      if (shared_.stop_now.load(std::memory_order_acquire) ||
          Clock::now() >= shared_.drain_deadline) {
        while (live_ != nullptr) live_->shut_down();
      }
      if (live_count_ == 0) break;
    }

    int timeout = !runnable_.empty() || accept_more_ ? 0 : ms_until(next_tick);
    if (draining) timeout = std::min(timeout, ms_until(shared_.drain_deadline));
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout);
    if (n < 0 && errno != EINTR) {
      shared_.log.event(LogLevel::error, "epoll_failed",
                        std::string("epoll_wait failed: ") + std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      auto *handle = static_cast<Handle *>(events[i].data.ptr);
      switch (handle->kind) {
        case Handle::Kind::endpoint: {
          auto *e = static_cast<Endpoint *>(handle);
          e->owner->on_event(*e, events[i].events);
          break;
        }
        case Handle::Kind::listener:
          accept_more_ = true;
          break;
        case Handle::Kind::closing:
          drain(*static_cast<Closing *>(handle));
          break;
        case Handle::Kind::wake: {
          std::uint64_t value = 0;
          (void)!::read(wake_fd_, &value, sizeof value);
          break;
        }
      }
    }
    if (accept_more_ && !draining) accept_pending();

    turn_.swap(runnable_);
    for (Connection *c : turn_) {
      c->queued = false;
      if (!c->closed()) c->pump();
    }
    turn_.clear();

    auto now = Clock::now();
    if (now >= next_tick) {
      tick(now);
      next_tick = now + kTick;
    }
    reap();
  }
  reap();
}

}  // namespace ssx::cli::tunnel
