// SPDX-License-Identifier: Apache-2.0
// tools/ssx/cmd_tunnel.cpp — `ssx tunnel`: secure programs that know nothing of ssx.
//
// Server mode accepts secured connections and forwards cleartext to a local service; client
// mode accepts local cleartext and forwards it secured. This file is the command line; the
// tunnel itself is tools/ssx/tunnel/ (tunnel.hpp is the entry point). docs/cli.md is the
// user's reference.

#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "common/server_policy.hpp"
#include "ssx/ssx.h"
#include "tunnel/systemd.hpp"
#include "tunnel/tunnel.hpp"

namespace ssx::cli {
namespace {

struct TunnelArgs {
  std::string policy;
  std::string mode;
  std::string listen;
  std::string to;
  std::vector<std::string> names;
  std::string metrics;
  unsigned workers = 0;
  unsigned max_handshakes = 0;
  unsigned max_handshakes_per_source = 64;
  double idle_timeout = 600;
  unsigned keepalive = 60;
  double grace = 30;
  double setup_timeout = 30;
  bool reuseport = false;
  std::string log_format = "text";
  std::string log_level = "info";
};

tunnel::SocketAddress resolve_option(const char *option, const tunnel::HostPort &hp, bool passive) {
  auto address = tunnel::resolve(hp, passive);
  if (!address) usage_error(std::string(option) + ": " + address.error().message);
  return *address;
}

tunnel::HostPort parse_option(const char *option, const std::string &text, bool allow_port_zero) {
  auto hp = tunnel::parse_host_port(text, allow_port_zero);
  if (!hp) usage_error(std::string(option) + " " + hp.error().message);
  return *hp;
}

// check_names has ssx parse each target name once, so a typo is a usage error at start-up
// rather than a failure of every connection.
void check_names(const std::vector<std::string> &names) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) failure(std::string("socket: ") + std::strerror(errno));
  ssx_security_settings settings{SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
  if (ssx_set_socket_security(fd, &settings, sizeof settings) != 0) {
    std::string why = ssx_last_error();
    ssx_close(fd);
    failure(why);
  }
  for (const auto &name : names) {
    if (ssx_set_socket_peer_target_name(fd, name.c_str(), nullptr, 0) != 0) {
      std::string why = ssx_last_error();
      ssx_close(fd);
      std::string message = "--name \"";
      message += name;
      message += "\": ";
      message += why;
      usage_error(message);
    }
  }
  ssx_close(fd);
}

std::chrono::milliseconds seconds_option(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

void run_tunnel(const TunnelArgs &args) {
  tunnel::Options options;
  options.mode = args.mode == "server" ? tunnel::Mode::server : tunnel::Mode::client;
  if (!args.policy.empty()) options.policy = args.policy;
  // systemd socket activation (ssx-tunnel@.socket): the listening socket comes ready-made.
  auto inherited = tunnel::systemd::listen_fds();
  if (!inherited) usage_error(inherited.error().message);
  if (!inherited->empty()) {
    if (!args.listen.empty()) {
      usage_error(
          "--listen and a socket passed by systemd (LISTEN_FDS) exclude each other: "
          "leave --listen out of a socket-activated tunnel");
    }
    options.inherited_listener = inherited->front();
  } else {
    if (args.listen.empty()) {
      usage_error("--listen is required (unless systemd passes the listening socket)");
    }
    options.listen = parse_option("--listen", args.listen, true);
    options.listen_address = resolve_option("--listen", options.listen, true);
  }
  options.to = parse_option("--to", args.to, false);
  options.to_address = resolve_option("--to", options.to, false);
  options.names = args.names;
  // Client mode: the peer must be who we dial. Without --name, that is the host of --to.
  if (options.mode == tunnel::Mode::client && options.names.empty()) {
    options.names.push_back(options.to.host);
  }
  check_names(options.names);
  if (!args.metrics.empty()) {
    options.metrics = parse_option("--metrics", args.metrics, true);
    options.metrics_address = resolve_option("--metrics", *options.metrics, true);
    if (!options.metrics_address->is_loopback()) {
      usage_error("--metrics " + args.metrics +
                  ": must be a loopback address (127.0.0.0/8 or ::1); the endpoint has no "
                  "authentication");
    }
  }
  options.workers = args.workers;
  if (options.workers == 0) {
    // One per CPU this process may run on (sched_getaffinity: honours taskset and cpusets).
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    int count = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 0;
    options.workers = static_cast<unsigned>(std::clamp(count, 1, 256));
  }
  options.max_handshakes = args.max_handshakes;
  options.max_handshakes_per_source = args.max_handshakes_per_source;
  options.idle_timeout = seconds_option(args.idle_timeout);
  options.keepalive = args.keepalive;
  options.grace = seconds_option(args.grace);
  options.setup_timeout = seconds_option(args.setup_timeout);
  options.reuseport = args.reuseport;
  (void)tunnel::parse_log_format(args.log_format, options.log_format);  // checked by CLI11
  (void)tunnel::parse_log_level(args.log_level, options.log_level);

  // The policy is loaded before anything listens: a broken file is a configuration error.
  tunnel::PolicySource policy(options.policy);
  check(policy.load(), kExitUsage);
  if (options.mode == tunnel::Mode::server) {
    check_server_policy(options.listen_address.get(),
                        tunnel::format_address(options.listen_address.get()),
                        !options.names.empty());
  }
  check(tunnel::run(options, policy));
}

}  // namespace

void register_tunnel(CLI::App &app) {
  auto args = std::make_shared<TunnelArgs>();
  CLI::App *cmd = app.add_subcommand(
      "tunnel", "Secure programs that know nothing of ssx: forward TCP through a secured hop");
  cmd->add_option("--policy", args->policy,
                  "Policy file (default: $SSX_POLICY, else /etc/ssx/policy.toml); SIGHUP "
                  "reloads it")
      ->option_text("FILE");
  cmd->add_option("--mode", args->mode,
                  "server: accept secured, forward cleartext to --to; client: accept "
                  "cleartext, forward secured to --to")
      ->required()
      ->check(CLI::IsMember({"server", "client"}));
  cmd->add_option("--listen", args->listen,
                  "ADDR:PORT to accept connections on (port 0: any). Required unless systemd "
                  "passes the listening socket (LISTEN_FDS, ssx-tunnel@.socket)")
      ->option_text("ADDR:PORT");
  cmd->add_option("--to", args->to, "ADDR:PORT to forward each connection to")
      ->option_text("ADDR:PORT REQUIRED")
      ->required();
  cmd->add_option("--name", args->names,
                  "Target name the secured peer must satisfy (repeatable): DNS name, IP, URI, "
                  "sha256: key pin. Client mode default: the host of --to. Server mode: names "
                  "client certificates must match")
      ->option_text("TARGET")
      ->type_size(1)
      ->allow_extra_args(false);
  cmd->add_option("--metrics", args->metrics,
                  "Loopback ADDR:PORT serving Prometheus metrics at /metrics (plain HTTP)")
      ->option_text("ADDR:PORT");
  cmd->add_option("--workers", args->workers, "Event-loop threads (default: one per CPU)")
      ->check(CLI::Range(1u, 256u));
  cmd->add_option("--max-handshakes", args->max_handshakes,
                  "Unfinished handshakes (connecting or handshaking) each worker keeps; past "
                  "it the oldest is dropped for the newcomer. 0: from the open files limit")
      ->check(CLI::Range(0u, 1000000u))
      ->capture_default_str();
  cmd->add_option("--max-handshakes-per-source", args->max_handshakes_per_source,
                  "A source's share (IPv4 address or IPv6 /64): with the budget full, a newcomer "
                  "from a source holding this many drops that source's oldest, not another's")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  cmd->add_option("--idle-timeout", args->idle_timeout,
                  "Seconds a connection may move nothing either way before both sides are "
                  "reset (0: never); the policy's idle_timeout_ms overrides it")
      ->check(CLI::Range(0.0, 604800.0))
      ->capture_default_str();
  cmd->add_option("--keepalive", args->keepalive,
                  "TCP keepalive on both sides: first probe after this many idle seconds, 4 "
                  "probes idle/4 apart (0: off)")
      ->check(CLI::Range(0u, 86400u))
      ->capture_default_str();
  cmd->add_option("--grace", args->grace,
                  "Seconds to drain open connections after SIGTERM before closing them")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  cmd->add_option("--setup-timeout", args->setup_timeout,
                  "Seconds a connection may take to connect and handshake (the policy's "
                  "handshake_timeout_ms applies within it)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_flag("--reuseport", args->reuseport,
                "Share the listening port with other processes that also set SO_REUSEPORT "
                "(e.g. a second tunnel for a restart without a gap); without it the port is "
                "this tunnel's alone and a port in use is an error");
  cmd->add_option("--log-format", args->log_format,
                  "Log lines on stderr as text (RFC 3339 time first) or json (one object per "
                  "line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_option("--log-level", args->log_level,
                  "Least severe lines logged: debug, info (every connection), warning (failed "
                  "connections), error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  cmd->footer(
      "\nSignals: SIGHUP reloads the policy and credentials (open connections keep theirs); "
      "SIGTERM stops accepting and drains for --grace seconds, a second SIGTERM closes at once."
      "\n\nExample:\n"
      "  # on the server host: TLS on :8443 in front of a local HTTP service\n"
      "  ssx tunnel --mode server --listen 0.0.0.0:8443 --to 127.0.0.1:8080\n"
      "  # on the client host: local programs talk cleartext to 127.0.0.1:8080\n"
      "  ssx tunnel --mode client --listen 127.0.0.1:8080 --to web.example.org:8443 "
      "--metrics 127.0.0.1:9100");
  cmd->callback([args] { run_tunnel(*args); });
}

}  // namespace ssx::cli
