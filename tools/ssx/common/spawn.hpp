// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/spawn.hpp — start a command with a descriptor as its stdin and stdout, an
// environment of our choosing and, optionally, another account's credentials.
//
// fork + execvp, never a shell: the command's words arrive as they were given. The child gets
// exactly descriptors 0 and 1 (|stdio|) and the parent's stderr; every other descriptor ssx opens
// is close-on-exec. Credentials are changed in the child between fork and exec, with the
// process-wide setgroups/setgid/setuid: the child is a process of its own, so nothing of the
// parent's identity is touched. A failure before exec (a missing program, a refused setuid) is
// reported to the parent through a close-on-exec pipe, so spawn() fails with the reason instead of
// a child that exits 127.

#ifndef SSX_TOOLS_SSX_COMMON_SPAWN_HPP
#define SSX_TOOLS_SSX_COMMON_SPAWN_HPP

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ssx/result.hpp"

namespace ssx::cli {

struct RunAs {
  std::string user;  // "" when the uid has no name
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, as setgroups(2) takes them
};

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] is looked up in $PATH
  int stdio = -1;                 // becomes the child's stdin and stdout
  // Environment: the parent's, without the names in |unset| and the names |set| gives, plus
  // |set|.
  std::vector<std::string> unset;
  std::vector<std::pair<std::string, std::string>> set;
  std::optional<RunAs> run_as;  // also sets HOME, USER and LOGNAME from the account
};

// spawn starts the child and returns its pid once it has exec'd. Failures: errno and a message
// naming the command, or the step that failed when switching accounts.
Result<pid_t> spawn(const SpawnRequest &request);

// open_pidfd returns a descriptor that polls readable when |pid| exits (pidfd_open(2)), or -1
// when the kernel has no pidfds (then the caller polls waitpid on a timer).
int open_pidfd(pid_t pid);

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_SPAWN_HPP
