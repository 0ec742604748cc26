// SPDX-License-Identifier: Apache-2.0
// protocol/tls/context.hpp — an OpenSSL SSL_CTX built from one set of policy settings.
//
// Building a context is costly (the system trust store alone takes milliseconds), so one Context
// serves every connection made under the same policy settings and role; see core/policy_state.
// A Context is immutable once built, except for its client session cache, which has its own lock.

#ifndef SSX_PROTOCOL_TLS_CONTEXT_HPP
#define SSX_PROTOCOL_TLS_CONTEXT_HPP

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agent/client.hpp"
#include "ossl/ossl.hpp"
#include "policy/policy.hpp"

namespace ssx::tls {

enum class Role { client, server };

// kMaxHandshakeMessage bounds a handshake message from the peer, a certificate chain among them
// (SSL_CTX_set_max_cert_list; OpenSSL's default is 100 KiB). docs/limits.md.
inline constexpr long kMaxHandshakeMessage = 65536;

struct AgentKeyRef;

// AgentUse says how to reach the agent when the settings name an agent key
// (private_key = "agent:NAME").
struct AgentUse {
  agent::Endpoint endpoint;
  std::string rule;  // the rule whose settings these are ("defaults" for [defaults])
};

class Context {
 public:
  // build makes a context for |settings| in |role|. A server without a certificate is EACCES;
  // unreadable or inconsistent credentials, trust or CRL files are EACCES naming the file.
  //
  // With an agent key, |agent| must be given: the certificate chain comes from the agent (or
  // from |settings.certificate| when set) and the private key is an agent key
  // (protocol/tls/agent_key.hpp); the context then lives in the agent library context. The
  // agent's failures are its errno and reason (agent/client.hpp): EACCES AGENT_UNAVAILABLE,
  // ETIMEDOUT AGENT_UNAVAILABLE, EACCES AGENT_REFUSED.
  static Result<std::shared_ptr<Context>> build(const policy::Settings &settings, Role role,
                                                const AgentUse *agent = nullptr);

  // stale reports whether the agent said our certificate was rotated: a context built now would
  // present the new one (core::PolicySnapshot rebuilds it).
  bool stale() const;

  // build_datagram makes the DTLS context for |settings| in |stream|'s role, taking from
  // |stream| (a context build() made for the same settings) its certificate, key, chain and
  // trust store (CRLs included), so nothing is read from disk again. DTLS 1.2 and later as the
  // OpenSSL in use provides them (never 1.0), the TLS 1.2 cipher list, the same verification
  // rules, records sized for settings.dtls_mtu, no session resumption. Servers answer a
  // ClientHello without a valid cookie with a HelloVerifyRequest (cookies: HMAC-SHA256 under a
  // process-wide secret that rotates; see cookie.cpp).
  static Result<std::shared_ptr<Context>> build_datagram(const Context &stream,
                                                         const policy::Settings &settings);

  // datagram says whether this is a DTLS context (build_datagram).
  bool datagram() const { return datagram_; }
  // mtu is the largest UDP payload sessions of a DTLS context send (policy dtls_mtu).
  std::uint32_t mtu() const { return mtu_; }

  SSL_CTX *native() const { return ctx_.get(); }
  Role role() const { return role_; }
  // local_principal is our certificate's principal, "" when we have none.
  const std::string &local_principal() const { return local_principal_; }

  // resumption reports whether the policy allows session resumption (session_tickets).
  bool resumption() const { return resumption_; }

  // Client session cache for resumption, keyed by peer address and server name. take_session
  // removes what it returns: TLS 1.3 tickets are single use (RFC 8446 §C.4).
  ossl::UniquePtr<SSL_SESSION> take_session(const std::string &key);
  void store_session(const std::string &key, SSL_SESSION *session);  // takes a reference

 private:
  Context() = default;
  ossl::UniquePtr<SSL_CTX> ctx_;
  Role role_ = Role::client;
  bool resumption_ = true;
  bool datagram_ = false;
  std::uint32_t mtu_ = 0;
  std::string local_principal_;
  std::shared_ptr<AgentKeyRef> agent_key_;
  std::mutex sessions_mu_;
  std::map<std::string, ossl::UniquePtr<SSL_SESSION>> sessions_;
};

// session_key_index is the SSL ex_data slot that holds a client connection's session-cache key
// (a std::string owned by the connection) for the new-session callback.
int session_key_index();

}  // namespace ssx::tls

#endif  // SSX_PROTOCOL_TLS_CONTEXT_HPP
