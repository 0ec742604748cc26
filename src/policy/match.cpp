// SPDX-License-Identifier: Apache-2.0
// Rule matching: which [[rule]] applies to a socket.

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "policy/policy.hpp"

namespace ssx::policy {
namespace {

// IpAddress is an address reduced to what CIDR matching compares; IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) become plain IPv4, since a dual-stack socket reports IPv4
// peers that way and an IPv4 rule must still apply to them.
struct IpAddress {
  int family = 0;
  unsigned char bytes[16]{};
  std::uint16_t port = 0;  // host byte order
};

// to_ip reads |address|; the copies avoid reading a sockaddr through a type it does not have.
std::optional<IpAddress> to_ip(const sockaddr *address) {
  if (address == nullptr) return std::nullopt;
  IpAddress out;
  if (address->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    out.family = AF_INET;
    std::memcpy(out.bytes, &in.sin_addr, 4);
    out.port = ntohs(in.sin_port);
    return out;
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    out.port = ntohs(in6.sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      out.family = AF_INET;
      std::memcpy(out.bytes, in6.sin6_addr.s6_addr + 12, 4);
    } else {
      out.family = AF_INET6;
      std::memcpy(out.bytes, in6.sin6_addr.s6_addr, 16);
    }
    return out;
  }
  return std::nullopt;
}

bool in_network(const Cidr &cidr, const IpAddress &ip) {
  if (ip.family != cidr.family) return false;
  const int whole = cidr.prefix_len / 8;
  if (std::memcmp(ip.bytes, cidr.bytes, static_cast<std::size_t>(whole)) != 0) return false;
  const int rest = cidr.prefix_len % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff00u >> rest);
  return (ip.bytes[whole] & mask) == (cidr.bytes[whole] & mask);
}

bool matches(const Match &match, const MatchQuery &query) {
  if (match.direction && *match.direction != query.direction) return false;
  if (match.transport && *match.transport != query.transport) return false;
  if (match.program && (query.program.empty() || *match.program != query.program)) return false;
  if (match.ports.empty() && !match.address) return true;
  // Outbound, the rule is about where the socket goes; inbound, about where it listens.
  const sockaddr *endpoint = query.direction == Direction::outbound ? query.remote : query.local;
  const std::optional<IpAddress> ip = to_ip(endpoint);
  if (!ip) return false;  // unknown or non-IP endpoint: a rule about it cannot be said to hold
  if (match.address && !in_network(*match.address, *ip)) return false;
  if (!match.ports.empty()) {
    const bool port_ok = std::any_of(match.ports.begin(), match.ports.end(), [&](PortRange r) {
      return r.lo <= ip->port && ip->port <= r.hi;
    });
    if (!port_ok) return false;
  }
  return true;
}

}  // namespace

bool Cidr::contains(const sockaddr *address) const {
  const std::optional<IpAddress> ip = to_ip(address);
  return ip && in_network(*this, *ip);
}

Effective Policy::match(const MatchQuery &query) const {
  for (const Rule &rule : rules) {
    if (matches(rule.match, query)) return Effective{&rule.settings, rule.name};
  }
  return Effective{&defaults, "defaults"};
}

}  // namespace ssx::policy
