// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/systemd.hpp — `ssx tunnel` under systemd: socket activation and sd_notify.
//
// Socket activation: systemd opens the listening socket (ssx-tunnel@.socket) and passes it as
// fd 3 with LISTEN_FDS=1 and LISTEN_PID=<our pid>; the tunnel then serves that socket instead of
// opening one for --listen. Readiness: with Type=notify, systemd waits for READY=1, and is told
// RELOADING=1 ... READY=1 around a SIGHUP reload and STOPPING=1 when the tunnel drains. Without
// systemd (no LISTEN_FDS, no NOTIFY_SOCKET) every call here does nothing.
//
// Built on libsystemd's sd_listen_fds/sd_is_socket/sd_notify. A build without libsystemd
// (-DSSX_SYSTEMD=OFF) refuses LISTEN_FDS loudly rather than ignoring the sockets it was given.

#ifndef SSX_TOOLS_SSX_TUNNEL_SYSTEMD_HPP
#define SSX_TOOLS_SSX_TUNNEL_SYSTEMD_HPP

#include <string>
#include <vector>

#include "options.hpp"
#include "ssx/result.hpp"

namespace ssx::cli::tunnel::systemd {

// listen_fds returns the listening sockets systemd passed to this process (none when LISTEN_FDS
// is unset or LISTEN_PID names another process) and unsets LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES
// so that programs the tunnel might start do not take them. The descriptors are made
// non-blocking and close-on-exec. Fails (EINVAL) when more than one socket is passed or one is
// not a listening stream socket, and (ENOTSUP) in a build without libsystemd.
Result<std::vector<int>> listen_fds();

// adopt_listeners turns the one socket systemd passed (|options.inherited_listener|) into one
// listener per worker (duplicates of it), secured in server mode as open_listeners secures its
// own, and sets |address| to the address it is bound to. Takes ownership of the inherited fd.
Result<std::vector<int>> adopt_listeners(const Options &options, SocketAddress &address);

// sd_notify messages; each is a no-op without $NOTIFY_SOCKET.
void notify_ready(const std::string &status);
void notify_reloading();
void notify_stopping();

}  // namespace ssx::cli::tunnel::systemd

#endif  // SSX_TOOLS_SSX_TUNNEL_SYSTEMD_HPP
