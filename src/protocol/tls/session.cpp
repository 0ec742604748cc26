// SPDX-License-Identifier: Apache-2.0
#include "protocol/tls/session.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/text.hpp"
#include "protocol/tls/agent_key.hpp"
#include "protocol/tls/peer_names.hpp"
#include "ssx/ssx.h"

namespace ssx::tls {
namespace {

// quoted_list names the expected peers in an error: a bounded number of names, each quoted with
// a bounded length, so that an application's many or long names cannot make the message huge.
std::string quoted_list(const std::vector<identity::TargetName> &names) {
  constexpr std::size_t kMaxListed = 8;
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < kMaxListed; ++i) {
    if (!out.empty()) out += ", ";
    out += base::quote(names[i].text());
  }
  if (names.size() > kMaxListed) {
    // appended piece by piece: GCC 12 -O3 false -Wrestrict (GCC bug 105329)
    out += " and ";
    out += std::to_string(names.size() - kMaxListed);
    out += " more";
  }
  return out;
}

bool matches_any(X509 *cert, const std::vector<identity::TargetName> &names) {
  for (const auto &n : names) {
    if (certificate_matches(cert, n)) return true;
  }
  return false;
}

// same_certificate is X509_cmp(a, b) == 0, without its cost in the usual cases: the same object
// (a client's peer chain starts with the leaf itself), or different signatures.
bool same_certificate(X509 *a, X509 *b) {
  if (a == b) return true;
  const ASN1_BIT_STRING *sig_a = nullptr;
  const ASN1_BIT_STRING *sig_b = nullptr;
  X509_get0_signature(&sig_a, nullptr, a);
  X509_get0_signature(&sig_b, nullptr, b);
  if (sig_a != nullptr && sig_b != nullptr && ASN1_STRING_cmp(sig_a, sig_b) != 0) return false;
  return X509_cmp(a, b) == 0;
}

std::string excessive_message() {
  return "peer sent a TLS handshake message larger than " + std::to_string(kMaxHandshakeMessage) +
         " bytes (a certificate chain that long is refused; docs/limits.md)";
}

// is_alert_reason: OpenSSL reports a fatal alert from the peer as reason 1000 + the alert's code
// (SSL_AD_REASON_OFFSET; SSL_R_SSLV3_ALERT_* and SSL_R_TLSV1_ALERT_*).
bool is_alert_reason(int reason) {
  return reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256;
}

bool is_tls_record_type(int byte) {
  return byte >= 20 && byte <= 23;
}

Failure with_detail(int code, int reason, std::string message) {
  std::string detail = ossl::drain_errors();
  if (!detail.empty()) message += " [" + detail + "]";
  return fail(code, reason, std::move(message));
}

Failure with_detail(int code, std::string message) {
  return with_detail(code, 0, std::move(message));
}

// verify_reason maps a certificate verification error (X509_V_ERR_*) to its ssx_reason.
int verify_reason(long verify) {
  switch (verify) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
    case X509_V_ERR_NO_ISSUER_PUBLIC_KEY:
      return SSX_REASON_UNTRUSTED_ISSUER;
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return SSX_REASON_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return SSX_REASON_NOT_YET_VALID;
    case X509_V_ERR_CERT_REVOKED:
      return SSX_REASON_REVOKED;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
      return SSX_REASON_REVOCATION_UNKNOWN;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
      return SSX_REASON_NAME_MISMATCH;
    default:
      // Bad signatures, wrong purpose or key usage, path length, weak keys or digests,
      // malformed fields, unsupported extensions, ...
      return SSX_REASON_BAD_CERTIFICATE;
  }
}

// only_pins reports whether every name of |names| is a key pin (so a mismatch is a pin mismatch).
bool only_pins(const std::vector<identity::TargetName> &names) {
  return !names.empty() &&
         std::all_of(names.begin(), names.end(), [](const identity::TargetName &n) {
           return n.kind == identity::TargetName::Kind::spki_pin;
         });
}

}  // namespace

int verify_callback(int preverify_ok, X509_STORE_CTX *store) {
  SSL *ssl =
      static_cast<SSL *>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto *session = static_cast<Session *>(SSL_get_app_data(ssl));
  if (session == nullptr) return preverify_ok;
  if (!preverify_ok) {
    // Remember the first chain error and whose certificate it was: OpenSSL does not keep the
    // peer's certificate on every failure path, and the message must say who was refused.
    if (session->chain_error_ == X509_V_OK) {
      session->chain_error_ = X509_STORE_CTX_get_error(store);
      X509 *cert = X509_STORE_CTX_get0_cert(store);  // the leaf, whatever depth failed
      if (cert != nullptr) session->chain_error_subject_ = principal_of(certificate_names(cert));
    }
    return 0;
  }
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;

  X509 *leaf = X509_STORE_CTX_get_current_cert(store);
  const PeerRequirements &req = session->requirements_;
  if (!req.app_names.empty() && !matches_any(leaf, req.app_names)) {
    session->name_mismatch_reason_ =
        only_pins(req.app_names) ? SSX_REASON_PIN_MISMATCH : SSX_REASON_NAME_MISMATCH;
    session->name_mismatch_ =
        (req.app_names.size() == 1 ? "peer certificate does not match target name "
                                   : "peer certificate matches none of the target names ") +
        quoted_list(req.app_names) + ": " + describe_names(leaf);
  } else if (!req.policy_names.empty() && !matches_any(leaf, req.policy_names)) {
    session->name_mismatch_reason_ =
        only_pins(req.policy_names) ? SSX_REASON_PIN_MISMATCH : SSX_REASON_NAME_MISMATCH;
    session->name_mismatch_ = "peer certificate does not match the peer_names of policy rule \"" +
                              req.policy_rule + "\" (" + quoted_list(req.policy_names) +
                              "): " + describe_names(leaf);
  }
  if (!session->name_mismatch_.empty()) {
    // HOSTNAME_MISMATCH makes OpenSSL send a bad_certificate alert, so the peer learns that its
    // certificate was refused (EKEYREJECTED there) rather than seeing a generic handshake failure.
    X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
    return 0;
  }
  session->name_verified_ = !req.app_names.empty() || !req.policy_names.empty();
  return 1;
}

Result<std::unique_ptr<Session>> Session::create(std::shared_ptr<Context> context, int fd,
                                                 PeerRequirements requirements,
                                                 const std::string &server_name,
                                                 std::string cache_key, const DatagramPath *path) {
  std::unique_ptr<Session> s(new Session());
  s->context_ = std::move(context);
  s->requirements_ = std::move(requirements);
  s->cache_key_ = std::move(cache_key);
  s->bio_state_.fd = fd;
  s->ssl_.reset(SSL_new(s->context_->native()));
  if (!s->ssl_) return with_detail(ENOMEM, "cannot create TLS connection");
  SSL *ssl = s->ssl_.get();
  SSL_set_app_data(ssl, s.get());

  if (s->context_->datagram()) {
    if (path == nullptr || path->peer == nullptr || path->peer_len > sizeof(sockaddr_storage)) {
      return fail(EINVAL, "a DTLS session needs its peer's address");
    }
    s->datagram_peer_ = std::make_unique<sockaddr_storage>();
    std::memcpy(s->datagram_peer_.get(), path->peer, path->peer_len);
    s->bio_state_.datagram = true;
    s->bio_state_.unconnected = path->unconnected;
    s->bio_state_.peer = reinterpret_cast<const sockaddr *>(s->datagram_peer_.get());
    s->bio_state_.peer_len = path->peer_len;
    s->bio_state_.inbox = path->inbox;
  }
  auto bio = new_socket_bio(&s->bio_state_);
  if (!bio) return with_detail(ENOMEM, "cannot create socket BIO");
  BIO *raw = bio.release();
  SSL_set_bio(ssl, raw, raw);  // the SSL owns the BIO (one reference for both directions)
  // DTLS: every record, handshake fragments included, fits in one datagram of dtls_mtu bytes.
  // (SSL_set_mtu returns the MTU it set, 0 when it is below DTLS's minimum.)
  if (s->context_->datagram() && SSL_set_mtu(ssl, static_cast<long>(s->context_->mtu())) <= 0) {
    return with_detail(EINVAL,
                       "dtls_mtu " + std::to_string(s->context_->mtu()) + " is too small for DTLS");
  }

  const bool names = !s->requirements_.app_names.empty() || !s->requirements_.policy_names.empty();
  int mode = SSL_CTX_get_verify_mode(s->context_->native());
  if (s->context_->role() == Role::client) {
    mode = SSL_VERIFY_PEER;  // a client always verifies the server's chain
    SSL_set_connect_state(ssl);
    if (!server_name.empty() && SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1) {
      return with_detail(EINVAL, "cannot use \"" + server_name + "\" as server name");
    }
    if (!s->cache_key_.empty() && s->context_->resumption()) {
      SSL_set_ex_data(ssl, session_key_index(), &s->cache_key_);
      if (auto cached = s->context_->take_session(s->cache_key_))
        SSL_set_session(ssl, cached.get());
    }
  } else {
    // Names required of clients imply that a client certificate is required.
    if (names || s->requirements_.require_certificate)
      mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_set_accept_state(ssl);
  }
  SSL_set_verify(ssl, mode, verify_callback);
  SSL_set_msg_callback(ssl, &Session::on_message);
  SSL_set_msg_callback_arg(ssl, s.get());
  return s;
}

void Session::on_message(int write_p, int /*version*/, int content_type, const void * /*buf*/,
                         std::size_t /*len*/, SSL * /*ssl*/, void *arg) {
  if (write_p != 0) return;
  auto *s = static_cast<Session *>(arg);
  switch (content_type) {
    case SSL3_RT_HEADER:  // one call per record received
      // Not for DTLS: a datagram's header is seen before it is authenticated, and anyone who
      // can spoof the peer's address could otherwise end the association. DTLS drops forged
      // and replayed records without a word (RFC 6347 §4.1.2.7).
      if (s->bio_state_.datagram) return;
      ++s->records_in_;
      break;
    case SSL3_RT_HANDSHAKE:
      if (!s->established_) return;  // the handshake is bounded by its own deadline
      ++s->control_in_;
      break;
    case SSL3_RT_ALERT:
      ++s->control_in_;
      break;
    default:
      return;
  }
  if (s->records_in_ > kFreeRecords + s->app_bytes_in_ ||
      s->control_in_ > kFreeControl + s->app_bytes_in_ / kBytesPerControl) {
    // Stop OpenSSL reading: it may be looping over records inside one SSL_read.
    s->flooded_ = true;
    s->bio_state_.refused = true;
  }
}

Failure Session::flood_failure() const {
  return with_detail(
      EPROTO, SSX_REASON_PEER_FLOOD,
      "peer sent " + std::to_string(records_in_) + " TLS records and " +
          std::to_string(control_in_) +
          " alerts or post-handshake messages (KeyUpdate, NewSessionTicket, ...) for " +
          std::to_string(app_bytes_in_) +
          " bytes of data: more than ssx allows (docs/limits.md); connection closed");
}

Session::~Session() {
  if (ssl_) SSL_set_ex_data(ssl_.get(), session_key_index(), nullptr);
}

bool Session::peer_spoke_cleartext() const {
  return bio_state_.bytes_in > 0 && !is_tls_record_type(bio_state_.first_byte);
}

bool Session::hello_received() const {
  // The server's state machine leaves TLS_ST_BEFORE only once a whole ClientHello was processed.
  return established_ || SSL_get_state(ssl_.get()) != TLS_ST_BEFORE;
}

Result<Want> Session::handshake() {
  if (established_) return Want::nothing;
  ossl::ErrorQueueGuard::clear_errors();
  bio_state_.last_errno = 0;  // a failure must report its own errno, not an earlier call's
  clear_agent_failure();      // likewise for an agent key's signature (agent_key.hpp)
  if (datagram() && DTLSv1_handle_timeout(ssl_.get()) < 0) {
    // Too many retransmissions without an answer (OpenSSL's own limit); our deadline
    // (handshake_timeout_ms) usually comes first.
    return with_detail(ETIMEDOUT, SSX_REASON_HANDSHAKE_TIMEOUT,
                       "DTLS handshake: the peer did not answer our retransmissions");
  }
  int ret = SSL_do_handshake(ssl_.get());
  if (ret == 1) {
    // A resumed session skips certificate verification, so the names are checked again against
    // the certificate the session remembers: a session made for one name must not serve another.
    if (SSL_session_reused(ssl_.get()) == 1) {
      if (auto mismatch = recheck_resumed_names(); !mismatch.empty()) {
        return with_detail(EKEYREJECTED, name_mismatch_reason_, mismatch);
      }
    }
    established_ = true;
    return Want::nothing;
  }
  int err = SSL_get_error(ssl_.get(), ret);
  if (err == SSL_ERROR_WANT_READ) return Want::read;
  if (err == SSL_ERROR_WANT_WRITE) return Want::write;
  return handshake_failure(err);
}

std::string Session::recheck_resumed_names() {
  const auto &req = requirements_;
  if (req.app_names.empty() && req.policy_names.empty()) return {};
  X509 *leaf = SSL_get0_peer_certificate(ssl_.get());
  if (leaf == nullptr) {
    name_mismatch_reason_ = SSX_REASON_NO_PEER_CERTIFICATE;
    return "resumed session has no peer certificate, but target names are set";
  }
  name_mismatch_reason_ = SSX_REASON_NAME_MISMATCH;
  if (!req.app_names.empty() && !matches_any(leaf, req.app_names)) {
    if (only_pins(req.app_names)) name_mismatch_reason_ = SSX_REASON_PIN_MISMATCH;
    return "resumed session's peer does not match target names " + quoted_list(req.app_names);
  }
  if (!req.policy_names.empty() && !matches_any(leaf, req.policy_names)) {
    if (only_pins(req.policy_names)) name_mismatch_reason_ = SSX_REASON_PIN_MISMATCH;
    return "resumed session's peer does not match the peer_names of policy rule \"" +
           req.policy_rule + "\"";
  }
  name_verified_ = true;
  return {};
}

Failure Session::handshake_failure(int ssl_error) {
  const bool client = context_->role() == Role::client;
  if (flooded_) return flood_failure();
  // Our own signature failed: the agent holding our key refused, is gone or too slow.
  if (auto agent = take_agent_failure()) return *std::move(agent);
  if (!name_mismatch_.empty()) {
    return with_detail(EKEYREJECTED, name_mismatch_reason_, name_mismatch_);
  }
  long verify = chain_error_ != X509_V_OK ? chain_error_ : SSL_get_verify_result(ssl_.get());
  if (verify != X509_V_OK) {
    std::string why = X509_verify_cert_error_string(verify);
    std::string who = chain_error_subject_;
    if (X509 *leaf = SSL_get0_peer_certificate(ssl_.get()); who.empty() && leaf != nullptr) {
      who = principal_of(certificate_names(leaf));
    }
    int code = EKEYREJECTED;
    if (verify == X509_V_ERR_CERT_HAS_EXPIRED || verify == X509_V_ERR_CERT_NOT_YET_VALID ||
        verify == X509_V_ERR_CRL_HAS_EXPIRED || verify == X509_V_ERR_CRL_NOT_YET_VALID) {
      code = EKEYEXPIRED;
    } else if (verify == X509_V_ERR_CERT_REVOKED) {
      code = EKEYREVOKED;
    }
    return with_detail(code, verify_reason(verify),
                       std::string(client ? "server" : "client") + " certificate of \"" + who +
                           "\" rejected: " + why);
  }
  if (peer_spoke_cleartext()) {
    return with_detail(
        EPROTO, SSX_REASON_NOT_TLS,
        "peer does not speak TLS (its first byte was 0x" +
            ossl::to_hex(reinterpret_cast<const unsigned char *>(&bio_state_.first_byte), 1) +
            ", not a TLS record)");
  }
  if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN) {
    // The handshake sends nothing of the application's: a send that found the peer gone (EPIPE
    // after its close, or after its FIN and reset) means the peer closed during the handshake,
    // as docs/errors.md says, whichever of our reads or writes noticed it first.
    if (bio_state_.peer_closed || bio_state_.last_errno == EPIPE) {
      return with_detail(ECONNRESET, SSX_REASON_PEER_CLOSED_IN_HANDSHAKE,
                         "peer closed the connection during the TLS handshake");
    }
    if (bio_state_.last_errno != 0) {
      const int code = bio_state_.last_errno;
      return with_detail(code,
                         code == ECONNRESET || code == EPIPE ? SSX_REASON_PEER_CLOSED_IN_HANDSHAKE
                                                             : SSX_REASON_SYSTEM,
                         std::string("connection failed during the TLS "
                                     "handshake: ") +
                             std::strerror(bio_state_.last_errno));
    }
    return with_detail(ECONNRESET, SSX_REASON_PEER_CLOSED_IN_HANDSHAKE,
                       "peer closed the connection during the TLS handshake");
  }
  unsigned long e = ERR_peek_error();
  int reason = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
  const char *reason_text = ERR_reason_error_string(e);
  std::string alert = reason_text ? reason_text : "unknown";
  switch (reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_WRONG_SSL_VERSION:
      return with_detail(
          EPROTO, SSX_REASON_VERSION_MISMATCH,
          "no TLS version in common with the peer that the policy allows (" + alert + ")");
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
      return with_detail(EPROTO, SSX_REASON_NO_SHARED_PARAMETERS,
                         "no TLS version, cipher suite or group in common with the peer "
                         "that the policy allows (" +
                             alert + ")");
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
      return with_detail(EPROTO, SSX_REASON_NOT_TLS, "peer does not speak TLS (" + alert + ")");
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return with_detail(EKEYREJECTED, SSX_REASON_NO_PEER_CERTIFICATE,
                         "client presented no certificate, but the policy requires one");
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      return with_detail(EKEYEXPIRED, SSX_REASON_PEER_REFUSED_US,
                         "peer rejected our certificate as expired (" + alert + ")");
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return with_detail(EKEYREJECTED, SSX_REASON_PEER_REFUSED_US,
                         "peer rejected our certificate (" + alert + ")");
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return refused_for_no_certificate(alert);
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return with_detail(ECONNRESET, SSX_REASON_PEER_CLOSED_IN_HANDSHAKE,
                         "peer closed the connection during the TLS handshake");
    case SSL_R_EXCESSIVE_MESSAGE_SIZE:
      return with_detail(EPROTO, SSX_REASON_MESSAGE_TOO_LARGE, excessive_message());
    case SSL_R_READ_TIMEOUT_EXPIRED:
      return with_detail(ETIMEDOUT, SSX_REASON_HANDSHAKE_TIMEOUT,
                         "DTLS handshake: the peer did not answer our retransmissions");
    default:
      // A fatal alert from the peer (SSL_R_SSLV3_ALERT_* / SSL_R_TLSV1_ALERT_*) or our own
      // protocol error.
      return with_detail(
          EPROTO, is_alert_reason(reason) ? SSX_REASON_PEER_ALERT : SSX_REASON_PROTOCOL_ERROR,
          "TLS handshake failed");
  }
}

Failure Session::refused_for_no_certificate(const std::string &alert) {
  if (SSL_get_certificate(ssl_.get()) == nullptr) {
    const std::string table = requirements_.policy_rule == "defaults"
                                  ? std::string("[defaults]")
                                  : "rule \"" + requirements_.policy_rule + "\"";
    return with_detail(EKEYREJECTED, SSX_REASON_PEER_REQUIRES_CERTIFICATE,
                       "the server requires a client certificate, and none was sent: the "
                       "policy (" +
                           table + ") gives this connection no certificate (" + alert + ")");
  }
  return with_detail(
      EKEYREJECTED, SSX_REASON_PEER_REFUSED_US,
      "the server requires a client certificate and did not accept ours (" + alert + ")");
}

Failure Session::io_failure(int ssl_error, const char *operation) {
  if (flooded_) return flood_failure();
  unsigned long e = ERR_peek_error();
  int reason = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
  // A stream that ended without close_notify is a truncation, whatever happened after the EOF:
  // OpenSSL answers it with an alert whose send may fail (EPIPE after a reset), and that later
  // write error must not stand in for what the read saw.
  const bool reading = std::strcmp(operation, "receive") == 0;
  if (reading && (bio_state_.peer_closed || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    return with_detail(ECONNRESET, SSX_REASON_TRUNCATED,
                       "peer closed the TCP connection without a TLS close_notify: "
                       "the data may have been truncated");
  }
  if (ssl_error == SSL_ERROR_SYSCALL || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    if (bio_state_.last_errno != 0) {
      const int code = bio_state_.last_errno;
      return with_detail(code,
                         code == ECONNRESET ? SSX_REASON_CONNECTION_RESET
                         : code == EPIPE    ? SSX_REASON_PEER_GONE
                                            : SSX_REASON_SYSTEM,
                         std::string(operation) + ": " + std::strerror(code));
    }
    return with_detail(ECONNRESET, SSX_REASON_TRUNCATED,
                       "peer closed the TCP connection without a TLS close_notify: "
                       "the data may have been truncated");
  }
  // A write refused because the connection is over (the peer's close_notify has arrived, its
  // TCP stream ended, or a reset put OpenSSL's state machine in error) is the peer going away,
  // not a protocol violation: EPIPE or ECONNRESET, as send(2) says, never EPROTO.
  if (!reading && (reason == SSL_R_PROTOCOL_IS_SHUTDOWN || bio_state_.peer_closed ||
                   (SSL_get_shutdown(ssl_.get()) & SSL_RECEIVED_SHUTDOWN) != 0)) {
    int socket_error = 0;
    socklen_t length = sizeof socket_error;
    (void)::getsockopt(bio_state_.fd, SOL_SOCKET, SO_ERROR, &socket_error, &length);
    if (socket_error == ECONNRESET) {
      return with_detail(ECONNRESET, SSX_REASON_CONNECTION_RESET,
                         std::string(operation) + ": the peer reset the connection");
    }
    return with_detail(EPIPE, SSX_REASON_PEER_GONE,
                       std::string(operation) + ": the peer has closed the connection");
  }
  switch (reason) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      // A TLS 1.3 client learns only now that the server wanted a certificate (RFC 8446 §4.4.2.4).
      return refused_for_no_certificate(ERR_reason_error_string(e));
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      // TLS 1.3 clients learn that the server refused their certificate only now (RFC 8446
      // §4.4.2.4).
      return with_detail(
          EKEYREJECTED, SSX_REASON_PEER_REFUSED_US,
          std::string("peer rejected our certificate (") + ERR_reason_error_string(e) + ")");
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      return with_detail(EKEYEXPIRED, SSX_REASON_PEER_REFUSED_US,
                         "peer rejected our certificate as expired");
    case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
    case SSL_R_DATA_LENGTH_TOO_LONG:
      return with_detail(EPROTO, SSX_REASON_BAD_RECORD, "corrupt or forged TLS record");
    case SSL_R_EXCESSIVE_MESSAGE_SIZE:
      return with_detail(EPROTO, SSX_REASON_MESSAGE_TOO_LARGE, excessive_message());
    default:
      return with_detail(
          EPROTO, is_alert_reason(reason) ? SSX_REASON_PEER_ALERT : SSX_REASON_PROTOCOL_ERROR,
          std::string(operation) + " failed: TLS protocol error");
  }
}

Result<IoResult> Session::read(void *buffer, std::size_t length, bool peek) {
  if (held_failure_) return *held_failure_;
  ossl::ErrorQueueGuard::clear_errors();
  bio_state_.last_errno = 0;  // a failure must report its own errno, not an earlier call's
  std::size_t n = 0;
  int ret = peek ? SSL_peek_ex(ssl_.get(), buffer, length, &n)
                 : SSL_read_ex(ssl_.get(), buffer, length, &n);
  if (ret == 1) {
    if (!peek) app_bytes_in_ += n;  // a peek is counted when it is read
    return IoResult{n};
  }
  int err = SSL_get_error(ssl_.get(), ret);
  switch (err) {
    case SSL_ERROR_ZERO_RETURN:
      return IoResult{0, Want::nothing, true};
    case SSL_ERROR_WANT_READ:
      return IoResult{0, Want::read};
    case SSL_ERROR_WANT_WRITE:
      return IoResult{0, Want::write};
    default:
      return io_failure(err, "receive");
  }
}

Session::Buffered Session::buffered(bool process) {
  if (held_failure_) return Buffered{0, true};
  SSL *ssl = ssl_.get();
  if (std::size_t n = static_cast<std::size_t>(SSL_pending(ssl)); n > 0) return Buffered{n, true};
  if ((SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) != 0) return Buffered{0, true};
  if (SSL_has_pending(ssl) != 1) return Buffered{};
  if (!process) return Buffered{0, true};
  // Whole records may wait in OpenSSL's read buffer (read-ahead takes what the socket has): a
  // one-byte peek with the socket masked processes them, so that SSL_pending counts their data.
  ossl::ErrorQueueGuard::clear_errors();
  bio_state_.last_errno = 0;
  bio_state_.buffered_only = true;
  unsigned char byte = 0;
  std::size_t n = 0;
  const int ret = SSL_peek_ex(ssl, &byte, 1, &n);
  bio_state_.buffered_only = false;
  if (ret == 1) return Buffered{static_cast<std::size_t>(SSL_pending(ssl)), true};
  const int err = SSL_get_error(ssl, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:  // only part of a record is here: the socket must bring the rest
      return Buffered{};
    case SSL_ERROR_WANT_WRITE:
      return Buffered{0, false, Want::write};
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify: read() returns the end of stream
      return Buffered{0, true};
    default:
      held_failure_ = std::make_unique<Failure>(io_failure(err, "receive"));
      return Buffered{0, true};
  }
}

Result<IoResult> Session::write(const void *data, std::size_t length) {
  ossl::ErrorQueueGuard::clear_errors();
  bio_state_.last_errno = 0;  // a failure must report its own errno, not an earlier call's
  if (datagram()) {
    // One write is one datagram: a record that does not fit under the MTU is refused whole,
    // never split (and never fragmented by IP).
    const std::size_t room = max_datagram();
    if (length > room) {
      return fail(EMSGSIZE, SSX_REASON_DATAGRAM_TOO_LARGE,
                  "datagram of " + std::to_string(length) + " bytes does not fit in one DTLS " +
                      "record under dtls_mtu " + std::to_string(context_->mtu()) + " (at most " +
                      std::to_string(room) + " bytes of data)");
    }
    if (length == 0) return IoResult{0};  // DTLS carries no empty datagrams
  }
  // One record per call: with SSL_MODE_ENABLE_PARTIAL_WRITE OpenSSL returns after each record
  // anyway, and the cap makes a record left pending exactly this call's bytes (see unsent_).
  length = std::min(length, kMaxRecordPlaintext);
  std::size_t n = 0;
  int ret = SSL_write_ex(ssl_.get(), data, length, &n);
  if (ret == 1) {
    unsent_.clear();
    return IoResult{n};
  }
  int err = SSL_get_error(ssl_.get(), ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      unsent_.assign(static_cast<const char *>(data), length);
      return IoResult{0, err == SSL_ERROR_WANT_READ ? Want::read : Want::write};
    default:
      return io_failure(err, "send");
  }
}

void Session::release_idle_buffers() {
  // SSL_free_buffers refuses (returns 0) while either buffer holds data; that is fine: the
  // buffers are released at a later wait.
  if (ossl::free_buffers_is_safe()) SSL_free_buffers(ssl_.get());
}

Result<Want> Session::send_close_notify() {
  if (close_notify_sent_) return Want::nothing;
  if (!unsent_.empty()) {
    // Finish the record a write left partly sent: same bytes, same length, so OpenSSL only
    // flushes what it holds and encrypts nothing new.
    auto flushed = write(unsent_.data(), unsent_.size());
    if (!flushed) return flushed.error();
    if (flushed->bytes == 0) return Want::write;
  }
  ossl::ErrorQueueGuard::clear_errors();
  bio_state_.last_errno = 0;  // a failure must report its own errno, not an earlier call's
  int ret = SSL_shutdown(ssl_.get());
  if (ret >= 0) {
    // 0: our close_notify is out and the peer's has not arrived; that is all we wait for.
    close_notify_sent_ = true;
    return Want::nothing;
  }
  int err = SSL_get_error(ssl_.get(), ret);
  // We never wait for the peer's close_notify, so sending ours only ever waits for room to write.
  // With a partly written record pending, OpenSSL queues the alert behind it and returns -1
  // without updating its want state, which may still say "read" from an earlier SSL_read.
  if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return Want::write;
  return io_failure(err, "close_notify");
}

Details Session::details() {
  Details d;
  SSL *ssl = ssl_.get();
  d.version = SSL_get_version(ssl);
  if (const SSL_CIPHER *c = SSL_get_current_cipher(ssl)) d.cipher = SSL_CIPHER_standard_name(c);
  // A TLS group is a 16-bit code point (RFC 8446 §4.2.7); OpenSSL returns it in an int.
  const int group = static_cast<int>(SSL_get_negotiated_group(ssl));
  if (group != 0) {
    const char *name = SSL_group_to_name(ssl, group);
    if (name != nullptr) d.group = name;
  }
  d.resumed = SSL_session_reused(ssl) == 1;
  d.local_principal = context_->local_principal();
  d.peer_name_verified = name_verified_;
  if (X509 *leaf = SSL_get0_peer_certificate(ssl)) {
    if (!peer_facts_) {
      CertificateNames names = certificate_names(leaf);
      peer_facts_ = std::make_unique<const PeerFacts>(
          PeerFacts{principal_of(names), ossl::spki_sha256_hex(leaf), all_names(names)});
    }
    d.peer_principal = peer_facts_->principal;
    d.peer_names = peer_facts_->names;
    d.peer_spki_sha256 = peer_facts_->spki_sha256;
    d.peer_authenticated = SSL_get_verify_result(ssl) == X509_V_OK;
    auto hold = [&d](X509 *c) {
      if (X509_up_ref(c) == 1) d.peer_chain.emplace_back(c);
    };
    hold(leaf);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
      X509 *c = sk_X509_value(chain, i);
      if (!same_certificate(c, leaf)) hold(c);
    }
  }
  return d;
}

void Session::retarget(const sockaddr *peer, socklen_t peer_len, std::string *inbox) {
  if (!datagram_peer_ || peer_len > sizeof(sockaddr_storage)) return;
  std::memcpy(datagram_peer_.get(), peer, peer_len);
  bio_state_.peer_len = peer_len;
  bio_state_.inbox = inbox;
  bio_state_.bytes_in = 0;
  bio_state_.first_byte = -1;
}

Result<bool> Session::listen() {
  ossl::ErrorQueueGuard::clear_errors();
  bio_state_.last_errno = 0;
  ossl::UniquePtr<BIO_ADDR> client(BIO_ADDR_new());
  if (!client) return with_detail(ENOMEM, "cannot allocate an address");
  const int ret = DTLSv1_listen(ssl_.get(), client.get());
  if (ret > 0) return true;
  if (ret == 0) return false;
  return with_detail(EPROTO, SSX_REASON_PROTOCOL_ERROR, "DTLS listen failed");
}

void Session::set_requirements(PeerRequirements requirements) {
  requirements_ = std::move(requirements);
  const bool names = !requirements_.app_names.empty() || !requirements_.policy_names.empty();
  if (context_->role() == Role::server && (names || requirements_.require_certificate)) {
    SSL_set_verify(ssl_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_callback);
  }
}

long Session::timer_ms() const {
  if (!datagram() || established_) return -1;
  timeval left{};
  if (DTLSv1_get_timeout(ssl_.get(), &left) != 1) return -1;
  // Rounded up: waking a millisecond early would find the timer not yet expired.
  return static_cast<long>(left.tv_sec) * 1000 + (left.tv_usec + 999) / 1000;
}

std::size_t Session::max_datagram() const {
  if (!datagram() || !established_) return 0;
  return DTLS_get_data_mtu(ssl_.get());
}

Result<IoResult> Session::read_datagram(void *buffer, std::size_t length, bool peek,
                                        std::size_t *full_length) {
  *full_length = 0;
  // OpenSSL's SSL_read on DTLS returns one record's data at most, leaving the rest of a record
  // larger than |length| for the next call: a datagram socket discards it instead.
  unsigned char byte = 0;
  void *into = length > 0 ? buffer : &byte;
  const std::size_t want = length > 0 ? length : 1;
  auto r = read(into, want, true);
  if (!r || r->bytes == 0) return r;
  const std::size_t full = static_cast<std::size_t>(SSL_pending(ssl_.get()));
  *full_length = std::max(full, r->bytes);
  const std::size_t delivered = length > 0 ? r->bytes : 0;
  if (peek) return IoResult{delivered};
  // Consume the whole record: what was delivered, then the rest, in bounded pieces.
  std::size_t left = *full_length;
  unsigned char scratch[2048];
  for (int guard = 0; left > 0 && guard < 64; ++guard) {  // a record holds at most 16 KiB
    const std::size_t piece = std::min(left, sizeof scratch);
    std::size_t n = 0;
    if (SSL_read_ex(ssl_.get(), scratch, piece, &n) != 1 || n == 0) break;
    app_bytes_in_ += n;
    left -= n;
  }
  return IoResult{delivered};
}

std::string chain_pem(const std::vector<ossl::UniquePtr<X509>> &chain) {
  std::string pem;
  for (const auto &c : chain) ossl::append_certificate_pem(pem, c.get());
  return pem;
}

}  // namespace ssx::tls
