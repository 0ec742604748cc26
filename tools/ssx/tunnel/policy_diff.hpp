// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/policy_diff.hpp — what changed between two policies, for the log line of a
// reload (SIGHUP or the library's automatic reload when a file changes).
//
// A PolicyPicture records, for the policy in force, each table's settings as text and each file
// it names as a stamp (size, modification time, inode): enough to say "rule "web" added",
// "[defaults]: peer_authentication none -> required", "certificate /etc/ssx/web.crt changed".
// Never file contents: a key file is only ever stat(2)ed.

#ifndef SSX_TOOLS_SSX_TUNNEL_POLICY_DIFF_HPP
#define SSX_TOOLS_SSX_TUNNEL_POLICY_DIFF_HPP

#include <cstdint>
#include <map>
#include <string>

namespace ssx::cli::tunnel {

struct PolicyPicture {
  std::string source;
  std::uint64_t generation = 0;  // core::policy_status().generation when taken
  std::map<std::string, std::map<std::string, std::string>> tables;  // table -> key -> value
  std::map<std::string, std::string> files;                          // path -> stamp
};

// picture_of_policy_in_force describes the policy in force now.
PolicyPicture picture_of_policy_in_force();

// describe_changes lists what differs from |before| to |after| ("no change in the policy or its
// files" when nothing does), at most a few hundred characters.
std::string describe_changes(const PolicyPicture &before, const PolicyPicture &after);

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_POLICY_DIFF_HPP
