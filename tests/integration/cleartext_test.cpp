// SPDX-License-Identifier: Apache-2.0
// Fail closed, and the one permitted way to cleartext: the application's SSX_ALLOW_INSECURE *and*
// the policy's allow_insecure = true, with a peer that plainly does not speak TLS.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

constexpr const char *kSecret = "application secret that must never be sent in the clear";

// A cleartext server: records everything it receives until the client goes away or |timeout|,
// after answering its first read with |banner| (like an HTTP server refusing garbage).
struct CleartextServer {
  Fd listener = plain_listener();
  std::string received_first;   // bytes of the first connection
  std::string received_second;  // bytes of a second connection (after a fallback reconnect)
  std::unique_ptr<BackgroundThread> thread;

  explicit CleartextServer(std::string banner, int connections = 1) {
    thread = std::make_unique<BackgroundThread>([this, banner, connections] {
      for (int i = 0; i < connections; ++i) {
        int fd = ::accept(listener.get(), nullptr, nullptr);
        if (fd < 0) return;
        timeval tv{2, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string &sink = i == 0 ? received_first : received_second;
        char buf[4096];
        bool answered = false;
        for (;;) {
          ssize_t n = ::recv(fd, buf, sizeof buf, 0);
          if (n <= 0) break;
          sink.append(buf, static_cast<size_t>(n));
          if (!answered) {
            (void)!::send(fd, banner.data(), banner.size(), MSG_NOSIGNAL);
            answered = true;
            if (i == 0 && connections > 1) break;  // like a server that hangs up on garbage
          }
        }
        ::close(fd);
      }
    });
  }
  std::uint16_t port() const { return local_port(listener.get()); }
};

TEST_F(TlsTest, CleartextServerGetsNoApplicationByteUnderFailClosedSettings) {
  use_policy("allow_insecure = true");  // the policy would allow it, the application did not ask
  CleartextServer server("HTTP/1.0 400 Bad Request\r\n\r\n");
  Fd client;
  EXPECT_EQ(ssx_client_connect(server.port(), {"localhost"}, 0, &client), -1);
  EXPECT_EQ(errno, EPROTO) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_NOT_TLS);
  EXPECT_NE(std::string(ssx_last_error()).find("peer does not speak TLS"), std::string::npos)
      << ssx_last_error();
  EXPECT_EQ(ssx_send(client.get(), kSecret, std::strlen(kSecret), 0), -1);
  client.reset();
  server.thread.reset();
  ASSERT_FALSE(server.received_first.empty());
  EXPECT_EQ(static_cast<unsigned char>(server.received_first[0]), 0x16) << "a ClientHello";
  EXPECT_EQ(server.received_first.find(kSecret), std::string::npos);
}

TEST_F(TlsTest, AllowInsecureWithoutPolicyPermissionStillFailsClosed) {
  use_policy();  // allow_insecure = false (the default)
  CleartextServer server("220 plain banner\r\n");
  Fd client;
  EXPECT_EQ(ssx_client_connect(server.port(), {"localhost"}, SSX_ALLOW_INSECURE, &client), -1);
  EXPECT_EQ(errno, EPROTO) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_NOT_TLS);
  EXPECT_EQ(ssx_send(client.get(), kSecret, std::strlen(kSecret), 0), -1);
  client.reset();
  server.thread.reset();
  EXPECT_EQ(server.received_first.find(kSecret), std::string::npos);
}

TEST_F(TlsTest, GuaranteeEncryptionOverridesAllowInsecure) {
  use_policy("allow_insecure = true");
  CleartextServer server("220 plain banner\r\n");
  Fd client;
  EXPECT_EQ(ssx_client_connect(server.port(), {"localhost"},
                               SSX_ALLOW_INSECURE | SSX_GUARANTEE_ENCRYPTION, &client),
            -1);
  EXPECT_EQ(errno, EPROTO);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_NOT_TLS);
}

TEST_F(TlsTest, ClientFallsBackToCleartextOnlyWhenBothAllowIt) {
  use_policy("allow_insecure = true");
  CleartextServer server("plain hello\n", /*connections=*/2);
  Fd client;
  ASSERT_GE(ssx_client_connect(server.port(), {"localhost"}, SSX_ALLOW_INSECURE, &client), 0)
      << last_error_text();
  ssx_security_info *info = nullptr;
  ASSERT_EQ(ssx_query_socket_security(client.get(), nullptr, 0, &info), 0);
  EXPECT_EQ(info->protocol, SSX_PROTOCOL_NONE);
  EXPECT_EQ(info->flags & (SSX_INFO_SECURED | SSX_INFO_ENCRYPTED), 0u);
  EXPECT_STREQ(info->policy_rule, "client");
  ssx_free_security_info(info);
  ASSERT_TRUE(ssx_send_all(client.get(), "hello in the clear"));
  char buf[64];
  ssize_t n = ssx_recv(client.get(), buf, sizeof buf, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "plain hello\n");
  client.reset();
  server.thread.reset();
  EXPECT_EQ(static_cast<unsigned char>(server.received_first[0]), 0x16)
      << "the first connection carried only the ClientHello";
  EXPECT_EQ(server.received_second, "hello in the clear");
}

TEST_F(TlsTest, ServerServesACleartextClientOnlyWhenBothAllowIt) {
  for (bool allowed : {true, false}) {
    use_policy(allowed ? "allow_insecure = true" : "");
    Fd listener = ssx_listener(SSX_ALLOW_INSECURE);
    int server_errno = 0;
    std::string server_got;
    std::uint32_t server_flags = 0xffff;
    auto server = serve_one(listener.get(), [&](int fd, int error) {
      server_errno = error;
      if (fd < 0) return;
      ssx_security_info *info = nullptr;
      ASSERT_EQ(ssx_query_socket_security(fd, nullptr, 0, &info), 0);
      server_flags = info->flags;
      ssx_free_security_info(info);
      char buf[64];
      ssize_t n = ssx_recv(fd, buf, sizeof buf, 0);
      if (n > 0) server_got.assign(buf, static_cast<size_t>(n));
    });
    Fd raw(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback_address(local_port(listener.get()));
    ASSERT_EQ(::connect(raw.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    ASSERT_EQ(::send(raw.get(), "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL), 18);
    server.reset();
    if (allowed) {
      EXPECT_EQ(server_errno, 0);
      EXPECT_EQ(server_flags & SSX_INFO_SECURED, 0u);
      EXPECT_EQ(server_got, "GET / HTTP/1.0\r\n\r\n");
    } else {
      EXPECT_EQ(server_errno, EPROTO) << "fail closed when the policy does not allow cleartext";
      EXPECT_TRUE(server_got.empty());
    }
  }
}

}  // namespace
}  // namespace ssx::test
