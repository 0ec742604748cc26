// SPDX-License-Identifier: Apache-2.0
#include "listener.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "common/unix_address.hpp"
#include "ssx/ssx.h"
#include "systemd.hpp"

namespace ssx::cli::tunnel {
namespace {

// Fds owns descriptors until they are handed out; on failure it closes them all.
struct Fds {
  std::vector<int> fds;
  Fds() = default;
  Fds(const Fds &) = delete;
  Fds &operator=(const Fds &) = delete;
  ~Fds() {
    for (int fd : fds) ssx_close(fd);  // also right for a descriptor ssx does not know
  }
  std::vector<int> release() { return std::exchange(fds, {}); }
};

Failure errno_failure(int err, const std::string &what) {
  return fail(err, what + ": " + std::strerror(err));
}

}  // namespace

Result<void> secure_listener(const Options &options, int fd) {
  if (options.mode != Mode::server) return {};
  // The socket's own family decides (a socket systemd passed has no --listen).
  int domain = AF_INET;
  socklen_t domain_len = sizeof domain;
  (void)::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &domain_len);
  ssx_security_settings settings{SSX_PROTOCOL_DEFAULT, secured_flags(domain)};
  if (ssx_set_socket_security(fd, &settings, sizeof settings) != 0)
    return fail(errno, ssx_last_error());
  for (const auto &name : options.names) {
    if (ssx_set_socket_peer_target_name(fd, name.c_str(), nullptr, 0) != 0) {
      const int err = errno;
      return fail(err, "--name \"" + name + "\": " + ssx_last_error());
    }
  }
  return {};
}

namespace {

std::string in_use_hint(int err, const Options &options) {
  if (err != EADDRINUSE) return {};
  return options.reuseport ? " (another program holds it without SO_REUSEPORT, or runs as "
                             "another user)"
                           : " (another program listens there; ssx tunnel shares a port only "
                             "with --reuseport)";
}

Result<void> bind_and_listen(const Options &options, int fd, SocketAddress &address) {
  const std::string where = format_address(address.get());
  if (address.family() == AF_UNIX) {
    // A socket file left by a tunnel that was killed is removed; a live one is "in use".
    if (auto r = clear_stale_unix_socket(options.listen.unix_path); !r) return r.error();
  }
  if (::bind(fd, address.get(), address.length) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    const int err = errno;
    return fail(
        err, "cannot listen on " + where + ": " + std::strerror(err) + in_use_hint(err, options));
  }
  if (address.family() != AF_UNIX && address.port() == 0) {
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(fd, reinterpret_cast<sockaddr *>(&bound), &len) != 0) {
      return errno_failure(errno, "getsockname");
    }
    SocketAddress actual;
    actual.storage = bound;
    actual.length = len;
    address.set_port(actual.port());
  }
  return {};
}

Result<int> new_socket(const Options &options, const SocketAddress &address, Fds &owner) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_failure(errno, "socket");
  owner.fds.push_back(fd);
  if (auto r = secure_listener(options, fd); !r) return r.error();
  return fd;
}

}  // namespace

Result<std::vector<int>> open_listeners(const Options &options, SocketAddress &address) {
  if (options.inherited_listener >= 0) return systemd::adopt_listeners(options, address);
  Fds fds;
  const int one = 1;
  if (options.reuseport) {
    for (unsigned i = 0; i < options.workers; ++i) {
      auto fd = new_socket(options, address, fds);
      if (!fd) return fd.error();
      if (::setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
          ::setsockopt(*fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        return errno_failure(errno, "setsockopt");
      }
      // With port 0 the first bind picks the port and the others join it.
      if (auto r = bind_and_listen(options, *fd, address); !r) return r.error();
    }
    return fds.release();
  }

  auto first = new_socket(options, address, fds);
  if (!first) return first.error();
  // SO_REUSEADDR only lets a restart bind over connections in TIME_WAIT; on Linux it never lets
  // two sockets listen on one port.
  if (::setsockopt(*first, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    return errno_failure(errno, "setsockopt");
  }
  // The other workers' descriptors are made before bind, so that ssx can secure each of them
  // (security is set before a socket listens).
  for (unsigned i = 1; i < options.workers; ++i) {
    int fd = ::fcntl(*first, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return errno_failure(errno, "dup");
    fds.fds.push_back(fd);
    if (auto r = secure_listener(options, fd); !r) return r.error();
  }
  if (auto r = bind_and_listen(options, *first, address); !r) return r.error();
  return fds.release();
}

}  // namespace ssx::cli::tunnel
