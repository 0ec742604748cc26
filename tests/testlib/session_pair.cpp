// SPDX-License-Identifier: Apache-2.0
#include "testlib/session_pair.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "identity/target_name.hpp"

namespace ssx::test {
namespace {

[[noreturn]] void setup_error(const std::string &what) {
  throw std::runtime_error("SessionPair: " + what + ": " + std::strerror(errno));
}

// Bounded wait for |events| on |fd|; returns revents, 0 on timeout.
short poll_for(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = ::poll(&p, 1, timeout_ms);
    if (n > 0) return p.revents;
    if (n == 0) return 0;
    if (errno != EINTR) setup_error("poll");
  }
}

// tcp_pair connects two non-blocking TCP sockets on 127.0.0.1 through a listener that is closed
// again at once. Every wait is bounded (10 s) and waits for a condition.
void tcp_pair(int *client, int *server) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) setup_error("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr *>(&address), &length) != 0) {
    ::close(listener);
    setup_error("listener");
  }
  *client = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (*client < 0 ||
      (::connect(*client, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 &&
       errno != EINPROGRESS)) {
    ::close(listener);
    setup_error("connect");
  }
  if ((poll_for(listener, POLLIN, 10000) & POLLIN) == 0) {
    ::close(listener);
    errno = ETIMEDOUT;
    setup_error("accept");
  }
  *server = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ::close(listener);
  if (*server < 0) setup_error("accept");
  if ((poll_for(*client, POLLOUT, 10000) & POLLOUT) == 0) {
    errno = ETIMEDOUT;
    setup_error("connect");
  }
  int error = 0;
  socklen_t error_length = sizeof error;
  if (::getsockopt(*client, SOL_SOCKET, SO_ERROR, &error, &error_length) != 0 || error != 0) {
    errno = error;
    setup_error("connect");
  }
}

std::shared_ptr<tls::Context> build(const policy::Settings &settings, tls::Role role) {
  auto context = tls::Context::build(settings, role);
  if (!context) {
    throw std::runtime_error(std::string("SessionPair: cannot build the ") +
                             (role == tls::Role::client ? "client" : "server") +
                             " context: " + context.error().message);
  }
  return *context;
}

}  // namespace

const char *side_name(Side s) {
  return s == Side::client ? "client" : "server";
}

std::string HandshakeOutcome::describe() const {
  auto end = [](const char *name, const EndState &e) {
    std::string out = name;
    if (e.done) return out + " done";
    if (e.failure) {
      return out + " failed with " + std::strerror(e.failure->code) + ": " + e.failure->message;
    }
    return out + (e.want == tls::Want::read ? " waits to read" : " waits to write");
  };
  return end("client", client) + "; " + end("server", server) + "; after " +
         std::to_string(rounds) + " rounds" + (stalled ? " (stalled)" : "");
}

SessionPair::SessionPair(PairOptions options) : transport_(options.transport) {
  client_ctx_ =
      options.client_context ? options.client_context : build(options.client, tls::Role::client);
  server_ctx_ =
      options.server_context ? options.server_context : build(options.server, tls::Role::server);
  if (options.transport == Transport::unix_stream) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      setup_error("socketpair");
    }
    client_fd_ = fds[0];
    server_fd_ = fds[1];
  } else {
    tcp_pair(&client_fd_, &server_fd_);
  }
  auto client = tls::Session::create(client_ctx_, client_fd_, std::move(options.client_requires),
                                     options.server_name, std::move(options.cache_key));
  auto server =
      tls::Session::create(server_ctx_, server_fd_, std::move(options.server_requires), "", "");
  if (!client || !server) {
    throw std::runtime_error("SessionPair: Session::create failed: " +
                             (client ? server.error().message : client.error().message));
  }
  client_ = std::move(*client);
  server_ = std::move(*server);
}

SessionPair::~SessionPair() {
  client_.reset();
  server_.reset();
  if (client_fd_ >= 0) ::close(client_fd_);
  if (server_fd_ >= 0) ::close(server_fd_);
}

tls::Session &SessionPair::session(Side side) {
  auto &s = side == Side::client ? client_ : server_;
  if (!s) throw std::logic_error(std::string("SessionPair: the ") + side_name(side) + " was reset");
  return *s;
}

bool SessionPair::stuck(Side side, tls::Want want) const {
  if (fd(side) < 0) return true;
  const short events = want == tls::Want::write ? POLLOUT : POLLIN;
  if (poll_for(fd(side), events, 0) != 0) return false;
  // This thread is the only one that sends, so what a socketpair holds now is all there will be.
  // Over TCP, loopback usually delivers a segment before send(2) returns, but not always (under
  // load the kernel hands it to ksoftirqd): bytes the other end sent and that are not yet
  // acknowledged (SIOCOUTQ, a FIN included) are still on their way, so wait for them, bounded.
  const int peer = fd(other(side));
  int in_flight = 0;
  if (transport_ == Transport::tcp_loopback && want == tls::Want::read && peer >= 0 &&
      ::ioctl(peer, SIOCOUTQ, &in_flight) == 0 && in_flight > 0) {
    return poll_for(fd(side), events, 10000) == 0;
  }
  return true;
}

HandshakeOutcome SessionPair::handshake(int max_rounds) {
  HandshakeOutcome out;
  auto open = [](const EndState &e) { return !e.done && !e.failure; };
  auto step = [this](Side side, EndState &e) {
    auto r = session(side).handshake();
    if (!r) {
      e.failure = r.error();
    } else if (*r == tls::Want::nothing) {
      e.done = true;
    }
    e.want = r ? *r : tls::Want::nothing;
  };
  while (out.rounds < max_rounds) {
    ++out.rounds;
    if (open(out.client)) step(Side::client, out.client);
    if (open(out.server)) step(Side::server, out.server);
    if (!open(out.client) && !open(out.server)) break;
    const bool client_stuck = !open(out.client) || stuck(Side::client, out.client.want);
    const bool server_stuck = !open(out.server) || stuck(Side::server, out.server.want);
    if (client_stuck && server_stuck) {
      out.stalled = true;
      break;
    }
  }
  return out;
}

Result<void> SessionPair::pump_reads(Side side) {
  std::string &inbox = side == Side::client ? client_inbox_ : server_inbox_;
  bool &eos = side == Side::client ? client_eos_ : server_eos_;
  auto &failure = side == Side::client ? client_read_failure_ : server_read_failure_;
  if (eos || failure) return {};
  char buffer[16384];
  for (int i = 0; i < kDefaultSteps; ++i) {
    auto r = session(side).read(buffer, sizeof buffer, false);
    if (!r) {
      failure = r.error();
      return {};
    }
    if (r->end_of_stream) {
      eos = true;
      return {};
    }
    if (r->bytes == 0) return {};
    inbox.append(buffer, r->bytes);
  }
  return fail(ETIMEDOUT, std::string("SessionPair: the ") + side_name(side) +
                             " kept reading past the step bound");
}

Result<void> SessionPair::write_all(Side from, std::string_view data, int max_rounds) {
  std::size_t done = 0;
  for (int round = 0; round < max_rounds; ++round) {
    if (done == data.size()) return {};
    auto r = session(from).write(data.data() + done, data.size() - done);
    if (!r) return r.error();
    if (r->bytes > 0) {
      done += r->bytes;
      continue;
    }
    if (r->want != tls::Want::write) {
      return fail(EDEADLK, std::string("SessionPair: the ") + side_name(from) +
                               "'s write waits to read, which write_all does not do");
    }
    // The socket is full: the other end reads, keeping the data for read().
    if (auto pumped = pump_reads(other(from)); !pumped) return pumped;
    if (stuck(from, tls::Want::write)) {
      return fail(EDEADLK, std::string("SessionPair: the ") + side_name(from) +
                               "'s socket stays full though the other end read everything");
    }
  }
  return fail(ETIMEDOUT, "SessionPair: write_all did not finish within the step bound");
}

ReadOutcome SessionPair::read(Side side, int max_rounds) {
  ReadOutcome out;
  std::string &inbox = side == Side::client ? client_inbox_ : server_inbox_;
  bool &eos = side == Side::client ? client_eos_ : server_eos_;
  auto &failure = side == Side::client ? client_read_failure_ : server_read_failure_;
  for (int round = 0; round < max_rounds && !eos && !failure; ++round) {
    const std::size_t before = inbox.size();
    if (auto pumped = pump_reads(side); !pumped) {
      failure = pumped.error();
      break;
    }
    if (inbox.size() == before) break;  // nothing more in the socket
  }
  out.data = std::move(inbox);
  inbox.clear();
  out.end_of_stream = eos;
  out.failure = failure;
  return out;
}

Result<void> SessionPair::close_notify(Side side, int max_rounds) {
  for (int round = 0; round < max_rounds; ++round) {
    auto r = session(side).send_close_notify();
    if (!r) return r.error();
    if (*r == tls::Want::nothing) return {};
    if (auto pumped = pump_reads(other(side)); !pumped) return pumped;
    if (stuck(side, tls::Want::write)) {
      return fail(EDEADLK, "SessionPair: close_notify cannot be written");
    }
  }
  return fail(ETIMEDOUT, "SessionPair: close_notify did not finish within the step bound");
}

void SessionPair::shutdown_socket(Side side, int how) {
  if (::shutdown(fd(side), how) != 0) setup_error("shutdown");
}

void SessionPair::reset(Side side) {
  auto &session = side == Side::client ? client_ : server_;
  int &fd = side == Side::client ? client_fd_ : server_fd_;
  session.reset();
  linger hard{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);  // AF_UNIX ignores it
  ::close(fd);
  fd = -1;
}

short SessionPair::wait_for_event(Side side, short events, int timeout_ms) {
  return poll_for(fd(side), events, timeout_ms);
}

policy::Settings settings_for(const CredentialFiles *identity, const std::string &ca_cert) {
  policy::Settings s;
  s.trust_bundle = ca_cert;
  if (identity != nullptr) {
    s.certificate = identity->cert;
    s.private_key = identity->key;
  }
  return s;
}

identity::TargetName target_name(const std::string &name) {
  auto parsed = identity::parse_target_name(name);
  if (!parsed) throw std::runtime_error("not a target name: " + parsed.error().message);
  return *parsed;
}

}  // namespace ssx::test
