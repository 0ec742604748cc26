// SPDX-License-Identifier: Apache-2.0
#include "protocol/tls/context.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "protocol/tls/agent_key.hpp"
#include "protocol/tls/cookie.hpp"
#include "protocol/tls/peer_names.hpp"
#include "ssx/ssx.h"

namespace ssx::tls {
namespace {

// Forward secrecy and AEAD only: what TLS 1.2 may offer when the policy allows 1.2 at all.
constexpr const char *kDefaultTls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL";

// Bounded so that a client talking to many servers cannot grow its cache without limit.
constexpr size_t kMaxCachedSessions = 1024;

Failure config_error(const std::string &what) {
  std::string detail = ossl::drain_errors();
  return fail(EACCES, SSX_REASON_POLICY_INVALID,
              what + (detail.empty() ? "" : " (" + detail + ")"));
}

std::string join(const std::vector<std::string> &items, char sep) {
  std::string out;
  for (const auto &item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

Result<void> load_trust(SSL_CTX *ctx, const policy::Settings &s) {
  if (s.trust_bundle == "system") {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return config_error("cannot load the system trust store");
    }
    return {};
  }
  struct stat st {};
  if (::stat(s.trust_bundle.c_str(), &st) != 0) {
    return fail(EACCES, SSX_REASON_POLICY_INVALID,
                "trust_bundle " + s.trust_bundle + ": " + std::strerror(errno));
  }
  const bool dir = S_ISDIR(st.st_mode);
  if (SSL_CTX_load_verify_locations(ctx, dir ? nullptr : s.trust_bundle.c_str(),
                                    dir ? s.trust_bundle.c_str() : nullptr) != 1) {
    return config_error("trust_bundle " + s.trust_bundle + ": no usable certificates");
  }
  return {};
}

Result<void> load_crl(SSL_CTX *ctx, const policy::Settings &s) {
  if (s.crl.empty()) return {};
  auto bio = ossl::read_file_bio(s.crl);
  if (!bio) return config_error("crl " + s.crl + ": cannot open");
  X509_STORE *store = SSL_CTX_get_cert_store(ctx);
  int loaded = 0;
  while (
      ossl::UniquePtr<X509_CRL> crl{PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_crl(store, crl.get()) != 1) return config_error("crl " + s.crl);
    ++loaded;
  }
  ERR_clear_error();  // the loop ends on a "no start line" error by design
  if (loaded == 0) return config_error("crl " + s.crl + ": no CRL in file");
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  return {};
}

bool is_self_signed(X509 *cert) {
  return (X509_get_extension_flags(cert) & EXFLAG_SS) != 0;
}

// settle_chain decides once, as the context is built, which certificates follow the leaf in our
// Certificate message, and turns off OpenSSL's auto-chaining, which otherwise runs a full chain
// verification against the trust store at every handshake whose file holds the leaf alone.
// Self-signed certificates are left out: a trust anchor is of no use to a peer that does not
// already hold it (RFC 8446 §4.4.2 lets it be omitted). Intermediates are always kept.
//   - The file holds a chain: that chain, in the file's order, without its self-signed
//     certificates; the trust store is not consulted, as before.
//   - The file holds the leaf alone: what auto-chaining would have sent, built now from the
//     trust store, without the root. Auto-chaining ignores verification errors and sends what it
//     could find, so this does too (SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR): a leaf whose issuer the
//     store does not hold is sent alone and left for the peer to refuse, as before.
Result<void> settle_chain(SSL_CTX *ctx, const std::string &path) {
  STACK_OF(X509) *configured = nullptr;
  if (SSL_CTX_get0_chain_certs(ctx, &configured) != 1) {
    return config_error("certificate " + path + ": cannot read its chain");
  }
  if (configured != nullptr && sk_X509_num(configured) > 0) {
    ossl::UniquePtr<STACK_OF(X509)> kept(sk_X509_new_null());  // borrows the certificates
    if (!kept) return config_error("certificate " + path + ": out of memory");
    for (int i = 0; i < sk_X509_num(configured); ++i) {
      X509 *cert = sk_X509_value(configured, i);
      if (!is_self_signed(cert) && sk_X509_push(kept.get(), cert) <= 0) {
        return config_error("certificate " + path + ": out of memory");
      }
    }
    // set1 takes its own references before it lets go of the old chain's.
    if (sk_X509_num(kept.get()) != sk_X509_num(configured) &&
        SSL_CTX_set1_chain(ctx, kept.get()) != 1) {
      return config_error("certificate " + path + ": cannot set its chain");
    }
  } else if (SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT |
                                               SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
                                               SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) == 0) {
    // Only an internal failure or a CA certificate below the security level gets here; leave
    // auto-chaining on so that handshakes behave exactly as they did.
    ERR_clear_error();
    return {};
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
  return {};
}

Result<void> load_credentials(SSL_CTX *ctx, const policy::Settings &s, std::string &principal) {
  if (s.certificate.empty()) return {};
  if (SSL_CTX_use_certificate_chain_file(ctx, s.certificate.c_str()) != 1) {
    return config_error("certificate " + s.certificate + ": cannot load");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, s.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return config_error("private_key " + s.private_key + ": cannot load");
  }
  // Guards against a half-rotated pair: a key that does not belong to the certificate.
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return config_error("private_key " + s.private_key + " does not match certificate " +
                        s.certificate);
  }
  principal = principal_of(certificate_names(SSL_CTX_get0_certificate(ctx)));
  return settle_chain(ctx, s.certificate);
}

// read_chain parses a PEM chain (leaf first) into certificates of |libctx|.
Result<std::vector<ossl::UniquePtr<X509>>> read_chain(std::string_view pem, OSSL_LIB_CTX *libctx,
                                                      const std::string &what) {
  std::vector<ossl::UniquePtr<X509>> out;
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  for (;;) {
    ossl::UniquePtr<X509> cert(X509_new_ex(libctx, nullptr));
    X509 *raw = cert.get();
    if (!bio || !cert || PEM_read_bio_X509(bio.get(), &raw, nullptr, nullptr) == nullptr) break;
    out.push_back(std::move(cert));
  }
  ERR_clear_error();
  if (out.empty()) return config_error(what + ": no certificate");
  return out;
}

// load_agent_credentials sets the chain (from the agent, or the policy's certificate file) and an
// agent key for it.
Result<void> load_agent_credentials(SSL_CTX *ctx, const policy::Settings &s, const AgentUse &use,
                                    std::shared_ptr<AgentKeyRef> &out_ref, std::string &principal) {
  auto ref = std::make_shared<AgentKeyRef>();
  ref->endpoint = use.endpoint;
  ref->key = std::string(policy::agent_key_name(s));
  ref->rule = use.rule.substr(0, agent::kMaxRuleName);
  std::string what;
  X509 *leaf = nullptr;
  if (!s.certificate.empty()) {
    what = "certificate " + s.certificate;
    if (SSL_CTX_use_certificate_chain_file(ctx, s.certificate.c_str()) != 1) {
      return config_error(what + ": cannot load");
    }
    leaf = SSL_CTX_get0_certificate(ctx);
  } else {
    what = "certificate of agent key \"" + ref->key + "\"";
    auto fetched = agent::fetch_chain(use.endpoint, agent::ChainRequest{ref->key, ref->rule});
    if (!fetched) return fetched.error();
    auto chain = read_chain(fetched->chain_pem, agent_libctx(), what);
    if (!chain) return chain.error();
    if (SSL_CTX_use_certificate(ctx, (*chain)[0].get()) != 1)
      return config_error(what + ": cannot use");
    for (std::size_t i = 1; i < chain->size(); ++i) {
      if (SSL_CTX_add1_chain_cert(ctx, (*chain)[i].get()) != 1) {
        return config_error(what + ": cannot use its chain");
      }
    }
    leaf = SSL_CTX_get0_certificate(ctx);
  }
  if (leaf == nullptr) return config_error(what + ": no certificate");
  ref->certificate = fingerprint(leaf);
  auto key = make_agent_key(leaf, ref);
  if (!key) return key.error();
  if (SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return config_error("agent key \"" + ref->key + "\" cannot be used with " + what);
  }
  principal = principal_of(certificate_names(leaf));
  out_ref = std::move(ref);
  return settle_chain(ctx, what);
}

int on_new_session(SSL *ssl, SSL_SESSION *session);

}  // namespace

bool Context::stale() const {
  return agent_key_ && agent_key_->rotated.load(std::memory_order_relaxed);
}

Result<std::shared_ptr<Context>> Context::build(const policy::Settings &s, Role role,
                                                const AgentUse *agent) {
  ossl::ErrorQueueGuard guard;
  std::shared_ptr<Context> c(new Context());
  c->role_ = role;
  const bool agent_key = !policy::agent_key_name(s).empty();
  OSSL_LIB_CTX *libctx = nullptr;
  if (agent_key) {
    if (agent == nullptr) {
      return fail(EACCES, SSX_REASON_INTERNAL, "agent key without an agent to ask");
    }
    libctx = agent_libctx();
    if (libctx == nullptr) return config_error("cannot set up the provider for agent keys");
  }
  c->ctx_.reset(SSL_CTX_new_ex(libctx, nullptr,
                               role == Role::client ? TLS_client_method() : TLS_server_method()));
  SSL_CTX *ctx = c->ctx_.get();
  if (ctx == nullptr) return config_error("cannot create TLS context");

  const int min = s.min_tls_version == policy::TlsVersion::v1_2 ? TLS1_2_VERSION : TLS1_3_VERSION;
  SSL_CTX_set_min_proto_version(ctx, min);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE |
                               (s.session_tickets ? 0 : SSL_OP_NO_TICKET));
  c->resumption_ = s.session_tickets;
  if (!s.session_tickets) {
    // SSL_OP_NO_TICKET alone only makes a TLS 1.3 server issue stateful tickets instead of
    // stateless ones; resumption would go on. No tickets and no session cache turn it off.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  // Partial writes let a non-blocking ssx_send report what it sent; the moving buffer lets a
  // retry come from a different address with the same bytes. Idle connections give their
  // buffers back, which matters at thousands of connections: Session::release_idle_buffers
  // does it when a receive finds nothing to read; where SSL_free_buffers is unsafe, OpenSSL's
  // SSL_MODE_RELEASE_BUFFERS does it after every record instead.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            (ossl::free_buffers_is_safe() ? 0 : SSL_MODE_RELEASE_BUFFERS));
  // A certificate chain (any handshake message) from the peer is bounded (session.hpp).
  SSL_CTX_set_max_cert_list(ctx, kMaxHandshakeMessage);
  // Read whole records in one recv(2) rather than header, then body.
  SSL_CTX_set_read_ahead(ctx, 1);

  if (!s.cipher_suites.empty() &&
      SSL_CTX_set_ciphersuites(ctx, join(s.cipher_suites, ':').c_str()) != 1) {
    return config_error("cipher_suites: none usable");
  }
  const std::string tls12 = s.tls12_ciphers.empty() ? kDefaultTls12Ciphers : s.tls12_ciphers;
  if (SSL_CTX_set_cipher_list(ctx, tls12.c_str()) != 1) {
    return config_error("tls12_ciphers: none usable");
  }
  if (!s.groups.empty() && SSL_CTX_set1_groups_list(ctx, join(s.groups, ':').c_str()) != 1) {
    return config_error("groups: none usable");
  }
  if (auto r = load_trust(ctx, s); !r) return r.error();
  if (auto r = load_crl(ctx, s); !r) return r.error();
  if (agent_key) {
    if (auto r = load_agent_credentials(ctx, s, *agent, c->agent_key_, c->local_principal_); !r) {
      return r.error();
    }
  } else if (auto r = load_credentials(ctx, s, c->local_principal_); !r) {
    return r.error();
  }

  int verify_mode = SSL_VERIFY_PEER;  // a client always verifies the server
  if (role == Role::server) {
    verify_mode = s.peer_authentication == policy::PeerAuthentication::required
                      ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                  : s.peer_authentication == policy::PeerAuthentication::optional ? SSL_VERIFY_PEER
                                                                                  : SSL_VERIFY_NONE;
  }
  SSL_CTX_set_verify(ctx, verify_mode, nullptr);

  if (role == Role::server) {
    if (!policy::has_credentials(s)) {
      return fail(EACCES, SSX_REASON_NO_LOCAL_CERTIFICATE,
                  "no server certificate: set certificate and private_key in the policy");
    }
    static constexpr unsigned char kSessionContext[] = "ssx";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  } else if (s.session_tickets) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  }
  SSL_CTX_set_app_data(ctx, c.get());  // the Context owns the SSL_CTX, so it outlives it
  return c;
}

Result<std::shared_ptr<Context>> Context::build_datagram(const Context &stream,
                                                         const policy::Settings &s) {
  ossl::ErrorQueueGuard guard;
  if (!policy::agent_key_name(s).empty()) {
    // The agent's key lives in ssx's own OpenSSL library context (agent_key.hpp); DTLS contexts
    // are not made there yet. Fail closed rather than handshake without the key.
    return fail(EACCES, SSX_REASON_POLICY_INVALID,
                "private_key " + s.private_key +
                    ": agent keys are not supported for DTLS (UDP) sockets yet");
  }
  std::shared_ptr<Context> c(new Context());
  c->role_ = stream.role_;
  c->datagram_ = true;
  c->mtu_ = s.dtls_mtu;
  c->resumption_ = false;
  c->local_principal_ = stream.local_principal_;
  c->ctx_.reset(
      SSL_CTX_new(c->role_ == Role::client ? DTLS_client_method() : DTLS_server_method()));
  SSL_CTX *ctx = c->ctx_.get();
  if (ctx == nullptr) return config_error("cannot create DTLS context");
    // DTLS 1.0 is refused; the highest version is whatever this OpenSSL provides (3.0: DTLS 1.2),
    // so ssx never claims a version the library cannot run.
#ifdef DTLS1_3_VERSION
  SSL_CTX_set_min_proto_version(
      ctx, s.min_dtls_version == policy::TlsVersion::v1_3 ? DTLS1_3_VERSION : DTLS1_2_VERSION);
#else
  SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION);  // the loader refuses "1.3" here
#endif
  SSL_CTX_set_max_proto_version(ctx, 0);
  // No resumption for DTLS yet (docs/datagram.md): no tickets, no cache. The MTU is ours to set
  // (Session::create), never the kernel's guess.
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET |
                               SSL_OP_NO_QUERY_MTU |
                               (c->role_ == Role::server ? SSL_OP_COOKIE_EXCHANGE : 0));
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_max_cert_list(ctx, kMaxHandshakeMessage);
  const std::string tls12 = s.tls12_ciphers.empty() ? kDefaultTls12Ciphers : s.tls12_ciphers;
  if (SSL_CTX_set_cipher_list(ctx, tls12.c_str()) != 1) {
    return config_error("tls12_ciphers: none usable for DTLS");
  }
  if (!s.groups.empty() && SSL_CTX_set1_groups_list(ctx, join(s.groups, ':').c_str()) != 1) {
    return config_error("groups: none usable");
  }
  // Trust (and CRLs, with their flags) are the stream context's store, shared.
  SSL_CTX_set1_cert_store(ctx, SSL_CTX_get_cert_store(stream.native()));
  if (X509 *cert = SSL_CTX_get0_certificate(stream.native()); cert != nullptr) {
    EVP_PKEY *key = SSL_CTX_get0_privatekey(stream.native());
    STACK_OF(X509) *chain = nullptr;
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || key == nullptr ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1 ||
        SSL_CTX_get0_chain_certs(stream.native(), &chain) != 1 ||
        (chain != nullptr && SSL_CTX_set1_chain(ctx, chain) != 1)) {
      return config_error("certificate " + s.certificate + ": cannot use it for DTLS");
    }
    if ((SSL_CTX_get_mode(stream.native()) & SSL_MODE_NO_AUTO_CHAIN) != 0) {
      SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    }
  }
  SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(stream.native()), nullptr);
  if (c->role_ == Role::server) {
    static constexpr unsigned char kSessionContext[] = "ssx-dtls";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
    install_cookie_callbacks(ctx);
  }
  SSL_CTX_set_app_data(ctx, c.get());
  return c;
}

ossl::UniquePtr<SSL_SESSION> Context::take_session(const std::string &key) {
  std::lock_guard lock(sessions_mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return nullptr;
  ossl::UniquePtr<SSL_SESSION> out = std::move(it->second);
  sessions_.erase(it);
  return out;
}

void Context::store_session(const std::string &key, SSL_SESSION *session) {
  std::lock_guard lock(sessions_mu_);
  if (sessions_.size() >= kMaxCachedSessions && sessions_.find(key) == sessions_.end()) {
    sessions_.erase(sessions_.begin());
  }
  SSL_SESSION_up_ref(session);
  sessions_[key].reset(session);
}

int session_key_index() {
  static const int kIndex = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return kIndex;
}

namespace {
int on_new_session(SSL *ssl, SSL_SESSION *session) {
  auto *key = static_cast<std::string *>(SSL_get_ex_data(ssl, session_key_index()));
  auto *ctx = static_cast<Context *>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (key == nullptr || ctx == nullptr || !SSL_SESSION_is_resumable(session)) return 0;
  ctx->store_session(*key, session);
  return 0;  // we took our own reference
}
}  // namespace

}  // namespace ssx::tls
