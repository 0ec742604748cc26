// SPDX-License-Identifier: Apache-2.0
// A blocking ssx_accept handshakes the connections it has taken from the kernel together and
// returns the first that completes: clients that connect and say nothing (or dribble) do not
// hold up the clients behind them (ssx.h, ssx_accept; docs/limits.md for the bound).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

// silent_clients opens |n| plain TCP connections to |port| that never send a byte. connect(2)
// returns once the kernel has queued each one on the listener.
std::vector<Fd> silent_clients(std::uint16_t port, int n) {
  std::vector<Fd> out;
  for (int i = 0; i < n; ++i) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback_address(port);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0)
        << std::strerror(errno);
    out.push_back(std::move(fd));
  }
  return out;
}

// A real client on a thread: handshake, one request, one reply.
std::unique_ptr<BackgroundThread> real_client(std::uint16_t port) {
  return std::make_unique<BackgroundThread>([port] {
    Fd fd(ssx_client_connect(port, {"localhost"}));
    ASSERT_GE(fd.get(), 0) << last_error_text();
    EXPECT_TRUE(ssx_send_all(fd.get(), "hello"));
    char reply[2];
    EXPECT_EQ(ssx_recv(fd.get(), reply, sizeof reply, MSG_WAITALL), 2) << last_error_text();
  });
}

TEST_F(TlsTest, SilentClientsDoNotHoldUpTheClientBehindThem) {
  // A silent client used to stall a blocking accept loop for client_hello_timeout_ms each.
  use_policy("client_hello_timeout_ms = 10000\nhandshake_timeout_ms = 20000");
  Fd listener = ssx_listener();
  const std::uint16_t port = local_port(listener.get());
  constexpr int kSilent = 16;
  std::vector<Fd> silent = silent_clients(port, kSilent);
  auto client = real_client(port);  // queued behind every silent one

  const auto start = std::chrono::steady_clock::now();
  sockaddr_storage from{};
  socklen_t from_len = sizeof from;
  Fd fd(ssx_accept(listener.get(), reinterpret_cast<sockaddr *>(&from), &from_len));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_GE(fd.get(), 0) << last_error_text();
  EXPECT_LT(took, std::chrono::seconds(3)) << "well under client_hello_timeout_ms (10 s)";
  // It is the real client, and |from| is its address.
  char request[5];
  EXPECT_EQ(ssx_recv(fd.get(), request, sizeof request, MSG_WAITALL), 5) << last_error_text();
  EXPECT_EQ(std::string(request, 5), "hello");
  EXPECT_TRUE(ssx_send_all(fd.get(), "ok"));
  sockaddr_in peer{};
  socklen_t peer_len = sizeof peer;
  ASSERT_EQ(::getpeername(fd.get(), reinterpret_cast<sockaddr *>(&peer), &peer_len), 0);
  ASSERT_EQ(from_len, sizeof(sockaddr_in));
  EXPECT_EQ(reinterpret_cast<sockaddr_in *>(&from)->sin_port, peer.sin_port);
  client.reset();

  // The silent ones were pending all along: once they hang up, each ssx_accept reports one of
  // them as failed at once (the listener goes on).
  silent.clear();
  const auto again = std::chrono::steady_clock::now();
  for (int i = 0; i < kSilent; ++i) {
    EXPECT_EQ(ssx_accept(listener.get(), nullptr, nullptr), -1);
    EXPECT_EQ(errno, ECONNRESET) << last_error_text();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - again, std::chrono::seconds(3));
}

// Negative: the number of handshakes in progress is bounded. With more silent clients than
// that ahead of it, a real client waits in the kernel's queue until silent ones time out.
TEST_F(TlsTest, PendingHandshakesAreBounded) {
  use_policy("client_hello_timeout_ms = 300");
  Fd listener = ssx_listener(SSX_GUARANTEE_ENCRYPTION, 512);
  const std::uint16_t port = local_port(listener.get());
  constexpr int kSilent = 130;  // kMaxPendingHandshakes (128) + 2
  std::vector<Fd> silent = silent_clients(port, kSilent);
  auto client = real_client(port);

  const auto start = std::chrono::steady_clock::now();
  int timed_out = 0;
  Fd fd;
  while (fd.get() < 0 && timed_out <= kSilent) {
    int accepted = ssx_accept(listener.get(), nullptr, nullptr);
    if (accepted >= 0) {
      fd.reset(accepted);
    } else {
      EXPECT_EQ(errno, ETIMEDOUT) << last_error_text();
      ++timed_out;
    }
  }
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_GE(fd.get(), 0);
  EXPECT_GE(timed_out, 3) << "the real client is 131st: three slots must free first";
  EXPECT_GE(took, std::chrono::milliseconds(300));
  char request[5];
  EXPECT_EQ(ssx_recv(fd.get(), request, sizeof request, MSG_WAITALL), 5) << last_error_text();
  EXPECT_TRUE(ssx_send_all(fd.get(), "ok"));
}

// SO_RCVTIMEO bounds a blocking ssx_accept (EAGAIN), and a connection still handshaking when it
// expires is not lost: the next call returns it.
TEST_F(TlsTest, AcceptHonoursSoRcvtimeoAndKeepsPendingHandshakes) {
  use_policy("client_hello_timeout_ms = 10000");
  Fd listener = ssx_listener();
  const std::uint16_t port = local_port(listener.get());
  timeval timeout{0, 200 * 1000};
  ASSERT_EQ(::setsockopt(listener.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout), 0);
  std::vector<Fd> silent = silent_clients(port, 1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ssx_accept(listener.get(), nullptr, nullptr), -1);
  EXPECT_EQ(errno, EAGAIN) << last_error_text();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
  // The silent client speaks now: a ClientHello from a real client on the same connection is
  // not possible, so it hangs up instead, and the next accept reports exactly that connection.
  silent.clear();
  EXPECT_EQ(ssx_accept(listener.get(), nullptr, nullptr), -1);
  EXPECT_EQ(errno, ECONNRESET) << last_error_text();
}

}  // namespace
}  // namespace ssx::test
