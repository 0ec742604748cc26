// SPDX-License-Identifier: Apache-2.0
#include "net/wait.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

namespace ssx::net {

Result<void> wait_fd(int fd, short events, Deadline deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      if (left <= 0) return fail(ETIMEDOUT, "timed out");
      timeout_ms = left > 0x7fffffff ? 0x7fffffff : static_cast<int>(left);
    }
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, timeout_ms);
    if (n > 0) {
      if (p.revents & POLLNVAL) return fail(EBADF, "descriptor was closed while waiting");
      return {};
    }
    if (n == 0) continue;  // re-check the deadline; poll may wake early by rounding
    if (errno == EINTR) continue;
    return fail(errno, std::string("poll: ") + std::strerror(errno));
  }
}

bool is_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) != 0;
}

Deadline socket_timeout(int fd, bool receive) {
  timeval tv{};
  socklen_t len = sizeof tv;
  if (::getsockopt(fd, SOL_SOCKET, receive ? SO_RCVTIMEO : SO_SNDTIMEO, &tv, &len) != 0) return {};
  if (tv.tv_sec == 0 && tv.tv_usec == 0) return {};
  return Clock::now() + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

std::string address_to_string(const sockaddr *address) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (address == nullptr) return "(unknown)";
  if (address->sa_family == AF_INET) {
    const auto *in = reinterpret_cast<const sockaddr_in *>(address);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (address->sa_family == AF_INET6) {
    const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(address);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    // Built by appending: GCC 12 at -O3 warns falsely (-Wrestrict, GCC bug 105329) about
    // `"[" + std::string` once inlined.
    std::string text = "[";
    text += host;
    text += "]:";
    text += std::to_string(ntohs(in6->sin6_port));
    return text;
  }
  return "(family " + std::to_string(address->sa_family) + ")";
}

unsigned address_port(const sockaddr *address) {
  if (address == nullptr) return 0;
  if (address->sa_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in *>(address)->sin_port);
  }
  if (address->sa_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6 *>(address)->sin6_port);
  }
  return 0;
}

}  // namespace ssx::net
