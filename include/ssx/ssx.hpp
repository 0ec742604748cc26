// SPDX-License-Identifier: Apache-2.0
// ssx/ssx.hpp — the C++ API: move-only RAII sockets over the C API in ssx.h.
//
// ssx::Socket is a secured, connected socket; ssx::Listener a secured listening socket. Both
// close on destruction (ssx_close, so close_notify is sent). Every fallible call returns
// ssx::Result<T> (see result.hpp): test it with has_value(), or call value() to get the value or
// an ssx::Error exception carrying the errno and the reason from ssx_last_error().
//
//   ssx::SecuritySettings settings;
//   settings.guarantee_encryption = true;
//   settings.target_names = {"db.example"};
//   ssx::Socket s = ssx::Socket::connect("db.example", 5432, settings).value();
//   s.send(std::as_bytes(std::span(request))).value();
//   ssx::SecurityInfo info = s.query_security().value();
//
// Thread safety: as for the C API. A Socket object itself is not synchronised: do not move or
// destroy it while another thread uses it.

#ifndef SSX_SSX_HPP
#define SSX_SSX_HPP

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ssx/result.hpp"
#include "ssx/ssx.h"

namespace ssx {

// SecuritySettings is what the application requires of a socket.
struct SecuritySettings {
  ssx_protocol protocol = SSX_PROTOCOL_DEFAULT;  // let the administrator's policy decide
  bool guarantee_encryption = false;             // SSX_GUARANTEE_ENCRYPTION
  bool allow_insecure = false;                   // SSX_ALLOW_INSECURE (policy must agree)
  std::vector<std::string> target_names;         // the peer must satisfy one of them
};

// PeerAccount is the local account a peer maps to (the policy's [[identity]] tables).
struct PeerAccount {
  std::string user;  // "" when the uid has no name
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// SecurityInfo is a value copy of ssx_security_info.
struct SecurityInfo {
  ssx_protocol protocol = SSX_PROTOCOL_NONE;
  std::uint32_t flags = 0;
  std::string version, cipher, group;
  std::string peer_principal;
  std::vector<std::string> peer_names;
  std::string peer_spki_sha256, peer_chain_pem;
  std::string local_principal;
  std::string policy_rule;
  std::chrono::nanoseconds handshake_time{0};
  std::optional<PeerAccount> peer_account;  // set when impersonation is available
  pid_t peer_pid = 0;                       // AF_UNIX peers
  std::string peer_security_label;          // AF_UNIX peers, when the kernel has one
  std::int64_t idle_timeout_ms = -1;        // the policy's: -1 unset, 0 no limit

  bool secured() const { return (flags & SSX_INFO_SECURED) != 0; }
  bool encrypted() const { return (flags & SSX_INFO_ENCRYPTED) != 0; }
  bool peer_authenticated() const { return (flags & SSX_INFO_PEER_AUTHENTICATED) != 0; }
  bool peer_name_verified() const { return (flags & SSX_INFO_PEER_NAME_VERIFIED) != 0; }
  bool resumed() const { return (flags & SSX_INFO_RESUMED) != 0; }
  bool impersonation_available() const { return (flags & SSX_INFO_IMPERSONATION_AVAILABLE) != 0; }
};

namespace detail {

inline Failure last_failure() {
  const int code = errno;
  return Failure{code, ssx_last_error(), ssx_last_error_reason()};
}

inline std::string str(const char *s) {
  return s != nullptr ? std::string(s) : std::string();
}

// apply_settings secures |fd| with |settings| and its target names.
inline Result<void> apply_settings(int fd, const SecuritySettings &settings) {
  ssx_security_settings c{settings.protocol, 0};
  if (settings.guarantee_encryption) c.flags |= SSX_GUARANTEE_ENCRYPTION;
  if (settings.allow_insecure) c.flags |= SSX_ALLOW_INSECURE;
  if (ssx_set_socket_security(fd, &c, sizeof c) != 0) return last_failure();
  for (const auto &name : settings.target_names) {
    if (ssx_set_socket_peer_target_name(fd, name.c_str(), nullptr, 0) != 0) return last_failure();
  }
  return {};
}

// resolve returns the addresses of |host|:|port| (numeric or DNS), EHOSTUNREACH-style failures
// as EINVAL with getaddrinfo's reason.
inline Result<std::vector<sockaddr_storage>> resolve(const std::string &host, std::uint16_t port,
                                                     bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG;
  addrinfo *list = nullptr;
  const std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    return Failure{rc == EAI_SYSTEM ? errno : EINVAL,
                   "cannot resolve \"" + host + "\": " + ::gai_strerror(rc),
                   rc == EAI_SYSTEM ? int{SSX_REASON_SYSTEM} : int{SSX_REASON_INVALID_ARGUMENT}};
  }
  std::vector<sockaddr_storage> out;
  for (addrinfo *ai = list; ai != nullptr; ai = ai->ai_next) {
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    out.push_back(ss);
  }
  ::freeaddrinfo(list);
  return out;
}

inline socklen_t length_of(const sockaddr_storage &ss) {
  return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// Descriptor owns an fd and closes it with ssx_close.
class Descriptor {
 public:
  Descriptor() = default;
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() { reset(); }
  Descriptor(Descriptor &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Descriptor &operator=(Descriptor &&other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Descriptor(const Descriptor &) = delete;
  Descriptor &operator=(const Descriptor &) = delete;

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ssx_close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

// query runs ssx_query_socket_security on |fd| (for |peer|, or NULL) and copies the result.
inline Result<SecurityInfo> query(int fd, const sockaddr *peer, socklen_t peer_length) {
  ssx_security_info *raw = nullptr;
  if (ssx_query_socket_security(fd, peer, peer_length, &raw) != 0) return last_failure();
  SecurityInfo info;
  info.protocol = raw->protocol;
  info.flags = raw->flags;
  info.version = detail::str(raw->version);
  info.cipher = detail::str(raw->cipher);
  info.group = detail::str(raw->group);
  info.peer_principal = detail::str(raw->peer_principal);
  for (const char *const *n = raw->peer_names; n != nullptr && *n != nullptr; ++n) {
    info.peer_names.emplace_back(*n);
  }
  info.peer_spki_sha256 = detail::str(raw->peer_spki_sha256);
  info.peer_chain_pem = detail::str(raw->peer_chain_pem);
  info.local_principal = detail::str(raw->local_principal);
  info.policy_rule = detail::str(raw->policy_rule);
  info.handshake_time = std::chrono::nanoseconds(raw->handshake_ns);
  if ((raw->flags & SSX_INFO_IMPERSONATION_AVAILABLE) != 0) {
    PeerAccount account;
    account.user = detail::str(raw->peer_user);
    account.uid = raw->peer_uid;
    account.gid = raw->peer_gid;
    account.groups.assign(raw->peer_groups, raw->peer_groups + raw->peer_group_count);
    info.peer_account = std::move(account);
  }
  info.peer_pid = raw->peer_pid;
  info.peer_security_label = detail::str(raw->peer_security_label);
  info.idle_timeout_ms = raw->idle_timeout_ms;
  ssx_free_security_info(raw);
  return info;
}

}  // namespace detail

// Socket is a secured, connected stream socket.
class Socket {
 public:
  Socket() = default;
  // Socket adopts |fd|, an fd returned by ssx_accept or connected with ssx_connect.
  explicit Socket(int fd) : fd_(fd) {}

  // connect creates a socket for |address|, secures it with |settings| and runs ssx_connect.
  static Result<Socket> connect(const sockaddr *address, socklen_t length,
                                const SecuritySettings &settings) {
    detail::Descriptor fd(::socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return Failure{errno, "socket: cannot create", SSX_REASON_SYSTEM};
    if (auto r = detail::apply_settings(fd.get(), settings); !r) return r.error();
    if (ssx_connect(fd.get(), address, length) != 0) return detail::last_failure();
    return Socket(fd.release());
  }

  // connect resolves |host| and tries each address in turn; the last failure is returned.
  static Result<Socket> connect(const std::string &host, std::uint16_t port,
                                const SecuritySettings &settings) {
    auto addresses = detail::resolve(host, port, false);
    if (!addresses) return addresses.error();
    Failure last{EHOSTUNREACH, "no address for \"" + host + "\""};
    for (const auto &ss : *addresses) {
      auto s = connect(reinterpret_cast<const sockaddr *>(&ss), detail::length_of(ss), settings);
      if (s) return s;
      last = s.error();
    }
    return last;
  }

  // send sends all of |data| (blocking socket) or what fits (non-blocking).
  Result<std::size_t> send(std::span<const std::byte> data, int flags = 0) {
    ssize_t n = ssx_send(fd_.get(), data.data(), data.size(), flags);
    if (n < 0) return detail::last_failure();
    return static_cast<std::size_t>(n);
  }

  // recv receives into |buffer|; 0 means the peer closed cleanly (close_notify).
  Result<std::size_t> recv(std::span<std::byte> buffer, int flags = 0) {
    ssize_t n = ssx_recv(fd_.get(), buffer.data(), buffer.size(), flags);
    if (n < 0) return detail::last_failure();
    return static_cast<std::size_t>(n);
  }

  // shutdown sends close_notify (SHUT_WR) and/or stops receiving.
  Result<void> shutdown(int how = SHUT_WR) {
    if (ssx_shutdown(fd_.get(), how) != 0) return detail::last_failure();
    return {};
  }

  // handshake drives a non-blocking socket's handshake; EAGAIN until done.
  Result<void> handshake() {
    if (ssx_handshake(fd_.get()) != 0) return detail::last_failure();
    return {};
  }

  // wants returns the poll events to wait for after EAGAIN, plus SSX_POLLPENDING when ssx
  // already holds input that recv returns without waiting (ssx_wants: check it before waiting).
  short wants() const { return ssx_wants(fd_.get()); }

  // pending returns the bytes of application data recv can return without reading the socket.
  std::size_t pending() const { return ssx_pending(fd_.get()); }
  // input_held says whether recv returns at once (data, end of stream or a failure held by ssx):
  // an event loop must not wait for the socket while it is true.
  bool input_held() const { return (ssx_wants(fd_.get()) & SSX_POLLPENDING) != 0; }

  // query_security returns what security the connection has.
  Result<SecurityInfo> query_security() const { return detail::query(fd_.get(), nullptr, 0); }

  // native_handle returns the fd, for poll(2)/epoll. ssx still owns it.
  int native_handle() const { return fd_.get(); }
  // release gives up ownership; the caller must ssx_close the fd.
  int release() { return fd_.release(); }
  bool is_open() const { return fd_.get() >= 0; }
  // close sends close_notify and closes now rather than at destruction.
  void close() { fd_.reset(); }
  // abort resets the connection without close_notify (ssx_abort): the peer sees ECONNRESET,
  // never a clean end of stream.
  void abort() {
    if (is_open()) ssx_abort(fd_.release());
  }
  // hand_off gives the connection up in this process without touching it: ssx_release, then
  // close(2). The parent of a fork-per-connection server calls it after fork() while the child
  // keeps serving the connection (ssx.h, "Processes").
  Result<void> hand_off() {
    if (!is_open()) return {};
    const int fd = fd_.release();
    const int released = ssx_release(fd);
    const Failure failure = released != 0 ? detail::last_failure() : Failure{};
    ::close(fd);
    if (released != 0) return failure;
    return {};
  }

 private:
  detail::Descriptor fd_;
};

// Datagram is what DatagramSocket::receive_from returns: the datagram's length (its full length
// when it was longer than the buffer and MSG_TRUNC was given) and the peer that sent it.
struct Datagram {
  std::size_t length = 0;
  sockaddr_storage peer{};
  socklen_t peer_length = 0;
  const sockaddr *peer_address() const { return reinterpret_cast<const sockaddr *>(&peer); }
};

// DatagramSocket is a secured UDP socket (DTLS) talking to many peers, one association per peer
// address (ssx.h: ssx_sendto, ssx_recvfrom). Bound (open with a local address), it also accepts
// new peers as a server. Threads: as the C calls.
class DatagramSocket {
 public:
  DatagramSocket() = default;

  // open creates a UDP socket of |family| (AF_INET or AF_INET6), secures it with |settings|
  // (its target names apply to every peer without names of its own) and, when |local| is not
  // NULL, binds it there.
  static Result<DatagramSocket> open(int family, const SecuritySettings &settings,
                                     const sockaddr *local = nullptr, socklen_t local_length = 0) {
    detail::Descriptor fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return Failure{errno, "socket: cannot create", SSX_REASON_SYSTEM};
    SecuritySettings dtls = settings;
    if (dtls.protocol == SSX_PROTOCOL_TLS) dtls.protocol = SSX_PROTOCOL_DTLS;
    if (auto r = detail::apply_settings(fd.get(), dtls); !r) return r.error();
    if (local != nullptr && ::bind(fd.get(), local, local_length) != 0) {
      return Failure{errno, std::string("bind: ") + std::strerror(errno), SSX_REASON_SYSTEM};
    }
    DatagramSocket s;
    s.fd_ = std::move(fd);
    return s;
  }

  // set_peer_target_name adds |name| for |peer| only (before the first exchange with it).
  Result<void> set_peer_target_name(const std::string &name, const sockaddr *peer,
                                    socklen_t peer_length) {
    if (ssx_set_socket_peer_target_name(fd_.get(), name.c_str(), peer, peer_length) != 0) {
      return detail::last_failure();
    }
    return {};
  }

  // send_to sends |data| as one datagram to |peer|, handshaking with it first if needed.
  Result<std::size_t> send_to(std::span<const std::byte> data, const sockaddr *peer,
                              socklen_t peer_length, int flags = 0) {
    ssize_t n = ssx_sendto(fd_.get(), data.data(), data.size(), flags, peer, peer_length);
    if (n < 0) return detail::last_failure();
    return static_cast<std::size_t>(n);
  }

  // receive_from receives the next datagram from any established peer into |buffer| (cut to
  // its size) and says who sent it.
  Result<Datagram> receive_from(std::span<std::byte> buffer, int flags = 0) {
    Datagram d;
    d.peer_length = sizeof d.peer;
    ssize_t n = ssx_recvfrom(fd_.get(), buffer.data(), buffer.size(), flags,
                             reinterpret_cast<sockaddr *>(&d.peer), &d.peer_length);
    if (n < 0) return detail::last_failure();
    d.length = static_cast<std::size_t>(n);
    return d;
  }

  // query_security reports on the association with |peer| (ENOTCONN: none established).
  Result<SecurityInfo> query_security(const sockaddr *peer, socklen_t peer_length) const {
    return detail::query(fd_.get(), peer, peer_length);
  }

  // timeout_ms is ssx_timeout_ms: when to call again for a handshake timer, -1 for none.
  int timeout_ms() const { return ssx_timeout_ms(fd_.get()); }
  short wants() const { return ssx_wants(fd_.get()); }
  int native_handle() const { return fd_.get(); }
  int release() { return fd_.release(); }
  bool is_open() const { return fd_.get() >= 0; }
  // close sends close_notify to every established peer and closes.
  void close() { fd_.reset(); }

 private:
  detail::Descriptor fd_;
};

// Listener is a secured listening socket.
class Listener {
 public:
  Listener() = default;

  // bind creates, secures, binds and listens on |address|, with SO_REUSEADDR.
  static Result<Listener> bind(const sockaddr *address, socklen_t length,
                               const SecuritySettings &settings, int backlog = SOMAXCONN) {
    detail::Descriptor fd(::socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return Failure{errno, "socket: cannot create", SSX_REASON_SYSTEM};
    if (auto r = detail::apply_settings(fd.get(), settings); !r) return r.error();
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), address, length) != 0)
      return Failure{errno, "bind failed", SSX_REASON_SYSTEM};
    if (::listen(fd.get(), backlog) != 0) return Failure{errno, "listen failed", SSX_REASON_SYSTEM};
    Listener l;
    l.fd_ = std::move(fd);
    return l;
  }

  // bind resolves |host| (numeric or DNS; "" = all addresses) and binds the first address.
  static Result<Listener> bind(const std::string &host, std::uint16_t port,
                               const SecuritySettings &settings, int backlog = SOMAXCONN) {
    auto addresses = detail::resolve(host, port, true);
    if (!addresses) return addresses.error();
    const auto &ss = addresses->front();
    return bind(reinterpret_cast<const sockaddr *>(&ss), detail::length_of(ss), settings, backlog);
  }

  // accept waits for a connection and secures it (see ssx_accept).
  Result<Socket> accept() {
    int fd = ssx_accept(fd_.get(), nullptr, nullptr);
    if (fd < 0) return detail::last_failure();
    return Socket(fd);
  }

  // port returns the local port (useful after binding port 0).
  std::uint16_t port() const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr *>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
    return ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
  }

  int native_handle() const { return fd_.get(); }

 private:
  detail::Descriptor fd_;
};

// Impersonation makes the calling thread act as a socket peer's local account until it is
// destroyed (or revert() is called), so the kernel's access checks apply to the peer:
//
//   {
//     auto as_peer = ssx::Impersonation::begin(client).value();
//     int fd = open(path, O_RDONLY);   // checked against the peer's uid, gid and groups
//   }                                  // back to the server's own identity here
//
// It must be destroyed on the thread that created it. If restoring the thread's credentials
// ever fails, the process aborts rather than run on with the wrong identity.
class Impersonation {
 public:
  // begin impersonates the peer of |socket| on this thread (see ssx_impersonate_socket_peer).
  static Result<Impersonation> begin(const Socket &socket) {
    if (ssx_impersonate_socket_peer(socket.native_handle(), nullptr, 0) != 0) {
      return detail::last_failure();
    }
    return Impersonation();
  }
  ~Impersonation() { revert(); }
  Impersonation(Impersonation &&other) noexcept : active_(std::exchange(other.active_, false)) {}
  Impersonation &operator=(Impersonation &&) = delete;
  Impersonation(const Impersonation &) = delete;
  Impersonation &operator=(const Impersonation &) = delete;

  // revert returns to the thread's own credentials now; idempotent.
  void revert() noexcept {
    if (!std::exchange(active_, false)) return;
    if (ssx_revert_impersonation() != 0) {
      (void)std::fprintf(stderr, "ssx: cannot revert impersonation (%s); aborting\n",
                         ssx_last_error());
      std::abort();
    }
  }

 private:
  Impersonation() = default;
  bool active_ = true;
};

// load_policy makes the policy file at |path| the one in force for new connections.
inline Result<void> load_policy(const std::string &path) {
  if (ssx_load_policy(path.c_str()) != 0) return detail::last_failure();
  return {};
}

// reload_policy reads the policy file in force and the files it names again and, if they are
// valid, makes them the policy for new connections (ssx_reload_policy). On failure the last good
// policy stays in force.
inline Result<void> reload_policy() {
  if (ssx_reload_policy() != 0) return detail::last_failure();
  return {};
}

}  // namespace ssx

#endif  // SSX_SSX_HPP
