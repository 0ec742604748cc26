// SPDX-License-Identifier: Apache-2.0
// tools/ssx/cmd_listen.cpp — `ssx listen`: a secure netcat server, and with --exec a small inetd.
//
// Without --exec: one connection at a time, relayed to standard input and output; the next
// connection is accepted when the current one has ended. With --exec CMD: every connection gets
// its own CMD process, with the peer's identity in its environment (and, with --impersonate, the
// peer's mapped local account as its credentials); connections are served concurrently by one
// poll loop.
//
// Why the child is not handed the socket itself: the TLS session (keys, sequence numbers) lives
// in this process's memory, and without kernel TLS the kernel cannot encrypt for the child. So
// the child gets one end of a socketpair as stdin and stdout and talks plaintext; this process
// relays that to the peer through the ssx socket, encrypted, with half-close passed on both ways.
//
// Everything is one thread: the listener is non-blocking, handshakes are driven with
// ssx_handshake/ssx_wants (so a slow client never holds up the others; the policy's
// client_hello_timeout_ms and handshake_timeout_ms are enforced by calling ssx_handshake at
// least once a second), children are watched with pidfds and reaped with waitpid.
//
// Slow clients: connections are accepted whatever is going on, up to a handshake budget derived
// from the descriptor limit (common/handshake_budget.hpp): past it, or past 64 unfinished
// handshakes from one source, the oldest unfinished handshake is dropped. Only connections whose
// handshake succeeded wait their turn: without --exec one is relayed at a time, the next in the
// order their handshakes finished; with --exec up to 256 commands run at once.
//
// A command that dies by a signal or exits non-zero ends the stream with a reset (ssx_abort),
// never close_notify: the peer must not take its partial output for a complete answer.
// docs/cli.md is the user's reference.

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/text.hpp"
#include "command.hpp"
#include "common/address.hpp"
#include "common/handshake_budget.hpp"
#include "common/log_sink.hpp"
#include "common/next_wait.hpp"
#include "common/policy_option.hpp"
#include "common/relay.hpp"
#include "common/security_json.hpp"
#include "common/security_options.hpp"
#include "common/server_policy.hpp"
#include "common/spawn.hpp"
#include "common/unix_address.hpp"
#include "ssx/ssx.hpp"

namespace ssx::cli {
namespace {

// With --exec, at most this many commands run at once; further established connections wait.
constexpr size_t kMaxCommands = 256;
// Unfinished handshakes kept from one source address (IPv4 address or IPv6 /64).
constexpr size_t kMaxHandshakesPerSource = 64;
// Handshakes are nudged this often so that handshake_timeout_ms fires for silent clients.
constexpr int kTickMs = 1000;
// Children are checked this often on kernels without pidfds.
constexpr int kChildPollMs = 100;

// The environment variables a command started by --exec gets; inherited values are removed.
constexpr const char *kPeerVariables[] = {"SSX_PEER_PRINCIPAL", "SSX_PEER_USER", "SSX_PEER_ADDRESS",
                                          "SSX_PROTOCOL", "SSX_CIPHER"};

struct ListenOptions {
  std::string policy;
  SecurityOptions security;
  bool json = false;
  bool once = false;
  bool exec = false;
  bool impersonate = false;
  bool udp = false;
  double idle_timeout = 0;  // seconds; 0: none (the policy's idle_timeout_ms overrides)
  unsigned keepalive = 60;  // seconds; 0: off
  std::string address;
  std::vector<std::string> command;  // after --exec
};

void close_fd(int &fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// accept_failure says why a connection could not be established, from errno and
// ssx_last_error(): refused by the policy, or a failed handshake.
std::string accept_failure(int err) {
  return std::string(err == EACCES ? "refused by policy: " : "handshake failed: ") +
         ssx_last_error();
}

// The listener's log: standard error, written only when that cannot block, so that a log
// nobody reads never stops the server (lines that cannot be written are dropped and counted).
StderrLog &log() {
  static StderrLog instance;
  return instance;
}

void warn(const std::string &message) {
  log().line(message);
}

class Server {
 public:
  Server(const ListenOptions &opts, Listener listener)
      : opts_(opts),
        listener_(std::move(listener)),
        budget_(HandshakeBudget::Limits{derive_budget(1), kMaxHandshakesPerSource}) {}

  // run serves until killed, or with --once until the first connection has ended; it returns
  // that connection's failure, "" when it succeeded.
  std::string run();

 private:
  struct Connection {
    Socket socket;
    std::string from;  // the peer's address, for messages
    bool established = false;
    bool started = false;  // established and given its relay (or command)
    std::chrono::milliseconds idle_timeout{0};
    std::chrono::steady_clock::time_point last_active{};
    std::uint64_t last_bytes = 0;
    std::unique_ptr<Relay> relay;
    int local = -1;  // our end of the child's socketpair
    pid_t pid = -1;
    int pidfd = -1;
    int sock_index = -1, pidfd_index = -1;
    std::string error;
    bool finished = false;

    ~Connection() {
      close_fd(local);
      close_fd(pidfd);
    }
  };

  bool accepting() const;
  void accept_all();
  void start_waiting();
  void check_idle();
  size_t active() const;
  void step(Connection &c, const std::vector<pollfd> &fds);
  void on_established(Connection &c);
  void start_command(Connection &c, const SecurityInfo &info);
  void watch_child(Connection &c, bool exited_hint);
  void end(Connection &c, const std::string &error, bool abort = false);

  const ListenOptions &opts_;
  Listener listener_;
  HandshakeBudget budget_;
  size_t waiting_ = 0;  // established, waiting for their turn (counted once per round)
  std::chrono::steady_clock::time_point next_idle_check_{};
  bool listener_open_ = true;
  bool accepted_one_ = false;
  std::chrono::steady_clock::time_point accept_paused_until_{};
  std::chrono::steady_clock::time_point accept_warned_at_{};
  unsigned long accept_warnings_suppressed_ = 0;
  std::list<Connection> connections_;
  std::string once_error_;
};

bool Server::accepting() const {
  if (!listener_open_) return false;
  if (std::chrono::steady_clock::now() < accept_paused_until_) return false;
  if (opts_.once) return connections_.empty();
  // Handshakes never block accepting (the budget sheds the oldest); established connections
  // waiting for their turn do, past the budget, so that they stay bounded too.
  return waiting_ < budget_.limits().total;
}

size_t Server::active() const {
  size_t n = 0;
  for (const Connection &c : connections_) n += c.started && !c.finished ? 1 : 0;
  return n;
}

void Server::start_waiting() {
  // Standard input and output serve one connection at a time; --exec up to kMaxCommands.
  const size_t limit = opts_.exec ? kMaxCommands : 1;
  size_t running = active();
  for (Connection &c : connections_) {
    if (running >= limit) return;
    if (c.finished || !c.established || c.started) continue;
    c.started = true;
    ++running;
    on_established(c);
  }
}

void Server::check_idle() {
  const auto now = std::chrono::steady_clock::now();
  for (Connection &c : connections_) {
    if (c.finished || !c.relay || c.idle_timeout.count() == 0) continue;
    const std::uint64_t bytes = c.relay->bytes_sent() + c.relay->bytes_received();
    if (bytes != c.last_bytes) {
      c.last_bytes = bytes;
      c.last_active = now;
    } else if (now - c.last_active >= c.idle_timeout) {
      end(c,
          "nothing moved either way for " + std::to_string(c.idle_timeout.count()) +
              " ms (idle timeout: the policy's idle_timeout_ms, else --idle-timeout); reset",
          true);
    }
  }
}

void Server::accept_all() {
  while (accepting()) {
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    int fd = ssx_accept(listener_.native_handle(), reinterpret_cast<sockaddr *>(&from), &from_len);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors or memory: wait for connections to end instead of spinning.
        // Rate-limited: this repeats every second for as long as descriptors are short.
        const auto now = std::chrono::steady_clock::now();
        if (now - accept_warned_at_ >= std::chrono::seconds(10)) {
          std::string text = std::string("warning: cannot accept: ") + ssx_last_error();
          if (accept_warnings_suppressed_ > 0) {
            text += " (" + std::to_string(accept_warnings_suppressed_) +
                    " more like this in the last 10 s not logged)";
          }
          warn(text);
          accept_warned_at_ = now;
          accept_warnings_suppressed_ = 0;
        } else {
          ++accept_warnings_suppressed_;
        }
        accept_paused_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        return;
      }
      // ssx_accept may already have run (and failed) the handshake, or the policy refuses the
      // connection outright (no server certificate, a deny rule).
      std::string reason = "connection from " +
                           format_address(reinterpret_cast<sockaddr *>(&from)) + ": " +
                           accept_failure(err);
      if (opts_.once) {
        once_error_ = reason;
        accepted_one_ = true;
        listener_open_ = false;
        return;
      }
      warn(reason);
      continue;
    }
    Connection &c = connections_.emplace_back();
    c.socket = Socket(fd);
    c.from = format_address(reinterpret_cast<sockaddr *>(&from));
    if (opts_.keepalive > 0) {
      int on = 1;
      int idle = static_cast<int>(opts_.keepalive);
      int interval = std::max(1, idle / 4);
      int count = 4;
      (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
      (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
      (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
      (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    }
    // Room for the newcomer: the oldest unfinished handshakes go when the budget is full.
    for (HandshakeBudget::Token t : budget_.admit(&c, from)) {
      // Only live, unfinished connections are in the budget (end() takes them out).
      end(*const_cast<Connection *>(static_cast<const Connection *>(t)),
          "dropped: oldest unfinished handshake (too many at once)", true);
    }
    if (opts_.once) {
      accepted_one_ = true;
      listener_open_ = false;
      listener_ = Listener();  // later clients are refused rather than left waiting
    }
  }
}

void Server::end(Connection &c, const std::string &error, bool abort) {
  if (!error.empty() && c.error.empty()) c.error = error;
  budget_.finished(&c);
  c.relay.reset();
  if (c.socket.is_open()) {
    if (abort) {
      ssx_abort(c.socket.release());  // a reset: the peer must not see a clean end
    } else {
      c.socket.close();  // close_notify unless the relay already sent it
    }
  }
  close_fd(c.local);      // the child reads end of file
  if (c.pid > 0) return;  // finished once the child is reaped
  c.finished = true;
  if (!c.error.empty()) {
    std::string message = "connection from " + c.from + ": " + c.error;
    if (opts_.once) {
      once_error_ = message;
    } else {
      warn(message);
    }
  }
}

void Server::watch_child(Connection &c, bool exited_hint) {
  if (c.pid <= 0) return;
  if (!exited_hint && c.pidfd >= 0) return;
  int status = 0;
  pid_t r = waitpid(c.pid, &status, WNOHANG);
  if (r == 0) return;  // still running
  c.pid = -1;
  close_fd(c.pidfd);
  std::string failed;
  if (r > 0 && WIFSIGNALED(status)) {
    failed = opts_.command.front() + " was killed by signal " + std::to_string(WTERMSIG(status)) +
             " (" + strsignal(WTERMSIG(status)) + ")";
  } else if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    failed = opts_.command.front() + " exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (!failed.empty()) {
    // Its output may be cut short: reset the stream rather than end it with close_notify.
    end(c, failed + "; connection reset", true);
    return;
  }
  // Whatever it left unread is dropped; what it wrote is still relayed until its end of file,
  // which may now become close_notify.
  if (c.relay) {
    c.relay->output_gone();
    c.relay->release_end();
    c.relay->pump();
  }
  if (!c.socket.is_open()) end(c, "");
}

void Server::start_command(Connection &c, const SecurityInfo &info) {
  SpawnRequest request;
  request.argv = opts_.command;
  request.unset.assign(std::begin(kPeerVariables), std::end(kPeerVariables));
  auto set = [&request](const char *name, const std::string &value) {
    if (!value.empty()) request.set.emplace_back(name, value);
  };
  set("SSX_PEER_PRINCIPAL", info.peer_principal);
  if (info.peer_account) set("SSX_PEER_USER", info.peer_account->user);
  set("SSX_PEER_ADDRESS", c.from);
  set("SSX_PROTOCOL", protocol_name(info.protocol));
  set("SSX_CIPHER", info.cipher);

  if (opts_.impersonate) {
    if (!info.peer_account) {
      const std::string who =
          info.peer_principal.empty() ? "(no principal)" : "\"" + info.peer_principal + "\"";
      end(c, "refused: --impersonate, but the peer " + who +
                 " maps to no local account (the policy has no [[identity]] for it)");
      return;
    }
    RunAs as;
    as.user = info.peer_account->user;
    as.uid = info.peer_account->uid;
    as.gid = info.peer_account->gid;
    as.groups = info.peer_account->groups;
    request.run_as = std::move(as);
  }

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    end(c, std::string("socketpair: ") + std::strerror(errno));
    return;
  }
  request.stdio = pair[1];
  auto pid = spawn(request);
  ::close(pair[1]);
  if (!pid) {
    ::close(pair[0]);
    end(c, pid.error().message);
    return;
  }
  c.pid = *pid;
  c.pidfd = open_pidfd(c.pid);
  c.local = pair[0];
  (void)fcntl(c.local, F_SETFL, fcntl(c.local, F_GETFL) | O_NONBLOCK);
  Relay::Local local;
  local.in = local.out = c.local;
  local.nonblocking = true;
  local.in_name = "the output of " + opts_.command.front();
  local.out_name = "the input of " + opts_.command.front();
  c.relay = std::make_unique<Relay>(c.socket.native_handle(), std::move(local),
                                    Relay::OnOutputClosed::discard);
  c.relay->hold_end();  // close_notify only once CMD has exited 0 (watch_child)
}

void Server::on_established(Connection &c) {
  auto info = c.socket.query_security();
  if (!info) {
    end(c, "query failed: " + info.error().message);
    return;
  }
  c.idle_timeout =
      info->idle_timeout_ms >= 0
          ? std::chrono::milliseconds(info->idle_timeout_ms)
          : std::chrono::milliseconds(static_cast<long long>(opts_.idle_timeout * 1000));
  c.last_active = std::chrono::steady_clock::now();
  if (opts_.json) {
    const std::string line = security_json(*info).dump() + "\n";
    log().raw(line);
  }
  if (opts_.exec) {
    start_command(c, *info);
  } else {
    c.relay = std::make_unique<Relay>(c.socket.native_handle(), Relay::Local{});
  }
}

void Server::step(Connection &c, const std::vector<pollfd> &fds) {
  if (!c.established) {
    // Called every round, whatever poll said: this is also where a handshake times out.
    if (ssx_handshake(c.socket.native_handle()) == 0) {
      c.established = true;
      budget_.finished(&c);
      start_waiting();
      if (!c.started) return;  // waits for its turn
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      end(c, accept_failure(errno));
      return;
    } else {
      return;
    }
  } else if (c.relay) {
    c.relay->handle(fds);
  }
  if (c.finished) return;
  const bool exited = c.pidfd_index >= 0 && fds[c.pidfd_index].revents != 0;
  watch_child(c, exited || c.pidfd < 0);
  if (c.finished) return;
  if (c.relay) {
    c.relay->pump();
    if (c.relay->done()) end(c, c.relay->error());
  }
}

std::string Server::run() {
  int flags = fcntl(listener_.native_handle(), F_GETFL);
  (void)fcntl(listener_.native_handle(), F_SETFL, flags | O_NONBLOCK);
  std::vector<pollfd> fds;
  for (;;) {
    connections_.remove_if([](const Connection &c) { return c.finished; });
    if (opts_.once && accepted_one_ && connections_.empty()) return once_error_;
    start_waiting();
    waiting_ = 0;
    for (const Connection &c : connections_) waiting_ += c.established && !c.started ? 1 : 0;
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_idle_check_) {
      check_idle();
      next_idle_check_ = now + std::chrono::milliseconds(200);
      connections_.remove_if([](const Connection &c) { return c.finished; });
    }

    fds.clear();
    int listen_index = -1;
    int timeout = -1;
    if (accepting()) {
      fds.push_back(pollfd{listener_.native_handle(), POLLIN, 0});
      listen_index = 0;
    } else if (listener_open_ && std::chrono::steady_clock::now() < accept_paused_until_) {
      timeout = kTickMs;  // accepting is paused after an error; look again later
    }
    for (Connection &c : connections_) {
      c.sock_index = c.pidfd_index = -1;
      if (c.established && !c.started) continue;  // waits for its turn; nothing to watch
      if (c.relay && c.idle_timeout.count() > 0)
        timeout = timeout < 0 ? 200 : std::min(timeout, 200);
      if (!c.established) {
        const NextWait wait = next_wait(c.socket.native_handle(), POLLIN);
        c.sock_index = static_cast<int>(fds.size());
        fds.push_back(pollfd{c.socket.native_handle(), wait.events, 0});
        // Finished already, with input held (poll cannot see it): step it without waiting.
        timeout = wait.now || timeout == 0 ? 0 : kTickMs;
        continue;
      }
      if (c.relay && !c.relay->done()) c.relay->add_pollfds(fds);
      if (c.pid > 0 && c.pidfd >= 0) {
        c.pidfd_index = static_cast<int>(fds.size());
        fds.push_back(pollfd{c.pidfd, POLLIN, 0});
      } else if (c.pid > 0) {
        timeout = timeout < 0 ? kChildPollMs : std::min(timeout, kChildPollMs);
      }
    }
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) return std::string("poll: ") + std::strerror(errno);
    if (n < 0) continue;
    if (listen_index >= 0 && fds[listen_index].revents != 0) accept_all();
    for (Connection &c : connections_) {
      if (!c.finished) step(c, fds);
    }
  }
}

// run_listen_udp is `ssx listen --udp`: one UDP socket secured with DTLS serving every client
// (ssx_recvfrom); each datagram received is written to standard output (with --json: one JSON
// object per line with the peer's address, its verified identity and the data), and each line
// of standard input is sent as one datagram to the peer heard from last. Runs until killed.
void run_listen_udp(const ListenOptions &opts, const HostPort &where) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
  addrinfo *list = nullptr;
  const std::string port = std::to_string(where.port);
  if (::getaddrinfo(where.host.empty() ? nullptr : where.host.c_str(), port.c_str(), &hints,
                    &list) != 0 ||
      list == nullptr) {
    usage_error("--udp: " + base::quote(where.host) + " is not an IPv4 or IPv6 address");
  }
  auto socket =
      DatagramSocket::open(list->ai_family, settings_from(opts.security, opts.security.names),
                           list->ai_addr, list->ai_addrlen);
  ::freeaddrinfo(list);
  if (!socket) {
    failure("cannot listen on UDP " + format_host_port(where.host, where.port) + ": " +
            socket.error().message);
  }
  const int fd = socket->native_handle();
  {
    // The server modes' safe defaults (a certificate; client certificates unless the policy
    // says otherwise), checked before the first datagram is served.
    sockaddr_storage local{};
    socklen_t local_len = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&local), &local_len) == 0) {
      check_server_policy(reinterpret_cast<sockaddr *>(&local),
                          format_address(reinterpret_cast<sockaddr *>(&local)),
                          !opts.security.names.empty(), opts.security.encrypt);
    }
  }
  warn("listening on UDP " + local_address_of(fd));
  std::optional<Datagram> last;
  std::string pending;
  bool input_open = true;
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    const int timer = socket->timeout_ms();
    (void)::poll(p, input_open ? 2 : 1, timer >= 0 ? std::min(timer, 1000) : 1000);
    for (int i = 0; i < 256; ++i) {  // whatever is ready, then wait again
      std::vector<std::byte> buf(65536);
      auto d = socket->receive_from(buf, MSG_DONTWAIT);
      if (!d) {
        if (d.error().code != EAGAIN) warn("receive: " + d.error().message);
        break;
      }
      last = *d;
      const std::string data(reinterpret_cast<const char *>(buf.data()), d->length);
      if (opts.json) {
        nlohmann::ordered_json out;
        out["peer"] = format_address(d->peer_address());
        auto info = socket->query_security(d->peer_address(), d->peer_length);
        if (info) out["security"] = security_json(*info);
        out["data"] = data;
        const std::string line =
            out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
        (void)std::fputs(line.c_str(), stdout);
        (void)std::fflush(stdout);
      } else if (::write(STDOUT_FILENO, data.data(), data.size()) < 0) {
        return;  // the reader of standard output went away
      }
    }
    if (input_open && (p[1].revents & (POLLIN | POLLHUP)) != 0) {
      char buf[4096];
      const ssize_t got = ::read(STDIN_FILENO, buf, sizeof buf);
      if (got <= 0) {
        input_open = false;  // a server goes on serving
        continue;
      }
      pending.append(buf, static_cast<size_t>(got));
      for (std::size_t end = pending.find('\n'); end != std::string::npos;
           end = pending.find('\n')) {
        if (!last) {
          warn("no peer yet: line of standard input dropped");
        } else {
          auto sent = socket->send_to(std::as_bytes(std::span(pending.data(), end + 1)),
                                      last->peer_address(), last->peer_length);
          if (!sent) warn("send: " + sent.error().message);
        }
        pending.erase(0, end + 1);
      }
      if (pending.size() > 65507) pending.clear();
    }
  }
}

void run_listen(ListenOptions &opts) {
  ensure_standard_descriptors();
  if (opts.exec && opts.command.empty()) {
    usage_error("--exec needs a command: ssx listen ADDR:PORT --exec CMD [ARG...]");
  }
  if (!opts.command.empty() && (!opts.exec || opts.command.front().rfind('-', 0) == 0)) {
    const std::string &word = opts.command.front();
    if (word.rfind('-', 0) == 0) {
      usage_error("unknown option " + word +
                  " (options go before ADDR:PORT; everything after --exec CMD is CMD's)");
    }
    usage_error("unexpected argument \"" + word + "\" (to run a command: --exec " + word + ")");
  }
  if (opts.impersonate && !opts.exec) usage_error("--impersonate needs --exec CMD");
  const bool unix_path = is_unix_address(opts.address);
  HostPort where;
  UnixAddress unix_where;
  if (unix_path) {
    unix_where = check(parse_unix_address(opts.address), kExitUsage);
  } else {
    where =
        check(parse_host_port(opts.address, {.allow_empty_host = true, .allow_port_zero = true}),
              kExitUsage);
  }
  load_policy_option(opts.policy);
  if (opts.udp) {
    if (unix_path) usage_error("--udp needs [ADDR]:PORT, not a unix: path");
    if (opts.exec || opts.once || opts.impersonate) {
      usage_error("--udp cannot be combined with --exec, --once or --impersonate (not built yet)");
    }
    (void)signal(SIGPIPE, SIG_IGN);
    run_listen_udp(opts, where);
    return;
  }
  (void)raise_nofile_limit();  // accepting everything: use every descriptor we may
  (void)signal(SIGPIPE, SIG_IGN);
  (void)signal(SIGCHLD, SIG_DFL);  // reaped with waitpid; an inherited SIG_IGN would auto-reap

  // unix:PATH: a socket file left by a listener that died is removed; a live one is in use. The
  // file this process creates is removed when it exits through its own code (--once, errors).
  UnixSocketFile socket_file;
  Result<Listener> listener = Failure{EINVAL, "not bound"};
  if (unix_path) {
    check(clear_stale_unix_socket(unix_where.path));
    listener = Listener::bind(unix_where.get(), unix_where.length,
                              settings_from(opts.security, opts.security.names));
    if (!listener) {
      failure("cannot listen on unix:" + unix_where.path + ": " + listener.error().message + ": " +
              std::strerror(listener.error().code));
    }
    socket_file = UnixSocketFile(unix_where.path);
  } else {
    listener =
        Listener::bind(where.host, where.port, settings_from(opts.security, opts.security.names));
    if (!listener) {
      failure("cannot listen on " + format_host_port(where.host, where.port) + ": " +
              listener.error().message);
    }
  }
  {
    sockaddr_storage local{};
    socklen_t local_len = sizeof local;
    if (getsockname(listener->native_handle(), reinterpret_cast<sockaddr *>(&local), &local_len) ==
        0) {
      check_server_policy(reinterpret_cast<sockaddr *>(&local),
                          format_address(reinterpret_cast<sockaddr *>(&local)),
                          !opts.security.names.empty(), opts.security.encrypt);
    }
  }
  warn("listening on " + local_address_of(listener->native_handle()));
  Server server(opts, std::move(*listener));
  const std::string error = server.run();
  if (!error.empty()) failure(error);
}

}  // namespace

void register_listen(CLI::App &app) {
  auto opts = std::make_shared<ListenOptions>();
  CLI::App *listen = app.add_subcommand(
      "listen",
      "Accept secured connections on ADDR:PORT; relay each to stdin/stdout, or run a command");
  add_policy_option(listen, opts->policy);
  add_security_options(listen, opts->security,
                       "Name clients' certificates must satisfy (repeatable): a DNS name, IP "
                       "address, URI such as spiffe://td/svc, or sha256:<SPKI hash>");
  listen->add_flag("--json", opts->json,
                   "Print what each connection's query reported, one JSON object per line on "
                   "stderr, once its handshake is done");
  listen->add_flag("--udp", opts->udp,
                   "UDP secured with DTLS, one socket for every client: each datagram received "
                   "is printed (--json: one object per datagram, on stdout), each line of stdin "
                   "goes to the peer heard from last");
  listen->add_flag("--once", opts->once,
                   "Serve one connection, then exit with its outcome (0, or 1 and the reason)");
  listen->add_flag("--exec", opts->exec,
                   "Run CMD [ARG...] (the rest of the command line, without a shell) for each "
                   "connection, its stdin/stdout wired to the peer, the peer's identity in "
                   "SSX_PEER_PRINCIPAL, SSX_PEER_USER, SSX_PEER_ADDRESS, SSX_PROTOCOL, SSX_CIPHER");
  listen
      ->add_option("--idle-timeout", opts->idle_timeout,
                   "Seconds a connection may move nothing either way before it is reset (0: "
                   "never); the policy's idle_timeout_ms overrides it")
      ->check(CLI::Range(0.0, 604800.0))
      ->capture_default_str();
  listen
      ->add_option("--keepalive", opts->keepalive,
                   "TCP keepalive: first probe after this many idle seconds, 4 probes idle/4 "
                   "apart (0: off)")
      ->check(CLI::Range(0u, 86400u))
      ->capture_default_str();
  listen->add_flag("--impersonate", opts->impersonate,
                   "With --exec: run CMD as the local account the peer maps to (the policy's "
                   "[[identity]]); refuse peers that map to none. Needs root");
  listen
      ->add_option("ADDR:PORT", opts->address,
                   "Where to listen: 127.0.0.1:8443, [::1]:8443, :8443 for every address; port 0 "
                   "lets the kernel pick (the address is printed on stderr); unix:PATH for an "
                   "AF_UNIX socket (peers attested by the kernel; --encrypt for TLS)")
      ->required();
  // Everything after --exec CMD belongs to CMD: stop parsing at the first word that is not ours.
  listen->prefix_command();
  listen->footer(
      "\n--exec and its command come last: ssx listen [OPTIONS] ADDR:PORT --exec CMD [ARG...]\n"
      "\nExamples:\n"
      "  ssx listen --policy ./policy.toml 127.0.0.1:8443 > received.bin\n"
      "  ssx listen --json :8443 --exec /usr/local/bin/handler --verbose\n"
      "  ssx listen --impersonate [::1]:8443 --exec sh -c 'id -un; cat'");
  listen->callback([opts, listen] {
    opts->command = listen->remaining();
    run_listen(*opts);
  });
}

}  // namespace ssx::cli
