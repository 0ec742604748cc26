// SPDX-License-Identifier: Apache-2.0
#include "server_policy.hpp"

#include <cstdio>

#include "../command.hpp"
#include "core/effective.hpp"
#include "core/policy_state.hpp"

namespace ssx::cli {

void check_server_policy(const sockaddr *local, const std::string &where, bool names_required,
                         bool unix_tls) {
  if (local->sa_family == AF_UNIX && !unix_tls) return;
  core::require_client_certificates_by_default(true);
  auto snapshot = core::current_policy();
  if (!snapshot) usage_error("cannot load policy: " + snapshot.error().message);
  const policy::Policy &p = (*snapshot)->policy();
  policy::MatchQuery query;
  query.direction = policy::Direction::inbound;
  query.local = local;
  query.program = core::executable_path();
  const policy::Effective matched = p.match(query);
  const policy::Settings &s = *matched.settings;
  const std::string table = matched.rule_name == "defaults"
                                ? std::string("[defaults]")
                                : "rule \"" + std::string(matched.rule_name) + "\"";
  if (s.deny) {
    usage_error("the policy refuses inbound sockets on " + where + " (" + table +
                " says deny = true)");
  }
  if (!policy::has_credentials(s)) {
    usage_error("no server certificate for " + where + ": the policy's " + table + " (" + p.source +
                ") has no certificate and private_key, so every handshake would fail");
  }
  if (s.peer_authentication_set && s.peer_authentication != policy::PeerAuthentication::required &&
      !names_required) {
    (void)std::fprintf(stderr,
                       "ssx: warning: clients without a certificate are accepted on %s: the "
                       "policy's %s says peer_authentication = \"%s\"\n",
                       where.c_str(), table.c_str(),
                       std::string(policy::to_string(s.peer_authentication)).c_str());
    (void)std::fflush(stderr);
  }
}

}  // namespace ssx::cli
