// SPDX-License-Identifier: Apache-2.0
// `ssx tunnel` against hostile and failing peers (issue 15, items 1, 2, 4 and 7): floods of idle
// and half-finished handshakes, the handshake budget and the per-source cap, the ClientHello
// deadline, a killed tunnel (its application must see a reset, never a clean end), the idle
// timeout, and fatal alerts that must reach the client (curl, openssl s_client).
//
// Everything runs on loopback. Attackers bind 127.0.0.2 and up before connecting, as a
// distributed attacker would; the legitimate client connects from 127.0.0.1.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ssx/ssx.h"
#include "testlib/sanitized.hpp"
#include "tunnel_fixture.hpp"

namespace ssx::test {
namespace {

using Clock = std::chrono::steady_clock;

// attacker_connect starts a non-blocking connect to 127.0.0.1:|port| from 127.0.0.|host|.
// Returns the fd or -1.
int attacker_connect(std::uint16_t port, int host) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(0x7f000000U | static_cast<std::uint32_t>(host));
  sockaddr_in to = loopback_address(port);
  if (::bind(fd, reinterpret_cast<sockaddr *>(&from), sizeof from) != 0 ||
      (::connect(fd, reinterpret_cast<sockaddr *>(&to), sizeof to) != 0 && errno != EINPROGRESS)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// wait_connected waits (bounded) until the non-blocking connect of |fd| is done.
bool wait_connected(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  int err = 0;
  socklen_t len = sizeof err;
  return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

// closed_by_peer waits (bounded) until the peer ended |fd| (EOF or reset) and says which errno
// ended it: 0 for a clean EOF, -1 when it did not end in time.
int closed_by_peer(int fd, std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  char buf[4096];
  while (Clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<long long>(1, left.count()))) != 1) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return 0;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return errno;
  }
  return -1;
}

// capture_client_hello returns the first TLS record an ssx client sends (its ClientHello).
std::string capture_client_hello() {
  Fd listener = plain_listener();
  const std::uint16_t port = local_port(listener.get());
  std::string record;
  std::thread grab([&] {
    Fd s(accept_one(listener.get(), 10s));
    if (s.get() < 0) return;
    set_io_timeout(s.get(), 10s);
    std::string header = recv_exactly(s.get(), 5);
    if (header.size() != 5) return;
    size_t length =
        (static_cast<unsigned char>(header[3]) << 8) | static_cast<unsigned char>(header[4]);
    record = header + recv_exactly(s.get(), length);
  });
  Fd client;
  (void)ssx_client_connect(port, {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &client);
  grab.join();
  return record;
}

// peak_rss_kib is VmHWM (the peak resident set) of |pid|, -1 when unreadable.
long peak_rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// raise_open_files raises this process's soft RLIMIT_NOFILE to its hard limit; returns it.
size_t raise_open_files() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &limit);
    (void)::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return static_cast<size_t>(limit.rlim_cur);
}

// ---------------------------------------------------------------------------------------------
// Item 1: slow clients cannot lock anyone out.

// 5,000 silent connections opened at full speed and 1,000 that send a ClientHello and stall,
// from 250 attacker addresses, while a legitimate client connects in a loop from 127.0.0.1:
// every legitimate connection succeeds, its p99 connect+handshake time is under 1 s, and the
// tunnel's peak RSS stays under 512 MiB (measured: about 250 MiB, some 40 KiB of OpenSSL and ssx
// state per unfinished handshake).
TEST_F(TunnelTest, SlowlorisFloodDoesNotStarveALegitimateClient) {
  size_t silent_count = 5000;
  size_t hello_count = 1000;
  const size_t open_files = raise_open_files();
  if (open_files < silent_count + hello_count + 500) {
    // Say so rather than fail for the environment: the flood is scaled to the limit.
    const double scale = static_cast<double>(open_files - 500) / (silent_count + hello_count);
    silent_count = static_cast<size_t>(silent_count * scale);
    hello_count = static_cast<size_t>(hello_count * scale);
    std::cerr << "note: RLIMIT_NOFILE hard limit " << open_files << ": flood scaled to "
              << silent_count << " silent + " << hello_count << " ClientHello connections\n";
  }
  use_test_process_policy();
  const std::string hello = capture_client_hello();
  ASSERT_GT(hello.size(), 5u);
  ASSERT_EQ(hello[0], 0x16) << "not a handshake record";

  EchoServer echo;
  server_ = start_server(echo.port(), {"--workers", "1"});
  const std::uint16_t port = server_->port();

  std::atomic<bool> attack_over{false};
  std::vector<double> legit_ms;
  std::vector<std::string> legit_failures;
  std::thread legit([&] {
    // Until 4 s after the last attacking connection was opened: past the silent ones'
    // client_hello_timeout_ms (2 s), while the stalled ClientHellos still hold their handshakes.
    const auto hard_stop = Clock::now() + 60s;
    Clock::time_point stop_at = Clock::time_point::max();
    for (int i = 0; i < 2000 && Clock::now() < std::min(hard_stop, stop_at); ++i) {
      if (stop_at == Clock::time_point::max() && attack_over.load()) stop_at = Clock::now() + 4s;
      auto start = Clock::now();
      Fd c;
      if (ssx_client_connect(port, {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &c) < 0) {
        legit_failures.push_back(last_error_text());
      } else {
        legit_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        // The connection works end to end.
        char byte = 0;
        if (!ssx_send_all(c.get(), "x") || ssx_recv(c.get(), &byte, 1, 0) != 1 || byte != 'x') {
          legit_failures.push_back("echo failed: " + last_error_text());
        }
      }
    }
  });

  std::vector<Fd> silent;
  std::vector<Fd> stalled;
  silent.reserve(silent_count);
  stalled.reserve(hello_count);
  for (size_t i = 0; i < silent_count; ++i) {
    int fd = attacker_connect(port, 2 + static_cast<int>(i % 250));
    if (fd >= 0) silent.emplace_back(fd);
  }
  for (size_t i = 0; i < hello_count; ++i) {
    int fd = attacker_connect(port, 2 + static_cast<int>(i % 250));
    if (fd < 0) continue;
    Fd f(fd);
    if (wait_connected(fd, 5s) && ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) ==
                                      static_cast<ssize_t>(hello.size())) {
      stalled.push_back(std::move(f));
    }
  }
  EXPECT_GE(silent.size(), silent_count * 9 / 10);
  EXPECT_GE(stalled.size(), hello_count * 9 / 10);
  attack_over = true;
  legit.join();

  const long peak = peak_rss_kib(server_->pid());
  ASSERT_FALSE(legit_ms.empty());
  EXPECT_TRUE(legit_failures.empty())
      << legit_failures.size() << " failed, first: " << legit_failures.front();
  std::sort(legit_ms.begin(), legit_ms.end());
  const double p99 = legit_ms[std::min(legit_ms.size() - 1, legit_ms.size() * 99 / 100)];
  // Sanitized builds are several times slower and larger: there the bounds only say that no
  // legitimate client waited for a handshake timeout (10 s) and memory stayed bounded.
  const double p99_bound_ms = SSX_TEST_SANITIZED ? 8000.0 : 1000.0;
  const long peak_bound_kib = (SSX_TEST_SANITIZED ? 2048 : 512) * 1024;
  EXPECT_LT(p99, p99_bound_ms) << "p99 of " << legit_ms.size() << " legitimate handshakes";
  EXPECT_GT(peak, 0);
  EXPECT_LT(peak, peak_bound_kib) << "peak RSS " << peak << " KiB";
  std::cerr << "legitimate connections: " << legit_ms.size() << ", p50 "
            << legit_ms[legit_ms.size() / 2] << " ms, p99 " << p99 << " ms, max " << legit_ms.back()
            << " ms; tunnel peak RSS " << peak / 1024 << " MiB\n";
  // The silent ones were cut at client_hello_timeout_ms (2 s), not at handshake_timeout_ms.
  EXPECT_TRUE(server_->wait_for_log("client_hello_timeout_ms", 10s))
      << lines_without(server_->log(), "close=done");
}

// The budget: with room for 8 unfinished handshakes, a ninth connection sheds the oldest.
TEST_F(TunnelTest, FullHandshakeBudgetShedsTheOldestUnfinishedHandshake) {
  use_test_process_policy();
  EchoServer echo;
  server_ = start_server(echo.port(), {"--workers", "1", "--max-handshakes", "8"});
  std::vector<Fd> idle;
  for (int i = 0; i < 8; ++i) {
    idle.emplace_back(attacker_connect(server_->port(), 10 + i));
    ASSERT_TRUE(wait_connected(idle.back().get(), 5s));
  }
  // The tunnel has accepted all 8 (each is logged when shed or closed; wait for none yet, but
  // the legitimate client below must still get through, shedding the oldest).
  Fd c;
  ASSERT_GE(ssx_client_connect(server_->port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &c), 0)
      << last_error_text();
  EXPECT_EQ(closed_by_peer(idle.front().get(), 5s), ECONNRESET)
      << "the oldest unfinished handshake was not shed";
  EXPECT_TRUE(server_->wait_for_log("close=shed", 5s)) << server_->log();
  EXPECT_EQ(count_occurrences(server_->log(), "close=shed"), 1u) << server_->log();
}

// Negative: under the budget nothing is shed.
TEST_F(TunnelTest, HandshakesUnderTheBudgetAreNotShed) {
  use_test_process_policy();
  EchoServer echo;
  server_ = start_server(echo.port(), {"--workers", "1", "--max-handshakes", "8"});
  Fd idle(attacker_connect(server_->port(), 10));
  ASSERT_TRUE(wait_connected(idle.get(), 5s));
  for (int i = 0; i < 5; ++i) {
    Fd c;
    ASSERT_GE(ssx_client_connect(server_->port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &c), 0)
        << last_error_text();
  }
  pollfd p{idle.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the idle connection was closed under the budget";
  EXPECT_EQ(count_occurrences(server_->log(), "close=shed"), 0u) << server_->log();
}

// The per-source cap: with the budget full, one more unfinished handshake from an address that
// holds its share sheds that address's oldest, and leaves other sources alone.
TEST_F(TunnelTest, PerSourceCapShedsThatSourcesOldestHandshake) {
  use_test_process_policy();
  EchoServer echo;
  server_ = start_server(
      echo.port(), {"--workers", "1", "--max-handshakes", "5", "--max-handshakes-per-source", "4"});
  Fd other(attacker_connect(server_->port(), 99));
  ASSERT_TRUE(wait_connected(other.get(), 5s));
  std::vector<Fd> same;
  for (int i = 0; i < 5; ++i) {
    same.emplace_back(attacker_connect(server_->port(), 7));
    ASSERT_TRUE(wait_connected(same.back().get(), 5s));
  }
  EXPECT_EQ(closed_by_peer(same.front().get(), 5s), ECONNRESET);
  EXPECT_TRUE(server_->wait_for_log("close=shed", 5s)) << server_->log();
  // The other source, although its handshake is the oldest overall, is unaffected.
  pollfd p{other.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "another source's handshake was shed";
  EXPECT_EQ(count_occurrences(server_->log(), "close=shed"), 1u) << server_->log();
}

// client_hello_timeout_ms: a connection that sends nothing is dropped at that deadline, well
// before handshake_timeout_ms; one that sent its ClientHello is not.
TEST_F(TunnelTest, SilentConnectionIsDroppedAtTheClientHelloTimeout) {
  server_policy_ = write_policy("server-hello", server_creds_,
                                "peer_authentication = \"required\"\nclient_hello_timeout_ms = "
                                "300\nhandshake_timeout_ms = 20000\n");
  use_test_process_policy();
  const std::string hello = capture_client_hello();
  EchoServer echo;
  server_ = start_server(echo.port());
  auto start = Clock::now();
  Fd silent = plain_connect(server_->port());
  Fd talking = plain_connect(server_->port());
  ASSERT_TRUE(send_all(talking.get(), hello));
  EXPECT_EQ(closed_by_peer(silent.get(), 5s), ECONNRESET);
  auto waited = Clock::now() - start;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 5s);
  EXPECT_TRUE(server_->wait_for_log("(client_hello_timeout_ms)", 5s)) << server_->log();
  // The one that sent its ClientHello is still being waited for (handshake_timeout_ms is 20 s).
  pollfd p{talking.get(), POLLRDHUP, 0};
  EXPECT_EQ(::poll(&p, 1, 500), 0) << "a connection that sent its ClientHello was dropped";
}

// ---------------------------------------------------------------------------------------------
// Item 2: a killed tunnel reaches its application as a reset, never as a clean end.

// kill_mid_transfer: |victim| is the cleartext socket next to the tunnel that is killed, |far|
// the one at the other end. Once 4 MiB have crossed, the tunnel is SIGKILLed; |victim| must see
// ECONNRESET (or EPIPE when sending), never end of file.
void kill_mid_transfer(TunnelProcess &doomed, int victim, int far, bool victim_sends) {
  constexpr size_t kBeforeKill = 4 << 20;
  constexpr size_t kMax = 512 << 20;  // a bound: the kill lands long before
  const std::string chunk(64 << 10, 'z');
  std::atomic<bool> killed{false};
  int sender = victim_sends ? victim : far;
  int receiver = victim_sends ? far : victim;
  (void)::fcntl(sender, F_SETFL, ::fcntl(sender, F_GETFL) | O_NONBLOCK);

  // The receiver reads in its own thread and kills the tunnel once enough has arrived.
  int receiver_error = -1;
  size_t received = 0;
  std::thread reader([&] {
    std::vector<char> buf(1 << 16);
    set_io_timeout(receiver, 20s);
    for (;;) {
      ssize_t n = ::recv(receiver, buf.data(), buf.size(), 0);
      if (n <= 0) {
        receiver_error = n == 0 ? 0 : errno;
        return;
      }
      received += static_cast<size_t>(n);
      if (received >= kBeforeKill && !killed.exchange(true)) doomed.signal(SIGKILL);
    }
  });

  // The sender writes until its socket fails, or (sending side only) sees an end of stream.
  int sender_error = -1;
  size_t sent = 0;
  const auto until = Clock::now() + 30s;
  while (sent < kMax && Clock::now() < until) {
    pollfd p{sender, POLLOUT | POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    if ((p.revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
      char b;
      ssize_t n = ::recv(sender, &b, 1, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        sender_error = n == 0 ? 0 : errno;
        break;
      }
    }
    ssize_t n = ::send(sender, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) sent += static_cast<size_t>(n);
    if (n < 0 && errno != EAGAIN) {
      sender_error = errno;
      break;
    }
  }
  if (!victim_sends) ::shutdown(sender, SHUT_RDWR);  // unblock the reader if it still waits
  reader.join();
  ASSERT_TRUE(killed.load()) << "the transfer never reached " << kBeforeKill << " bytes";
  if (victim_sends) {
    EXPECT_TRUE(sender_error == ECONNRESET || sender_error == EPIPE)
        << "the sending application saw "
        << (sender_error == 0 ? "a clean end of stream" : std::strerror(sender_error));
    // The far application saw no clean end either: the surviving tunnel reset it.
    EXPECT_EQ(receiver_error, ECONNRESET)
        << (receiver_error == 0 ? "a clean EOF" : std::strerror(receiver_error));
  } else {
    EXPECT_EQ(receiver_error, ECONNRESET)
        << "the receiving application saw "
        << (receiver_error == 0 ? "a clean end of stream after " + std::to_string(received)
                                : std::string(std::strerror(receiver_error)));
  }
}

struct KillCase {
  bool kill_server;   // else the client tunnel
  bool victim_sends;  // else the victim receives
};

class TunnelKill : public TunnelTest, public ::testing::WithParamInterface<KillCase> {};

TEST_P(TunnelKill, KilledTunnelResetsItsApplication) {
  const KillCase k = GetParam();
  Fd backend_listener = plain_listener();
  start_pair(local_port(backend_listener.get()));
  Fd app = plain_connect(client_->port());
  ASSERT_TRUE(send_all(app.get(), "h"));
  Fd backend(accept_one(backend_listener.get()));
  ASSERT_GE(backend.get(), 0);
  ASSERT_EQ(recv_exactly(backend.get(), 1), "h");
  // Server tunnel killed: its application is the backend. Client tunnel: the app.
  TunnelProcess &doomed = k.kill_server ? *server_ : *client_;
  int victim = k.kill_server ? backend.get() : app.get();
  int far = k.kill_server ? app.get() : backend.get();
  kill_mid_transfer(doomed, victim, far, k.victim_sends);
}

INSTANTIATE_TEST_SUITE_P(EachTunnelEachDirection, TunnelKill,
                         ::testing::Values(KillCase{true, true}, KillCase{true, false},
                                           KillCase{false, true}, KillCase{false, false}),
                         [](const ::testing::TestParamInfo<KillCase> &info) {
                           return std::string(info.param.kill_server ? "Server" : "Client") +
                                  (info.param.victim_sends ? "WhileItsAppSends"
                                                           : "WhileItsAppReceives");
                         });

// ---------------------------------------------------------------------------------------------
// Item 4: idle timeout.

TEST_F(TunnelTest, IdleConnectionIsResetOnBothSidesAtTheIdleTimeout) {
  Fd backend_listener = plain_listener();
  start_pair(local_port(backend_listener.get()), {"--idle-timeout", "0.5"});
  Fd app = plain_connect(client_->port());
  ASSERT_TRUE(send_all(app.get(), "h"));
  Fd backend(accept_one(backend_listener.get()));
  ASSERT_GE(backend.get(), 0);
  ASSERT_EQ(recv_exactly(backend.get(), 1), "h");
  auto start = Clock::now();
  EXPECT_EQ(closed_by_peer(backend.get(), 10s), ECONNRESET);
  EXPECT_EQ(closed_by_peer(app.get(), 10s), ECONNRESET);
  EXPECT_GE(Clock::now() - start, 400ms);
  EXPECT_TRUE(server_->wait_for_log("close=idle-timeout error=ETIMEDOUT", 5s)) << server_->log();
  EXPECT_TRUE(client_->wait_for_log("close=tls-truncated", 5s)) << client_->log();
}

// The policy's idle_timeout_ms wins over --idle-timeout: 0 means no limit.
TEST_F(TunnelTest, PolicyIdleTimeoutOverridesTheTunnelDefault) {
  server_policy_ = write_policy("server-no-idle", server_creds_,
                                "peer_authentication = \"required\"\nidle_timeout_ms = 0\n");
  Fd backend_listener = plain_listener();
  start_pair(local_port(backend_listener.get()), {"--idle-timeout", "0.3"});
  Fd app = plain_connect(client_->port());
  ASSERT_TRUE(send_all(app.get(), "h"));
  Fd backend(accept_one(backend_listener.get()));
  ASSERT_GE(backend.get(), 0);
  ASSERT_EQ(recv_exactly(backend.get(), 1), "h");
  // Idle for five times --idle-timeout: still open, and still forwarding.
  EXPECT_EQ(closed_by_peer(backend.get(), 1500ms), -1);
  ASSERT_TRUE(send_all(app.get(), "i"));
  EXPECT_EQ(recv_exactly(backend.get(), 1), "i");
  EXPECT_EQ(count_occurrences(server_->log(), "idle-timeout"), 0u) << server_->log();
}

// ---------------------------------------------------------------------------------------------
// Item 7: a fatal alert reaches the client.

// curl without a client certificate, against a server tunnel that requires one: the client is
// told "certificate required" every time (TLS 1.3: the alert comes after the client finished,
// while curl is already sending its request; a reset right after the alert would lose it).
TEST_F(TunnelTest, CurlWithoutClientCertificateIsToldTheAlertEveryTime) {
  EchoServer echo;
  server_ = start_server(echo.port());
  const std::string url = "https://localhost:" + std::to_string(server_->port()) + "/";
  int told = 0;
  std::string last;
  for (int i = 0; i < 20; ++i) {
    auto r =
        run_command({"curl", "-sS", "--max-time", "10", "--cacert", pki_.ca_cert(), "--resolve",
                     "localhost:" + std::to_string(server_->port()) + ":127.0.0.1", url},
                    20s);
    last = r.output;
    if (r.exit_code != 0 && r.output.find("certificate required") != std::string::npos) ++told;
  }
  EXPECT_EQ(told, 20) << "last: " << last;
}

// openssl s_client sending data while the alert arrives still sees the alert. (-quiet implies
// -ign_eof: at the end of its input s_client goes on reading until the server ends the stream,
// so the test does not race s_client's own exit against the alert.)
TEST_F(TunnelTest, OpensslClientSendingDataSeesTheAlert) {
  EchoServer echo;
  server_ = start_server(echo.port());
  // Half the 256 KiB the tunnel reads and drops after an alert (docs/cli.md): 256 KiB of data is
  // more than that on the wire, and past the bound the tunnel closes, which may reset.
  const std::string data(128 << 10, 'q');
  auto r = run_command(
      {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(server_->port()), "-CAfile",
       pki_.ca_cert(), "-servername", "localhost", "-quiet"},
      20s, data);
  EXPECT_NE(r.output.find("certificate required"), std::string::npos) << r.output;
  EXPECT_TRUE(server_->wait_for_log("close=handshake-failed", 5s)) << server_->log();
}

}  // namespace
}  // namespace ssx::test
