// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/unix_address.hpp — "unix:PATH" wherever the ssx command takes an address
// (connect, listen, tunnel --listen and --to): parse it, get a stale socket file out of the way
// before binding, and remove the file again on the way out.
//
// A path is taken as written (relative paths are relative to the working directory); the
// abstract namespace is not offered (it has no file permissions to protect it).

#ifndef SSX_TOOLS_SSX_COMMON_UNIX_ADDRESS_HPP
#define SSX_TOOLS_SSX_COMMON_UNIX_ADDRESS_HPP

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <ctime>
#include <string>
#include <string_view>

#include "ssx/result.hpp"

namespace ssx::cli {

// kMaxUnixPath is the longest path an AF_UNIX address holds: sun_path less its NUL (107 bytes
// on Linux).
inline constexpr size_t kMaxUnixPath = sizeof(sockaddr_un::sun_path) - 1;

// is_unix_address says whether |text| is meant as "unix:PATH".
bool is_unix_address(std::string_view text);

struct UnixAddress {
  sockaddr_un address{};
  socklen_t length = 0;
  std::string path;
  const sockaddr *get() const { return reinterpret_cast<const sockaddr *>(&address); }
};

// parse_unix_address parses "unix:PATH". EINVAL, quoting |text| (a bounded prefix of it), when
// the path is empty, contains a control character, or is longer than kMaxUnixPath bytes (with
// its length and the limit, and how to get under it).
Result<UnixAddress> parse_unix_address(std::string_view text);

// clear_stale_unix_socket gets |path| ready for bind(2):
//   - nothing there: nothing to do;
//   - a socket nobody listens on (connect(2) refused: its program is gone): removed;
//   - a socket something listens on: EADDRINUSE ("... is in use: another program listens on it");
//   - anything else (a file, a directory, ...): EEXIST, never removed.
// Failure messages name the path. There is a window between the check and bind(2); a program
// that starts listening in it makes bind fail with EADDRINUSE, never shares the path.
Result<void> clear_stale_unix_socket(const std::string &path);

// UnixSocketFile remembers the socket file a listener created (by device, inode and change
// time), so that it
// can be removed on the way out without removing a file another program put at the same path
// since.
class UnixSocketFile {
 public:
  UnixSocketFile() = default;
  // Records what |path| names now (just after bind). Not recorded if it cannot be stat(2)ed.
  explicit UnixSocketFile(std::string path);
  UnixSocketFile(UnixSocketFile &&other) noexcept;
  UnixSocketFile &operator=(UnixSocketFile &&other) noexcept;
  UnixSocketFile(const UnixSocketFile &) = delete;
  UnixSocketFile &operator=(const UnixSocketFile &) = delete;
  // The destructor removes the file (remove()).
  ~UnixSocketFile();
  // remove unlinks the path if it still names the file recorded; then forgets it.
  void remove();

 private:
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  timespec ctime_{};
  bool recorded_ = false;
};

// format_unix_address formats an AF_UNIX address as "unix:PATH" ("unix:(unnamed)" for a client
// that did not bind, "unix:(abstract)" for the abstract namespace); control characters are
// shown as '?', since a peer chooses its own path and the result goes into logs.
std::string format_unix_address(const sockaddr_un *address);

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_UNIX_ADDRESS_HPP
