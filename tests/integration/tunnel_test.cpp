// SPDX-License-Identifier: Apache-2.0
// Scenario tests of `ssx tunnel` with real programs: curl and python3's http.server through a
// client-mode tunnel and a server-mode tunnel on loopback; half-close in both directions;
// truncation and resets; the metrics endpoint; SIGTERM draining; handshake deadlines; and the
// command line's exit codes.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ssx/ssx.h"
#include "tunnel_fixture.hpp"

namespace ssx::test {
namespace {

using Clock = std::chrono::steady_clock;

// expect_usage_error checks the CLI convention for a usage error: exit 2, one line "ssx: …".
void expect_one_line_error(const CommandResult &r, int code, const std::string &context) {
  EXPECT_EQ(r.exit_code, code) << context << "\n" << r.output;
  EXPECT_EQ(r.output.rfind("ssx: ", 0), 0u) << context << "\n" << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << context << "\n" << r.output;
}

CommandResult ssx_tunnel(std::vector<std::string> args) {
  args.insert(args.begin(), {ssx_cli_binary(), "tunnel"});
  return run_command(args, 20s);
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    std::uint64_t v = gen();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The command line.

TEST(TunnelCli, UsageErrorsExitTwoWithOneLine) {
  TempDir dir;
  std::string policy = dir.file("p.toml");
  write_text(policy, "version = 1\n");
  const std::vector<std::string> base = {"--policy", policy};
  struct Case {
    const char *what;
    std::vector<std::string> args;
  };
  const Case cases[] = {
      {"no options", {}},
      {"no --mode", {"--listen", "127.0.0.1:0", "--to", "127.0.0.1:80"}},
      {"bad --mode", {"--mode", "sideways", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:80"}},
      {"--listen without port",
       {"--mode", "server", "--listen", "127.0.0.1", "--to", "127.0.0.1:80"}},
      {"--listen bad port",
       {"--mode", "server", "--listen", "127.0.0.1:99999", "--to", "127.0.0.1:80"}},
      {"--to port 0", {"--mode", "client", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:0"}},
      {"--to unbracketed IPv6", {"--mode", "client", "--listen", "127.0.0.1:0", "--to", "::1:80"}},
      {"bad --name",
       {"--mode", "client", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:80", "--name",
        "sha256:abcd"}},
      {"non-loopback --metrics",
       {"--mode", "client", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:80", "--metrics",
        "192.0.2.1:9100"}},
      {"--workers 0",
       {"--mode", "client", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:80", "--workers", "0"}},
      {"unknown option",
       {"--mode", "client", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:80", "--frobnicate"}},
  };
  for (const auto &c : cases) {
    std::vector<std::string> args = base;
    args.insert(args.end(), c.args.begin(), c.args.end());
    expect_one_line_error(ssx_tunnel(args), 2, c.what);
  }
}

TEST(TunnelCli, HelpHasAnExample) {
  auto r = ssx_tunnel({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Example:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--mode"), std::string::npos) << r.output;
}

TEST(TunnelCli, InvalidPolicyExitsTwoWithFileLineColumn) {
  TempDir dir;
  std::string policy = dir.file("policy.toml");
  write_text(policy, "version = 1\n[defaults]\nmin_tls = \"1.3\"\n");
  auto r = ssx_tunnel(
      {"--policy", policy, "--mode", "server", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:80"});
  expect_one_line_error(r, 2, "invalid policy");
  EXPECT_NE(r.output.find(policy + ":3:1: unknown key \"min_tls\""), std::string::npos) << r.output;

  auto missing = ssx_tunnel({"--policy", dir.file("nope.toml"), "--mode", "server", "--listen",
                             "127.0.0.1:0", "--to", "127.0.0.1:80"});
  expect_one_line_error(missing, 2, "missing policy");
  EXPECT_NE(missing.output.find("nope.toml"), std::string::npos) << missing.output;
}

TEST(TunnelCli, PortInUseExitsOne) {
  TempDir dir;
  std::string policy = dir.file("p.toml");
  write_text(policy, "version = 1\n");
  Fd taken = plain_listener();
  auto r =
      ssx_tunnel({"--policy", policy, "--mode", "client", "--listen",
                  "127.0.0.1:" + std::to_string(local_port(taken.get())), "--to", "127.0.0.1:80"});
  expect_one_line_error(r, 1, "port in use");
  EXPECT_NE(r.output.find("Address already in use"), std::string::npos) << r.output;
}

// ---------------------------------------------------------------------------------------------
// Real programs at both ends.

TEST_F(TunnelTest, CurlThroughTunnelPairReachesPythonHttpServer) {
  TempDir www;
  const std::string known = "hello through ssx tunnel\n";
  write_text(www.file("known.txt"), known);
  const std::string big = random_bytes(3 * 1024 * 1024 + 17, 7);  // several buffers' worth
  write_text(www.file("big.bin"), big);

  ChildProcess http({"python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                     "--directory", www.path()});
  std::string line = http.wait_for_line("Serving HTTP on", 15s);
  ASSERT_FALSE(line.empty()) << http.output();
  size_t at = line.find(" port ");
  ASSERT_NE(at, std::string::npos) << line;
  const auto http_port = static_cast<std::uint16_t>(std::atoi(line.c_str() + at + 6));

  start_pair(http_port);
  const std::string base = "http://127.0.0.1:" + std::to_string(client_->port());
  auto small = run_command({"curl", "-sS", "--max-time", "20", base + "/known.txt"}, 30s);
  EXPECT_EQ(small.exit_code, 0) << describe({"curl"}, small);
  EXPECT_EQ(small.output, known);

  std::string out = dir_.file("big.out");
  auto large = run_command({"curl", "-sS", "--max-time", "20", "-o", out, base + "/big.bin"}, 30s);
  EXPECT_EQ(large.exit_code, 0) << describe({"curl"}, large);
  std::ifstream in(out, std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big) << "big.bin differs after the tunnel";

  // One line per connection on each side: who the peer was, the rule, the bytes, the reason.
  ASSERT_TRUE(server_->wait_for_log("close=done", 10s, 2)) << server_->log();
  ASSERT_TRUE(client_->wait_for_log("close=done", 10s, 2)) << client_->log();
  const std::string server_log = server_->log();
  EXPECT_NE(server_log.find("peer=\"spiffe://ssx.test/client\" rule=\"defaults\""),
            std::string::npos)
      << server_log;
  EXPECT_NE(client_->log().find("peer=\"localhost\" rule=\"defaults\""), std::string::npos)
      << client_->log();
  EXPECT_NE(server_log.find(" duration="), std::string::npos) << server_log;
}

// ---------------------------------------------------------------------------------------------
// Half-close, truncation, resets.

TEST_F(TunnelTest, HalfCloseFromTheClientPropagatesBothWays) {
  Fd backend = plain_listener();
  start_pair(local_port(backend.get()));
  Fd c = plain_connect(client_->port());
  ASSERT_TRUE(send_all(c.get(), "ping"));
  ASSERT_EQ(::shutdown(c.get(), SHUT_WR), 0);  // cleartext EOF -> close_notify -> FIN

  Fd s(accept_one(backend.get()));
  ASSERT_GE(s.get(), 0);
  int error = -1;
  EXPECT_EQ(recv_until_eof(s.get(), &error), "ping");
  EXPECT_EQ(error, 0) << "the backend must see a clean EOF";

  // The other direction is still open: the answer comes back, then its own clean EOF.
  ASSERT_TRUE(send_all(s.get(), "pong"));
  ASSERT_EQ(::shutdown(s.get(), SHUT_WR), 0);
  EXPECT_EQ(recv_until_eof(c.get(), &error), "pong");
  EXPECT_EQ(error, 0) << "the client must see a clean EOF";

  EXPECT_TRUE(server_->wait_for_log("close=done", 10s)) << server_->log();
  EXPECT_TRUE(client_->wait_for_log("close=done", 10s)) << client_->log();
}

TEST_F(TunnelTest, HalfCloseFromTheServerPropagatesBothWays) {
  Fd backend = plain_listener();
  start_pair(local_port(backend.get()));
  Fd c = plain_connect(client_->port());
  ASSERT_TRUE(send_all(c.get(), "hello"));
  Fd s(accept_one(backend.get()));
  ASSERT_GE(s.get(), 0);
  EXPECT_EQ(recv_exactly(s.get(), 5), "hello");

  ASSERT_TRUE(send_all(s.get(), "bye"));
  ASSERT_EQ(::shutdown(s.get(), SHUT_WR), 0);
  int error = -1;
  EXPECT_EQ(recv_until_eof(c.get(), &error), "bye");
  EXPECT_EQ(error, 0);

  // The client can still talk after the server finished its direction.
  ASSERT_TRUE(send_all(c.get(), "still here"));
  ASSERT_EQ(::shutdown(c.get(), SHUT_WR), 0);
  EXPECT_EQ(recv_until_eof(s.get(), &error), "still here");
  EXPECT_EQ(error, 0);
  EXPECT_TRUE(server_->wait_for_log("close=done", 10s)) << server_->log();
  EXPECT_TRUE(client_->wait_for_log("close=done", 10s)) << client_->log();
}

// A secured peer that ends the TCP stream without close_notify (a truncation attack, or a crash)
// must not look like a clean end to the cleartext service: it sees a reset.
TEST_F(TunnelTest, TlsTruncationResetsTheCleartextServiceInServerMode) {
  use_test_process_policy();
  Fd backend = plain_listener();
  server_ = start_server(local_port(backend.get()));

  Fd tls;
  ASSERT_GE(ssx_client_connect(server_->port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &tls), 0)
      << last_error_text();
  ASSERT_TRUE(ssx_send_all(tls.get(), "partial"));
  Fd s(accept_one(backend.get()));
  ASSERT_GE(s.get(), 0);
  EXPECT_EQ(recv_exactly(s.get(), 7), "partial");

  ASSERT_EQ(::shutdown(tls.get(), SHUT_WR), 0);  // FIN without close_notify
  int error = 0;
  recv_until_eof(s.get(), &error);
  EXPECT_EQ(error, ECONNRESET) << "the backend saw "
                               << (error == 0 ? "a clean EOF" : strerror(error));
  EXPECT_TRUE(server_->wait_for_log("close=tls-truncated error=ECONNRESET", 10s)) << server_->log();
}

TEST_F(TunnelTest, TlsTruncationResetsTheCleartextClientInClientMode) {
  use_test_process_policy();
  Fd tls_listener = ssx_listener();
  client_ = start_client(local_port(tls_listener.get()));

  Fd c = plain_connect(client_->port());
  ASSERT_TRUE(send_all(c.get(), "data"));
  pollfd p{tls_listener.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1) << "the client tunnel never connected";
  Fd s(ssx_accept(tls_listener.get(), nullptr, nullptr));
  ASSERT_GE(s.get(), 0) << last_error_text();
  char buf[4];
  ASSERT_EQ(ssx_recv(s.get(), buf, 4, MSG_WAITALL), 4) << last_error_text();
  EXPECT_EQ(std::string(buf, 4), "data");

  ASSERT_EQ(::shutdown(s.get(), SHUT_WR), 0);  // FIN without close_notify
  int error = 0;
  recv_until_eof(c.get(), &error);
  EXPECT_EQ(error, ECONNRESET) << "the client saw "
                               << (error == 0 ? "a clean EOF" : strerror(error));
  EXPECT_TRUE(client_->wait_for_log("close=tls-truncated error=ECONNRESET", 10s)) << client_->log();
}

// A cleartext side that resets is carried across as a reset: the tunnel aborts the secured side
// without close_notify, and the far tunnel resets its cleartext side.
TEST_F(TunnelTest, CleartextResetArrivesAsResetAtTheFarEnd) {
  Fd backend = plain_listener();
  start_pair(local_port(backend.get()));
  Fd c = plain_connect(client_->port());
  ASSERT_TRUE(send_all(c.get(), "x"));
  Fd s(accept_one(backend.get()));
  ASSERT_GE(s.get(), 0);
  EXPECT_EQ(recv_exactly(s.get(), 1), "x");

  abort_close(c);
  int error = 0;
  recv_until_eof(s.get(), &error);
  EXPECT_EQ(error, ECONNRESET) << (error == 0 ? "a clean EOF" : strerror(error));
  EXPECT_TRUE(client_->wait_for_log("close=cleartext-error error=ECONNRESET", 10s))
      << client_->log();
  EXPECT_TRUE(server_->wait_for_log("close=tls-truncated", 10s)) << server_->log();
}

// The secured peer is told nothing went well when the service cannot be reached: its stream is
// cut (no close_notify), and the failure is counted by errno.
TEST_F(TunnelTest, UnreachableServiceCutsTheSecuredPeerOff) {
  use_test_process_policy();
  std::uint16_t closed_port = 0;
  {
    Fd gone = plain_listener();
    closed_port = local_port(gone.get());
  }  // nothing listens there any more
  server_ = start_server(closed_port, {"--metrics", "127.0.0.1:0"});
  Fd tls;
  ASSERT_GE(ssx_client_connect(server_->port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &tls), 0)
      << last_error_text();
  char byte;
  EXPECT_EQ(ssx_recv(tls.get(), &byte, 1, 0), -1);
  EXPECT_TRUE(errno == ECONNRESET || errno == EPIPE) << last_error_text();
  ASSERT_TRUE(server_->wait_for_log("close=connect-failed error=ECONNREFUSED", 10s))
      << server_->log();
  std::string scrape = http_get(server_->metrics_port(), "/metrics");
  EXPECT_EQ(metric(scrape, "ssx_tunnel_connect_failures_total{reason=\"ECONNREFUSED\"}"), 1)
      << scrape;
}

// A server that is not who --name says: the handshake fails in the client tunnel, and the
// cleartext program sees a reset, not an empty but clean answer.
TEST_F(TunnelTest, WrongServerNameFailsTheHandshakeAndResetsTheClient) {
  EchoServer echo;
  server_ = start_server(echo.port());
  client_ = start_client(server_->port(), {"--name", "other.example", "--metrics", "127.0.0.1:0"});
  Fd c = plain_connect(client_->port());
  send_all(c.get(), "hello");
  int error = 0;
  EXPECT_EQ(recv_until_eof(c.get(), &error), "");
  EXPECT_EQ(error, ECONNRESET);
  ASSERT_TRUE(client_->wait_for_log("close=handshake-failed error=EKEYREJECTED", 10s))
      << client_->log();
  EXPECT_NE(client_->log().find("other.example"), std::string::npos) << client_->log();
  std::string scrape = http_get(client_->metrics_port(), "/metrics");
  EXPECT_EQ(metric(scrape, "ssx_tunnel_handshake_failures_total{reason=\"EKEYREJECTED\"}"), 1)
      << scrape;
}

// ---------------------------------------------------------------------------------------------
// Metrics, deadlines, SIGTERM.

TEST_F(TunnelTest, MetricsEndpointServesCounters) {
  EchoServer echo;
  start_pair(echo.port(), {"--metrics", "127.0.0.1:0"}, {"--metrics", "127.0.0.1:0"});
  ASSERT_NE(server_->metrics_port(), 0);
  ASSERT_NE(client_->metrics_port(), 0);
  for (int i = 0; i < 3; ++i) {
    Fd c = plain_connect(client_->port());
    ASSERT_TRUE(send_all(c.get(), "abc"));
    ::shutdown(c.get(), SHUT_WR);
    int error = -1;
    EXPECT_EQ(recv_until_eof(c.get(), &error), "abc");
    EXPECT_EQ(error, 0);
  }
  {  // Cleartext at the secured port: a handshake failure, counted by errno name.
    Fd bad = plain_connect(server_->port());
    send_all(bad.get(), "GET / HTTP/1.0\r\n\r\n");
    int error = 0;
    recv_until_eof(bad.get(), &error);
  }
  ASSERT_TRUE(server_->wait_for_log("close=", 10s, 4)) << server_->log();
  ASSERT_TRUE(client_->wait_for_log("close=", 10s, 3)) << client_->log();
  const std::string server_log = server_->log();
  size_t failed = server_log.find("close=handshake-failed error=");
  ASSERT_NE(failed, std::string::npos) << server_log;
  const std::string reason =
      server_log.substr(failed + 29, server_log.find(' ', failed + 29) - failed - 29);

  std::string scrape = http_get(server_->metrics_port(), "/metrics");
  EXPECT_EQ(scrape.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << scrape;
  EXPECT_NE(scrape.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("# TYPE ssx_tunnel_connections_total counter"), std::string::npos);
  EXPECT_EQ(metric(scrape, "ssx_tunnel_connections_total"), 4) << scrape;
  EXPECT_EQ(metric(scrape, "ssx_tunnel_connections_open"), 0) << scrape;
  EXPECT_EQ(metric(scrape, "ssx_tunnel_handshake_failures_total{reason=\"" + reason + "\"}"), 1)
      << scrape;
  EXPECT_EQ(metric(scrape, "ssx_tunnel_connections_closed_total{reason=\"done\"}"), 3) << scrape;
  EXPECT_EQ(metric(scrape, "ssx_tunnel_bytes_in_total"), 9) << scrape;
  EXPECT_EQ(metric(scrape, "ssx_tunnel_bytes_out_total"), 9) << scrape;
  // The first connection is a full handshake. Its reply reached the client only after the client
  // tunnel had read the server's session tickets (sent before any data), and each connection ends
  // before the next starts, so the other two resume: both ends count the same.
  EXPECT_EQ(metric(scrape, "ssx_tunnel_handshakes_total{resumed=\"false\"}"), 1) << scrape;
  EXPECT_EQ(metric(scrape, "ssx_tunnel_handshakes_total{resumed=\"true\"}"), 2) << scrape;

  std::string client_scrape = http_get(client_->metrics_port(), "/metrics");
  EXPECT_EQ(metric(client_scrape, "ssx_tunnel_connections_total"), 3) << client_scrape;
  EXPECT_EQ(metric(client_scrape, "ssx_tunnel_bytes_in_total"), 9) << client_scrape;
  EXPECT_EQ(metric(client_scrape, "ssx_tunnel_bytes_out_total"), 9) << client_scrape;
  EXPECT_EQ(metric(client_scrape, "ssx_tunnel_handshakes_total{resumed=\"false\"}"), 1)
      << client_scrape;
  EXPECT_EQ(metric(client_scrape, "ssx_tunnel_handshakes_total{resumed=\"true\"}"), 2)
      << client_scrape;

  // curl agrees, and other paths are 404.
  auto curl =
      run_command({"curl", "-sS", "--max-time", "10",
                   "http://127.0.0.1:" + std::to_string(server_->metrics_port()) + "/metrics"});
  EXPECT_EQ(curl.exit_code, 0) << curl.output;
  EXPECT_NE(curl.output.find("ssx_tunnel_connections_total 4"), std::string::npos) << curl.output;
  EXPECT_EQ(http_get(server_->metrics_port(), "/nope").rfind("HTTP/1.1 404", 0), 0u);
}

TEST_F(TunnelTest, SilentPeerIsDroppedAtThePolicyHandshakeTimeout) {
  server_policy_ = write_policy("server-fast", server_creds_, "handshake_timeout_ms = 300\n");
  Fd backend = plain_listener();
  server_ = start_server(local_port(backend.get()));
  auto start = Clock::now();
  Fd silent = plain_connect(server_->port());  // connects, then never sends a byte
  int error = 0;
  recv_until_eof(silent.get(), &error);
  auto waited = Clock::now() - start;
  EXPECT_LT(waited, 5s) << "a silent peer held its slot";
  EXPECT_GE(waited, 250ms);
  EXPECT_TRUE(server_->wait_for_log("close=handshake-failed error=ETIMEDOUT", 5s))
      << server_->log();
}

TEST_F(TunnelTest, SilentPeerIsDroppedAtTheSetupTimeout) {
  Fd backend = plain_listener();
  server_ = start_server(local_port(backend.get()), {"--setup-timeout", "0.5"});
  auto start = Clock::now();
  Fd silent = plain_connect(server_->port());
  int error = 0;
  recv_until_eof(silent.get(), &error);
  auto waited = Clock::now() - start;
  EXPECT_LT(waited, 5s);
  EXPECT_GE(waited, 400ms);
  EXPECT_TRUE(server_->wait_for_log("close=setup-timeout error=ETIMEDOUT", 5s)) << server_->log();
}

TEST_F(TunnelTest, SigtermStopsAcceptingAndDrainsOpenConnections) {
  EchoServer echo;
  start_pair(echo.port(), {"--grace", "30"});
  Fd c = plain_connect(client_->port());
  ASSERT_TRUE(send_all(c.get(), "one"));
  EXPECT_EQ(recv_exactly(c.get(), 3), "one");

  server_->signal(SIGTERM);
  ASSERT_TRUE(server_->wait_for_log("stopping:", 5s)) << server_->log();
  // No new connections: the listening sockets close once each worker has taken what was already
  // queued on its own (SO_REUSEPORT) listener, so the refusal comes within a short, bounded time.
  sockaddr_in a = loopback_address(server_->port());
  int probe_errno = 0;
  for (auto until = Clock::now() + 3s; Clock::now() < until;) {
    Fd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
      probe_errno = errno;
      break;
    }
    std::this_thread::sleep_for(20ms);  // poll interval of a bounded wait for the refusal
  }
  EXPECT_EQ(probe_errno, ECONNREFUSED) << "the tunnel still accepts after SIGTERM";
  // The open one goes on working, and the tunnel waits for it.
  ASSERT_TRUE(send_all(c.get(), "two"));
  EXPECT_EQ(recv_exactly(c.get(), 3), "two");
  EXPECT_FALSE(server_->wait_exited(300ms));
  ::shutdown(c.get(), SHUT_WR);
  int error = -1;
  EXPECT_EQ(recv_until_eof(c.get(), &error), "");
  EXPECT_EQ(error, 0);
  EXPECT_TRUE(server_->wait_exited(10s)) << server_->log();
  const std::string log = server_->log();
  EXPECT_NE(log.find("close=done"), std::string::npos) << log;
  EXPECT_NE(log.find("ssx tunnel: stopped"), std::string::npos) << log;
  EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log;  // sanitizer builds: a clean exit
}

TEST_F(TunnelTest, SigtermClosesWhatIsStillOpenAfterTheGracePeriod) {
  EchoServer echo;
  start_pair(echo.port(), {"--grace", "1"});
  Fd c = plain_connect(client_->port());
  ASSERT_TRUE(send_all(c.get(), "one"));
  EXPECT_EQ(recv_exactly(c.get(), 3), "one");
  auto start = Clock::now();
  server_->signal(SIGTERM);
  EXPECT_TRUE(server_->wait_exited(10s)) << server_->log();
  EXPECT_GE(Clock::now() - start, 900ms);
  EXPECT_NE(server_->log().find("close=shutdown"), std::string::npos) << server_->log();
  EXPECT_EQ(server_->log().find("Sanitizer"), std::string::npos) << server_->log();
  // Cut short, so the client sees an error, not a clean end.
  int error = 0;
  recv_until_eof(c.get(), &error);
  EXPECT_EQ(error, ECONNRESET);
}

TEST_F(TunnelTest, SighupWithABrokenPolicyKeepsThePreviousOne) {
  EchoServer echo;
  start_pair(echo.port());
  write_text(server_policy_, "version = 1\n[defaults]\nbogus = 1\n");
  server_->signal(SIGHUP);
  ASSERT_TRUE(server_->wait_for_log("policy reload failed, keeping the previous policy", 5s))
      << server_->log();
  EXPECT_NE(server_->log().find(":3:1: unknown key \"bogus\""), std::string::npos)
      << server_->log();
  Fd c = plain_connect(client_->port());
  ASSERT_TRUE(send_all(c.get(), "still works"));
  EXPECT_EQ(recv_exactly(c.get(), 11), "still works");
}

}  // namespace
}  // namespace ssx::test
