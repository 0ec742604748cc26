// SPDX-License-Identifier: Apache-2.0
// protocol/tls/session.hpp — one TLS connection on a socket: handshake, records, close_notify.
//
// A Session never waits. Each call does what it can without blocking and says what it needs next
// (Want::read or Want::write), or fails with a Failure whose errno follows docs/errors.md. The
// caller (core/secure_socket) owns waiting, deadlines and locking; a Session must not be used by
// two threads at once.

#ifndef SSX_PROTOCOL_TLS_SESSION_HPP
#define SSX_PROTOCOL_TLS_SESSION_HPP

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "identity/target_name.hpp"
#include "ossl/ossl.hpp"
#include "protocol/tls/context.hpp"
#include "protocol/tls/socket_bio.hpp"

namespace ssx::tls {

enum class Want { nothing, read, write };

// PeerRequirements are the names the peer must satisfy: one of |app_names| (when not empty) and
// one of |policy_names| (when not empty). |policy_rule| names the rule for messages.
struct PeerRequirements {
  std::vector<identity::TargetName> app_names;
  std::vector<identity::TargetName> policy_names;
  std::string policy_rule;
  // Server side: refuse a client without a certificate even when the policy does not ask for
  // one (core::require_client_certificates_by_default).
  bool require_certificate = false;
};

// Details is what the query reports about an established session.
struct Details {
  std::string version, cipher, group;
  std::string peer_principal, peer_spki_sha256, peer_chain_pem, local_principal;
  std::vector<std::string> peer_names;
  // The certificates the peer sent, leaf first, each holding its own reference: the caller
  // encodes |peer_chain_pem| from them with chain_pem() after it has let go of the session (and
  // of the socket's lock).
  std::vector<ossl::UniquePtr<X509>> peer_chain;
  bool peer_authenticated = false;
  bool peer_name_verified = false;
  bool resumed = false;
};

// chain_pem encodes |chain| as PEM, in order. Thread-safe: certificates are only read.
std::string chain_pem(const std::vector<ossl::UniquePtr<X509>> &chain);

// IoResult: |bytes| moved, or |want| to wait for, or |end_of_stream| after the peer's
// close_notify.
struct IoResult {
  std::size_t bytes = 0;
  Want want = Want::nothing;
  bool end_of_stream = false;
};

// Limits on what a peer can make a session do without sending data (docs/limits.md). OpenSSL
// bounds only consecutive empty records (32) and warning alerts (5); a peer that sends one byte
// of data between floods, or floods KeyUpdate or NewSessionTicket messages, would otherwise keep
// a thread busy for as long as it likes. Every record received counts; so does every handshake
// message after the handshake and every alert. A session fails with EPROTO once either
//   records received        > kFreeRecords + application bytes received, or
//   control messages        > kFreeControl + application bytes received / kBytesPerControl
// (control messages: post-handshake handshake messages — KeyUpdate, NewSessionTicket,
// HelloRequest, … — and alerts). An honest peer's data records carry at least one byte each, and
// its handshake, tickets and occasional KeyUpdate fit in the free allowances.
// kMaxRecordPlaintext is the most application data one TLS record carries (RFC 8446 §5.1).
inline constexpr std::size_t kMaxRecordPlaintext = 16384;

inline constexpr std::uint64_t kFreeRecords = 128;
inline constexpr std::uint64_t kFreeControl = 32;
inline constexpr std::uint64_t kBytesPerControl = 1024;

// DatagramPath is where a DTLS session's datagrams go (Session::create with a DTLS context).
struct DatagramPath {
  const sockaddr *peer = nullptr;  // the peer's address (copied); required
  socklen_t peer_len = 0;
  bool unconnected = false;      // the socket is not connected: send with sendto(peer)
  std::string *inbox = nullptr;  // see SocketBioState::inbox; null: read the socket itself
};

class Session {
 public:
  // create prepares a session on |fd|. For clients, |server_name| is sent as SNI when not empty,
  // and |cache_key| selects a cached session to resume (empty = no resumption). A DTLS context
  // (Context::datagram) needs |path|; then each write is one datagram and each read one record.
  static Result<std::unique_ptr<Session>> create(std::shared_ptr<Context> context, int fd,
                                                 PeerRequirements requirements,
                                                 const std::string &server_name,
                                                 std::string cache_key,
                                                 const DatagramPath *path = nullptr);

  bool datagram() const { return context_->datagram(); }
  // timer_ms is, for a DTLS session whose retransmission timer runs, the milliseconds until it
  // expires (0 when it has: call handshake()); -1 when none runs (and for TLS).
  long timer_ms() const;
  // max_datagram is the most application data one write() sends in one datagram under the
  // MTU (DTLS, established); 0 for TLS.
  std::size_t max_datagram() const;
  // read_datagram reads one DTLS record's data: at most |length| bytes into |buffer|, the rest
  // of a longer record discarded (unless |peek|), its full length in |IoResult::bytes|' companion
  // |*full_length| (recvfrom's MSG_TRUNC).
  Result<IoResult> read_datagram(void *buffer, std::size_t length, bool peek,
                                 std::size_t *full_length);

  // Unconnected DTLS servers (core/datagram.cpp). One server session reused for every datagram
  // from an unknown address: retarget() points it at that address and inbox, then listen() runs
  // DTLSv1_listen: false (nothing kept; a HelloVerifyRequest was sent, or the datagram was not
  // a ClientHello) until a ClientHello carries a valid cookie (cookie.hpp): true, and the
  // session goes on as that peer's association (handshake()).
  void retarget(const sockaddr *peer, socklen_t peer_len, std::string *inbox);
  Result<bool> listen();
  // set_requirements replaces the names the peer must satisfy (before the handshake needs them).
  void set_requirements(PeerRequirements requirements);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  // handshake advances the handshake: Want::nothing once complete.
  Result<Want> handshake();
  bool established() const { return established_; }

  // peer_spoke_cleartext reports whether the peer's first bytes were not a TLS record, i.e.
  // the peer plainly does not speak TLS (used for the permitted cleartext fallback).
  bool peer_spoke_cleartext() const;
  // hello_received reports (server side) whether the client's ClientHello has been read whole.
  bool hello_received() const;

  Result<IoResult> read(void *buffer, std::size_t length, bool peek);

  // Buffered is what the session holds of the peer's input, read from the socket already.
  struct Buffered {
    std::size_t bytes = 0;  // application data read() returns without the socket
    bool held = false;      // read() returns at once: data, the peer's close_notify or a failure
    Want want = Want::nothing;  // Want::write: a reply (KeyUpdate) waits for room to be sent
  };
  // buffered says what read() would return without reading the socket. With |process| it
  // processes the complete records already read (never reading more; a KeyUpdate among them may
  // be answered), so that their data is counted; a failure it meets is kept for read(). Without,
  // it only looks: data not yet decrypted is reported as |held| with |bytes| 0.
  Buffered buffered(bool process);
  // write encrypts and sends at most one record (kMaxRecordPlaintext bytes of |data|) and says
  // how many bytes it took. Want::write (0 bytes taken) means OpenSSL holds that record, partly
  // sent: the next write must start with the same bytes, at least as many (OpenSSL's retry rule,
  // which ssx_send documents). send_close_notify completes such a record itself first.
  Result<IoResult> write(const void *data, std::size_t length);

  // release_idle_buffers gives OpenSSL's record buffers (~17 KiB each way) back to the allocator
  // when neither holds data: call it when a read found nothing and the connection is about to
  // wait. Buffers stay allocated while data flows, so a busy connection does not malloc and free
  // them per record (SSL_MODE_RELEASE_BUFFERS does, and each new write buffer then lands right
  // after whatever the application allocated last). A no-op on OpenSSL releases where
  // SSL_free_buffers is unsafe; their contexts use SSL_MODE_RELEASE_BUFFERS instead.
  void release_idle_buffers();

  // send_close_notify queues and flushes our close_notify (once), after finishing a record that
  // a write left partly sent. Want::write if it could not all be sent yet.
  Result<Want> send_close_notify();

  // details is what the query reports; only valid once established. What the peer's
  // certificate says (its names, principal and key hash) is worked out on the first call and
  // kept: the peer cannot change during a connection (TLS 1.3 has no renegotiation, TLS 1.2's is
  // refused, a KeyUpdate changes keys only) and a resumed session reports the certificate it was
  // made with. The chain is handed out as references to the certificates OpenSSL keeps (no
  // connection holds a second copy of them) and encoded by chain_pem() at each query, outside
  // the socket's lock. Like every call, not concurrently with another.
  Details details();

 private:
  Session() = default;
  Failure handshake_failure(int ssl_error);
  std::string recheck_resumed_names();  // "" when the names hold
  Failure io_failure(int ssl_error, const char *operation);
  // refused_for_no_certificate: a client that sent no certificate and was refused for it (TLS
  // 1.3 certificate_required) is told so, not "peer rejected our certificate".
  Failure refused_for_no_certificate(const std::string &alert);
  friend int verify_callback(int preverify_ok, X509_STORE_CTX *store);
  // on_message counts what the peer sends against the limits above (SSL_set_msg_callback).
  static void on_message(int write_p, int version, int content_type, const void *buf,
                         std::size_t len, SSL *ssl, void *arg);
  Failure flood_failure() const;

  // PeerFacts is what details() derives from the peer's certificate, kept after its first call.
  struct PeerFacts {
    std::string principal, spki_sha256;
    std::vector<std::string> names;
  };

  std::shared_ptr<Context> context_;
  ossl::UniquePtr<SSL> ssl_;
  SocketBioState bio_state_;
  PeerRequirements requirements_;
  std::string cache_key_;
  std::string name_mismatch_;        // set by the verify callback when names fail
  int name_mismatch_reason_ = 0;     // its ssx_reason: NAME_MISMATCH or PIN_MISMATCH
  long chain_error_ = X509_V_OK;     // first chain verification error, from the callback
  std::string chain_error_subject_;  // principal of the leaf whose chain failed
  std::unique_ptr<const PeerFacts> peer_facts_;  // null until details() meets a peer certificate
  std::uint64_t records_in_ = 0;                 // records received
  std::uint64_t control_in_ = 0;    // alerts and post-handshake handshake messages received
  std::uint64_t app_bytes_in_ = 0;  // application data delivered by read()
  bool flooded_ = false;            // a limit was broken: the session is dead
  bool name_verified_ = false;
  bool established_ = false;
  bool close_notify_sent_ = false;
  // The bytes of the write that OpenSSL left partly sent (Want::write), kept so that a close
  // can complete that record: OpenSSL refuses to send an alert behind a pending application
  // record ("bad write retry"), and only a write with the same bytes finishes it. Filled only on
  // that slow path; at most one record.
  std::string unsent_;
  std::unique_ptr<Failure> held_failure_;  // met by buffered(); the next read() returns it
  std::unique_ptr<sockaddr_storage> datagram_peer_;  // DTLS: the peer (bio_state_.peer)
};

}  // namespace ssx::tls

#endif  // SSX_PROTOCOL_TLS_SESSION_HPP
