// SPDX-License-Identifier: Apache-2.0
// tools/ssx/agentd/server.hpp — the `ssx agent` daemon: one thread, one epoll loop.
//
// Clients connect to an AF_UNIX stream socket. The kernel attests each client (SO_PEERCRED: uid,
// gid, pid) and the agent reads the program itself (/proc/PID/exe) when it accepts the
// connection. Requests and responses are agent/protocol.hpp frames.
//
// Bounds, so that no client can take the agent from the others:
//   - at most |max_connections| connections (beyond: accepted, answered "busy", closed);
//   - a request must arrive whole within |request_timeout| of its first byte;
//   - a connection with no request under way is closed after |idle_timeout|;
//   - a request body is at most agent::kMaxRequestBody bytes (a larger length: error + close);
//   - a response not yet taken by its client stops the connection reading more requests.
// Memory per connection is therefore bounded by one request and one response.
//
// A malformed request is answered with an error and the connection is closed; so is a refusal.
// SIGHUP reloads the policy (a failed reload keeps the keys in force and logs why); so does a
// change to the policy file or a file it names, once it has settled (the files' stat(2) stamps
// are the same at two checks a second apart). SIGTERM and SIGINT stop the agent.
//
// Log lines (stderr): one audit line per signature and per refusal, and one per reload:
//   ssx agent: audit time=2026-12-08T02:00:00Z uid=1001 user=alice pid=4242
//     program="/usr/sbin/nginx" key="host" rule="web" op=sign result=ok
// (one line; result=refused reason="..." for a refusal). Nothing about key material is logged.
//
// Status: a status request (`ssx agent status`) from root or the agent's own uid is answered with
// the keys loaded, the clients connected and the counters. With --metrics HOST:PORT the same
// counters are served as Prometheus text on GET /metrics (plain HTTP/1.0, one request per
// connection, at most 16 clients, 2 s each).

#ifndef SSX_TOOLS_SSX_AGENTD_SERVER_HPP
#define SSX_TOOLS_SSX_AGENTD_SERVER_HPP

#include <chrono>
#include <cstddef>
#include <string>

namespace ssx::cli::agent_daemon {

struct ServerOptions {
  std::string policy_path;
  std::string socket_path;
  std::string metrics;  // HOST:PORT for GET /metrics (Prometheus text), "" = none
  std::size_t max_connections = 4096;
  std::chrono::milliseconds request_timeout{2000};
  std::chrono::milliseconds idle_timeout{10000};
};

// run loads the keys, listens and serves until SIGTERM or SIGINT. Throws CommandError when it
// cannot start (policy invalid, socket path unusable).
void run(const ServerOptions &options);

// print_status asks the agent at |socket_path| for its status and prints it on stdout. Throws
// CommandError when it cannot.
void print_status(const std::string &socket_path);

}  // namespace ssx::cli::agent_daemon

#endif  // SSX_TOOLS_SSX_AGENTD_SERVER_HPP
