// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/options.hpp — what `ssx tunnel` was asked to do, parsed and checked.

#ifndef SSX_TOOLS_SSX_TUNNEL_OPTIONS_HPP
#define SSX_TOOLS_SSX_TUNNEL_OPTIONS_HPP

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "address.hpp"
#include "log.hpp"
#include "resolver.hpp"

namespace ssx::cli::tunnel {

// server: accept secured connections on |listen|, forward cleartext to |to|.
// client: accept cleartext on |listen|, forward secured to |to|.
enum class Mode { server, client };

struct Options {
  std::string name;  // --config: the tunnel's name (in its log lines); "" for a lone tunnel
  Mode mode = Mode::server;
  std::optional<std::string> policy;  // --policy; unset: $SSX_POLICY or /etc/ssx/policy.toml
  HostPort listen;
  HostPort to;
  SocketAddress listen_address;
  SocketAddress to_address;
  // Set when --to names a host: the address the resolver thread keeps up to date (resolver.hpp).
  // Null for an IP literal or unix:PATH: |to_address| is used as it is.
  std::shared_ptr<ResolvedAddress> to_resolved;
  std::chrono::milliseconds resolve_interval{30000};  // --resolve-interval; 0: resolve once
  bool proxy_protocol = false;                        // --proxy-protocol v2 (server mode)
  std::vector<std::string> names;                     // target names the secured peer must satisfy
  std::optional<HostPort> metrics;                    // loopback only
  std::optional<SocketAddress> metrics_address;
  unsigned workers = 1;
  // Unfinished handshakes (connecting or handshaking) per worker before the oldest is shed;
  // 0: derived from RLIMIT_NOFILE (handshake_budget.hpp).
  unsigned max_handshakes = 0;
  unsigned max_handshakes_per_source = 64;  // a source's share once the budget is full
  // Established connections that move nothing either way for this long are reset on both sides,
  // unless the policy's idle_timeout_ms says otherwise for the connection. 0: never.
  std::chrono::milliseconds idle_timeout{600000};
  // TCP keepalive on both sockets: first probe after this many idle seconds; 0: off.
  unsigned keepalive = 60;
  std::chrono::milliseconds grace{30000};          // SIGTERM: drain this long, then close
  std::chrono::milliseconds setup_timeout{30000};  // connect + handshake, per connection
  int inherited_listener = -1;  // a listening socket systemd passed (LISTEN_FDS); else -1
  bool reuseport = false;       // --reuseport: share the port (SO_REUSEPORT); else ours alone
  LogFormat log_format = LogFormat::text;  // --log-format
  LogLevel log_level = LogLevel::info;     // --log-level
};

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_OPTIONS_HPP
