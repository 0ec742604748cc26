// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/server_policy.hpp — the safe defaults of the ssx command's server modes
// (`ssx listen`, `ssx tunnel --mode server`), checked before anything listens.
//
//   - A server needs a certificate: without one in the policy rule for its inbound sockets every
//     handshake would fail, so it refuses to start (a configuration error, exit 2).
//   - Clients must present a certificate unless the administrator decided otherwise: where the
//     rule (or [defaults]) does not say peer_authentication, clients without a certificate are
//     refused (core::require_client_certificates_by_default). Where it says "none" or
//     "optional", a warning at start-up says so (unless target names are required of clients,
//     which implies a certificate).

#ifndef SSX_TOOLS_SSX_COMMON_SERVER_POLICY_HPP
#define SSX_TOOLS_SSX_COMMON_SERVER_POLICY_HPP

#include <sys/socket.h>

#include <string>

namespace ssx::cli {

// check_server_policy applies the rules above for a listener on |local| (|where| names it in
// messages) under the policy in force. Throws CommandError (exit 2) when the rule has no
// certificate; prints "ssx: warning: ..." on stderr for peer_authentication "none"/"optional"
// when |names_required| is false. Call it after the policy is loaded, before listening.
// AF_UNIX listeners are not checked (kernel-attested peers, no TLS) unless |unix_tls| says they
// run TLS (`ssx listen --encrypt unix:PATH`).
void check_server_policy(const sockaddr *local, const std::string &where, bool names_required,
                         bool unix_tls = false);

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_SERVER_POLICY_HPP
