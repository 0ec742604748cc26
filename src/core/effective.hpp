// SPDX-License-Identifier: Apache-2.0
// core/effective.hpp — the one place where security is decided for a socket.
//
// decide(application settings, matching policy rule) yields the immutable Effective policy that
// everything downstream reads; nothing downstream re-decides. The application can only
// strengthen what the policy says:
//   - SSX_GUARANTEE_ENCRYPTION always holds (and cancels SSX_ALLOW_INSECURE);
//   - SSX_ALLOW_INSECURE takes effect only where the rule says allow_insecure = true;
//   - an explicit application protocol is honoured only if the rule selects that protocol;
//   - the peer must satisfy one of the application's target names AND one of the rule's
//     peer_names (each list only when non-empty);
//   - a `deny` rule refuses the socket whatever the application asks.
// docs/policy.md has the same table for administrators; tests/unit/core/effective_test.cpp has a
// case per row.

#ifndef SSX_CORE_EFFECTIVE_HPP
#define SSX_CORE_EFFECTIVE_HPP

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/policy_state.hpp"
#include "identity/target_name.hpp"
#include "protocol/tls/session.hpp"
#include "ssx/ssx.h"

namespace ssx::core {

// AppSettings is what the application asked for on one socket.
struct AppSettings {
  ssx_protocol protocol = SSX_PROTOCOL_DEFAULT;
  std::uint32_t flags = 0;
  std::vector<identity::TargetName> names;
};

// Effective is the decision for one connection.
struct Effective {
  std::shared_ptr<PolicySnapshot> snapshot;  // keeps |settings| alive
  const policy::Settings *settings = nullptr;
  std::string rule;                 // rule name, or "defaults"
  bool cleartext_fallback = false;  // both the application and the rule allow cleartext
  bool local = false;               // AF_UNIX with kernel-attested credentials, no TLS
  bool datagram = false;            // a UDP socket: DTLS (query.transport was udp)
  tls::PeerRequirements requirements;
};

// decide matches |query| against |snapshot|'s policy and merges |app| into the result for a
// socket of |family| (UDP sockets: query.transport == udp, which means DTLS and no cleartext
// fallback). AF_UNIX sockets use the kernel's attestation (local) unless the application
// requires encryption or asks for TLS. EACCES when the rule denies the socket, selects a protocol
// ssx cannot run here, conflicts with an explicit application protocol, or (outbound TLS) no
// target name exists where one is required.
Result<Effective> decide(const AppSettings &app, std::shared_ptr<PolicySnapshot> snapshot,
                         const policy::MatchQuery &query, int family);

// require_client_certificates_by_default makes inbound TLS sockets of this process refuse clients
// without a certificate wherever the matching policy table does not say peer_authentication
// itself (policy::Settings::peer_authentication_set); where it does, the policy's word stands.
// For servers whose safe default is mutual authentication (the ssx command's server modes); off
// unless called. Applies to sockets secured after the call. Thread-safe.
void require_client_certificates_by_default(bool on);

}  // namespace ssx::core

#endif  // SSX_CORE_EFFECTIVE_HPP
