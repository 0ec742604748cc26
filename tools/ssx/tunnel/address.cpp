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
  std::string port_text;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail(EINVAL, "\"" + text + "\" is not [IPv6]:PORT");
    }
    out.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return fail(EINVAL, "\"" + text + "\" has no :PORT");
    out.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      return fail(EINVAL, "\"" + text + "\": write an IPv6 address in brackets, [::1]:PORT");
    }
  }
  if (out.host.empty()) return fail(EINVAL, "\"" + text + "\" has no host before :PORT");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535 || (port == 0 && !allow_port_zero)) {
    return fail(EINVAL, "\"" + text + "\": port must be " +
                            (allow_port_zero ? "0 to 65535" : "1 to 65535"));
  }
  out.port = static_cast<std::uint16_t>(port);
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
