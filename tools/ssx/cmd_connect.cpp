// SPDX-License-Identifier: Apache-2.0
// tools/ssx/cmd_connect.cpp — `ssx connect`: a secure netcat client.
//
// Connects to HOST:PORT with a socket secured by the policy, then copies standard input to the
// peer and the peer's bytes to standard output until both directions have ended (see
// common/relay.hpp for the half-close rules). docs/cli.md is the user's reference.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "common/address.hpp"
#include "common/connection_failure.hpp"
#include "common/policy_option.hpp"
#include "common/relay.hpp"
#include "common/security_json.hpp"
#include "common/security_options.hpp"
#include "common/unix_address.hpp"
#include "ssx/ssx.hpp"

namespace ssx::cli {
namespace {

struct ConnectOptions {
  std::string policy;
  SecurityOptions security;
  bool json = false;
  std::string address;
};

void run_connect(const ConnectOptions &opts) {
  ensure_standard_descriptors();
  const bool unix_path = is_unix_address(opts.address);
  HostPort target;
  UnixAddress unix_target;
  if (unix_path) {
    unix_target = check(parse_unix_address(opts.address), kExitUsage);
  } else {
    target = check(parse_host_port(opts.address), kExitUsage);
  }
  load_policy_option(opts.policy);
  // SIGPIPE would kill us when standard output's reader goes away; EPIPE is reported instead.
  (void)signal(SIGPIPE, SIG_IGN);

  // Without --name the host named on the command line is the name the peer must prove. An
  // AF_UNIX peer has no host name: the kernel attests its uid (--name unix:uid=N pins it).
  std::vector<std::string> names = opts.security.names;
  if (names.empty() && !unix_path) names.push_back(target.host);
  const std::string where =
      unix_path ? "unix:" + unix_target.path : format_host_port(target.host, target.port);
  auto connected =
      unix_path ? Socket::connect(unix_target.get(), unix_target.length,
                                  settings_from(opts.security, names))
                : Socket::connect(target.host, target.port, settings_from(opts.security, names));
  if (!connected) failure(connection_failure(where, connected.error().message));
  Socket socket = std::move(*connected);

  if (opts.security.allow_insecure || opts.json) {
    SecurityInfo info = check(socket.query_security());
    if (info.protocol == SSX_PROTOCOL_NONE) {
      // Cleartext was allowed (by --allow-insecure and the policy) and the peer took it: say so
      // every time, since nothing the user sees otherwise would tell.
      (void)std::fprintf(stderr,
                         "ssx: warning: %s does not speak TLS; connected in CLEARTEXT "
                         "(--allow-insecure, policy rule \"%s\"): nothing is encrypted and the "
                         "peer is not authenticated\n",
                         where.c_str(), info.policy_rule.c_str());
      (void)std::fflush(stderr);
    }
  }

  if (opts.json) {
    SecurityInfo info = check(socket.query_security());
    const std::string line = security_json(info).dump() + "\n";
    (void)std::fputs(line.c_str(), stderr);
    (void)std::fflush(stderr);
  }

  Relay relay(socket.native_handle(), Relay::Local{});
  const std::string error = run_relay(relay);
  if (!error.empty() && relay.output_reader_gone()) {
    // The reader of standard output left (`ssx connect ... | head -1`): it had what it wanted.
    // Exit quietly, as cat does; the peer sees a reset, not a clean end, since we did not read
    // all it sent.
    (void)ssx_abort(socket.release());
    return;
  }
  if (!error.empty()) failure(where + ": " + error);
}

}  // namespace

void register_connect(CLI::App &app) {
  auto opts = std::make_shared<ConnectOptions>();
  CLI::App *connect = app.add_subcommand(
      "connect", "Connect securely to HOST:PORT; relay stdin to the peer and the peer to stdout");
  add_policy_option(connect, opts->policy);
  add_security_options(connect, opts->security,
                       "Name the server must prove (repeatable; default: HOST): a DNS name, IP "
                       "address, URI such as spiffe://td/svc, or sha256:<SPKI hash>");
  connect->add_flag("--json", opts->json,
                    "Print what the query reported, as one JSON object on stderr, once the "
                    "handshake is done");
  connect
      ->add_option("HOST:PORT", opts->address,
                   "Where to connect; IPv6 as [::1]:443; unix:PATH for an AF_UNIX socket "
                   "(the peer attested by the kernel; --encrypt for TLS)")
      ->required();
  set_example(connect,
              "  echo hello | ssx connect --policy ./policy.toml db.example.org:4433\n"
              "  ssx connect --json --name spiffe://example.org/api [::1]:8443 < request.bin");
  connect->callback([opts] { run_connect(*opts); });
}

}  // namespace ssx::cli
