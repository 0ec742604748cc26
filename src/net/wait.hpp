// SPDX-License-Identifier: Apache-2.0
// net/wait.hpp — waiting on a descriptor with a deadline, and descriptor facts.
//
// ssx never blocks inside OpenSSL: its BIO always uses non-blocking socket calls, and when a
// blocking ssx call must wait it waits here, outside every lock, so that one thread can send while
// another receives on the same socket.

#ifndef SSX_NET_WAIT_HPP
#define SSX_NET_WAIT_HPP

#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>

#include "ssx/result.hpp"

namespace ssx::net {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;

// wait_fd waits until |fd| is ready for |events| (POLLIN / POLLOUT), retrying on EINTR, until
// |deadline| (none = forever). ETIMEDOUT when the deadline passes; errno of poll(2) otherwise.
// POLLERR/POLLHUP count as ready: the next I/O call reports what happened.
Result<void> wait_fd(int fd, short events, Deadline deadline);

// is_nonblocking reports whether O_NONBLOCK is set on |fd|'s open file description.
bool is_nonblocking(int fd);

// socket_timeout returns the deadline SO_RCVTIMEO (|receive|) or SO_SNDTIMEO sets for a wait
// starting now, or none when the option is zero.
Deadline socket_timeout(int fd, bool receive);

// address_to_string formats an IPv4/IPv6 address with its port ("127.0.0.1:443", "[::1]:443").
std::string address_to_string(const sockaddr *address);

// address_port returns the port of an AF_INET/AF_INET6 address, 0 otherwise.
unsigned address_port(const sockaddr *address);

}  // namespace ssx::net

#endif  // SSX_NET_WAIT_HPP
