// SPDX-License-Identifier: Apache-2.0
#include "address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/address.hpp"
#include "common/unix_address.hpp"
#include "net/wait.hpp"

namespace ssx::cli::tunnel {

bool HostPort::is_name() const {
  if (is_unix()) return false;
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, host.c_str(), &v4) != 1 && inet_pton(AF_INET6, host.c_str(), &v6) != 1;
}

Result<HostPort> parse_host_port(const std::string &text, bool allow_port_zero) {
  HostPort out;
  if (is_unix_address(text)) {
    auto unix_address = parse_unix_address(text);
    if (!unix_address) return unix_address.error();
    out.unix_path = unix_address->path;
    return out;
  }
  // One HOST:PORT syntax for every subcommand (common/address.hpp); a tunnel always names a host.
  auto host_port =
      cli::parse_host_port(text, {.allow_empty_host = false, .allow_port_zero = allow_port_zero});
  if (!host_port) return host_port.error();
  out.host = std::move(host_port->host);
  out.port = host_port->port;
  return out;
}

std::uint16_t SocketAddress::port() const {
  if (family() != AF_INET && family() != AF_INET6) return 0;
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6 *>(&storage)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in *>(&storage)->sin_port);
}

void SocketAddress::set_port(std::uint16_t port) {
  if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6 *>(&storage)->sin6_port = htons(port);
  } else if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in *>(&storage)->sin_port = htons(port);
  }
}

bool SocketAddress::is_loopback() const {
  if (family() == AF_INET) {
    auto addr = ntohl(reinterpret_cast<const sockaddr_in *>(&storage)->sin_addr.s_addr);
    return (addr >> 24) == 127;
  }
  if (family() == AF_INET6) {
    const auto &a = reinterpret_cast<const sockaddr_in6 *>(&storage)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&a) != 0;
  }
  return false;
}

Result<SocketAddress> resolve(const HostPort &hp, bool passive) {
  if (hp.is_unix()) {
    auto unix_address = parse_unix_address("unix:" + hp.unix_path);
    if (!unix_address) return unix_address.error();
    SocketAddress out;
    std::memcpy(&out.storage, &unix_address->address, sizeof unix_address->address);
    out.length = unix_address->length;
    return out;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo *list = nullptr;
  const std::string service = std::to_string(hp.port);
  int rc = ::getaddrinfo(hp.host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    return fail(rc == EAI_SYSTEM ? errno : EINVAL,
                "cannot resolve \"" + hp.host + "\": " + ::gai_strerror(rc));
  }
  SocketAddress out;
  for (addrinfo *ai = list; ai != nullptr; ai = ai->ai_next) {
    if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
        ai->ai_addrlen <= sizeof out.storage) {
      std::memcpy(&out.storage, ai->ai_addr, ai->ai_addrlen);
      out.length = ai->ai_addrlen;
      break;
    }
  }
  ::freeaddrinfo(list);
  if (out.length == 0) return fail(EINVAL, "\"" + hp.host + "\" has no IPv4 or IPv6 address");
  return out;
}

std::string format_address(const sockaddr *address) {
  if (address->sa_family == AF_UNIX) return cli::format_address(address);
  return net::address_to_string(address);  // the library's one formatter
}

}  // namespace ssx::cli::tunnel
