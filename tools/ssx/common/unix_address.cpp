// SPDX-License-Identifier: Apache-2.0
#include "unix_address.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include "base/text.hpp"

namespace ssx::cli {
namespace {

constexpr std::string_view kPrefix = "unix:";
Failure invalid(std::string_view text, const std::string &why) {
  return Failure{EINVAL, "invalid address " + base::quote(text) + ": " + why};
}

}  // namespace

bool is_unix_address(std::string_view text) {
  return text.substr(0, kPrefix.size()) == kPrefix;
}

Result<UnixAddress> parse_unix_address(std::string_view text) {
  if (!is_unix_address(text)) return invalid(text, "expected unix:PATH");
  std::string_view path = text.substr(kPrefix.size());
  if (path.empty()) return invalid(text, "the path after unix: is missing");
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return invalid(text, "the path contains a control character");
    }
  }
  if (path.size() > kMaxUnixPath) {
    return invalid(text, "the path is " + std::to_string(path.size()) +
                             " bytes; an AF_UNIX socket path holds at most " +
                             std::to_string(kMaxUnixPath) +
                             " (sun_path): use a shorter path, e.g. a relative one or a "
                             "directory nearer the root");
  }
  UnixAddress out;
  out.path = std::string(path);
  out.address.sun_family = AF_UNIX;
  std::memcpy(out.address.sun_path, path.data(), path.size());
  out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return out;
}

Result<void> clear_stale_unix_socket(const std::string &path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    const int err = errno;
    return fail(err, "cannot listen on unix:" + path + ": " + std::strerror(err));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return fail(EEXIST, "cannot listen on unix:" + path +
                            ": the path exists and is not a socket (not removing it)");
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    return fail(err, std::string("socket: ") + std::strerror(err));
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), std::min(path.size(), kMaxUnixPath));
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr *>(&address), sizeof address);
  const int err = rc == 0 ? 0 : errno;
  ::close(fd);
  // Connected, or a full backlog (EAGAIN): something listens there.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
    return fail(EADDRINUSE, "cannot listen on unix:" + path +
                                ": Address already in use (another program listens on it)");
  }
  if (err != ECONNREFUSED) {
    return fail(err, "cannot listen on unix:" + path + ": " + std::strerror(err));
  }
  // A socket file whose program is gone (killed, crashed): remove it so that bind can work.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    const int unlink_err = errno;
    return fail(unlink_err,
                "cannot remove the stale socket unix:" + path + ": " + std::strerror(unlink_err));
  }
  return {};
}

UnixSocketFile::UnixSocketFile(std::string path) : path_(std::move(path)) {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    ctime_ = st.st_ctim;
    recorded_ = true;
  }
}

UnixSocketFile::UnixSocketFile(UnixSocketFile &&other) noexcept
    : path_(std::move(other.path_)),
      dev_(other.dev_),
      ino_(other.ino_),
      ctime_(other.ctime_),
      recorded_(std::exchange(other.recorded_, false)) {}

UnixSocketFile &UnixSocketFile::operator=(UnixSocketFile &&other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::move(other.path_);
    dev_ = other.dev_;
    ino_ = other.ino_;
    ctime_ = other.ctime_;
    recorded_ = std::exchange(other.recorded_, false);
  }
  return *this;
}

UnixSocketFile::~UnixSocketFile() {
  remove();
}

void UnixSocketFile::remove() {
  if (!recorded_) return;
  recorded_ = false;
  struct stat st {};
  // Device and inode, and the change time too: an inode number freed by our socket's close can
  // be given to a file created since.
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_ &&
      st.st_ctim.tv_sec == ctime_.tv_sec && st.st_ctim.tv_nsec == ctime_.tv_nsec) {
    (void)::unlink(path_.c_str());
  }
}

std::string format_unix_address(const sockaddr_un *address) {
  const char *path = address->sun_path;
  const size_t n = ::strnlen(path, sizeof address->sun_path);
  if (n == 0) {
    // An unnamed peer has an all-zero sun_path; an abstract one starts with NUL and has more.
    for (size_t i = 1; i < sizeof address->sun_path; ++i) {
      if (path[i] != '\0') return "unix:(abstract)";
    }
    return "unix:(unnamed)";
  }
  std::string out = "unix:";
  for (size_t i = 0; i < n; ++i) {
    const char c = path[i];
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  }
  return out;
}

}  // namespace ssx::cli
