// SPDX-License-Identifier: Apache-2.0
#include "core/secure_socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

namespace ssx::core {
namespace {

constexpr unsigned char kTlsHandshakeRecord = 22;

Failure errno_failure(int code, const std::string &what) {
  const int reason = code == ECONNRESET ? SSX_REASON_CONNECTION_RESET
                     : code == EPIPE    ? SSX_REASON_PEER_GONE
                                        : SSX_REASON_SYSTEM;
  return fail(code, reason, what + ": " + std::strerror(code));
}

bool is_stream_established(SecureSocket::State s) {
  return s == SecureSocket::State::established || s == SecureSocket::State::cleartext ||
         s == SecureSocket::State::local;
}

// Plain send/recv carry the bytes: cleartext (permitted by app and policy) or AF_UNIX (never
// leaves the host).
bool is_plain(SecureSocket::State s) {
  return s == SecureSocket::State::cleartext || s == SecureSocket::State::local;
}

std::string local_principal_of(uid_t uid) {
  return "unix:uid=" + std::to_string(uid);
}

short events_for(tls::Want want) {
  return want == tls::Want::write ? POLLOUT : want == tls::Want::read ? POLLIN : 0;
}

std::string server_name_for(const tls::PeerRequirements &req) {
  for (const auto *list : {&req.app_names, &req.policy_names}) {
    for (const auto &n : *list) {
      if (n.kind == identity::TargetName::Kind::dns) return n.value;
    }
  }
  return {};
}

}  // namespace

bool is_listening(int fd) {
  int listening = 0;
  socklen_t len = sizeof listening;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0;
}

bool is_connected(int fd) {
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  return ::getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &length) == 0;
}

ino_t inode_of(int fd, dev_t *device) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  if (device != nullptr) *device = st.st_dev;
  return st.st_ino;
}

bool is_datagram_socket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM;
}

SecureSocket::SecureSocket(int fd, AppSettings app)
    : fd_(fd), app_(std::move(app)), datagram_(is_datagram_socket(fd)) {
  identity_ = inode_of(fd, &device_);
}

bool SecureSocket::transition_allowed(State from, State to) {
  if (from == to) return true;  // only wants_ changes
  switch (from) {
    case State::configured:  // listen + accept; connect; an accepted socket's first decision
      return to == State::listener || to == State::connecting || to == State::sniffing ||
             to == State::handshaking || to == State::local || to == State::failed;
    case State::connecting:
      return to == State::handshaking || to == State::local || to == State::failed;
    case State::cleartext_connecting:
      return to == State::cleartext || to == State::failed;
    case State::sniffing:
      return to == State::handshaking || to == State::cleartext || to == State::failed;
    case State::handshaking:
      return to == State::established || to == State::cleartext_connecting ||
             to == State::cleartext || to == State::failed;
    case State::established:  // a record that fails to decrypt, a reset, ...
      return to == State::failed;
    case State::listener:  // a listener stays one whatever is called on it
    case State::local:
    case State::cleartext:
    case State::failed:
      return false;
  }
  return false;
}

void SecureSocket::transition(State next, short wants) {
  assert(transition_allowed(state_, next) && "SecureSocket: state change not in the table");
  state_ = next;
  wants_ = wants;
}

Result<void> SecureSocket::require_connection() const {
  if (state_ != State::configured && state_ != State::listener) return {};
  if (state_ == State::configured && !is_listening(fd_)) {
    return fail(ENOTCONN, "not connected: call ssx_connect first");
  }
  return fail(ENOTCONN, "a listening socket has no connection of its own: use ssx_accept");
}

void SecureSocket::apply_tcp_nodelay() {
  if (!effective_->settings->tcp_nodelay || effective_->local || datagram_) return;
  sockaddr_storage local{};
  socklen_t length = sizeof local;
  if (::getsockname(fd_, reinterpret_cast<sockaddr *>(&local), &length) != 0) return;
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6) return;  // AF_UNIX: no Nagle
  const int on = 1;
  // Best effort, as Go's net package does it: a failure costs latency, never security.
  (void)::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

bool SecureSocket::nonblocking(int flags) const {
  return (flags & MSG_DONTWAIT) != 0 || net::is_nonblocking(fd_);
}

Failure SecureSocket::fail_with(Failure failure) {
  transition(State::failed, 0);
  failure_ = failure;
  session_.reset();
  return failure;
}

Result<void> SecureSocket::claim_for_use() {
  if (auto r = claim_.use(fd_); !r) return fail_with(r.error());
  return {};
}

Result<void> SecureSocket::add_target_name(identity::TargetName name) {
  Lock lock(mu_);
  if (state_ != State::configured && state_ != State::listener) {
    return fail(EISCONN, "peer target names can no longer change: the socket is connected");
  }
  if (std::find(app_.names.begin(), app_.names.end(), name) == app_.names.end()) {
    app_.names.push_back(std::move(name));
  }
  return {};
}

Result<void> SecureSocket::clear_target_names() {
  Lock lock(mu_);
  if (state_ != State::configured && state_ != State::listener) {
    return fail(EISCONN, "peer target names can no longer change: the socket is connected");
  }
  app_.names.clear();
  return {};
}

Result<void> SecureSocket::connect(const sockaddr *address, socklen_t length) {
  // Checked (and checked again under the lock below) without changing anything: a wrong-order
  // call leaves the socket as it was.
  auto can_connect = [this]() -> Result<void> {
    switch (state_) {
      case State::configured:
        if (is_listening(fd_)) return fail(EINVAL, "cannot connect a listening socket");
        if (peers_) {
          return fail(EISCONN,
                      "the UDP socket already exchanges datagrams unconnected "
                      "(ssx_sendto / ssx_recvfrom)");
        }
        return {};
      case State::connecting:
      case State::cleartext_connecting:
        return fail(EALREADY, "a connect is already in progress on this socket");
      case State::sniffing:
      case State::handshaking:
        if (!client_) return fail(EISCONN, "an accepted socket is already connected");
        return fail(EALREADY, "a connect is already in progress on this socket");
      case State::established:
      case State::local:
      case State::cleartext:
        return fail(EISCONN, "the socket is already connected");
      case State::listener:
        return fail(EINVAL, "cannot connect a listening socket");
      case State::failed:
        break;
    }
    return fail(failure_.code, failure_.reason, "an earlier connect failed: " + failure_.message);
  };
  Lock lock(mu_);
  if (auto r = can_connect(); !r) return r;
  if (address == nullptr) return fail(EFAULT, "address is NULL");
  // As connect(2): an address too short for its family is EINVAL (checked before its family
  // is even read), a family ssx does not secure EAFNOSUPPORT.
  if (length < sizeof(sa_family_t)) {
    return fail(EINVAL, "address length " + std::to_string(length) + " is too short");
  }
  const sa_family_t family = address->sa_family;
  if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) {
    return fail(EAFNOSUPPORT, "address must be an AF_INET, AF_INET6 or AF_UNIX address");
  }
  if ((family == AF_INET && length < sizeof(sockaddr_in)) ||
      (family == AF_INET6 && length < sizeof(sockaddr_in6)) ||
      (family == AF_UNIX && length <= sizeof(sa_family_t))) {
    return fail(EINVAL, "address length " + std::to_string(length) + " is too short for " +
                            (family == AF_INET    ? "AF_INET"
                             : family == AF_INET6 ? "AF_INET6"
                                                  : "AF_UNIX"));
  }
  // current_policy() may rebuild a changed policy (files, TLS contexts): not under the lock.
  lock.unlock();
  auto snapshot = current_policy();
  lock.lock();
  if (auto r = can_connect(); !r) return r;  // another thread connected meanwhile
  if (!snapshot) return fail_with(snapshot.error());
  if (auto r = begin_outbound(lock, address, length, std::move(*snapshot)); !r) {
    return state_ == State::failed ? r.error() : fail_with(r.error());
  }
  auto r = drive(lock, nonblocking(0));
  if (!r && r.error().code == EAGAIN) {
    return fail(EINPROGRESS, SSX_REASON_IN_PROGRESS);  // static message: no allocation
  }
  return r;
}

Result<void> SecureSocket::begin_outbound(Lock &lock, const sockaddr *address, socklen_t length,
                                          std::shared_ptr<PolicySnapshot> snapshot) {
  policy::MatchQuery query{policy::Direction::outbound, address, nullptr, executable_path(),
                           datagram_ ? policy::Transport::udp : policy::Transport::tcp};
  auto decided = decide(app_, std::move(snapshot), query, address->sa_family);
  if (!decided) return decided.error();
  effective_ = std::move(*decided);
  client_ = true;
  std::memcpy(&peer_, address, std::min<size_t>(length, sizeof peer_));
  peer_len_ = length;
  apply_tcp_nodelay();  // before the SYN: the ClientHello goes out without waiting
  // From here on other calls see a connect in progress (EALREADY); connect(2) itself, which
  // blocks on a blocking socket, runs without the lock. drive() takes the connection on from
  // `connecting` whatever connect(2) said: it asks the kernel (SO_ERROR, getpeername).
  transition(State::connecting, POLLOUT);
  lock.unlock();
  const int rc = ::connect(fd_, address, length);
  const int error = rc == 0 ? 0 : errno;
  lock.lock();
  // EINTR: the kernel goes on connecting in the background, exactly as for EINPROGRESS.
  if (rc == 0 || error == EINPROGRESS || error == EINTR) return {};
  if (state_ == State::failed) return failure_;  // another thread's ssx_handshake saw it first
  return errno_failure(error, "connect to " + net::address_to_string(address));
}

Result<void> SecureSocket::start_tls(tls::Role role) {
  auto context = datagram_ ? effective_->snapshot->dtls_context(*effective_->settings, role)
                           : effective_->snapshot->tls_context(*effective_->settings, role);
  if (!context) return context.error();
  std::string server_name;
  std::string cache_key;
  if (role == tls::Role::client) {
    server_name = server_name_for(effective_->requirements);
  }
  if (role == tls::Role::client && !datagram_) {  // DTLS: no resumption yet
    server_name = server_name_for(effective_->requirements);
    // Resumption is only offered to the same address, name and requirements.
    // Appended piece by piece: GCC 12 at -O3 warns falsely (-Wrestrict, GCC bug 105329) about
    // `"|" + std::string` once inlined.
    cache_key = net::address_to_string(reinterpret_cast<const sockaddr *>(&peer_));
    cache_key += '|';
    cache_key += server_name;
    for (const auto &n : effective_->requirements.app_names) {
      cache_key += '|';
      cache_key += n.text();
    }
  }
  tls::DatagramPath path{reinterpret_cast<const sockaddr *>(&peer_), peer_len_};
  auto session = tls::Session::create(*context, fd_, effective_->requirements, server_name,
                                      std::move(cache_key), datagram_ ? &path : nullptr);
  if (!session) return session.error();
  session_ = std::move(*session);
  handshake_start_ = net::Clock::now();
  deadline_ =
      handshake_start_ + std::chrono::milliseconds(effective_->settings->handshake_timeout_ms);
  // A sniffing server already started the clock at the accept; keep that start for the hello.
  if (role == tls::Role::server && hello_deadline_ == net::Clock::time_point{}) {
    hello_deadline_ = std::min(
        deadline_, handshake_start_ +
                       std::chrono::milliseconds(effective_->settings->client_hello_timeout_ms));
  }
  transition(State::handshaking, role == tls::Role::client ? POLLOUT : POLLIN);
  return {};
}

Result<void> SecureSocket::begin_inbound() {
  auto snapshot = current_policy();
  if (!snapshot) return snapshot.error();
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  socklen_t peer_len = sizeof peer_;
  if (::getsockname(fd_, reinterpret_cast<sockaddr *>(&local), &local_len) != 0 ||
      ::getpeername(fd_, reinterpret_cast<sockaddr *>(&peer_), &peer_len) != 0) {
    return errno_failure(errno, "accepted connection");
  }
  peer_len_ = peer_len;
  policy::MatchQuery query{policy::Direction::inbound, reinterpret_cast<sockaddr *>(&peer_),
                           reinterpret_cast<sockaddr *>(&local), executable_path(),
                           datagram_ ? policy::Transport::udp : policy::Transport::tcp};
  auto decided = decide(app_, *snapshot, query, local.ss_family);
  if (!decided) return decided.error();
  effective_ = std::move(*decided);
  if (effective_->local) return establish_local();
  apply_tcp_nodelay();
  if (!effective_->cleartext_fallback) return start_tls(tls::Role::server);
  // Cleartext is allowed: look at the client's first byte before choosing.
  handshake_start_ = net::Clock::now();
  deadline_ =
      handshake_start_ + std::chrono::milliseconds(effective_->settings->handshake_timeout_ms);
  hello_deadline_ = std::min(
      deadline_,
      handshake_start_ + std::chrono::milliseconds(effective_->settings->client_hello_timeout_ms));
  transition(State::sniffing, POLLIN);
  return {};
}

Result<void> SecureSocket::establish_local() {
  socklen_t len = sizeof peer_cred_;
  if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &peer_cred_, &len) != 0) {
    return errno_failure(errno, "SO_PEERCRED");
  }
  char label[256];
  socklen_t label_len = sizeof label;
  if (::getsockopt(fd_, SOL_SOCKET, SO_PEERSEC, label, &label_len) == 0 && label_len > 0) {
    peer_label_.assign(label, strnlen(label, label_len));
  }
  const std::string principal = local_principal_of(peer_cred_.uid);
  const auto &names = effective_->requirements.app_names;
  if (!names.empty() &&
      std::none_of(names.begin(), names.end(), [&](const identity::TargetName &n) {
        return n.kind == identity::TargetName::Kind::local_uid && n.value == principal;
      })) {
    return fail(EKEYREJECTED, SSX_REASON_NAME_MISMATCH,
                "local peer " + principal + " (pid " + std::to_string(peer_cred_.pid) +
                    ") matches none of the target names");
  }
  transition(State::local, 0);
  return {};
}

Result<void> SecureSocket::reconnect_cleartext() {
  // The peer answered our ClientHello with something that is not TLS. Both the application and
  // the policy allow cleartext, so start afresh on a new TCP connection — the old one carried
  // only the ClientHello, never an application byte — and put it on the same fd number.
  session_.reset();
  const bool nb = net::is_nonblocking(fd_);
  const int fd_flags = ::fcntl(fd_, F_GETFD);
  int fresh = ::socket(peer_.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), 0);
  if (fresh < 0) return errno_failure(errno, "cleartext fallback: socket");
  int rc = ::connect(fresh, reinterpret_cast<sockaddr *>(&peer_), peer_len_);
  if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
    int err = errno;
    ::close(fresh);
    return errno_failure(err, "cleartext fallback: connect");
  }
  if (::dup2(fresh, fd_) < 0) {
    int err = errno;
    ::close(fresh);
    return errno_failure(err, "cleartext fallback: dup2");
  }
  ::close(fresh);
  if (fd_flags >= 0) ::fcntl(fd_, F_SETFD, fd_flags);
  identity_ = inode_of(fd_);
  if (rc == 0) {
    transition(State::cleartext, 0);
  } else {
    transition(State::cleartext_connecting, POLLOUT);
  }
  return {};
}

Result<short> SecureSocket::advance() {
  for (;;) {
    switch (state_) {
      case State::established:
      case State::local:
      case State::cleartext:
        return short{0};
      case State::failed:
        return failure_;
      case State::configured:
      case State::listener:
        return require_connection().error();  // drive() checks first: never reached
      case State::connecting:
      case State::cleartext_connecting: {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) {
          return errno_failure(
              err, "connect to " + net::address_to_string(reinterpret_cast<sockaddr *>(&peer_)));
        }
        sockaddr_storage ignored{};
        socklen_t ignored_len = sizeof ignored;
        if (::getpeername(fd_, reinterpret_cast<sockaddr *>(&ignored), &ignored_len) != 0) {
          if (errno == ENOTCONN) return short{POLLOUT};
          return errno_failure(errno, "connect");
        }
        if (state_ == State::cleartext_connecting) {
          transition(State::cleartext, 0);
          continue;
        }
        if (auto r = effective_->local ? establish_local() : start_tls(tls::Role::client); !r) {
          return r.error();
        }
        continue;
      }
      case State::sniffing: {
        unsigned char first = 0;
        ssize_t n = ::recv(fd_, &first, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 1) {
          if (first == kTlsHandshakeRecord) {
            if (auto r = start_tls(tls::Role::server); !r) return r.error();
            handshake_start_ = net::Clock::now();
          } else {
            transition(State::cleartext, 0);
          }
          continue;
        }
        if (n == 0) {
          return fail(ECONNRESET, SSX_REASON_PEER_CLOSED_IN_HANDSHAKE,
                      "peer closed the connection before sending anything");
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          return errno_failure(errno, "receive");
        }
        if (net::Clock::now() >= hello_deadline_) {
          const auto &s = *effective_->settings;
          const bool hello_first = s.client_hello_timeout_ms < s.handshake_timeout_ms;
          return fail(
              ETIMEDOUT, SSX_REASON_HELLO_TIMEOUT,
              "peer sent nothing within " +
                  std::to_string(hello_first ? s.client_hello_timeout_ms : s.handshake_timeout_ms) +
                  (hello_first ? " ms (client_hello_timeout_ms)" : " ms (handshake_timeout_ms)"));
        }
        return short{POLLIN};
      }
      case State::handshaking: {
        if (net::Clock::now() >= deadline_) {
          return fail(ETIMEDOUT, SSX_REASON_HANDSHAKE_TIMEOUT,
                      "TLS handshake with " +
                          net::address_to_string(reinterpret_cast<sockaddr *>(&peer_)) +
                          " did not finish within " +
                          std::to_string(effective_->settings->handshake_timeout_ms) +
                          " ms (handshake_timeout_ms)");
        }
        if (!client_ && hello_deadline_ != net::Clock::time_point{}) {
          // Slow-client defence: a connection that has not even sent its ClientHello is cut off
          // at client_hello_timeout_ms, well before handshake_timeout_ms.
          if (session_->hello_received()) {
            hello_deadline_ = {};
          } else if (net::Clock::now() >= hello_deadline_) {
            return fail(ETIMEDOUT, SSX_REASON_HELLO_TIMEOUT,
                        "client " + net::address_to_string(reinterpret_cast<sockaddr *>(&peer_)) +
                            " sent no ClientHello within " +
                            std::to_string(effective_->settings->client_hello_timeout_ms) +
                            " ms (client_hello_timeout_ms)");
          }
        }
        auto want = session_->handshake();
        if (!want) {
          if (client_ && effective_->cleartext_fallback && session_->peer_spoke_cleartext()) {
            if (auto r = reconnect_cleartext(); !r) return r.error();
            continue;
          }
          return want.error();
        }
        if (*want == tls::Want::nothing) {
          handshake_ns_ =
              static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             net::Clock::now() - handshake_start_)
                                             .count());
          transition(State::established, 0);
          continue;
        }
        return events_for(*want);
      }
      default:
        return fail(EIO, "socket in an unknown state");
    }
  }
}

Result<void> SecureSocket::wait_unlocked(Lock &lock, short events, net::Deadline deadline) {
  lock.unlock();
  auto r = net::wait_fd(fd_, events, deadline);
  lock.lock();
  return r;
}

Result<void> SecureSocket::drive(Lock &lock, bool nb) {
  // A call in the wrong state fails here and changes nothing (the socket stays usable).
  if (auto r = require_connection(); !r) return r;
  for (;;) {
    if (has_connection_locked() && state_ != State::failed) {
      if (auto r = claim_for_use(); !r) return r.error();
    }
    auto events = advance();
    if (!events) {
      if (state_ != State::failed) return fail_with(events.error());
      return events.error();
    }
    transition(state_, *events);
    if (*events == 0) return {};
    if (nb) return fail(EAGAIN, SSX_REASON_IN_PROGRESS);  // static message: no allocation
    const bool connecting = state_ == State::connecting || state_ == State::cleartext_connecting;
    net::Deadline deadline;
    if (!connecting) {
      deadline = hello_deadline_ != net::Clock::time_point{} ? hello_deadline_ : deadline_;
      // DTLS: wake for the retransmission timer too; advance() then resends the last flight.
      if (const long timer = session_ ? session_->timer_ms() : -1; timer >= 0) {
        deadline = std::min(*deadline, net::Clock::now() + std::chrono::milliseconds(timer));
      }
    }
    auto waited = wait_unlocked(lock, *events, deadline);
    if (!waited && waited.error().code != ETIMEDOUT) return fail_with(waited.error());
    // On ETIMEDOUT the next advance() reports the handshake timeout with its full message.
  }
}

Result<void> SecureSocket::handshake() {
  Lock lock(mu_);
  return drive(lock, nonblocking(0));
}

Result<size_t> SecureSocket::send(const void *data, size_t length, int flags) {
  const iovec one{const_cast<void *>(data), length};
  return sendv(&one, 1, flags);
}

Result<size_t> SecureSocket::sendv(const iovec *iov, size_t count, int flags) {
  if ((flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE)) != 0) {
    return fail(EOPNOTSUPP, "ssx_send supports only MSG_DONTWAIT, MSG_NOSIGNAL and MSG_MORE");
  }
  std::lock_guard sender(send_mu_);
  Lock lock(mu_);
  if (!is_stream_established(state_)) {
    if (auto r = drive(lock, nonblocking(flags)); !r) return r.error();
  }
  if (write_shut_) {
    return fail(EPIPE, SSX_REASON_WRONG_STATE, "the socket was shut down for writing");
  }
  if (datagram_) return send_datagram(lock, iov, count, flags);
  if (is_plain(state_)) {
    if (auto c = claim_for_use(); !c) return c.error();
    lock.unlock();
    msghdr msg{};
    msg.msg_iov = const_cast<iovec *>(iov);
    msg.msg_iovlen = count;
    ssize_t n = ::sendmsg(fd_, &msg, (flags & (MSG_DONTWAIT | MSG_MORE)) | MSG_NOSIGNAL);
    if (n < 0) return errno_failure(errno, "send");
    return static_cast<size_t>(n);
  }
  // Every iovec but the last is followed at once by more: they fill records together.
  size_t last = count;
  for (size_t i = 0; i < count; ++i) {
    if (iov[i].iov_len > 0) last = i;
  }
  if (last == count) {  // nothing to send; a send without MSG_MORE still sends what is held
    if ((flags & MSG_MORE) != 0 || corked_.empty()) return size_t{0};
    auto flushed = send_corked(lock, nullptr, 0, flags);
    if (!flushed) return flushed.error();
    return size_t{0};
  }
  size_t total = 0;
  for (size_t i = 0; i <= last; ++i) {
    if (iov[i].iov_len == 0) continue;
    const int f = i < last ? (flags | MSG_MORE) : flags;
    const auto *bytes = static_cast<const unsigned char *>(iov[i].iov_base);
    auto n = (f & MSG_MORE) != 0 || !corked_.empty()
                 ? send_corked(lock, bytes, iov[i].iov_len, f)
                 : write_records(lock, bytes, iov[i].iov_len, f);
    if (!n) {
      if (total > 0) return total;  // a failure repeats on the next call; EAGAIN is a short count
      return n.error();
    }
    total += *n;
    if (*n < iov[i].iov_len) return total;
  }
  return total;
}

Result<size_t> SecureSocket::send_datagram(Lock &lock, const iovec *iov, size_t count, int flags) {
  if ((flags & MSG_MORE) != 0) {
    return fail(EOPNOTSUPP, SSX_REASON_UNSUPPORTED,
                "MSG_MORE on a datagram socket: each ssx_send is one datagram");
  }
  // The iovecs make one datagram: gathered into one record.
  std::string gathered;
  const unsigned char *bytes = nullptr;
  size_t length = 0;
  if (count == 1) {
    bytes = static_cast<const unsigned char *>(iov[0].iov_base);
    length = iov[0].iov_len;
  } else {
    for (size_t i = 0; i < count; ++i) {
      gathered.append(static_cast<const char *>(iov[i].iov_base), iov[i].iov_len);
      if (gathered.size() > tls::kMaxRecordPlaintext) break;  // too large anyway: EMSGSIZE
    }
    bytes = reinterpret_cast<const unsigned char *>(gathered.data());
    length = gathered.size();
  }
  for (int turn = 0;; ++turn) {
    if (!session_) return failure_;
    if (auto c = claim_for_use(); !c) return c.error();
    auto r = session_->write(bytes, length);
    if (!r) {
      if (r.error().code == EMSGSIZE) return r.error();  // the datagram, not the association
      return fail_with(r.error());
    }
    if (r->bytes > 0 || length == 0) return r->bytes;
    if (nonblocking(flags)) {
      transition(state_, events_for(r->want));
      return fail(EAGAIN, SSX_REASON_WOULD_BLOCK);
    }
    auto waited = wait_unlocked(lock, events_for(r->want), net::socket_timeout(fd_, false));
    if (!waited) {
      if (waited.error().code == ETIMEDOUT) return fail(EAGAIN, "send timed out (SO_SNDTIMEO)");
      return waited.error();
    }
  }
}

Result<size_t> SecureSocket::recv_datagram(Lock &lock, void *buffer, size_t length, int flags) {
  const bool peek = (flags & MSG_PEEK) != 0;
  int peek_error = 0;
  for (;;) {
    if (!session_) return failure_;
    if (auto c = claim_for_use(); !c) return c.error();
    size_t full = 0;
    auto r = session_->read_datagram(buffer, length, peek, &full);
    if (!r) return fail_with(r.error());
    if (r->end_of_stream) {
      peer_closed_ = true;
      return size_t{0};
    }
    if (full > 0) return (flags & MSG_TRUNC) != 0 ? full : r->bytes;
    if (r->want == tls::Want::read) session_->release_idle_buffers();
    // Forged, replayed or cleartext datagrams are dropped by DTLS and the read finds nothing:
    // wait again (bounded by SO_RCVTIMEO / O_NONBLOCK as for a stream).
    if (auto waited = wait_to_receive(lock, r->want, flags, peek_error); !waited) {
      return waited.error();
    }
  }
}

Result<size_t> SecureSocket::send_corked(Lock &lock, const unsigned char *data, size_t length,
                                         int flags) {
  const bool more = (flags & MSG_MORE) != 0;
  size_t taken = 0;
  if (!cork_writing_) {
    taken = std::min(length, kCorkLimit - corked_.size());
    corked_.append(reinterpret_cast<const char *>(data), taken);
    if (more && corked_.size() < kCorkLimit) return taken;  // held: all of |data| fitted
  }
  // The held bytes go out now, as one record: it is full, or this call ends the MSG_MORE run.
  // Until that write completes (it may wait for POLLOUT), corked_ must not change: OpenSSL
  // retries a blocked record from the same bytes.
  cork_writing_ = true;
  while (!corked_.empty()) {
    auto n = write_records(lock, reinterpret_cast<const unsigned char *>(corked_.data()),
                           corked_.size(), flags);
    if (!n) {
      // Bytes this call put into corked_ count as sent: they go out with it on the next call.
      if (taken > 0 && n.error().code == EAGAIN) return taken;
      return n.error();
    }
    corked_.erase(0, *n);
  }
  cork_writing_ = false;
  const size_t rest = length - taken;
  if (rest == 0) return taken;
  if (!more) {
    auto n = write_records(lock, data + taken, rest, flags);
    if (!n) return taken > 0 ? Result<size_t>(taken) : n;
    return taken + *n;
  }
  // More follows: whole records go out directly, the tail is held for the next call.
  const size_t whole = rest - rest % kCorkLimit;
  if (whole > 0) {
    auto n = write_records(lock, data + taken, whole, flags);
    if (!n) return taken > 0 ? Result<size_t>(taken) : n;
    if (*n < whole) return taken + *n;
  }
  corked_.assign(reinterpret_cast<const char *>(data) + taken + whole, rest - whole);
  return length;
}

Result<size_t> SecureSocket::write_records(Lock &lock, const unsigned char *bytes, size_t length,
                                           int flags) {
  size_t sent = 0;
  while (sent < length) {
    if (!session_) return failure_;
    // Checked at every turn: a fork may have happened while the lock was released to wait.
    if (auto c = claim_for_use(); !c) return sent > 0 ? Result<size_t>(sent) : c.error();
    auto r = session_->write(bytes + sent, length - sent);
    if (!r) return fail_with(r.error());
    if (r->bytes > 0) {
      sent += r->bytes;
      continue;
    }
    if (nonblocking(flags)) {  // asked only when the call would block: no fcntl on the fast path
      transition(state_, events_for(r->want));
      if (sent > 0) return sent;
      return fail(EAGAIN, SSX_REASON_WOULD_BLOCK);  // static message: no allocation
    }
    auto waited = wait_unlocked(lock, events_for(r->want), net::socket_timeout(fd_, false));
    if (!waited) {
      if (sent > 0) return sent;
      if (waited.error().code == ETIMEDOUT) return fail(EAGAIN, "send timed out (SO_SNDTIMEO)");
      return waited.error();
    }
  }
  return sent;
}

Result<size_t> SecureSocket::recv(void *buffer, size_t length, int flags) {
  const int allowed = MSG_DONTWAIT | MSG_PEEK | MSG_WAITALL | (datagram_ ? MSG_TRUNC : 0);
  if ((flags & ~allowed) != 0) {
    return fail(EOPNOTSUPP, datagram_ ? "ssx_recv on a datagram socket supports only "
                                        "MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC and MSG_WAITALL"
                                      : "ssx_recv supports only MSG_DONTWAIT, MSG_PEEK and "
                                        "MSG_WAITALL");
  }
  std::lock_guard receiver(recv_mu_);
  Lock lock(mu_);
  if (!is_stream_established(state_)) {
    if (auto r = drive(lock, nonblocking(flags)); !r) return r.error();
  }
  if (datagram_) {
    if (read_shut_ || peer_closed_) return size_t{0};
    return recv_datagram(lock, buffer, length, flags);
  }
  if (read_shut_ || length == 0) return size_t{0};
  if (is_plain(state_)) {
    if (auto c = claim_for_use(); !c) return c.error();
    lock.unlock();
    ssize_t n = ::recv(fd_, buffer, length, flags);
    if (n < 0) return errno_failure(errno, "receive");
    return static_cast<size_t>(n);
  }
  if (peer_closed_) return size_t{0};
  const bool peek = (flags & MSG_PEEK) != 0;
  const bool all = (flags & MSG_WAITALL) != 0 && !peek;
  auto *bytes = static_cast<unsigned char *>(buffer);
  size_t got = 0;
  int peek_error = 0;
  for (;;) {
    if (!session_) return failure_;
    // Checked at every turn: a fork may have happened while the lock was released to wait.
    if (auto c = claim_for_use(); !c) return got > 0 ? Result<size_t>(got) : c.error();
    auto r = session_->read(bytes + got, length - got, peek);
    if (!r) {
      if (got > 0) return got;  // the failure repeats on the next call
      return fail_with(r.error());
    }
    if (r->end_of_stream) {
      peer_closed_ = true;
      return got;
    }
    if (r->bytes > 0) {
      got += r->bytes;
      if (!all || got == length) return got;
      continue;
    }
    // Nothing to read: the connection is idle, so its buffers go back until data comes.
    if (r->want == tls::Want::read) session_->release_idle_buffers();
    auto waited = wait_to_receive(lock, r->want, flags, peek_error);
    if (!waited) {
      if (got > 0) return got;
      return waited.error();
    }
  }
}

Result<void> SecureSocket::wait_to_receive(Lock &lock, tls::Want want, int flags, int &peek_error) {
  const short events = events_for(want);
  if (want == tls::Want::read && (flags & MSG_DONTWAIT) == 0) {
    // A blocking MSG_PEEK waits in the kernel, which applies O_NONBLOCK and SO_RCVTIMEO itself:
    // one system call where poll needs three (fcntl, getsockopt, poll). It consumes nothing,
    // and only receivers (serialised by recv_mu_) take bytes from this socket.
    lock.unlock();
    char byte = 0;
    ssize_t n = 0;
    do {
      n = ::recv(fd_, &byte, 1, MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    const int error = n < 0 ? errno : 0;
    lock.lock();
    if (n >= 0) return {};  // data or end of stream: the read that follows takes it
    if (error == EAGAIN || error == EWOULDBLOCK) {
      transition(state_, events);
      if (net::is_nonblocking(fd_)) return fail(EAGAIN, SSX_REASON_WOULD_BLOCK);
      return fail(EAGAIN, "receive timed out (SO_RCVTIMEO)");
    }
    if (error == EBADF) return fail(EBADF, "descriptor was closed while waiting");
    // A socket error (ECONNRESET, ...): the read that follows reports it with its TLS context.
    // Should that read still find nothing, report the error here rather than wait again.
    if (peek_error == error) return errno_failure(error, "receive");
    peek_error = error;
    return {};
  }
  if (nonblocking(flags)) {  // asked only when the call would block: no fcntl on the fast path
    transition(state_, events);
    return fail(EAGAIN, SSX_REASON_WOULD_BLOCK);
  }
  auto waited = wait_unlocked(lock, events, net::socket_timeout(fd_, true));
  if (!waited && waited.error().code == ETIMEDOUT) {
    return fail(EAGAIN, "receive timed out (SO_RCVTIMEO)");
  }
  return waited;
}

Result<void> SecureSocket::shutdown(int how) {
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
    return fail(EINVAL, "how must be SHUT_RD, SHUT_WR or SHUT_RDWR");
  }
  // Bytes held by MSG_MORE go out before close_notify; unless a send is under way in another
  // thread, which then owns them (shutdown must not wait behind a blocked send).
  std::unique_lock sender(send_mu_, std::try_to_lock);
  Lock lock(mu_);
  if (!is_stream_established(state_)) return fail(ENOTCONN, "the socket is not connected");
  // shutdown(2) acts on the socket every process shares, so it is a use like a send.
  if (auto c = claim_for_use(); !c) return c.error();
  if (how != SHUT_RD && !write_shut_ && sender.owns_lock() && !corked_.empty()) {
    if (auto r = send_corked(lock, nullptr, 0, 0); !r) return r.error();
  }
  if (how != SHUT_RD && !write_shut_) {
    while (state_ == State::established && session_) {
      if (auto c = claim_for_use(); !c) return c.error();
      auto w = session_->send_close_notify();
      if (!w) return w.error();
      if (*w == tls::Want::nothing) break;
      if (net::is_nonblocking(fd_)) {
        transition(state_, events_for(*w));  // the caller polls, then calls ssx_shutdown again
        return fail(EAGAIN, SSX_REASON_WOULD_BLOCK);
      }
      if (auto r = wait_unlocked(lock, events_for(*w), net::socket_timeout(fd_, false)); !r) {
        return r.error();
      }
    }
    if (::shutdown(fd_, SHUT_WR) != 0 && errno != ENOTCONN) {
      return errno_failure(errno, "shutdown");
    }
    write_shut_ = true;
  }
  if (how != SHUT_WR) {
    ::shutdown(fd_, SHUT_RD);
    read_shut_ = true;
  }
  return {};
}

void SecureSocket::close_notify_best_effort() {
  Lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // another thread is mid-call; closing must not wait for it
  if (peers_) close_notify_peers();
  if (state_ == State::established && session_ && !write_shut_ &&
      claim_.standing(true) == handoff::Standing::own) {  // never on a connection forked away
    if (!corked_.empty()) {  // held by MSG_MORE: one try, without waiting
      auto r = session_->write(corked_.data(), corked_.size());
      if (!r || r->bytes != corked_.size()) return;  // no close_notify after a lost record
    }
    (void)session_->send_close_notify();
  }
}

tls::Session::Buffered SecureSocket::buffered_input() {
  Lock lock(mu_);
  if (state_ != State::established || !session_ || peer_closed_ || read_shut_) return {};
  switch (claim_.standing(false)) {
    case handoff::Standing::own:
      return session_->buffered(true);
    case handoff::Standing::undecided:  // look, but process nothing: that could send a record
      return session_->buffered(false);
    case handoff::Standing::lost:
    default:
      return {};
  }
}

int SecureSocket::timeout_ms() {
  Lock lock(mu_);
  if (peers_) return peers_timeout_ms();
  if (state_ != State::handshaking && state_ != State::sniffing) return -1;
  const auto now = net::Clock::now();
  auto until = [&now](net::Clock::time_point t) -> long {
    if (t <= now) return 0;
    // Rounded up: waking before the deadline would find it not yet passed.
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 t - now + std::chrono::microseconds(999))
                                 .count());
  };
  long left = until(deadline_);
  if (hello_deadline_ != net::Clock::time_point{}) left = std::min(left, until(hello_deadline_));
  if (const long timer = session_ ? session_->timer_ms() : -1; timer >= 0) {
    left = std::min(left, timer);
  }
  return static_cast<int>(std::min<long>(left, INT32_MAX));
}

handoff::Standing SecureSocket::standing(bool settle) {
  Lock lock(mu_);
  return claim_.standing(settle);
}

Result<Report> SecureSocket::query(bool with_chain) {
  Report report;
  std::shared_ptr<PolicySnapshot> snapshot;
  std::optional<uid_t> attested;
  {
    Lock lock(mu_);
    switch (state_) {
      case State::established: {
        report.protocol = datagram_ ? SSX_PROTOCOL_DTLS : SSX_PROTOCOL_TLS;
        report.tls = session_->details();
        report.flags = SSX_INFO_SECURED | SSX_INFO_ENCRYPTED;
        if (report.tls.peer_authenticated) report.flags |= SSX_INFO_PEER_AUTHENTICATED;
        if (report.tls.peer_name_verified) report.flags |= SSX_INFO_PEER_NAME_VERIFIED;
        if (report.tls.resumed) report.flags |= SSX_INFO_RESUMED;
        break;
      }
      case State::local: {
        report.protocol = SSX_PROTOCOL_LOCAL;
        report.flags = SSX_INFO_SECURED | SSX_INFO_PEER_AUTHENTICATED;
        if (!effective_->requirements.app_names.empty()) {
          report.flags |= SSX_INFO_PEER_NAME_VERIFIED;
        }
        report.tls.peer_principal = local_principal_of(peer_cred_.uid);
        report.tls.peer_names = {report.tls.peer_principal};
        report.tls.local_principal = local_principal_of(::geteuid());
        report.peer_pid = peer_cred_.pid;
        report.peer_security_label = peer_label_;
        attested = peer_cred_.uid;
        break;
      }
      case State::cleartext:
        report.protocol = SSX_PROTOCOL_NONE;
        break;
      case State::failed:
        return fail(ENOTCONN, "the connection failed: " + failure_.message);
      default:
        return fail(ENOTCONN, "the connection is not established yet");
    }
    report.rule = effective_ ? effective_->rule : "defaults";
    report.handshake_ns = handshake_ns_;
    if (effective_ && effective_->settings->idle_timeout_ms) {
      report.idle_timeout_ms = *effective_->settings->idle_timeout_ms;
    }
    if (effective_) snapshot = effective_->snapshot;
  }
  complete_report(report, snapshot, attested, with_chain);
  return report;
}

void complete_report(Report &report, const std::shared_ptr<PolicySnapshot> &snapshot,
                     std::optional<uid_t> attested, bool with_chain) {
  // Without the lock: PEM encoding, and the account database, which NSS may look up over the
  // network (LDAP, SSSD). The snapshot and the certificates are held by reference.
  if (with_chain) report.tls.peer_chain_pem = tls::chain_pem(report.tls.peer_chain);
  report.tls.peer_chain.clear();
  if ((report.flags & SSX_INFO_PEER_AUTHENTICATED) != 0 && snapshot) {
    identity::Mapping mapping =
        identity::map_principal(snapshot->policy(), report.tls.peer_principal, attested);
    report.account = std::move(mapping.account);
    report.unmapped_reason = std::move(mapping.why_not);
    if (report.account) report.flags |= SSX_INFO_IMPERSONATION_AVAILABLE;
  } else {
    report.unmapped_reason = "the peer is not authenticated";
  }
}

Result<identity::Account> SecureSocket::peer_account() {
  return account_of(query(false));
}

Result<identity::Account> SecureSocket::account_of(Result<Report> report) {
  if (!report) return report.error();
  if (report->account) return std::move(*report->account);
  const std::string who = report->tls.peer_principal.empty()
                              ? std::string("the peer")
                              : "peer \"" + report->tls.peer_principal + "\"";
  return fail(EACCES, "cannot impersonate " + who + ": " + report->unmapped_reason);
}

}  // namespace ssx::core
