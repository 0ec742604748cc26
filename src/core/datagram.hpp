// SPDX-License-Identifier: Apache-2.0
// core/datagram.hpp — the peers of an unconnected UDP socket (ssx_sendto / ssx_recvfrom).
//
// One UDP socket, many peers: each peer address that completed a DTLS handshake has an
// Association (its own tls::Session, fed the datagrams that came from its address). The socket
// reads every datagram itself (recvfrom) and hands it to the association of its source address;
// a datagram from an unknown address goes to one reusable server session that runs
// DTLSv1_listen, so that state is only kept for a peer once it has returned a valid cookie
// (protocol/tls/cookie.hpp). Application datagrams wait in |ready| until ssx_recvfrom takes
// them. Everything here is guarded by the owning SecureSocket's lock (core/datagram.cpp holds
// its methods).

#ifndef SSX_CORE_DATAGRAM_HPP
#define SSX_CORE_DATAGRAM_HPP

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/effective.hpp"
#include "net/wait.hpp"
#include "protocol/tls/session.hpp"

namespace ssx::core {

// kMaxReadyDatagrams bounds the application datagrams held for ssx_recvfrom (docs/limits.md);
// beyond it new ones are dropped and counted, as a full socket buffer drops them.
inline constexpr std::size_t kMaxReadyDatagrams = 1024;

// peer_key names a peer address ("127.0.0.1:4433", "[::1]:4433").
std::string peer_key(const sockaddr *address);
// errno_failure_for_peers is a failed system call on an unconnected UDP socket.
Result<void> errno_failure_for_peers(int code);

struct Association {
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
  std::string key;
  std::string inbox;  // the datagram being handed to |session|
  std::unique_ptr<tls::Session> session;
  std::optional<Effective> effective;
  bool client = false;
  bool established = false;
  net::Clock::time_point start{};
  net::Clock::time_point deadline{};
  net::Clock::time_point last_active{};
  std::uint64_t handshake_ns = 0;
  std::optional<Failure> failure;  // a client handshake that failed, for its ssx_sendto
};

struct DatagramPeers {
  std::map<std::string, std::unique_ptr<Association>> associations;
  struct Ready {
    std::string key;
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
    std::string data;
  };
  std::deque<Ready> ready;
  // Server side: the inbound decision for this socket, made when the peers were set up (the
  // local address is the rule's match); unset when the socket was not bound then or the policy
  // gives it no server role (|server_refusal| says why).
  std::optional<Effective> server;
  std::optional<Failure> server_refusal;
  std::unique_ptr<tls::Session> listener;  // DTLSv1_listen for unknown addresses
  std::string listener_inbox;
  std::string buffer;                     // one datagram, read
  net::Clock::time_point next_service{};  // when timers next need looking at
  std::uint64_t dropped = 0;              // datagrams dropped: not DTLS of a known peer, ...
  std::uint64_t refused_peers = 0;        // new peers refused by max_peers
};

}  // namespace ssx::core

#endif  // SSX_CORE_DATAGRAM_HPP
