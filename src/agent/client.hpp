// SPDX-License-Identifier: Apache-2.0
// agent/client.hpp — one request to `ssx agent` and its response, within a deadline.
//
// Each call opens a fresh AF_UNIX connection to the agent's socket, so a restarted agent is used
// by the next call without anything to reset. The whole exchange (connect, send, receive) is
// bounded by |timeout| whatever the caller's sockets are doing: every step is non-blocking and
// waits in poll(2) for what is left of the deadline.
//
// The agent is trusted only if the kernel says it runs as root or as the user who owns the
// policy file (SO_PEERCRED); anyone else listening on the path is refused.
//
// Failures (errno, reason, message):
//   - no agent at the path, or it refused the connection: EACCES, AGENT_UNAVAILABLE,
//     "ssx agent at "/run/ssx/agent.sock" is not available: connect: No such file or directory";
//   - no complete answer within |timeout|: ETIMEDOUT, AGENT_UNAVAILABLE, "... did not answer
//     within 2000 ms";
//   - it closed the connection before answering (it died): EACCES, AGENT_UNAVAILABLE;
//   - a malformed answer: EACCES, AGENT_UNAVAILABLE;
//   - an error response: its errno (agent::to_errno; refusals are EACCES), reason
//     AGENT_REFUSED, the agent's message, e.g. "uid 1001 (alice) may not use key "host""; except
//     ESTALE when the agent no longer serves the certificate a signature was asked for.
//
// Thread safety: every function is safe to call from any thread.

#ifndef SSX_AGENT_CLIENT_HPP
#define SSX_AGENT_CLIENT_HPP

#include <sys/types.h>

#include <chrono>
#include <string>

#include "agent/protocol.hpp"
#include "ssx/result.hpp"

namespace ssx::agent {

struct Endpoint {
  std::string socket_path;
  std::chrono::milliseconds timeout{2000};
  uid_t trusted_uid = 0;  // besides root: the policy file's owner
};

Result<ChainResponse> fetch_chain(const Endpoint &agent, const ChainRequest &request);
Result<SignResponse> sign(const Endpoint &agent, const SignRequest &request);
// status asks for the agent's status text (`ssx agent status`).
Result<std::string> status(const Endpoint &agent);

}  // namespace ssx::agent

#endif  // SSX_AGENT_CLIENT_HPP
