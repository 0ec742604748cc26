// SPDX-License-Identifier: Apache-2.0
// The servers in examples/ run as programs, against the library's own clients: epoll_server.c
// serves many clients at once while silent ones hang on, and fork_server.c hands each
// connection to a child without losing a byte, also when it makes the parent's common mistake.

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "testlib/run_command.hpp"
#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string example(const std::string &name) {
  const char *bin_dir = std::getenv("SSX_TEST_BIN_DIR");
  return std::string(bin_dir != nullptr && *bin_dir != '\0' ? bin_dir : ".") + "/examples/" + name;
}

// newest_policy returns the policy file use_policy wrote last into |dir|.
std::string newest_policy(const TempDir &dir) {
  std::string best;
  int best_n = -1;
  if (DIR *d = ::opendir(dir.path().c_str())) {
    while (dirent *e = ::readdir(d)) {
      int n = -1;
      if (std::sscanf(e->d_name, "policy-%d.toml", &n) == 1 && n > best_n) {
        best_n = n;
        best = dir.file(e->d_name);
      }
    }
    ::closedir(d);
  }
  return best;
}

// start_example runs an example server under |policy| and returns its port (0 on failure).
std::uint16_t start_example(std::unique_ptr<ChildProcess> &server,
                            const std::vector<std::string> &args, const std::string &policy) {
  if (::access(args.front().c_str(), X_OK) != 0) {
    ADD_FAILURE() << args.front() << " is not built (SSX_BUILD_EXAMPLES=OFF?)";
    return 0;
  }
  std::vector<std::string> argv{"env", "SSX_POLICY=" + policy};
  argv.insert(argv.end(), args.begin(), args.end());
  server = std::make_unique<ChildProcess>(argv);
  const std::string line = server->wait_for_line("listening on", std::chrono::seconds(20));
  const auto colon = line.rfind(':');
  if (colon == std::string::npos) return 0;
  return static_cast<std::uint16_t>(std::atoi(line.c_str() + colon + 1));
}

// request_of makes client |i|'s request: sizes from 1 byte to ~40 KiB, contents unique.
std::string request_of(int i) {
  std::string s(static_cast<size_t>((i * 7919) % 40000 + 1), '\0');
  unsigned x = static_cast<unsigned>(i) * 2654435761u + 1;
  for (auto &c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>('a' + (x >> 16) % 26);
  }
  return s;
}

// NbClient is one non-blocking ssx client driven by the test's own poll loop.
struct NbClient {
  Fd fd;
  std::string request;
  std::string reply;
  size_t sent = 0;
  bool handshaking = true;
  bool shut = false;
  bool done = false;
  std::string failure;

  // step does everything that can be done without waiting; returns the events to wait for.
  short step() {
    if (handshaking) {
      if (ssx_handshake(fd.get()) != 0) {
        if (errno != EAGAIN) failure = "handshake: " + last_error_text();
        return ssx_wants(fd.get());
      }
      handshaking = false;
    }
    short events = POLLIN;
    while (sent < request.size()) {
      ssize_t n = ssx_send(fd.get(), request.data() + sent, request.size() - sent, 0);
      if (n < 0) {
        if (errno != EAGAIN) failure = "send: " + last_error_text();
        events |= POLLOUT;
        break;
      }
      sent += static_cast<size_t>(n);
    }
    if (sent == request.size() && !shut) {
      if (ssx_shutdown(fd.get(), SHUT_WR) == 0) {
        shut = true;
      } else if (errno == EAGAIN) {
        events |= POLLOUT;
      } else {
        failure = "shutdown: " + last_error_text();
      }
    }
    // Read until EAGAIN (the rule of ssx.h): nothing is left inside ssx when we wait.
    char buf[16384];
    for (;;) {
      ssize_t n = ssx_recv(fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        reply.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        done = true;
      } else if (errno != EAGAIN) {
        failure = "recv: " + last_error_text();
      }
      break;
    }
    return events;
  }
};

class ExamplesTest : public TlsTest {};

TEST_F(ExamplesTest, EpollServerServesManyClientsWhileSilentOnesHangOn) {
  // Timeouts far beyond the test's own bound: the silent clients must still be connected when
  // every active client has been served, so nobody was made to wait for them.
  use_policy("handshake_timeout_ms = 120000\nclient_hello_timeout_ms = 120000\n");
  std::unique_ptr<ChildProcess> server;
  const std::uint16_t port = start_example(server, {example("epoll_server")}, newest_policy(dir_));
  ASSERT_NE(port, 0) << (server ? server->output() : "");
  const sockaddr_in address = loopback_address(port);

  constexpr int kSilentTcp = 30;  // connect and send nothing, not even a ClientHello
  constexpr int kSilentTls = 20;  // finish the handshake, then send nothing
  constexpr int kActive = 150;    // 200 clients in all
  std::vector<Fd> silent;
  for (int i = 0; i < kSilentTcp; ++i) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<const sockaddr *>(&address), sizeof address), 0);
    silent.push_back(std::move(fd));
  }
  // Half-way handshakes of the silent TCP clients are in the server before anyone else's.
  for (int i = 0; i < kSilentTls; ++i) {
    Fd fd(ssx_client_connect(port, {"localhost"}));
    ASSERT_GE(fd.get(), 0) << last_error_text();
    silent.push_back(std::move(fd));
  }

  const auto start = Clock::now();
  std::vector<NbClient> clients(kActive);
  for (int i = 0; i < kActive; ++i) {
    NbClient &c = clients[static_cast<size_t>(i)];
    c.request = request_of(i);
    c.fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    ssx_security_settings s{SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
    ASSERT_EQ(ssx_set_socket_security(c.fd.get(), &s, sizeof s), 0);
    ASSERT_EQ(ssx_set_socket_peer_target_name(c.fd.get(), "localhost", nullptr, 0), 0);
    const int rc =
        ssx_connect(c.fd.get(), reinterpret_cast<const sockaddr *>(&address), sizeof address);
    ASSERT_TRUE(rc == 0 || errno == EINPROGRESS) << last_error_text();
  }
  const auto deadline = start + std::chrono::seconds(60);
  for (;;) {
    std::vector<pollfd> waits;
    std::vector<NbClient *> owners;
    bool again = false;
    for (auto &c : clients) {
      if (c.done || !c.failure.empty()) continue;
      const short events = c.step();
      if (c.done || !c.failure.empty()) continue;
      if ((ssx_wants(c.fd.get()) & SSX_POLLPENDING) != 0) again = true;  // never the case
      waits.push_back({c.fd.get(), static_cast<short>(events & (POLLIN | POLLOUT)), 0});
      owners.push_back(&c);
    }
    if (waits.empty() || Clock::now() > deadline) break;
    ::poll(waits.data(), waits.size(), again ? 0 : 1000);
  }
  const auto elapsed = Clock::now() - start;

  int served = 0;
  for (int i = 0; i < kActive; ++i) {
    const NbClient &c = clients[static_cast<size_t>(i)];
    EXPECT_TRUE(c.failure.empty()) << "client " << i << ": " << c.failure;
    EXPECT_TRUE(c.done) << "client " << i << " not served in time";
    if (c.done && c.reply == c.request) ++served;
  }
  EXPECT_EQ(served, kActive) << server->output();
  EXPECT_LT(elapsed, std::chrono::seconds(45));
  // The silent clients are still connected: the server did not time them out to get on.
  for (size_t i = 0; i < silent.size(); ++i) {
    if (i < kSilentTcp) {
      pollfd p{silent[i].get(), POLLIN, 0};
      EXPECT_EQ(::poll(&p, 1, 0), 0) << "a silent client was disconnected";
    } else {  // session tickets may be waiting, but no end of stream
      char buf[16];
      errno = 0;
      EXPECT_EQ(ssx_recv(silent[i].get(), buf, sizeof buf, MSG_DONTWAIT), -1);
      EXPECT_EQ(errno, EAGAIN) << "a silent client was disconnected: " << last_error_text();
    }
  }
}

// Runs |clients| clients at once against a fork_server and checks every answer and its end.
void run_fork_server_clients(std::uint16_t port, int clients) {
  std::vector<std::string> results(static_cast<size_t>(clients));
  {
    std::vector<std::unique_ptr<BackgroundThread>> threads;
    for (int i = 0; i < clients; ++i) {
      threads.push_back(std::make_unique<BackgroundThread>([&results, i, port] {
        std::string &out = results[static_cast<size_t>(i)];
        Fd fd(ssx_client_connect(port, {"localhost"}));
        if (fd.get() < 0) {
          out = "connect: " + last_error_text();
          return;
        }
        const std::string request = request_of(i);
        if (!ssx_send_all(fd.get(), request) || ssx_shutdown(fd.get(), SHUT_WR) != 0) {
          out = "send: " + last_error_text();
          return;
        }
        int error = -1;
        const std::string reply = ssx_recv_until_eof(fd.get(), &error);
        const auto colon = reply.find(": ");
        if (error != 0) {
          out = std::string("not a clean end: ") + std::strerror(error);
        } else if (reply.rfind("served by pid ", 0) != 0 || colon == std::string::npos ||
                   reply.substr(colon + 2) != request) {
          out = "wrong answer (" + std::to_string(reply.size()) + " bytes)";
        } else {
          out = "ok";
        }
      }));
    }
  }
  for (int i = 0; i < clients; ++i) EXPECT_EQ(results[static_cast<size_t>(i)], "ok") << i;
}

TEST_F(ExamplesTest, ForkServerHandsEachConnectionToAChildWithoutLoss) {
  use_policy();
  std::unique_ptr<ChildProcess> server;
  const std::uint16_t port = start_example(server, {example("fork_server")}, newest_policy(dir_));
  ASSERT_NE(port, 0) << (server ? server->output() : "");
  run_fork_server_clients(port, 24);
  EXPECT_EQ(server->output().find("fork_server["), std::string::npos) << server->output();
}

// The parent calls ssx_close on each connection it forked away, before the child answers:
// without ssx's handoff rule its close_notify would end the stream and the answer would be lost.
TEST_F(ExamplesTest, ForkServerParentsSsxCloseStillDeliversTheChildsAnswer) {
  use_policy();
  std::unique_ptr<ChildProcess> server;
  const std::uint16_t port =
      start_example(server, {example("fork_server"), "--mistake"}, newest_policy(dir_));
  ASSERT_NE(port, 0) << (server ? server->output() : "");
  run_fork_server_clients(port, 12);
  EXPECT_EQ(server->output().find("fork_server["), std::string::npos) << server->output();
}

// dtls_server.c: a UDP service that answers each datagram with its sender's verified principal.
TEST_F(ExamplesTest, DtlsServerAnswersEachPeerWithItsPrincipal) {
  use_policy("", "peer_authentication = \"required\"");
  std::unique_ptr<ChildProcess> server;
  const std::string bin = example("dtls_server");
  ASSERT_EQ(::access(bin.c_str(), X_OK), 0) << bin << " is not built";
  server = std::make_unique<ChildProcess>(
      std::vector<std::string>{"env", "SSX_POLICY=" + newest_policy(dir_), bin, "0"});
  const std::string line = server->wait_for_line("listening on ", std::chrono::seconds(10));
  ASSERT_FALSE(line.empty()) << server->output();
  const auto port = static_cast<std::uint16_t>(std::stoi(line.substr(line.rfind(' ') + 1)));
  Fd client(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(client.get(), nullptr, 0), 0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost", nullptr, 0), 0);
  const timeval ten{10, 0};
  ASSERT_EQ(::setsockopt(client.get(), SOL_SOCKET, SO_RCVTIMEO, &ten, sizeof ten), 0);
  const sockaddr_in to = loopback_address(port);
  ASSERT_EQ(
      ssx_sendto(client.get(), "ping", 4, 0, reinterpret_cast<const sockaddr *>(&to), sizeof to), 4)
      << last_error_text();
  char buf[256];
  const ssize_t n = ssx_recvfrom(client.get(), buf, sizeof buf, 0, nullptr, nullptr);
  ASSERT_GT(n, 0) << last_error_text();
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "spiffe://ssx.test/client: ping");
}

}  // namespace
}  // namespace ssx::test
