// SPDX-License-Identifier: Apache-2.0
// ssx sets TCP_NODELAY on secured TCP sockets, connected and accepted, unless the policy says
// tcp_nodelay = false (docs/policy.md): a client's small first record must not wait for a
// delayed ACK after the handshake.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <cstring>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

int nodelay_of(int fd) {
  int value = -1;
  socklen_t len = sizeof value;
  EXPECT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len), 0) << std::strerror(errno);
  return value;
}

// connected_pair returns TCP_NODELAY as set on an ssx client and on the ssx server side.
std::pair<int, int> connected_pair() {
  Fd listener = ssx_listener();
  int server_value = -1;
  {
    auto server = std::make_unique<BackgroundThread>([&] {
      Fd fd(ssx_accept(listener.get(), nullptr, nullptr));
      ASSERT_GE(fd.get(), 0) << last_error_text();
      server_value = nodelay_of(fd.get());
      EXPECT_TRUE(ssx_send_all(fd.get(), "x"));
    });
    Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
    EXPECT_GE(client.get(), 0) << last_error_text();
    if (client.get() < 0) return {-1, -1};
    char byte;
    EXPECT_EQ(ssx_recv(client.get(), &byte, 1, 0), 1) << last_error_text();
    const int client_value = nodelay_of(client.get());
    server.reset();
    return {client_value, server_value};
  }
}

TEST_F(TlsTest, TcpNodelayIsSetOnConnectedAndAcceptedSockets) {
  use_policy();
  // A plain socket starts with Nagle on: the 1s below are ssx's doing.
  Fd plain(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(nodelay_of(plain.get()), 0);
  auto [client, server] = connected_pair();
  EXPECT_EQ(client, 1);
  EXPECT_EQ(server, 1);
}

TEST_F(TlsTest, PolicyTcpNodelayFalseLeavesNagleOn) {
  use_policy("tcp_nodelay = false");
  auto [client, server] = connected_pair();
  EXPECT_EQ(client, 0);
  EXPECT_EQ(server, 0);
}

// The switch is per rule, like every setting: here only the server side keeps Nagle.
TEST_F(TlsTest, TcpNodelayFollowsTheMatchingRule) {
  use_policy("", "tcp_nodelay = false", "");
  auto [client, server] = connected_pair();
  EXPECT_EQ(client, 1);
  EXPECT_EQ(server, 0);
}

}  // namespace
}  // namespace ssx::test
