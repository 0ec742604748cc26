// SPDX-License-Identifier: Apache-2.0
// core/secure_socket.hpp — one secured socket: its state machine and its blocking behaviour.
//
// States (every call checks the state it needs and fails with the documented errno otherwise):
//
//   configured ──connect──▶ connecting ──TCP up──▶ handshaking ──▶ established
//        │                                  │             │
//        │ (accepted)        sniffing ◀─────┘(server,     └──▶ failed
//        │                      │             cleartext allowed)
//        └──listen/accept──▶ listener           └── non-TLS first byte ──▶ cleartext
//
// A client whose peer plainly does not speak TLS, when cleartext is allowed, reconnects
// (cleartext_connecting) and ends in `cleartext`. No other path leads to cleartext.
//
// Waiting: the TLS session never blocks (see tls::Session). When the socket is blocking, calls
// wait here with poll(2) *outside* the socket's lock, so one thread may send while another
// receives. Everything else on a socket is serialised by that lock.

#ifndef SSX_CORE_SECURE_SOCKET_HPP
#define SSX_CORE_SECURE_SOCKET_HPP

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/effective.hpp"
#include "core/handoff.hpp"
#include "identity/account.hpp"
#include "net/wait.hpp"

namespace ssx::core {

// Report is what a query returns.
struct Report {
  ssx_protocol protocol = SSX_PROTOCOL_NONE;
  std::uint32_t flags = 0;
  tls::Details tls;
  std::string rule;
  std::uint64_t handshake_ns = 0;
  std::optional<identity::Account> account;  // the peer as a local account, when mapped
  std::string unmapped_reason;               // why |account| is unset
  pid_t peer_pid = 0;                        // AF_UNIX only
  std::string peer_security_label;           // AF_UNIX only
  std::int64_t idle_timeout_ms = -1;         // the policy's; -1 unset
};

class SecureSocket {
 public:
  enum class State {
    configured,
    listener,
    connecting,
    cleartext_connecting,
    sniffing,
    handshaking,
    established,
    local,  // AF_UNIX, peer attested by the kernel
    cleartext,
    failed,
  };

  SecureSocket(int fd, AppSettings app);

  int fd() const { return fd_; }
  // identity is the socket's inode: a new socket on a reused fd number has another one.
  ino_t identity() const { return identity_.load(); }
  dev_t device() const { return device_; }

  Result<void> add_target_name(identity::TargetName name);
  Result<void> clear_target_names();

  // connect starts (and for blocking sockets finishes) connect + handshake.
  Result<void> connect(const sockaddr *address, socklen_t length);
  // accept takes one connection from this listener; returns the new socket (already registered
  // by the caller) — see ssx_accept for blocking behaviour.
  Result<std::shared_ptr<SecureSocket>> accept(sockaddr *address, socklen_t *length);

  // handshake drives a pending connect/handshake; blocking sockets finish it.
  Result<void> handshake();
  short wants() const { return wants_.load(); }

  Result<size_t> send(const void *data, size_t length, int flags);
  Result<size_t> recv(void *buffer, size_t length, int flags);
  Result<void> shutdown(int how);
  // close_notify_best_effort sends close_notify if it can without waiting (used by ssx_close).
  void close_notify_best_effort();

  Result<Report> query();

  // buffered_input says what ssx_recv would return without reading the socket: the application
  // bytes the TLS session holds decrypted or in whole records already read (ssx_pending), and
  // whether a receive returns at once (data, the peer's close_notify or a failure; ssx_wants'
  // SSX_POLLPENDING). Nothing for sockets without TLS: the kernel holds their data.
  tls::Session::Buffered buffered_input();

  // standing says whether this process owns the connection after a fork (core/handoff.hpp);
  // with |settle| it claims it when no other process can any more.
  handoff::Standing standing(bool settle);

  // Fork support (core/handoff.cpp): the pthread_atfork handlers hold every socket's lock across
  // fork(2); the two *_locked calls are made with it held.
  void lock_for_fork() { mu_.lock(); }
  void unlock_after_fork() { mu_.unlock(); }
  bool has_connection_locked() const {
    return state_ != State::configured && state_ != State::listener;
  }
  handoff::Claim &claim_locked() { return claim_; }

  // peer_account returns the local account the peer maps to; EACCES (naming the principal and
  // the reason) when it maps to none, ENOTCONN before the connection is established.
  Result<identity::Account> peer_account();

 private:
  using Lock = std::unique_lock<std::mutex>;

  Result<void> begin_outbound(const sockaddr *address, socklen_t length);
  Result<void> begin_inbound();
  Result<void> start_tls(tls::Role role);
  Result<void> establish_local();
  // map_peer maps the peer's principal under the socket's policy snapshot (lock held).
  identity::Mapping map_peer(const std::string &principal);
  // advance makes one non-blocking step of the connect/handshake under |lock|; returns the
  // events to wait for (0 when established).
  Result<short> advance();
  // drive runs advance until established, waiting when the socket is blocking; EAGAIN when
  // non-blocking and not done.
  Result<void> drive(Lock &lock, bool nonblocking);
  Result<void> reconnect_cleartext();
  Failure fail_with(Failure failure);  // enters `failed` and returns |failure|
  // claim_for_use is called (lock held) before the connection's stream is read or written: it
  // fails with EPERM, dropping the TLS state without sending anything, when another process
  // took the connection after a fork (core/handoff.hpp).
  Result<void> claim_for_use();
  Result<void> wait_unlocked(Lock &lock, short events, net::Deadline deadline);
  // wait_to_receive waits, without the lock, until a receive whose read wanted |want| can try
  // again. Fails with EAGAIN (and sets wants_) when the call must not block (MSG_DONTWAIT,
  // O_NONBLOCK) or SO_RCVTIMEO expired. |peek_error| carries the errno of a failed wait to the
  // next one, so a socket error that the read does not report cannot make the caller loop.
  Result<void> wait_to_receive(Lock &lock, tls::Want want, int flags, int &peek_error);
  bool nonblocking(int flags) const;

  int fd_;
  std::atomic<ino_t> identity_{0};
  dev_t device_ = 0;
  AppSettings app_;
  mutable std::mutex mu_;  // the state below; never held while waiting
  std::mutex send_mu_;     // one ssx_send at a time, across its waits (records must not interleave)
  std::mutex recv_mu_;     // one ssx_recv at a time
  State state_ = State::configured;
  std::atomic<short> wants_{0};
  std::optional<Effective> effective_;
  std::unique_ptr<tls::Session> session_;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;
  net::Clock::time_point handshake_start_{};
  net::Clock::time_point deadline_{};
  // Server side, until the client's first flight has arrived: client_hello_timeout_ms from the
  // accept (never later than deadline_). Zero once passed or for clients.
  net::Clock::time_point hello_deadline_{};
  std::uint64_t handshake_ns_ = 0;
  Failure failure_;
  bool client_ = false;
  ucred peer_cred_{};       // AF_UNIX: what SO_PEERCRED attested
  std::string peer_label_;  // AF_UNIX: SO_PEERSEC, when the kernel has one
  bool write_shut_ = false;
  bool read_shut_ = false;
  bool peer_closed_ = false;
  handoff::Claim claim_;  // which process may use the connection after fork(2)
};

// inode_of returns |fd|'s inode (0 if fstat fails) and optionally its device.
ino_t inode_of(int fd, dev_t *device = nullptr);

}  // namespace ssx::core

#endif  // SSX_CORE_SECURE_SOCKET_HPP
