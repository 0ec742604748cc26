// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/tunnel.hpp — running `ssx tunnel`: listeners, workers, signals, metrics.
//
// The main thread owns the process: it opens the listeners (so that a port in use fails at
// start-up), starts one worker per core, then waits on a signalfd and serves the metrics
// endpoint. SIGHUP reloads the policy; SIGTERM/SIGINT stop accepting and drain (a second one
// closes at once). Workers block every signal; only the main thread takes them.

#ifndef SSX_TOOLS_SSX_TUNNEL_TUNNEL_HPP
#define SSX_TOOLS_SSX_TUNNEL_TUNNEL_HPP

#include <vector>

#include "options.hpp"
#include "policy_source.hpp"
#include "ssx/result.hpp"

namespace ssx::cli::tunnel {

// raise_open_file_limit sets the soft RLIMIT_NOFILE to the hard limit; returns the limit now
// in force.
unsigned long raise_open_file_limit();

// run runs the tunnel until it has been stopped and drained. A failure to start (a listener
// that cannot bind, ...) is returned; once running, it returns success.
Result<void> run(const Options &options, PolicySource &policy);

// run runs several tunnels in one process (--config): each its own listener and workers; one
// policy, one log, one metrics endpoint (counters summed over the tunnels), one signal handler.
// Process-wide settings (metrics, log, grace, resolve interval) are the first tunnel's.
Result<void> run(const std::vector<Options> &tunnels, PolicySource &policy);

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_TUNNEL_HPP
