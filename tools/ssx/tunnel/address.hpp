// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/address.hpp — HOST:PORT on the command line, resolved once into a sockaddr.
//
// Forms: "127.0.0.1:8443", "[::1]:8443", "db.example:5432", "unix:/run/app.sock". The host is
// required (a tunnel states where it listens). Names are resolved at start-up; a --to that names
// a host (not an IP literal) is resolved again while the tunnel runs (resolver.hpp).

#ifndef SSX_TOOLS_SSX_TUNNEL_ADDRESS_HPP
#define SSX_TOOLS_SSX_TUNNEL_ADDRESS_HPP

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "ssx/result.hpp"

namespace ssx::cli::tunnel {

struct HostPort {
  std::string host;  // without brackets; empty for unix:PATH
  std::uint16_t port = 0;
  std::string unix_path;  // unix:PATH: the path; else empty
  bool is_unix() const { return !unix_path.empty(); }
  // is_name: a host to look up (not an IP literal, not unix:PATH).
  bool is_name() const;
};

// parse_host_port splits |text|, or takes "unix:PATH" (common/unix_address.hpp: a path of at
// most 107 bytes); port 0 is accepted only when |allow_port_zero| (listeners: the kernel picks a
// port, which the tunnel prints).
Result<HostPort> parse_host_port(const std::string &text, bool allow_port_zero);

// SocketAddress is one resolved address.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr *get() const { return reinterpret_cast<const sockaddr *>(&storage); }
  int family() const { return storage.ss_family; }
  // port is 0 for AF_UNIX; set_port does nothing there.
  std::uint16_t port() const;
  void set_port(std::uint16_t port);
  bool is_loopback() const;
};

// resolve returns the first address of |hp| (numeric hosts are never looked up in DNS; unix:PATH
// becomes its sockaddr_un); |passive| for addresses to bind. May block (getaddrinfo).
Result<SocketAddress> resolve(const HostPort &hp, bool passive);

// format_address renders an IPv4/IPv6 address as "1.2.3.4:80" or "[::1]:80", an AF_UNIX one
// as "unix:PATH".
std::string format_address(const sockaddr *address);

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_ADDRESS_HPP
