// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/address.hpp — HOST:PORT on the command line: parse it, print it back.
//
// Shared by the subcommands that connect or listen (connect, listen, tunnel). IPv6 literals take
// brackets, as in URLs: "[::1]:443". Nothing here resolves names or touches the network.

#ifndef SSX_TOOLS_SSX_COMMON_ADDRESS_HPP
#define SSX_TOOLS_SSX_COMMON_ADDRESS_HPP

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "ssx/result.hpp"

namespace ssx::cli {

struct HostPort {
  std::string host;  // a DNS name or an IP literal without brackets; "" = every local address
  std::uint16_t port = 0;
};

struct HostPortRules {
  bool allow_empty_host = false;  // ":8443" (listen on every address)
  bool allow_port_zero = false;   // ":0" (listen on a port the kernel picks)
};

// parse_host_port parses "HOST:PORT", "[IPV6]:PORT" and, when |rules| allow it, ":PORT".
// EINVAL with a message quoting |text| and saying what is wrong, e.g. that "::1:443" needs
// brackets or that the port is out of range.
Result<HostPort> parse_host_port(std::string_view text, HostPortRules rules = {});

// format_host_port is the inverse: brackets around IPv6 literals, "HOST:PORT" otherwise.
std::string format_host_port(const std::string &host, std::uint16_t port);

// format_address formats an AF_INET/AF_INET6 socket address as "127.0.0.1:4433" or
// "[::1]:4433", an AF_UNIX one as "unix:PATH" (unix_address.hpp); other families as
// "(unknown address)".
std::string format_address(const sockaddr *address);

// peer_address_of / local_address_of format the peer or local address of socket |fd|.
std::string peer_address_of(int fd);
std::string local_address_of(int fd);

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_ADDRESS_HPP
