// SPDX-License-Identifier: Apache-2.0
// tools/ssx/cmd_connect.cpp — `ssx connect`: a secure netcat client.
//
// Connects to HOST:PORT with a socket secured by the policy, then copies standard input to the
// peer and the peer's bytes to standard output until both directions have ended (see
// common/relay.hpp for the half-close rules). docs/cli.md is the user's reference.

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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
  bool udp = false;
  std::string address;
};

// kUdpLinger is how long `connect --udp` goes on printing datagrams after standard input ended
// (a datagram peer has no end of stream unless it sends close_notify).
constexpr int kUdpLingerMs = 1000;

// run_connect_udp is `ssx connect --udp`: a connected UDP socket secured with DTLS; each line of
// standard input is one datagram, each datagram received is written to standard output as it is.
void run_connect_udp(const ConnectOptions &opts, const HostPort &target) {
  std::vector<std::string> names = opts.security.names;
  if (names.empty()) names.push_back(target.host);
  const std::string where = format_host_port(target.host, target.port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo *list = nullptr;
  const std::string port = std::to_string(target.port);
  if (::getaddrinfo(target.host.c_str(), port.c_str(), &hints, &list) != 0 || list == nullptr) {
    failure(connection_failure(where, "cannot resolve " + target.host));
  }
  const int family = list->ai_family;
  sockaddr_storage address{};
  const socklen_t address_length = list->ai_addrlen;
  std::memcpy(&address, list->ai_addr, list->ai_addrlen);
  ::freeaddrinfo(list);
  const int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) failure(std::string("socket: ") + std::strerror(errno));
  SecuritySettings settings = settings_from(opts.security, names);
  ssx_security_settings c{SSX_PROTOCOL_DEFAULT, 0};
  if (settings.guarantee_encryption) c.flags |= SSX_GUARANTEE_ENCRYPTION;
  if (ssx_set_socket_security(fd, &c, sizeof c) != 0) failure(ssx_last_error());
  for (const auto &name : names) {
    if (ssx_set_socket_peer_target_name(fd, name.c_str(), nullptr, 0) != 0) {
      failure(ssx_last_error());
    }
  }
  if (ssx_connect(fd, reinterpret_cast<sockaddr *>(&address), address_length) != 0) {
    failure(connection_failure(where, ssx_last_error()));
  }
  Socket socket(fd);
  if (opts.json) {
    SecurityInfo info = check(socket.query_security());
    const std::string line = security_json(info).dump() + "\n";
    (void)std::fputs(line.c_str(), stderr);
    (void)std::fflush(stderr);
  }
  std::string pending;  // standard input not yet ended by a newline
  bool input_open = true;
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    const int n = ::poll(p, input_open ? 2 : 1, input_open ? -1 : kUdpLingerMs);
    if (n < 0 && errno != EINTR) failure(std::string("poll: ") + std::strerror(errno));
    if (n == 0) break;  // standard input ended and the peer has been quiet for kUdpLingerMs
    if ((p[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
      char buf[65536];
      const ssize_t got = ssx_recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got == 0) break;  // the peer's close_notify
      if (got > 0) {
        if (::write(STDOUT_FILENO, buf, static_cast<size_t>(got)) < 0) break;
      } else if (errno != EAGAIN) {
        failure(where + ": " + ssx_last_error());
      }
    }
    if (input_open && (p[1].revents & (POLLIN | POLLHUP)) != 0) {
      char buf[4096];
      const ssize_t got = ::read(STDIN_FILENO, buf, sizeof buf);
      if (got <= 0) {
        input_open = false;
        if (!pending.empty()) {
          if (ssx_send(fd, pending.data(), pending.size(), 0) < 0) {
            failure(where + ": " + ssx_last_error());
          }
          pending.clear();
        }
        continue;
      }
      pending.append(buf, static_cast<size_t>(got));
      for (std::size_t end = pending.find('\n'); end != std::string::npos;
           end = pending.find('\n')) {
        if (ssx_send(fd, pending.data(), end + 1, 0) < 0) {
          failure(where + ": " + ssx_last_error());
        }
        pending.erase(0, end + 1);
      }
      if (pending.size() > 65507) failure("a line of standard input is longer than a datagram");
    }
  }
}

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
  if (opts.udp) {
    if (unix_path) usage_error("--udp needs HOST:PORT, not a unix: path");
    run_connect_udp(opts, target);
    return;
  }

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
  connect->add_flag("--udp", opts->udp,
                    "UDP secured with DTLS: each line of stdin is one datagram, each datagram "
                    "received is written to stdout");
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
