// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/policy_source.hpp — loading the policy at start-up and on SIGHUP.
//
// The only place the tunnel touches the policy. Reloading is ssx_load_policy(path) again: it
// swaps in the new policy (and re-reads the credential files it names) for new connections,
// established ones keep theirs, and a bad file leaves the old policy in force. When the library
// grows ssx_reload_policy(), reload() becomes that one call.

#ifndef SSX_TOOLS_SSX_TUNNEL_POLICY_SOURCE_HPP
#define SSX_TOOLS_SSX_TUNNEL_POLICY_SOURCE_HPP

#include <optional>
#include <string>

#include "ssx/result.hpp"

namespace ssx::cli::tunnel {

class PolicySource {
 public:
  // |path| is --policy; without it the library's own choice applies: $SSX_POLICY, else
  // /etc/ssx/policy.toml, else (no such file) the built-in defaults.
  explicit PolicySource(std::optional<std::string> path);

  // load loads the policy now, so that a broken file stops the tunnel at start-up rather than
  // failing every connection. Failure carries "FILE:LINE:COLUMN: message" for an invalid file.
  Result<void> load();

  // reload loads it again (SIGHUP). On failure the previous policy stays in force.
  Result<void> reload();

  // describe names what is loaded, for log lines: the path or "built-in defaults".
  std::string describe() const;

 private:
  std::string path_;
  bool explicit_ = false;  // --policy or $SSX_POLICY: a missing file is an error
  bool builtin_ = false;   // no file: the built-in defaults
};

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_POLICY_SOURCE_HPP
