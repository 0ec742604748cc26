// SPDX-License-Identifier: Apache-2.0
#include "connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "address.hpp"
#include "common/connection_failure.hpp"
#include "common/next_wait.hpp"
#include "errno_name.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "proxy_protocol.hpp"
#include "ssx/ssx.h"

namespace ssx::cli::tunnel {
namespace {

// Rounds of forwarding per turn before a busy connection yields to the others on its worker:
// at most about 8 x 64 KiB each way.
constexpr int kRoundsPerTurn = 8;

void set_nodelay(int fd) {
  // The tunnel forwards what it has at once; Nagle would hold small replies back.
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// What a setup step waits for: nothing when ssx already holds input (the handshake finished and
// read application data with its last flight; epoll would never report it).
short setup_wait_for(int fd, short fallback) {
  const NextWait w = next_wait(fd, fallback);
  return w.now ? short{0} : w.events;
}

}  // namespace

Connection::Connection(ConnectionHost &host, std::uint64_t id, const sockaddr_storage &client)
    : host_(host),
      id_(id),
      client_(client),
      started_(Clock::now()),
      setup_deadline_(started_ + host.options().setup_timeout),
      in_{&accepted_, &dialled_, {}},
      out_{&dialled_, &accepted_, {}} {
  accepted_.owner = this;
  dialled_.owner = this;
}

void Connection::start(int fd) {
  const bool server = host_.options().mode == Mode::server;
  accepted_.fd = fd;
  accepted_.secured = server;
  accepted_.state = server ? Endpoint::State::handshaking : Endpoint::State::open;
  set_nodelay(fd);
  accepted_.keepalive(host_.options().keepalive);
  if (!server) accepted_.reset_on_close(true);  // the application's side: a crash resets it
  // ssx_accept already took the first handshake step (it may even have finished it, with the
  // client's first data read along): wait for what it asked, or go on at once.
  if (server) accepted_.setup_wait = setup_wait_for(fd, 0);
  if (!host_.watch(accepted_)) {
    int err = errno;
    end(CloseReason::cleartext_error, false, err, std::string("epoll: ") + std::strerror(err));
    return;
  }
  if (!server) start_dial();
  pump();
}

bool Connection::queue_proxy_header() {
  ssx_security_info *info = nullptr;
  if (ssx_query_socket_security(accepted_.fd, nullptr, 0, &info) != 0) {
    const int err = errno;
    end(CloseReason::cleartext_error, false, err,
        std::string("PROXY header: cannot query the connection: ") + ssx_last_error());
    return false;
  }
  const ProxyPeer peer = proxy_peer_of(*info);
  ssx_free_security_info(info);
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockname(accepted_.fd, reinterpret_cast<sockaddr *>(&local), &local_len) != 0) {
    const int err = errno;
    end(CloseReason::cleartext_error, false, err,
        std::string("PROXY header: getsockname: ") + std::strerror(err));
    return false;
  }
  std::string header;
  if (auto built = proxy_v2_header(reinterpret_cast<const sockaddr *>(&client_),
                                   reinterpret_cast<const sockaddr *>(&local), peer)) {
    header = std::move(*built);
  } else {
    end(CloseReason::cleartext_error, false, built.error().code, built.error().message);
    return false;
  }
  // Nothing was read from the client yet: the buffer is empty and the header fits at its start.
  const std::span<char> room = in_.buffer.writable(host_.pool());
  if (room.size() < header.size()) {
    end(CloseReason::cleartext_error, false, EMSGSIZE, "PROXY header: no room in the buffer");
    return false;
  }
  std::copy(header.begin(), header.end(), room.begin());
  in_.buffer.commit(header.size());
  proxy_header_ = header.size();
  return true;
}

void Connection::start_dial() {
  if (closed_) return;
  const Options &o = host_.options();
  const bool secured = o.mode == Mode::client;
  to_ = o.to_resolved ? o.to_resolved->get() : o.to_address;
  auto &counters = host_.counters();
  // A failed dial counts as a handshake failure when it is the secured one (client mode: TCP
  // connect and TLS handshake are one ssx_connect), else as a connect failure.
  auto dial_failed = [&](int err, const std::string &reason) {
    const std::string message = connection_failure(format_address(to_.get()), reason);
    if (secured) {
      WorkerCounters::add(WorkerCounters::slot(counters.handshake_failures, err), 1);
      end(CloseReason::handshake_failed, false, err, message);
    } else {
      WorkerCounters::add(WorkerCounters::slot(counters.connect_failures, err), 1);
      end(CloseReason::connect_failed, false, err, message);
    }
  };

  int fd = ::socket(to_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    dial_failed(err, std::string("socket: ") + std::strerror(err));
    return;
  }
  dialled_.fd = fd;
  dialled_.secured = secured;
  dialled_.state = Endpoint::State::connecting;
  set_nodelay(fd);
  dialled_.keepalive(o.keepalive);
  if (!secured) dialled_.reset_on_close(true);  // the backend's side: a crash resets it
  if (secured) {
    ssx_security_settings settings{SSX_PROTOCOL_DEFAULT, secured_flags(to_.family())};
    if (ssx_set_socket_security(fd, &settings, sizeof settings) != 0) {
      int err = errno;
      dial_failed(err, ssx_last_error());
      return;
    }
    for (const auto &name : o.names) {
      if (ssx_set_socket_peer_target_name(fd, name.c_str(), nullptr, 0) != 0) {
        int err = errno;
        dial_failed(err, ssx_last_error());
        return;
      }
    }
  }
  if (!host_.watch(dialled_)) {
    int err = errno;
    dial_failed(err, std::string("epoll: ") + std::strerror(err));
    return;
  }
  int rc = secured ? ssx_connect(fd, to_.get(), to_.length) : ::connect(fd, to_.get(), to_.length);
  if (rc == 0) {
    dialled_.state = Endpoint::State::open;
    if (secured) established(dialled_);
    return;
  }
  int err = errno;
  if (err == EINPROGRESS || err == EINTR) {
    dialled_.setup_wait = secured ? setup_wait_for(fd, POLLOUT) : POLLOUT;
    return;
  }
  dial_failed(err, secured ? std::string(ssx_last_error()) : std::string(std::strerror(err)));
}

bool Connection::step_handshake(Endpoint &e) {
  if (ssx_handshake(e.fd) == 0) {
    e.state = Endpoint::State::open;
    established(e);
    return true;
  }
  if (errno == EAGAIN) {
    e.setup_wait = setup_wait_for(e.fd, POLLIN);
    return true;
  }
  const int err = errno;
  WorkerCounters::add(WorkerCounters::slot(host_.counters().handshake_failures, err), 1);
  std::string reason = ssx_last_error();
  // The dialled hop (client mode) says where it failed to connect, as `ssx connect` does.
  if (&e == &dialled_) {
    reason = connection_failure(format_address(to_.get()), reason);
  }
  end(CloseReason::handshake_failed, false, err, reason);
  return false;
}

void Connection::established(Endpoint &e) {
  idle_timeout_ = host_.options().idle_timeout;
  ssx_security_info *info = nullptr;
  if (ssx_query_socket_security(e.fd, nullptr, 0, &info) != 0) return;
  peer_principal_ = info->peer_principal != nullptr ? info->peer_principal : "";
  rule_ = info->policy_rule != nullptr ? info->policy_rule : "";
  auto &counters = host_.counters();
  WorkerCounters::add((info->flags & SSX_INFO_RESUMED) != 0 ? counters.handshakes_resumed
                                                            : counters.handshakes_full,
                      1);
  // The policy's idle_timeout_ms, when it sets one, wins over --idle-timeout.
  if (info->idle_timeout_ms >= 0) idle_timeout_ = std::chrono::milliseconds(info->idle_timeout_ms);
  ssx_free_security_info(info);
}

void Connection::advance_setup() {
  auto &counters = host_.counters();
  if (accepted_.state == Endpoint::State::handshaking && accepted_.setup_wait == 0) {
    if (!step_handshake(accepted_)) return;
    if (accepted_.state == Endpoint::State::open) {
      if (host_.options().proxy_protocol && !queue_proxy_header()) return;
      start_dial();
      if (closed_) return;
    }
  }
  if (dialled_.state == Endpoint::State::connecting && dialled_.setup_wait == 0) {
    if (dialled_.secured) {
      if (!step_handshake(dialled_)) return;
    } else {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(dialled_.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) {
        WorkerCounters::add(WorkerCounters::slot(counters.connect_failures, err), 1);
        end(CloseReason::connect_failed, false, err,
            connection_failure(format_address(to_.get()), std::strerror(err)));
        return;
      }
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      if (::getpeername(dialled_.fd, reinterpret_cast<sockaddr *>(&peer), &peer_len) == 0) {
        dialled_.state = Endpoint::State::open;
      } else {
        dialled_.setup_wait = POLLOUT;  // still connecting
      }
    }
  }
}

bool Connection::forward(Direction &d, std::atomic<std::uint64_t> &counter) {
  Endpoint &src = *d.src;
  Endpoint &dst = *d.dst;
  BufferPool &pool = host_.pool();
  bool progress = false;

  if (src.state == Endpoint::State::open && !src.read_eof && src.read_wait == 0 &&
      !d.buffer.full()) {
    IoResult r = src.read(d.buffer.writable(pool));
    if (r.n > 0) {
      d.buffer.commit(static_cast<size_t>(r.n));
      progress = true;
    } else if (r.n == 0) {
      src.read_eof = true;
      progress = true;
    } else if (r.again()) {
      src.read_wait = r.wants;
    } else {
      io_failed(src, r, true);
      return false;
    }
    if (d.buffer.empty()) d.buffer.reset(pool);  // idle connections hold no buffer
  }

  if (dst.state == Endpoint::State::open && !d.buffer.empty() && dst.write_wait == 0) {
    IoResult r = dst.write(d.buffer.readable());
    if (r.n > 0) {
      d.buffer.consume(static_cast<size_t>(r.n), pool);
      d.bytes += static_cast<std::uint64_t>(r.n);
      WorkerCounters::add(counter, static_cast<std::uint64_t>(r.n));
      progress = true;
    } else if (r.again()) {
      dst.write_wait = r.wants;
    } else {
      io_failed(dst, r, false);
      return false;
    }
  }

  // The sending side ended cleanly and everything it sent is out: end this direction on the
  // other side too. Cleartext EOF becomes close_notify; close_notify becomes a FIN.
  if (src.read_eof && d.buffer.empty() && dst.state == Endpoint::State::open && !dst.write_shut &&
      dst.write_wait == 0) {
    IoResult r = dst.shutdown_write();
    if (r.n == 0) {
      dst.write_shut = true;
      progress = true;
    } else if (r.again()) {
      dst.write_wait = r.wants;
    } else {
      io_failed(dst, r, false);
      return false;
    }
  }
  return progress;
}

void Connection::io_failed(Endpoint &e, const IoResult &r, bool reading) {
  const bool gone = r.error == EPIPE || r.error == ECONNRESET || r.error == ENOTCONN;
  if (!e.secured && !reading && gone && !e.read_eof) {
    // A write that fails because the other end has gone may have raced with its FIN still
    // queued on our side: read what is left first, to tell "answered and closed" from a reset.
    Direction &from = &e == &dialled_ ? out_ : in_;
    BufferPool &pool = host_.pool();
    while (!from.buffer.full()) {
      IoResult got = e.read(from.buffer.writable(pool));
      if (got.n > 0) {
        from.buffer.commit(static_cast<size_t>(got.n));
        continue;
      }
      if (got.n == 0) e.read_eof = true;
      break;
    }
    if (from.buffer.empty()) from.buffer.reset(pool);
  }
  if (!e.secured && !reading && e.read_eof && gone) {
    // The cleartext side ended its stream (FIN) and then took no more (a reset, or a socket
    // already closed): an HTTP service that answers "501" and closes without reading the rest of
    // the request. That is how it chose to end; not a failure. Drop what it will not read, stop
    // reading for it, and let what it sent finish its way out; the connection then ends in order.
    Direction &into = &e == &dialled_ ? in_ : out_;
    into.buffer.reset(host_.pool());
    into.src->read_eof = true;
    e.write_shut = true;
    early_close_ = true;
    return;
  }
  if (!e.secured && &e == &accepted_ && gone && in_.bytes == 0 && out_.bytes == 0) {
    end(CloseReason::client_reset, false, r.error,
        "the client reset the connection before sending anything");
    return;
  }
  CloseReason reason = CloseReason::cleartext_error;
  if (e.secured) {
    // ECONNRESET from ssx_recv: the stream ended without close_notify, so what arrived may be
    // cut short. The cleartext side is reset, never given a clean end it could trust. (ssx_recv
    // reports EPIPE instead when the peer's FIN was followed by a reset, because the alert
    // OpenSSL then tries to send fails first: a truncation all the same.)
    const bool truncated = reading && (r.error == ECONNRESET || r.error == EPIPE);
    reason = truncated ? CloseReason::tls_truncated : CloseReason::tls_error;
  }
  end(reason, false, r.error, r.message);
}

void Connection::pump() {
  if (closed_) return;
  if (accepted_.state != Endpoint::State::open || dialled_.state != Endpoint::State::open) {
    advance_setup();
    if (closed_) return;
  }
  if (setting_up_ && accepted_.state == Endpoint::State::open &&
      dialled_.state == Endpoint::State::open) {
    setting_up_ = false;
    last_active_ = Clock::now();
    host_.setup_finished(this);
  }
  auto &counters = host_.counters();
  for (int round = 0;; ++round) {
    bool progress = forward(in_, counters.bytes_in);
    if (closed_) return;
    progress = forward(out_, counters.bytes_out) || progress;
    if (closed_) return;
    if (!progress) break;
    moved_ = true;
    if (round + 1 >= kRoundsPerTurn) {
      host_.requeue(this);
      return;
    }
  }
  if (in_.finished() && out_.finished()) {
    end(CloseReason::done, true, 0,
        early_close_ ? "the cleartext side closed before reading all that was sent to it" : "");
  }
}

void Connection::on_event(Endpoint &e, unsigned events) {
  if (closed_) return;
  e.ready(events);
  pump();
}

void Connection::tick(Clock::time_point now) {
  if (closed_) return;
  const bool setting_up =
      accepted_.state != Endpoint::State::open || dialled_.state != Endpoint::State::open;
  if (!setting_up) {
    // Idle timeout, at tick granularity: the data path only sets a flag.
    if (moved_) {
      moved_ = false;
      last_active_ = now;
    } else if (idle_timeout_.count() > 0 && now - last_active_ >= idle_timeout_) {
      end(CloseReason::idle_timeout, false, ETIMEDOUT,
          "nothing moved either way for " + std::to_string(idle_timeout_.count()) +
              " ms (idle timeout: the policy's idle_timeout_ms, else --idle-timeout)");
    }
    return;
  }
  const bool handshaking = accepted_.state == Endpoint::State::handshaking ||
                           (dialled_.secured && dialled_.state == Endpoint::State::connecting);
  if (now >= setup_deadline_) {
    auto &counters = host_.counters();
    auto &by_errno = handshaking ? counters.handshake_failures : counters.connect_failures;
    WorkerCounters::add(WorkerCounters::slot(by_errno, ETIMEDOUT), 1);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(host_.options().setup_timeout)
            .count();
    end(CloseReason::setup_timeout, false, ETIMEDOUT,
        std::string(handshaking ? "handshake" : "connect to --to") + " did not finish within " +
            std::to_string(ms) + " ms (--setup-timeout)");
    return;
  }
  // ssx checks handshake_timeout_ms when called; call it even if the peer stays silent.
  bool nudge = false;
  if (accepted_.state == Endpoint::State::handshaking && accepted_.setup_wait != 0) {
    accepted_.setup_wait = 0;
    nudge = true;
  }
  if (dialled_.secured && dialled_.state == Endpoint::State::connecting &&
      dialled_.setup_wait != 0) {
    dialled_.setup_wait = 0;
    nudge = true;
  }
  if (nudge) pump();
}

void Connection::shut_down() {
  end(CloseReason::shutdown, false, 0, "still open at the end of the shutdown grace period");
}

void Connection::shed(const std::string &why) {
  WorkerCounters::add(WorkerCounters::slot(host_.counters().handshake_failures, ECONNABORTED), 1);
  end(CloseReason::shed, false, ECONNABORTED, why);
}

void Connection::reject(int error, const std::string &message) {
  if (error == ENOTCONN) {
    // ssx_accept found the connection already gone (getpeername: ENOTCONN): the client reset it
    // while it waited in the accept queue. Not a handshake that failed.
    end(CloseReason::client_reset, false, ECONNRESET,
        "the client reset the connection before it was accepted");
    return;
  }
  WorkerCounters::add(WorkerCounters::slot(host_.counters().handshake_failures, error), 1);
  end(CloseReason::handshake_failed, false, error, message);
}

void Connection::end(CloseReason reason, bool orderly, int error, const std::string &message) {
  if (closed_) return;
  closed_ = true;
  if (setting_up_) {
    setting_up_ = false;
    host_.setup_finished(this);
  }
  // After a fatal alert (a failed handshake, a protocol error mid-stream) the secured side is
  // closed in order, so that the alert reaches the peer; the alert already tells it the stream
  // did not end cleanly. A timeout sent no alert: reset at once.
  const bool alerted = (reason == CloseReason::handshake_failed && error != ETIMEDOUT) ||
                       reason == CloseReason::tls_error;
  for (Endpoint *e : {&accepted_, &dialled_}) {
    if (orderly) {
      e->close();
    } else if (alerted && e->secured && e->fd >= 0) {
      host_.close_after_alert(e->release());
    } else {
      e->abort();
    }
  }
  BufferPool &pool = host_.pool();
  in_.buffer.reset(pool);
  out_.buffer.reset(pool);

  auto &counters = host_.counters();
  WorkerCounters::add(counters.closes[static_cast<size_t>(reason)], 1);
  WorkerCounters::add(counters.closed, 1);

  ConnectionRecord record;
  record.id = id_;
  record.tunnel = host_.options().name;
  record.peer_address = format_address(reinterpret_cast<const sockaddr *>(&client_));
  record.principal = peer_principal_;
  record.rule = rule_;
  record.bytes_in = in_.bytes >= proxy_header_ ? in_.bytes - proxy_header_ : 0;
  record.bytes_out = out_.bytes;
  record.duration_s = std::chrono::duration<double>(Clock::now() - started_).count();
  record.close = close_reason_name(reason);
  if (error != 0) record.error = errno_name(error);
  record.reason = message;
  const bool normal = reason == CloseReason::done || reason == CloseReason::shutdown ||
                      reason == CloseReason::client_reset;
  host_.log().connection(normal ? LogLevel::info : LogLevel::warning, record);
  host_.retire(this);
}

}  // namespace ssx::cli::tunnel
