// SPDX-License-Identifier: Apache-2.0
// protocol/tls/agent_key.hpp — private keys that `ssx agent` holds, as OpenSSL EVP_PKEYs.
//
// A small OpenSSL provider ("ssxagent", built in: OSSL_PROVIDER_add_builtin) implements key
// management and signatures for EC and RSA keys that have only a public half in this process.
// Its signing operation hashes the data here and sends the digest to the agent
// (agent/client.hpp), which signs it with the private key and answers with the signature; the
// provider checks that signature against the public key before OpenSSL uses it. docs/design.md
// says why a provider and not the deprecated RSA_METHOD / EC_KEY_METHOD.
//
// The provider lives in a library context of its own (agent_libctx), where the default provider
// is loaded too and preferred for every fetch ("?provider=default"), so nothing but an agent
// key's own operations ever reaches the provider, and the application's OpenSSL (the default
// library context) is untouched. TLS contexts whose policy names an agent key are built in that
// library context.
//
// Thread safety: everything here may be called from any thread. One signature is one blocking
// agent exchange on the calling thread, bounded by the endpoint's timeout.

#ifndef SSX_PROTOCOL_TLS_AGENT_KEY_HPP
#define SSX_PROTOCOL_TLS_AGENT_KEY_HPP

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "agent/client.hpp"
#include "ossl/ossl.hpp"

namespace ssx::tls {

// AgentKeyRef says which agent key an EVP_PKEY stands for and which certificate it signs for.
struct AgentKeyRef {
  agent::Endpoint endpoint;
  std::string key;   // the [[key]] name
  std::string rule;  // the policy rule using it, for the agent's audit log
  agent::Fingerprint certificate{};
  // Set when the agent says the certificate is no longer the key's current one: the context
  // using it should be rebuilt (tls::Context::stale).
  std::atomic<bool> rotated{false};
};

// agent_libctx returns the library context agent keys live in, creating it on first use; null
// when it cannot be set up (then every agent key fails with EACCES).
OSSL_LIB_CTX *agent_libctx();

// make_agent_key returns a key whose public half is |leaf|'s and whose signatures |ref|'s agent
// makes. The certificate must hold an EC (P-256, P-384, P-521) or RSA key: EACCES otherwise.
Result<ossl::UniquePtr<EVP_PKEY>> make_agent_key(X509 *leaf, std::shared_ptr<AgentKeyRef> ref);

// fingerprint returns the SHA-256 of |cert|'s DER encoding.
agent::Fingerprint fingerprint(X509 *cert);

// take_agent_failure returns (and forgets) why the last agent signature on this thread failed,
// if it did since clear_agent_failure. tls::Session reports it in place of OpenSSL's generic
// handshake error.
std::optional<Failure> take_agent_failure();
void clear_agent_failure();

}  // namespace ssx::tls

#endif  // SSX_PROTOCOL_TLS_AGENT_KEY_HPP
