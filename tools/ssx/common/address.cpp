// SPDX-License-Identifier: Apache-2.0
#include "address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>

#include "base/text.hpp"
#include "unix_address.hpp"

namespace ssx::cli {
namespace {

Failure invalid(std::string_view text, const std::string &why) {
  return Failure{EINVAL, "invalid address " + base::quote(text) + ": " + why};
}

bool is_ipv6_literal(const std::string &host) {
  in6_addr ignored{};
  return inet_pton(AF_INET6, host.c_str(), &ignored) == 1;
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view text, HostPortRules rules) {
  HostPort out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return invalid(text, "missing ']' after the IPv6 address");
    out.host = std::string(text.substr(1, close - 1));
    if (!is_ipv6_literal(out.host)) {
      return invalid(text, "\"" + out.host + "\" between brackets is not an IPv6 address");
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return invalid(text, "expected ':PORT' after ']'");
    }
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return invalid(text, "expected HOST:PORT");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      return invalid(text, "an IPv6 address needs brackets, e.g. [" + out.host +
                               "]:" + std::string(text.substr(colon + 1)));
    }
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty() && !rules.allow_empty_host) return invalid(text, "the host is missing");
  for (char c : out.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return invalid(text, "the host contains a space or control character");
    }
  }
  if (port_text.empty()) return invalid(text, "the port is missing");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || end != port_text.data() + port_text.size()) {
    return invalid(text, "the port \"" + std::string(port_text) + "\" is not a number");
  }
  const unsigned low = rules.allow_port_zero ? 0 : 1;
  if (value < low || value > 65535) {
    return invalid(text, "the port " + std::to_string(value) + " is out of range (" +
                             std::to_string(low) + "-65535)");
  }
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

std::string format_host_port(const std::string &host, std::uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string format_address(const sockaddr *address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    const auto *in = reinterpret_cast<const sockaddr_in *>(address);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return format_host_port(text, ntohs(in->sin_port));
  }
  if (address->sa_family == AF_INET6) {
    const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(address);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    return format_host_port(text, ntohs(in6->sin6_port));
  }
  if (address->sa_family == AF_UNIX) {
    return format_unix_address(reinterpret_cast<const sockaddr_un *>(address));
  }
  return "(unknown address)";
}

std::string peer_address_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0) return "(unknown address)";
  return format_address(reinterpret_cast<const sockaddr *>(&ss));
}

std::string local_address_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0) return "(unknown address)";
  return format_address(reinterpret_cast<const sockaddr *>(&ss));
}

}  // namespace ssx::cli
