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
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "common/server_policy.hpp"
#include "ssx/ssx.h"
#include "tunnel/config.hpp"
#include "tunnel/systemd.hpp"
#include "tunnel/tunnel.hpp"

namespace ssx::cli {
namespace {

struct TunnelArgs {
  std::string config;
  std::string policy;
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
  double resolve_interval = 30;
};

// TunnelSpec is what differs between the tunnels of one process: one from the command line, or
// one per [tunnel.NAME] of --config. |where| prefixes its errors ("FILE:LINE:COLUMN: tunnel
// "web": " for --config; "" on the command line); |key_where| says where each key's value is.
struct TunnelSpec {
  std::string name;
  std::string mode;
  std::string listen;
  std::string to;
  std::vector<std::string> names;
  std::string proxy_protocol;
  bool proxy_protocol_given = false;  // even when empty: "--proxy-protocol ''" is an error
  std::map<std::string, std::string> key_where;
  std::string where(const std::string &key, const char *option) const {
    auto it = key_where.find(key);
    if (it == key_where.end()) return option;
    return it->second + ": tunnel \"" + name + "\": " + key;
  }
};

tunnel::SocketAddress resolve_option(const std::string &option, const tunnel::HostPort &hp,
                                     bool passive) {
  auto address = tunnel::resolve(hp, passive);
  if (!address) usage_error(option + ": " + address.error().message);
  return *address;
}

tunnel::HostPort parse_option(const std::string &option, const std::string &text,
                              bool allow_port_zero) {
  auto hp = tunnel::parse_host_port(text, allow_port_zero);
  if (!hp) usage_error(option + ": " + hp.error().message);
  return *hp;
}

// check_names has ssx parse each target name once, so a typo is a usage error at start-up
// rather than a failure of every connection.
void check_names(const std::vector<std::string> &names, const std::string &option) {
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
      std::string message = option;
      message += " \"";
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

unsigned default_workers() {
  // One per CPU this process may run on (sched_getaffinity: honours taskset and cpusets).
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  int count = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 0;
  return static_cast<unsigned>(std::clamp(count, 1, 256));
}

// tunnel_options turns |spec| and the options every tunnel shares into a tunnel's Options.
// |inherited|: a listening socket systemd passed (only for a tunnel from the command line).
tunnel::Options tunnel_options(const TunnelArgs &args, const TunnelSpec &spec, int inherited) {
  tunnel::Options options;
  options.name = spec.name;
  if (spec.mode != "server" && spec.mode != "client") {
    usage_error(spec.where("mode", "--mode") + ": \"" + spec.mode +
                "\" is not a mode (server or client)");
  }
  options.mode = spec.mode == "server" ? tunnel::Mode::server : tunnel::Mode::client;
  if (!args.policy.empty()) options.policy = args.policy;
  if (inherited >= 0) {
    options.inherited_listener = inherited;
  } else {
    const std::string where = spec.where("listen", "--listen");
    options.listen = parse_option(where, spec.listen, true);
    options.listen_address = resolve_option(where, options.listen, true);
    if (options.listen.is_unix() && args.reuseport) {
      usage_error(where + " " + spec.listen +
                  ": --reuseport is for TCP ports; a unix: socket path has one listener");
    }
  }
  const std::string to_where = spec.where("to", "--to");
  options.to = parse_option(to_where, spec.to, false);
  options.to_address = resolve_option(to_where, options.to, false);
  options.resolve_interval = seconds_option(args.resolve_interval);
  if (options.to.is_name() && options.resolve_interval.count() > 0) {
    options.to_resolved = std::make_shared<tunnel::ResolvedAddress>(options.to, options.to_address);
  }
  options.names = spec.names;
  // Client mode: the peer must be who we dial. Without --name, that is the host of --to (an
  // AF_UNIX peer has no host: the kernel attests its uid, which --name unix:uid=N pins).
  if (options.mode == tunnel::Mode::client && options.names.empty() && !options.to.is_unix()) {
    options.names.push_back(options.to.host);
  }
  check_names(options.names, spec.where("name", "--name"));
  if (spec.proxy_protocol_given) {
    const std::string where = spec.where("proxy_protocol", "--proxy-protocol");
    if (spec.proxy_protocol != "v2") {
      usage_error(where + ": \"" + spec.proxy_protocol +
                  "\" is not a PROXY protocol version this tunnel sends (v2)");
    }
    if (options.mode != tunnel::Mode::server) {
      usage_error(where +
                  ": only in server mode (the header tells the cleartext backend who "
                  "connected)");
    }
    options.proxy_protocol = true;
  }
  if (!args.metrics.empty()) {
    options.metrics = parse_option("--metrics", args.metrics, true);
    if (options.metrics->is_unix()) {
      usage_error("--metrics " + args.metrics + ": must be a loopback ADDR:PORT, not unix:PATH");
    }
    options.metrics_address = resolve_option("--metrics", *options.metrics, true);
    if (!options.metrics_address->is_loopback()) {
      usage_error("--metrics " + args.metrics +
                  ": must be a loopback address (127.0.0.0/8 or ::1); the endpoint has no "
                  "authentication");
    }
  }
  options.workers = args.workers != 0 ? args.workers : default_workers();
  options.max_handshakes = args.max_handshakes;
  options.max_handshakes_per_source = args.max_handshakes_per_source;
  options.idle_timeout = seconds_option(args.idle_timeout);
  options.keepalive = args.keepalive;
  options.grace = seconds_option(args.grace);
  options.setup_timeout = seconds_option(args.setup_timeout);
  options.reuseport = args.reuseport;
  (void)tunnel::parse_log_format(args.log_format, options.log_format);  // checked by CLI11
  (void)tunnel::parse_log_level(args.log_level, options.log_level);
  return options;
}

// warn_unix_names warns when an AF_UNIX secured side can never satisfy --name, or has none.
void warn_unix_names(const tunnel::Options &options, const std::string &label) {
  const bool secured_unix =
      options.mode == tunnel::Mode::server ? options.listen.is_unix() : options.to.is_unix();
  if (!secured_unix) return;
  for (const auto &name : options.names) {
    if (name.rfind("unix:uid=", 0) != 0) {
      (void)std::fprintf(stderr,
                         "ssx: warning: %s: --name \"%s\" can never match an AF_UNIX peer "
                         "(the kernel attests its uid: use --name unix:uid=N)\n",
                         label.c_str(), name.c_str());
    }
  }
  if (options.names.empty()) {
    (void)std::fprintf(stderr,
                       "ssx: warning: %s: any local user's process is accepted on the AF_UNIX "
                       "side (no --name unix:uid=N); the socket file's permissions are the only "
                       "restriction\n",
                       label.c_str());
  }
  (void)std::fflush(stderr);
}

void run_tunnel(const TunnelArgs &args, const TunnelSpec &cli) {
  std::vector<tunnel::Options> tunnels;
  std::optional<std::string> policy_path;
  if (!args.policy.empty()) policy_path = args.policy;

  if (!args.config.empty()) {
    auto config = tunnel::load_tunnel_config(args.config);
    if (!config) usage_error(config.error().message);
    if (config->policy) {
      if (policy_path && *policy_path != *config->policy) {
        usage_error(config->policy_where + ": policy \"" + *config->policy +
                    "\" differs from --policy \"" + *policy_path + "\"");
      }
      policy_path = config->policy;
    }
    TunnelArgs common = args;
    if (policy_path) common.policy = *policy_path;
    for (const auto &entry : config->tunnels) {
      TunnelSpec spec;
      spec.name = entry.name;
      spec.mode = entry.mode;
      spec.listen = entry.listen;
      spec.to = entry.to;
      spec.names = entry.names;
      spec.proxy_protocol = entry.proxy_protocol.value_or("");
      spec.proxy_protocol_given = entry.proxy_protocol.has_value();
      spec.key_where = entry.where;
      if (entry.policy) {
        // One policy per process (ssx_load_policy): a tunnel cannot have one of its own.
        if (!policy_path) {
          policy_path = entry.policy;
          common.policy = *policy_path;
        } else if (*policy_path != *entry.policy) {
          usage_error(entry.where.at("policy") + ": tunnel \"" + entry.name + "\": policy \"" +
                      *entry.policy + "\" differs from \"" + *policy_path +
                      "\", which the other tunnels use: ssx has one policy per process (select "
                      "settings per tunnel with [[rule]] port = ... in one policy, or run "
                      "another ssx tunnel)");
        }
      }
      tunnels.push_back(tunnel_options(common, spec, -1));
    }
    for (auto &t : tunnels) {
      if (policy_path) t.policy = policy_path;
    }
  } else {
    if (cli.mode.empty()) usage_error("--mode is required (or --config FILE)");
    if (cli.to.empty()) usage_error("--to is required (or --config FILE)");
    // systemd socket activation (ssx-tunnel@.socket): the listening socket comes ready-made.
    auto inherited = tunnel::systemd::listen_fds();
    if (!inherited) usage_error(inherited.error().message);
    int inherited_fd = -1;
    if (!inherited->empty()) {
      if (!cli.listen.empty()) {
        usage_error(
            "--listen and a socket passed by systemd (LISTEN_FDS) exclude each other: "
            "leave --listen out of a socket-activated tunnel");
      }
      inherited_fd = inherited->front();
    } else if (cli.listen.empty()) {
      usage_error("--listen is required (unless systemd passes the listening socket)");
    }
    tunnels.push_back(tunnel_options(args, cli, inherited_fd));
  }

  // The policy is loaded before anything listens: a broken file is a configuration error.
  tunnel::PolicySource policy(policy_path);
  check(policy.load(), kExitUsage);
  for (const auto &options : tunnels) {
    const std::string label =
        options.name.empty() ? "--listen " + cli.listen : "tunnel \"" + options.name + "\"";
    warn_unix_names(options, label);
    if (options.mode == tunnel::Mode::server) {
      check_server_policy(options.listen_address.get(),
                          tunnel::format_address(options.listen_address.get()),
                          !options.names.empty());
    }
  }
  check(tunnel::run(tunnels, policy));
}

}  // namespace

void register_tunnel(CLI::App &app) {
  auto args = std::make_shared<TunnelArgs>();
  CLI::App *cmd = app.add_subcommand(
      "tunnel", "Secure programs that know nothing of ssx: forward TCP through a secured hop");
  auto cli = std::make_shared<TunnelSpec>();
  CLI::Option *config =
      cmd->add_option("--config", args->config,
                      "TOML file of several tunnels to run in this process, each [tunnel.NAME] "
                      "with mode, listen, to and optionally name, proxy_protocol, policy (see "
                      "docs/cli.md); the other options apply to every tunnel")
          ->option_text("FILE");
  cmd->add_option("--policy", args->policy,
                  "Policy file (default: $SSX_POLICY, else /etc/ssx/policy.toml); SIGHUP "
                  "reloads it")
      ->option_text("FILE");
  cmd->add_option("--mode", cli->mode,
                  "server: accept secured, forward cleartext to --to; client: accept "
                  "cleartext, forward secured to --to. Required unless --config")
      ->check(CLI::IsMember({"server", "client"}))
      ->excludes(config);
  cmd->add_option("--listen", cli->listen,
                  "ADDR:PORT or unix:PATH to accept connections on (port 0: any). Required "
                  "unless systemd passes the listening socket (LISTEN_FDS, ssx-tunnel@.socket)")
      ->option_text("ADDR:PORT|unix:PATH")
      ->excludes(config);
  cmd->add_option("--to", cli->to,
                  "ADDR:PORT or unix:PATH to forward each connection to; a host name is looked "
                  "up again every --resolve-interval seconds. Required unless --config")
      ->option_text("ADDR:PORT|unix:PATH")
      ->excludes(config);
  cmd->add_option_function<std::string>(
         "--proxy-protocol",
         [cli](const std::string &value) {
           cli->proxy_protocol = value;
           cli->proxy_protocol_given = true;
         },
         "Server mode: send the backend a PROXY protocol header first, with the "
         "client's address and the peer's identity (v2 only; TLVs in docs/cli.md)")
      ->option_text("v2")
      ->excludes(config);
  cmd->add_option("--resolve-interval", args->resolve_interval,
                  "Seconds between lookups of a --to host name (new connections use the latest "
                  "address; a failed lookup keeps the last one). 0: look it up once, at start")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  cmd->add_option("--name", cli->names,
                  "Target name the secured peer must satisfy (repeatable): DNS name, IP, URI, "
                  "sha256: key pin. Client mode default: the host of --to. Server mode: names "
                  "client certificates must match")
      ->option_text("TARGET")
      ->type_size(1)
      ->allow_extra_args(false)
      ->excludes(config);
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
  cmd->callback([args, cli] { run_tunnel(*args, *cli); });
}

}  // namespace ssx::cli
