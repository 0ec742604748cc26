// SPDX-License-Identifier: Apache-2.0
#include "systemd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "listener.hpp"
#include "ssx/ssx.h"

#if SSX_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace ssx::cli::tunnel::systemd {
namespace {

Failure errno_failure(int err, const std::string &what) {
  return fail(err, what + ": " + std::strerror(err));
}

}  // namespace

Result<std::vector<int>> listen_fds() {
#if SSX_HAVE_SYSTEMD
  // unset_environment = 1: the variables are consumed here, whatever the outcome.
  int n = ::sd_listen_fds(1);
  if (n < 0) return errno_failure(-n, "LISTEN_FDS");
  std::vector<int> fds;
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) fds.push_back(fd);
  auto close_all = [&fds] {
    for (int fd : fds) ::close(fd);
  };
  if (n > 1) {
    close_all();
    return fail(EINVAL, "systemd passed " + std::to_string(n) +
                            " sockets (LISTEN_FDS); ssx tunnel serves exactly one: give the "
                            "socket unit a single ListenStream=");
  }
  for (int fd : fds) {
    int r = ::sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
    if (r <= 0) {
      close_all();
      return fail(EINVAL, "the socket systemd passed (fd " + std::to_string(fd) +
                              ") is not a listening stream socket");
    }
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
      int err = errno;
      close_all();
      return errno_failure(err, "LISTEN_FDS: fcntl");
    }
  }
  return fds;
#else
  if (std::getenv("LISTEN_FDS") != nullptr) {
    return fail(ENOTSUP,
                "LISTEN_FDS is set but this ssx was built without systemd support "
                "(-DSSX_SYSTEMD=OFF): cannot take the sockets systemd passed");
  }
  return std::vector<int>{};
#endif
}

Result<std::vector<int>> adopt_listeners(const Options &options, SocketAddress &address) {
  const int inherited = options.inherited_listener;
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(inherited, reinterpret_cast<sockaddr *>(&bound), &len) != 0) {
    int err = errno;
    ::close(inherited);
    return errno_failure(err, "LISTEN_FDS: getsockname");
  }
  if (bound.ss_family != AF_INET && bound.ss_family != AF_INET6) {
    ::close(inherited);
    return fail(EAFNOSUPPORT, "the socket systemd passed is not TCP over IPv4 or IPv6");
  }
  address.storage = bound;
  address.length = len;

  // Every worker gets its own descriptor for the one socket: workers own and close theirs.
  std::vector<int> fds{inherited};
  for (unsigned i = 1; i < options.workers; ++i) {
    int fd = ::fcntl(inherited, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      int err = errno;
      for (int open : fds) ::close(open);
      return errno_failure(err, "LISTEN_FDS: dup");
    }
    fds.push_back(fd);
  }
  for (int fd : fds) {
    if (auto secured = secure_listener(options, fd); !secured) {
      for (int open : fds) ssx_close(open);
      return secured.error();
    }
  }
  return fds;
}

#if SSX_HAVE_SYSTEMD
void notify_ready(const std::string &status) {
  std::string message = "READY=1\nSTATUS=" + status;
  (void)::sd_notify(0, message.c_str());
}

void notify_reloading() {
  // MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the reload; older ignore it.
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  std::string message =
      "RELOADING=1\nSTATUS=reloading the policy\nMONOTONIC_USEC=" +
      std::to_string(static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000);
  (void)::sd_notify(0, message.c_str());
}

void notify_stopping() {
  (void)::sd_notify(0, "STOPPING=1\nSTATUS=draining open connections");
}
#else
void notify_ready(const std::string &) {}
void notify_reloading() {}
void notify_stopping() {}
#endif

}  // namespace ssx::cli::tunnel::systemd
