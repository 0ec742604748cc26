// SPDX-License-Identifier: Apache-2.0
#include "core/effective.hpp"

#include <atomic>
#include <cerrno>

namespace ssx::core {
namespace {

const char *protocol_name(policy::Protocol p) {
  switch (p) {
    case policy::Protocol::tls:
      return "tls";
    case policy::Protocol::local:
      return "local";
    case policy::Protocol::dtls:
      return "dtls";
    default:
      return "unknown";
  }
}

std::atomic<bool> g_require_client_certificates{false};

std::string rule_label(std::string_view rule) {
  return rule == "defaults" ? std::string("the policy defaults")
                            : "policy rule \"" + std::string(rule) + "\"";
}

}  // namespace

Result<Effective> decide(const AppSettings &app, std::shared_ptr<PolicySnapshot> snapshot,
                         const policy::MatchQuery &query, int family) {
  policy::Effective matched = snapshot->policy().match(query);
  const policy::Settings &s = *matched.settings;
  Effective e;
  e.rule = std::string(matched.rule_name);
  e.settings = &s;

  if (s.deny) return fail(EACCES, "refused by " + rule_label(e.rule) + " (deny = true)");
  const bool guarantee = (app.flags & SSX_GUARANTEE_ENCRYPTION) != 0;
  if (family == AF_UNIX && !guarantee && app.protocol != SSX_PROTOCOL_TLS) {
    // The bytes never leave this host and the kernel attests the peer: no TLS needed. Names the
    // application set must still hold (as "unix:uid=N"), checked against SO_PEERCRED.
    e.local = true;
    e.requirements.app_names = app.names;
    e.requirements.policy_rule = e.rule;
    e.snapshot = std::move(snapshot);
    return e;
  }
  if (app.protocol == SSX_PROTOCOL_LOCAL) {
    return fail(EACCES,
                "SSX_PROTOCOL_LOCAL is only for AF_UNIX sockets without "
                "SSX_GUARANTEE_ENCRYPTION");
  }
  if (query.transport == policy::Transport::udp) {
    // UDP: DTLS. A rule's "tls" (the default) means the TLS family, which for datagrams is DTLS.
    if (s.protocol != policy::Protocol::tls && s.protocol != policy::Protocol::dtls) {
      return fail(EACCES, rule_label(e.rule) + " selects protocol \"" + protocol_name(s.protocol) +
                              "\", which ssx cannot provide for UDP sockets");
    }
    if (app.protocol != SSX_PROTOCOL_DEFAULT && app.protocol != SSX_PROTOCOL_DTLS) {
      return fail(EACCES, "the application's protocol is not allowed by " + rule_label(e.rule));
    }
    // No cleartext fallback for datagrams (docs/datagram.md): a UDP socket is DTLS or nothing.
    e.datagram = true;
  } else {
    if (s.protocol != policy::Protocol::tls) {
      return fail(EACCES, rule_label(e.rule) + " selects protocol \"" + protocol_name(s.protocol) +
                              "\", which ssx cannot provide for TCP sockets");
    }
    if (app.protocol != SSX_PROTOCOL_DEFAULT && app.protocol != SSX_PROTOCOL_TLS) {
      return fail(EACCES, "the application's protocol is not allowed by " + rule_label(e.rule));
    }
    e.cleartext_fallback = !guarantee && (app.flags & SSX_ALLOW_INSECURE) != 0 && s.allow_insecure;
  }

  e.requirements.app_names = app.names;
  e.requirements.policy_rule = e.rule;
  e.requirements.require_certificate =
      query.direction == policy::Direction::inbound && !s.peer_authentication_set &&
      g_require_client_certificates.load(std::memory_order_relaxed);
  for (const auto &text : s.peer_names) {
    auto name = identity::parse_target_name(text);
    if (!name) return fail(EACCES, rule_label(e.rule) + ": " + name.error().message);
    e.requirements.policy_names.push_back(std::move(*name));
  }

  if (query.direction == policy::Direction::outbound && s.require_peer_target_name &&
      e.requirements.app_names.empty() && e.requirements.policy_names.empty()) {
    return fail(EACCES,
                "no peer target name: call ssx_set_socket_peer_target_name before connecting "
                "(" +
                    rule_label(e.rule) + " requires one; require_peer_target_name = true)");
  }
  e.snapshot = std::move(snapshot);
  return e;
}

void require_client_certificates_by_default(bool on) {
  g_require_client_certificates.store(on, std::memory_order_relaxed);
}

}  // namespace ssx::core
