// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/listener.hpp — the listening sockets of `ssx tunnel`, one per worker.
//
// By default the port is the tunnel's alone: one socket is bound without SO_REUSEPORT and every
// worker gets its own descriptor for it (dup), so the workers share one accept queue and no other
// process can bind the port while the tunnel holds it — not even one that sets SO_REUSEPORT
// (Linux lets a socket join a port only when every socket bound there set it). A second tunnel
// started by mistake on the same port fails with "address in use" instead of silently taking a
// share of the clients under its own, possibly weaker, policy.
//
// With --reuseport each worker binds its own SO_REUSEPORT socket: the kernel spreads connections
// over the workers' queues, and other processes of the same user that also set SO_REUSEPORT (a
// second tunnel with --reuseport, for a restart without a gap) share the port deliberately.

#ifndef SSX_TOOLS_SSX_TUNNEL_LISTENER_HPP
#define SSX_TOOLS_SSX_TUNNEL_LISTENER_HPP

#include <cstdint>
#include <vector>

#include "options.hpp"
#include "ssx/result.hpp"
#include "ssx/ssx.h"

namespace ssx::cli::tunnel {

// secured_flags is the ssx_security_settings flags of a secured socket of |family|:
// SSX_GUARANTEE_ENCRYPTION (TLS) for TCP; 0 for AF_UNIX, where ssx secures the connection by
// kernel attestation (SSX_PROTOCOL_LOCAL: the peer's uid, gid and pid from SO_PEERCRED, principal
// "unix:uid=N", names "unix:uid=N") and the bytes never leave the host.
inline std::uint32_t secured_flags(int family) {
  return family == AF_UNIX ? 0U : SSX_GUARANTEE_ENCRYPTION;
}

// open_listeners opens |options.workers| listening descriptors on |address| (secured in server
// mode), as described above. With port 0 the kernel's choice is written back to |address|.
// unix:PATH: a stale socket file at PATH (nobody listens) is removed first; a live one is
// EADDRINUSE, anything else at PATH EEXIST. The caller removes the file on the way out.
// Failure: the errno of bind/listen with "cannot listen on ADDR: reason".
// With a socket systemd passed (|options.inherited_listener|), that socket is adopted instead
// (systemd::adopt_listeners).
Result<std::vector<int>> open_listeners(const Options &options, SocketAddress &address);

// secure_listener applies the listener's settings to |fd| (server mode: encryption required,
// client certificates must match --name; client mode: nothing): accepted connections inherit
// them. Failure: errno and ssx_last_error()'s reason; |fd| stays open either way.
Result<void> secure_listener(const Options &options, int fd);

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_LISTENER_HPP
