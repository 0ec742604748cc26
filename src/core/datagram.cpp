// SPDX-License-Identifier: Apache-2.0
// core/datagram.cpp — SecureSocket's unconnected UDP side: many peers on one socket
// (core/datagram.hpp says how datagrams find their association).

#include "core/datagram.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/secure_socket.hpp"

namespace ssx::core {
namespace {

// kMaxDatagram is the largest UDP payload (65535 - 8 - 20).
constexpr std::size_t kMaxDatagram = 65507;
// kMaxRecordsPerDatagram bounds the records one datagram may deliver (a 1200-byte datagram
// holds at most 92 empty-ish records; more is a peer playing games).
constexpr int kMaxRecordsPerDatagram = 128;

std::uint64_t elapsed_ns(net::Clock::time_point since) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(net::Clock::now() - since).count());
}

bool zero_bytes(const unsigned char *bytes, std::size_t n) {
  return std::all_of(bytes, bytes + n, [](unsigned char b) { return b == 0; });
}

// check_peer_address checks a peer address given by the application: an AF_INET or AF_INET6
// address of the socket's family (an AF_INET6 socket also takes AF_INET-mapped addresses as
// AF_INET6), long enough, with a non-zero address and port.
Result<void> check_peer_address(int fd, const sockaddr *address, socklen_t length) {
  if (address == nullptr) return fail(EFAULT, "peer address is NULL");
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr *>(&local), &local_len) != 0) {
    return fail(errno, std::string("getsockname: ") + std::strerror(errno));
  }
  if (length < sizeof(sa_family_t) || address->sa_family != local.ss_family) {
    return fail(EINVAL, SSX_REASON_INVALID_ARGUMENT,
                "peer address must be of the socket's family (AF_INET or AF_INET6)");
  }
  if (address->sa_family == AF_INET) {
    if (length < sizeof(sockaddr_in)) return fail(EINVAL, "peer address is too short");
    const auto *in = reinterpret_cast<const sockaddr_in *>(address);
    if (in->sin_port == 0 ||
        zero_bytes(reinterpret_cast<const unsigned char *>(&in->sin_addr), 4)) {
      return fail(
          EINVAL, SSX_REASON_INVALID_ARGUMENT,
          "peer address " + net::address_to_string(address) + " has a zero address or port");
    }
    return {};
  }
  if (length < sizeof(sockaddr_in6)) return fail(EINVAL, "peer address is too short");
  const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(address);
  if (in6->sin6_port == 0 || zero_bytes(in6->sin6_addr.s6_addr, 16)) {
    return fail(EINVAL, SSX_REASON_INVALID_ARGUMENT,
                "peer address " + net::address_to_string(address) + " has a zero address or port");
  }
  return {};
}

// is_initial_client_hello says whether |datagram| starts with a DTLS record of epoch 0 holding a
// ClientHello (record type 22, version 0xfeXX, epoch 0, handshake type 1).
bool is_initial_client_hello(const char *datagram, std::size_t length) {
  const auto *b = reinterpret_cast<const unsigned char *>(datagram);
  return length >= 14 && b[0] == 22 && b[1] == 0xfe && b[3] == 0 && b[4] == 0 && b[13] == 1;
}

void copy_address(const sockaddr_storage &from, socklen_t from_len, sockaddr *to,
                  socklen_t *to_len) {
  if (to == nullptr || to_len == nullptr) return;
  std::memcpy(to, &from, std::min(*to_len, from_len));
  *to_len = from_len;
}

}  // namespace

Result<void> errno_failure_for_peers(int code) {
  return fail(code, SSX_REASON_SYSTEM, std::string("UDP socket: ") + std::strerror(code));
}

std::string peer_key(const sockaddr *address) {
  return net::address_to_string(address);
}

bool SecureSocket::unconnected_datagram() const {
  Lock lock(mu_);
  return peers_ != nullptr;
}

Result<void> SecureSocket::ensure_peers(Lock &lock) {
  if (peers_) return {};
  if (!datagram_) return fail(EOPNOTSUPP, "not a UDP socket: use ssx_send / ssx_recv");
  if (state_ != State::configured) {
    return fail(EISCONN, SSX_REASON_WRONG_STATE,
                "the UDP socket is connected: use ssx_send / ssx_recv");
  }
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockname(fd_, reinterpret_cast<sockaddr *>(&local), &local_len) != 0) {
    return errno_failure_for_peers(errno);
  }
  // Not under the lock: current_policy() may rebuild a changed policy.
  lock.unlock();
  auto snapshot = current_policy();
  lock.lock();
  if (peers_) return {};  // another thread set them up meanwhile
  if (!snapshot) return snapshot.error();
  auto peers = std::make_unique<DatagramPeers>();
  peers->buffer.resize(kMaxDatagram);
  // A socket bound before its first exchange accepts new peers as a server.
  if (net::address_port(reinterpret_cast<sockaddr *>(&local)) != 0) {
    policy::MatchQuery query{policy::Direction::inbound, nullptr,
                             reinterpret_cast<sockaddr *>(&local), executable_path(),
                             policy::Transport::udp};
    auto decided = decide(app_, *snapshot, query, local.ss_family);
    if (decided) {
      auto context = decided->snapshot->dtls_context(*decided->settings, tls::Role::server);
      if (context) {
        peers->server = std::move(*decided);
      } else {
        peers->server_refusal = context.error();
      }
    } else {
      peers->server_refusal = decided.error();
    }
  } else {
    peers->server_refusal =
        fail(EINVAL,
             "the socket was not bound before its first exchange: it only talks to the "
             "peers it sends to first");
  }
  peers_ = std::move(peers);
  return {};
}

Result<Association *> SecureSocket::start_client(const sockaddr *address, socklen_t length) {
  auto snapshot = current_policy();  // cheap between checks; lock held (no file reads: cached)
  if (!snapshot) return snapshot.error();
  AppSettings app = app_;
  const std::string key = peer_key(address);
  if (auto it = peer_names_.find(key); it != peer_names_.end()) app.names = it->second;
  policy::MatchQuery query{policy::Direction::outbound, address, nullptr, executable_path(),
                           policy::Transport::udp};
  auto decided = decide(app, *snapshot, query, address->sa_family);
  if (!decided) return decided.error();
  const auto &settings = *decided->settings;
  if (peers_->associations.size() >= settings.max_peers) {
    ++peers_->refused_peers;
    return fail(EAGAIN, SSX_REASON_WOULD_BLOCK,
                "max_peers (" + std::to_string(settings.max_peers) +
                    ") associations exist on this socket: no new peer until one ends");
  }
  auto context = decided->snapshot->dtls_context(settings, tls::Role::client);
  if (!context) return context.error();
  auto a = std::make_unique<Association>();
  std::memcpy(&a->peer, address, length);
  a->peer_len = length;
  a->key = key;
  a->client = true;
  std::string server_name;
  for (const auto *list : {&decided->requirements.app_names, &decided->requirements.policy_names}) {
    for (const auto &n : *list) {
      if (server_name.empty() && n.kind == identity::TargetName::Kind::dns) server_name = n.value;
    }
  }
  tls::DatagramPath path{address, length, true, &a->inbox};
  auto session = tls::Session::create(*context, fd_, decided->requirements, server_name, {}, &path);
  if (!session) return session.error();
  a->session = std::move(*session);
  a->start = net::Clock::now();
  a->deadline = a->start + std::chrono::milliseconds(settings.handshake_timeout_ms);
  a->last_active = a->start;
  a->effective = std::move(*decided);
  Association *raw = a.get();
  peers_->associations.emplace(key, std::move(a));
  step(*raw);  // sends the ClientHello
  return raw;
}

void SecureSocket::step(Association &a) {
  a.last_active = net::Clock::now();
  peers_->next_service = net::Clock::time_point{};  // look at the timers again
  if (!a.established) {
    auto want = a.session->handshake();
    a.inbox.clear();
    if (!want) {
      a.failure = want.error();
      return;
    }
    if (*want != tls::Want::nothing) return;
    a.established = true;
    a.handshake_ns = elapsed_ns(a.start);
  }
  // Every record the datagram carried: application data goes to |ready|.
  // The receive buffer is free again (the datagram was copied to the inbox and consumed).
  char *scratch = peers_->buffer.data();
  for (int i = 0; i < kMaxRecordsPerDatagram; ++i) {
    std::size_t full = 0;
    auto r = a.session->read_datagram(scratch, tls::kMaxRecordPlaintext, false, &full);
    if (!r) {
      a.failure = r.error();
      return;
    }
    if (r->end_of_stream) {  // the peer's close_notify: the association is over
      a.failure = fail(ECONNRESET, SSX_REASON_PEER_GONE, "the peer ended the association");
      return;
    }
    if (full == 0) break;
    if (peers_->ready.size() >= kMaxReadyDatagrams) {
      ++peers_->dropped;
      continue;
    }
    DatagramPeers::Ready ready{a.key, a.peer, a.peer_len, std::string(scratch, r->bytes)};
    peers_->ready.push_back(std::move(ready));
  }
  a.inbox.clear();  // whatever the session did not take is not DTLS of this association
}

Result<bool> SecureSocket::receive_one() {
  sockaddr_storage from{};
  socklen_t from_len = sizeof from;
  const ssize_t n = ::recvfrom(fd_, peers_->buffer.data(), peers_->buffer.size(), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr *>(&from), &from_len);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
    // ICMP errors (with IP_RECVERR) and the like concern one peer, not the socket.
    if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) return true;
    return errno_failure_for_peers(errno).error();
  }
  if (n == 0 || (from.ss_family != AF_INET && from.ss_family != AF_INET6)) {
    ++peers_->dropped;
    return true;
  }
  const auto *source = reinterpret_cast<const sockaddr *>(&from);
  const std::string key = peer_key(source);
  bool replacing = false;
  if (auto it = peers_->associations.find(key); it != peers_->associations.end()) {
    Association &a = *it->second;
    if (a.failure) {
      ++peers_->dropped;
      return true;
    }
    // A new ClientHello from an established client's address: the client restarted on the same
    // port (its old association would otherwise swallow everything until it idles out). It goes
    // through the cookie exchange like a stranger's, and replaces the old association only once
    // it returns a valid cookie (RFC 6347 §4.2.8), so a forger cannot end one.
    replacing = !a.client && a.established && peers_->server &&
                is_initial_client_hello(peers_->buffer.data(), static_cast<std::size_t>(n));
    if (!replacing) {
      a.inbox.assign(peers_->buffer.data(), static_cast<std::size_t>(n));
      step(a);
      if (a.failure && !a.client) peers_->associations.erase(it);  // servers just forget it
      return true;
    }
  }
  // A new peer: only a server takes one, and only after it returned our cookie.
  if (!peers_->server) {
    ++peers_->dropped;
    return true;
  }
  const Effective &server = *peers_->server;
  if (!peers_->listener) {
    auto context = server.snapshot->dtls_context(*server.settings, tls::Role::server);
    if (!context) {
      ++peers_->dropped;
      return true;
    }
    tls::DatagramPath path{source, from_len, true, &peers_->listener_inbox};
    auto session = tls::Session::create(*context, fd_, server.requirements, {}, {}, &path);
    if (!session) {
      ++peers_->dropped;
      return true;
    }
    peers_->listener = std::move(*session);
  }
  peers_->listener->retarget(source, from_len, &peers_->listener_inbox);
  peers_->listener_inbox.assign(peers_->buffer.data(), static_cast<std::size_t>(n));
  auto listened = peers_->listener->listen();
  peers_->listener_inbox.clear();
  if (!listened) {
    peers_->listener.reset();  // start afresh with the next stranger
    ++peers_->dropped;
    return true;
  }
  if (!*listened) return true;  // a HelloVerifyRequest went out (or junk): nothing kept
  if (replacing) peers_->associations.erase(key);  // the client proved the address is its own
  if (peers_->associations.size() >= server.settings->max_peers) {
    ++peers_->refused_peers;
    peers_->listener.reset();
    return true;
  }
  auto a = std::make_unique<Association>();
  std::memcpy(&a->peer, &from, from_len);
  a->peer_len = from_len;
  a->key = key;
  a->session = std::move(peers_->listener);
  a->session->retarget(source, from_len, &a->inbox);
  if (auto it = peer_names_.find(key); it != peer_names_.end()) {
    tls::PeerRequirements requirements = server.requirements;
    requirements.app_names = it->second;
    a->session->set_requirements(std::move(requirements));
  }
  a->start = net::Clock::now();
  a->deadline = a->start + std::chrono::milliseconds(server.settings->handshake_timeout_ms);
  a->effective = server;
  Association &raw = *a;
  auto it = peers_->associations.emplace(key, std::move(a)).first;
  step(raw);
  if (raw.failure) peers_->associations.erase(it);
  return true;
}

void SecureSocket::service_peers() {
  const auto now = net::Clock::now();
  if (peers_->next_service != net::Clock::time_point{} && now < peers_->next_service) return;
  net::Clock::time_point next = now + std::chrono::seconds(1);
  for (auto it = peers_->associations.begin(); it != peers_->associations.end();) {
    Association &a = *it->second;
    if (a.failure) {
      // Failed clients wait for their ssx_sendto to learn why, but not forever.
      if (!a.client || now >= a.deadline + std::chrono::seconds(10)) {
        it = peers_->associations.erase(it);
      } else {
        ++it;
      }
      continue;
    }
    if (!a.established) {
      if (now >= a.deadline) {
        a.failure = fail(ETIMEDOUT, SSX_REASON_HANDSHAKE_TIMEOUT,
                         "DTLS handshake with " +
                             net::address_to_string(reinterpret_cast<sockaddr *>(&a.peer)) +
                             " did not finish within " +
                             std::to_string(a.effective->settings->handshake_timeout_ms) +
                             " ms (handshake_timeout_ms)");
        if (!a.client) {
          it = peers_->associations.erase(it);
          continue;
        }
        ++it;
        continue;
      }
      const long timer = a.session->timer_ms();
      if (timer == 0) {
        step(a);  // retransmits
      } else if (timer > 0) {
        next = std::min(next, now + std::chrono::milliseconds(timer));
      }
      next = std::min(next, a.deadline);
      ++it;
      continue;
    }
    const auto idle = std::chrono::milliseconds(a.effective->settings->peer_idle_timeout_ms);
    if (now - a.last_active >= idle) {
      (void)a.session->send_close_notify();
      it = peers_->associations.erase(it);
      continue;
    }
    next = std::min(next, a.last_active + idle);
    ++it;
  }
  peers_->next_service = next;
}

net::Deadline SecureSocket::peers_wake(net::Deadline limit) const {
  net::Clock::time_point wake = peers_->next_service;
  if (wake == net::Clock::time_point{}) wake = net::Clock::now();
  if (limit) wake = std::min(wake, *limit);
  return wake;
}

Result<void> SecureSocket::wait_for_peers(Lock &lock, net::Deadline limit, int flags) {
  if (nonblocking(flags)) {
    transition(state_, POLLIN);
    return fail(EAGAIN, SSX_REASON_WOULD_BLOCK);
  }
  // At most kMaxPeerWait at a time: another thread's ssx_sendto may take in (and queue for us)
  // the datagram this poll would have woken for, while the lock is released.
  constexpr auto kMaxPeerWait = std::chrono::milliseconds(250);
  net::Deadline wake = peers_wake(limit);
  wake = std::min(*wake, net::Clock::now() + kMaxPeerWait);
  auto waited = wait_unlocked(lock, POLLIN, wake);
  if (!waited && waited.error().code != ETIMEDOUT) return waited.error();
  if (limit && net::Clock::now() >= *limit) return fail(EAGAIN, "timed out (SO_RCVTIMEO)");
  return {};
}

Result<size_t> SecureSocket::send_to(const void *data, size_t length, int flags,
                                     const sockaddr *address, socklen_t address_length) {
  if ((flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL)) != 0) {
    return fail(EOPNOTSUPP, "ssx_sendto supports only MSG_DONTWAIT and MSG_NOSIGNAL");
  }
  if (auto r = check_peer_address(fd_, address, address_length); !r) return r.error();
  address_length = address->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  std::lock_guard sender(send_mu_);
  Lock lock(mu_);
  if (auto r = ensure_peers(lock); !r) return r.error();
  if (auto c = claim_.use(fd_); !c) return c.error();
  const std::string key = peer_key(address);
  const net::Deadline io_limit = net::socket_timeout(fd_, false);
  for (int turn = 0;; ++turn) {
    auto it = peers_->associations.find(key);
    Association *a = it == peers_->associations.end() ? nullptr : it->second.get();
    if (a == nullptr) {
      if (turn > 0) {
        return fail(ECONNRESET, SSX_REASON_PEER_GONE,
                    "the association with " + key + " ended during the handshake");
      }
      auto started = start_client(address, address_length);
      if (!started) return started.error();
      a = *started;
    }
    if (a->failure) {
      Failure failure = *a->failure;
      peers_->associations.erase(key);
      return failure;
    }
    if (a->established) {
      auto r = a->session->write(data, length);
      if (!r) {
        if (r.error().code != EMSGSIZE) peers_->associations.erase(key);
        return r.error();
      }
      if (r->bytes > 0 || length == 0) {
        a->last_active = net::Clock::now();
        return r->bytes;
      }
      if (nonblocking(flags)) return fail(EAGAIN, SSX_REASON_WOULD_BLOCK);
      auto waited = wait_unlocked(lock, POLLOUT, io_limit);
      if (!waited) {
        if (waited.error().code == ETIMEDOUT) return fail(EAGAIN, "send timed out (SO_SNDTIMEO)");
        return waited.error();
      }
      continue;
    }
    // Handshaking: drive it (and every other peer's traffic that arrives meanwhile).
    service_peers();
    auto got = receive_one();
    if (!got) return got.error();
    if (*got) continue;
    if (nonblocking(flags)) {
      transition(state_, POLLIN);
      return fail(EAGAIN, SSX_REASON_IN_PROGRESS);
    }
    net::Deadline limit = a->deadline;
    if (io_limit) limit = std::min(*limit, *io_limit);
    if (auto w = wait_for_peers(lock, limit, flags); !w && a->deadline > net::Clock::now()) {
      return w.error();
    }
  }
}

Result<size_t> SecureSocket::recv_from(void *buffer, size_t length, int flags, sockaddr *address,
                                       socklen_t *address_length) {
  if ((flags & ~(MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC)) != 0) {
    return fail(EOPNOTSUPP, "ssx_recvfrom supports only MSG_DONTWAIT, MSG_PEEK and MSG_TRUNC");
  }
  std::lock_guard receiver(recv_mu_);
  Lock lock(mu_);
  if (auto r = ensure_peers(lock); !r) return r.error();
  if (auto c = claim_.use(fd_); !c) return c.error();
  const net::Deadline limit = net::socket_timeout(fd_, true);
  for (;;) {
    if (!peers_->ready.empty()) {
      DatagramPeers::Ready &next = peers_->ready.front();
      const std::size_t n = std::min(length, next.data.size());
      if (n > 0) std::memcpy(buffer, next.data.data(), n);
      const std::size_t full = next.data.size();
      copy_address(next.peer, next.peer_len, address, address_length);
      if ((flags & MSG_PEEK) == 0) peers_->ready.pop_front();
      return (flags & MSG_TRUNC) != 0 ? full : n;
    }
    service_peers();
    auto got = receive_one();
    if (!got) return got.error();
    if (*got) continue;
    if (auto w = wait_for_peers(lock, limit, flags); !w) return w.error();
  }
}

Result<void> SecureSocket::add_peer_target_name(const sockaddr *peer, socklen_t peer_length,
                                                identity::TargetName name) {
  if (auto r = check_peer_address(fd_, peer, peer_length); !r) return r;
  Lock lock(mu_);
  if (!datagram_) return fail(EINVAL, "peer address must be NULL for stream sockets");
  if (state_ != State::configured) {
    return fail(EISCONN, "the UDP socket is connected: its one peer's names take peer NULL");
  }
  const std::string key = peer_key(peer);
  if (peers_ && peers_->associations.count(key) != 0) {
    return fail(EISCONN, "an association with " + key + " exists: its names can no longer change");
  }
  auto &names = peer_names_[key];
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
  return {};
}

Result<void> SecureSocket::clear_peer_target_names(const sockaddr *peer, socklen_t peer_length) {
  if (auto r = check_peer_address(fd_, peer, peer_length); !r) return r;
  Lock lock(mu_);
  if (!datagram_) return fail(EINVAL, "peer address must be NULL for stream sockets");
  if (state_ != State::configured) {
    return fail(EISCONN, "the UDP socket is connected: its one peer's names take peer NULL");
  }
  peer_names_.erase(peer_key(peer));  // an established association goes on
  return {};
}

Result<Report> SecureSocket::query_peer(const sockaddr *peer, socklen_t peer_length,
                                        bool with_chain) {
  if (peer == nullptr) {
    return fail(EINVAL, SSX_REASON_INVALID_ARGUMENT,
                "an unconnected UDP socket has many peers: name one");
  }
  if (auto r = check_peer_address(fd_, peer, peer_length); !r) return r.error();
  Report report;
  std::shared_ptr<PolicySnapshot> snapshot;
  {
    Lock lock(mu_);
    if (!datagram_) return fail(EINVAL, "peer address must be NULL for stream sockets");
    if (state_ != State::configured) {
      return fail(EINVAL, "the UDP socket is connected: query it with peer NULL");
    }
    const std::string key = peer_key(peer);
    Association *found = nullptr;
    if (peers_) {
      if (auto it = peers_->associations.find(key); it != peers_->associations.end()) {
        found = it->second.get();
      }
    }
    if (found == nullptr || !found->established || found->failure) {
      return fail(ENOTCONN, SSX_REASON_WRONG_STATE, "no established association with " + key);
    }
    Association &a = *found;
    report.protocol = SSX_PROTOCOL_DTLS;
    report.tls = a.session->details();
    report.flags = SSX_INFO_SECURED | SSX_INFO_ENCRYPTED;
    if (report.tls.peer_authenticated) report.flags |= SSX_INFO_PEER_AUTHENTICATED;
    if (report.tls.peer_name_verified) report.flags |= SSX_INFO_PEER_NAME_VERIFIED;
    report.rule = a.effective->rule;
    report.handshake_ns = a.handshake_ns;
    if (a.effective->settings->idle_timeout_ms) {
      report.idle_timeout_ms = *a.effective->settings->idle_timeout_ms;
    }
    snapshot = a.effective->snapshot;
  }
  complete_report(report, snapshot, std::nullopt, with_chain);
  return report;
}

Result<identity::Account> SecureSocket::peer_account(const sockaddr *peer, socklen_t peer_length) {
  return account_of(query_peer(peer, peer_length, false));
}

int SecureSocket::peers_timeout_ms() const {
  long left = -1;
  const auto now = net::Clock::now();
  for (const auto &[key, a] : peers_->associations) {
    if (a->established || a->failure) continue;
    long until =
        a->deadline <= now
            ? 0
            : static_cast<long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(a->deadline - now).count());
    if (const long timer = a->session->timer_ms(); timer >= 0) until = std::min(until, timer);
    left = left < 0 ? until : std::min(left, until);
  }
  return static_cast<int>(left);
}

void SecureSocket::close_notify_peers() {
  if (claim_.standing(true) != handoff::Standing::own) return;
  for (auto &[key, a] : peers_->associations) {
    if (a->established && !a->failure) (void)a->session->send_close_notify();
  }
}

}  // namespace ssx::core
