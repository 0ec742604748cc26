// SPDX-License-Identifier: Apache-2.0
// Many threads securing, using and closing sockets at once through one process. Run under ASan
// and LSan in CI (make asan-test): no races on the registry, no leaks, no crossed connections.

#include <gtest/gtest.h>
#include <sys/time.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

TEST_F(TlsTest, SixtyFourThreadsOpenAndCloseManyConnections) {
  use_policy("handshake_timeout_ms = 30000");
  constexpr int kClientThreads = 64;
  constexpr int kConnectionsPerThread = 16;
  constexpr int kServerThreads = 4;
  constexpr int kTotal = kClientThreads * kConnectionsPerThread;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);

  Fd listener = ssx_listener(SSX_GUARANTEE_ENCRYPTION, 256);
  timeval accept_timeout{2, 0};  // lets server threads notice the deadline
  ::setsockopt(listener.get(), SOL_SOCKET, SO_RCVTIMEO, &accept_timeout, sizeof accept_timeout);
  const std::uint16_t port = local_port(listener.get());

  std::atomic<int> claimed{0};
  std::atomic<int> served{0};
  std::atomic<int> server_failures{0};
  std::vector<std::thread> servers;
  for (int t = 0; t < kServerThreads; ++t) {
    servers.emplace_back([&] {
      while (claimed.fetch_add(1) < kTotal) {
        int fd = -1;
        while (fd < 0 && std::chrono::steady_clock::now() < deadline) {
          fd = ssx_accept(listener.get(), nullptr, nullptr);
          if (fd < 0 && errno != EAGAIN) server_failures++;
        }
        if (fd < 0) return;
        // Echo one message back, tagged so a crossed connection would show.
        char buf[128];
        ssize_t n = ssx_recv(fd, buf, sizeof buf, 0);
        if (n > 0 && ssx_send_all(fd, "echo:" + std::string(buf, static_cast<size_t>(n)))) {
          served++;
        } else {
          server_failures++;
        }
        ssx_close(fd);
      }
    });
  }

  std::atomic<int> ok{0};
  std::atomic<int> client_failures{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClientThreads; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kConnectionsPerThread && std::chrono::steady_clock::now() < deadline;
           ++i) {
        int fd = ssx_client_connect(port, {"localhost"});
        if (fd < 0) {
          client_failures++;
          continue;
        }
        std::string message = std::string("t") + std::to_string(t);  // not "t" + std::string:
        message += "c" + std::to_string(i);  // GCC 12 -O3 false -Wrestrict (GCC bug 105329)
        char buf[128];
        ssize_t n = -1;
        if (ssx_send_all(fd, message)) n = ssx_recv(fd, buf, sizeof buf, 0);
        if (n > 0 && std::string(buf, static_cast<size_t>(n)) == "echo:" + message) {
          ok++;
        } else {
          client_failures++;
        }
        ssx_close(fd);
      }
    });
  }
  for (auto &c : clients) c.join();
  for (auto &s : servers) s.join();
  EXPECT_EQ(client_failures.load(), 0);
  EXPECT_EQ(server_failures.load(), 0);
  EXPECT_EQ(ok.load(), kTotal);
  EXPECT_EQ(served.load(), kTotal);
}

}  // namespace
}  // namespace ssx::test
