// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/config.hpp — `ssx tunnel --config FILE`: several tunnels in one process.
//
//   policy = "/etc/ssx/policy.toml"   # optional; else --policy, $SSX_POLICY, /etc/ssx/policy.toml
//
//   [tunnel.web]                      # one table per tunnel; the key is its name (1 to 64
//                                     # letters, digits, '.', '_', '-': it goes into log lines)
//   mode = "server"                   # required: "server" or "client"
//   listen = "0.0.0.0:8443"           # required: ADDR:PORT or unix:PATH
//   to = "127.0.0.1:8080"             # required: ADDR:PORT or unix:PATH
//   name = ["spiffe://example.org/client"]   # optional: --name, a string or an array
//   proxy_protocol = "v2"             # optional: --proxy-protocol (server mode)
//   policy = "/etc/ssx/policy.toml"   # optional: must be the process's policy (see below)
//
// The file is bounded like a policy file before toml++ parses it (policy/prescan.hpp: 1 MiB, 16
// levels), must be a regular file not writable by others, and holds at most kMaxTunnels tunnels.
// ssx has one policy per process, so every tunnel runs under the same one; a tunnel whose
// `policy` names another file is an error (select settings per tunnel with [[rule]] port = ...
// in that policy, or run another process). Errors are "FILE:LINE:COLUMN: message".

#ifndef SSX_TOOLS_SSX_TUNNEL_CONFIG_HPP
#define SSX_TOOLS_SSX_TUNNEL_CONFIG_HPP

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ssx/result.hpp"

namespace ssx::cli::tunnel {

inline constexpr size_t kMaxTunnels = 64;

struct TunnelEntry {
  std::string name;  // the table's key
  std::string mode;
  std::string listen;
  std::string to;
  std::vector<std::string> names;
  std::optional<std::string> policy;
  std::optional<std::string> proxy_protocol;
  // where["listen"] ... is "FILE:LINE:COLUMN" of that key's value; where[""] is the table's.
  std::map<std::string, std::string> where;
};

struct TunnelConfig {
  std::string path;
  std::optional<std::string> policy;
  std::string policy_where;          // "FILE:LINE:COLUMN" of the top-level policy
  std::vector<TunnelEntry> tunnels;  // in file order
};

// load_tunnel_config reads and checks the shape of |path| (types, required and unknown keys, at
// least one tunnel, at most kMaxTunnels). Values (addresses, modes) are checked by the caller,
// which reports them at where[key]. Errors: errno of the file (ENOENT, EACCES, EISDIR, EFBIG) as
// "PATH: reason", or EINVAL "PATH:LINE:COLUMN: message".
Result<TunnelConfig> load_tunnel_config(const std::string &path);

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_CONFIG_HPP
