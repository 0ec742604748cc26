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
// Every change of state_ and wants_ goes through transition(), which checks it against the table
// in transition_allowed() (a disallowed change is a bug: it aborts debug builds). A call made in
// the wrong state (ssx_send before ssx_connect, ssx_recv on a listener, ...) fails with its errno
// and changes nothing: misuse never moves a socket to `failed`; only a connection that was tried
// and did not work does.
//
// Locking. mu_ guards the state below and is held only for short, non-blocking work: it is never
// held while waiting (poll, a blocking connect(2) or accept(2)), nor across slow work that needs
// no socket state (resolving accounts through NSS, PEM encoding, building a policy snapshot).
// Blocking calls wait with poll(2) outside it, so one thread may send while another receives;
// everything else on a socket is serialised by it. A blocking listener's pending handshakes have
// their own locks (see accept()).

#ifndef SSX_CORE_SECURE_SOCKET_HPP
#define SSX_CORE_SECURE_SOCKET_HPP

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/datagram.hpp"
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
  // kMaxPendingHandshakes bounds the connections a blocking listener's ssx_accept handshakes at
  // once (docs/limits.md); more wait in the kernel's listen queue.
  static constexpr size_t kMaxPendingHandshakes = 128;

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
  SecureSocket(const SecureSocket &) = delete;
  SecureSocket &operator=(const SecureSocket &) = delete;

  int fd() const { return fd_; }
  // identity is the socket's inode: a new socket on a reused fd number has another one.
  ino_t identity() const { return identity_.load(); }
  dev_t device() const { return device_; }

  Result<void> add_target_name(identity::TargetName name);
  Result<void> clear_target_names();

  // connect starts (and for blocking sockets finishes) connect + handshake.
  Result<void> connect(const sockaddr *address, socklen_t length);
  // accept takes one connection from this listener and returns the new socket, which the caller
  // registers. Non-blocking listener: a connection still handshaking (one step taken). Blocking
  // listener: the first of up to kMaxPendingHandshakes connections to finish its handshake, or
  // the first to fail (closed, its failure returned); see ssx_accept. |address| receives the
  // address of the connection returned or failed, as accept(2) fills it.
  Result<std::shared_ptr<SecureSocket>> accept(sockaddr *address, socklen_t *length);

  // handshake drives a pending connect/handshake; blocking sockets finish it.
  Result<void> handshake();
  short wants() const { return wants_.load(); }

  // transition_allowed is the state machine's table: whether |from| may become |to|. Staying in
  // a state (to change only wants_) is always allowed.
  static bool transition_allowed(State from, State to);

  Result<size_t> send(const void *data, size_t length, int flags);
  // sendv sends |count| iovecs as one send (ssx_sendmsg): coalesced into as few records as
  // possible, every iovec but the last as if with MSG_MORE.
  Result<size_t> sendv(const iovec *iov, size_t count, int flags);
  Result<size_t> recv(void *buffer, size_t length, int flags);
  Result<void> shutdown(int how);
  // close_notify_best_effort sends close_notify if it can without waiting (used by ssx_close).
  void close_notify_best_effort();

  // query reports the established connection. The socket's lock is held only to copy what the
  // report needs; the peer's account (NSS) and, when |with_chain|, its PEM chain are worked out
  // after it is released.
  Result<Report> query(bool with_chain = true);

  // buffered_input says what ssx_recv would return without reading the socket: the application
  // bytes the TLS session holds decrypted or in whole records already read (ssx_pending), and
  // whether a receive returns at once (data, the peer's close_notify or a failure; ssx_wants'
  // SSX_POLLPENDING). Nothing for sockets without TLS: the kernel holds their data.
  tls::Session::Buffered buffered_input();

  // standing says whether this process owns the connection after a fork (core/handoff.hpp);
  // with |settle| it claims it when no other process can any more.
  handoff::Standing standing(bool settle);

  // datagram says whether this is a UDP socket (DTLS).
  bool datagram() const { return datagram_; }

  // Unconnected UDP sockets, many peers (core/datagram.cpp; ssx.h: ssx_sendto, ssx_recvfrom).
  // send_to sends one datagram to |address|, first running the DTLS handshake with it as client
  // when there is no association yet (blocking sockets wait; non-blocking ones get EAGAIN and
  // the handshake goes on as ssx is called). recv_from returns the next application datagram
  // from any established peer, with its address, meanwhile driving every handshake and
  // accepting new peers as server (cookie first) when the socket was bound before its first
  // exchange. Both fail with EISCONN on a connected socket.
  Result<size_t> send_to(const void *data, size_t length, int flags, const sockaddr *address,
                         socklen_t address_length);
  Result<size_t> recv_from(void *buffer, size_t length, int flags, sockaddr *address,
                           socklen_t *address_length);
  // Per-peer target names (ssx_set_socket_peer_target_name with a peer): EISCONN once that
  // peer has an association (or the socket is connected).
  Result<void> add_peer_target_name(const sockaddr *peer, socklen_t peer_length,
                                    identity::TargetName name);
  Result<void> clear_peer_target_names(const sockaddr *peer, socklen_t peer_length);
  // query_peer / peer_account report on |peer|'s association: ENOTCONN when it has none
  // established, EINVAL when the socket is connected (use query()).
  Result<Report> query_peer(const sockaddr *peer, socklen_t peer_length, bool with_chain = true);
  Result<identity::Account> peer_account(const sockaddr *peer, socklen_t peer_length);
  // unconnected_datagram says whether the socket serves peers with sendto/recvfrom.
  bool unconnected_datagram() const;
  // timeout_ms is ssx_timeout_ms: the milliseconds until a handshake deadline or a DTLS
  // retransmission needs a call (0: now), or -1 when no timer runs.
  int timeout_ms();

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
  // account_of turns a query's result into the peer's account, or EACCES naming the principal
  // and why it maps to none (both peer_account overloads).
  static Result<identity::Account> account_of(Result<Report> report);

 private:
  using Lock = std::unique_lock<std::mutex>;
  // PendingAccepts are a blocking listener's accepted connections whose handshake ssx_accept is
  // still running (core/accept.cpp).
  // Turn is a timed lock (lock, try_lock, try_lock_until, unlock) made of a mutex and a
  // condition variable. Not std::timed_mutex: glibc implements its try_lock_until with
  // pthread_mutex_clocklock, which ThreadSanitizer (GCC 12) does not intercept, so every
  // timed accept looked like an unlock of an unlocked mutex.
  class Turn {
   public:
    void lock();
    bool try_lock();
    bool try_lock_until(net::Clock::time_point deadline);
    void unlock();

   private:
    std::mutex mu_;
    std::condition_variable free_;
    bool taken_ = false;  // guarded by mu_
  };

  struct PendingAccepts {
    Turn driver;                                         // held by the thread that steps them
    std::vector<std::shared_ptr<SecureSocket>> sockets;  // guarded by |driver|
    PendingAccepts() = default;
    PendingAccepts(const PendingAccepts &) = delete;
    PendingAccepts &operator=(const PendingAccepts &) = delete;
    ~PendingAccepts();  // closes those never handed out
  };

  // transition makes |next| the state and |wants| the events to wait for (lock held).
  void transition(State next, short wants);
  // require_connection fails, changing nothing, when the state has no connection to drive
  // (configured or listener: ENOTCONN).
  Result<void> require_connection() const;
  // begin_outbound decides the policy and starts connect(2); the lock is released while
  // connect(2) runs (it blocks on a blocking socket). Leaves `connecting` for drive().
  Result<void> begin_outbound(Lock &lock, const sockaddr *address, socklen_t length,
                              std::shared_ptr<PolicySnapshot> snapshot);
  Result<void> begin_inbound();
  Result<void> start_tls(tls::Role role);
  Result<void> establish_local();
  // apply_tcp_nodelay sets TCP_NODELAY on a TCP socket when the policy says tcp_nodelay (the
  // default): ssx's own handshake flights and small records must not wait for delayed ACKs.
  void apply_tcp_nodelay();
  // Blocking listeners (core/accept.cpp).
  Result<std::shared_ptr<SecureSocket>> accept_one(sockaddr *address, socklen_t *length,
                                                   bool nonblocking_listener);
  Result<std::shared_ptr<SecureSocket>> accept_blocking(sockaddr *address, socklen_t *length);
  // step_handshake takes one non-blocking step of an accepted connection's handshake: true once
  // established; a failure leaves the socket failed.
  Result<bool> step_handshake();
  // handshake_deadline is when the pending handshake times out (the ClientHello's deadline
  // while that has not arrived).
  net::Clock::time_point handshake_deadline() const;
  void copy_peer_address(sockaddr *address, socklen_t *length) const;
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
  // write_records writes |bytes| as TLS records, waiting unless non-blocking (send_mu_ held).
  Result<size_t> write_records(Lock &lock, const unsigned char *bytes, size_t length, int flags);
  // Unconnected UDP (core/datagram.cpp), all with mu_ held.
  Result<void> ensure_peers(Lock &lock);
  Result<bool> receive_one();  // one datagram from the socket, dispatched; false: none waiting
  void step(Association &association);  // after its inbox was filled or its timer expired
  void service_peers();                 // handshake timers, deadlines, idle peers
  Result<Association *> start_client(const sockaddr *address, socklen_t length);
  net::Deadline peers_wake(net::Deadline limit) const;
  Result<void> wait_for_peers(Lock &lock, net::Deadline limit, int flags);
  void close_notify_peers();
  int peers_timeout_ms() const;
  // send_datagram sends the iovecs as one DTLS datagram (ssx_send on a UDP socket); EMSGSIZE
  // when it does not fit, which leaves the association usable.
  Result<size_t> send_datagram(Lock &lock, const iovec *iov, size_t count, int flags);
  // recv_datagram receives one datagram, truncated to |length| (MSG_TRUNC: returns its length).
  Result<size_t> recv_datagram(Lock &lock, void *buffer, size_t length, int flags);
  // send_corked is a send with MSG_MORE, or any send while bytes are held (ssx.h, ssx_send).
  Result<size_t> send_corked(Lock &lock, const unsigned char *data, size_t length, int flags);

  int fd_;
  std::atomic<ino_t> identity_{0};
  dev_t device_ = 0;
  AppSettings app_;
  const bool datagram_;    // SOCK_DGRAM: DTLS, one send one datagram
  mutable std::mutex mu_;  // the state below; never held while waiting
  std::mutex send_mu_;     // one ssx_send at a time, across its waits (records must not interleave)
  std::mutex recv_mu_;     // one ssx_recv at a time
  std::unique_ptr<PendingAccepts> pending_;  // listener only, created by its first blocking accept
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
  // MSG_MORE: bytes accepted from the application but not yet in a record, at most one record
  // (kCorkLimit); guarded by send_mu_. cork_writing_: a record of them is being written and
  // they must not change until it is (OpenSSL retries a blocked record from the same bytes).
  static constexpr size_t kCorkLimit = 16384;  // a full TLS record's plaintext
  std::string corked_;
  bool cork_writing_ = false;
  bool write_shut_ = false;
  bool read_shut_ = false;
  bool peer_closed_ = false;
  handoff::Claim claim_;                  // which process may use the connection after fork(2)
  std::unique_ptr<DatagramPeers> peers_;  // unconnected UDP: created by the first sendto/recvfrom
  // Per-peer target names of an unconnected UDP socket, by peer_key().
  std::map<std::string, std::vector<identity::TargetName>> peer_names_;
};

// complete_report finishes a query outside the socket's lock: the PEM chain (|with_chain|) and
// the peer's local account (|attested| uid for AF_UNIX).
void complete_report(Report &report, const std::shared_ptr<PolicySnapshot> &snapshot,
                     std::optional<uid_t> attested, bool with_chain);

// is_listening reports whether listen(2) was called on |fd| (SO_ACCEPTCONN).
bool is_listening(int fd);

// is_connected reports whether |fd| has a peer (getpeername succeeds).
bool is_connected(int fd);

// inode_of returns |fd|'s inode (0 if fstat fails) and optionally its device.
ino_t inode_of(int fd, dev_t *device = nullptr);

}  // namespace ssx::core

#endif  // SSX_CORE_SECURE_SOCKET_HPP
