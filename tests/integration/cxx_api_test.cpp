// SPDX-License-Identifier: Apache-2.0
// The C++ API (ssx.hpp): RAII sockets, Result/Error, SecurityInfo, Impersonation.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ssx/ssx.hpp"
#include "testlib/test_users.hpp"
#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

std::span<const std::byte> bytes(const std::string &s) {
  return std::as_bytes(std::span(s));
}

std::string receive_all(ssx::Socket &s) {
  std::string out;
  std::byte buf[4096];
  for (;;) {
    auto n = s.recv(buf);
    if (!n || *n == 0) return out;
    out.append(reinterpret_cast<const char *>(buf), *n);
  }
}

TEST_F(TlsTest, CxxSocketsConnectByHostNameAndReportSecurity) {
  use_policy("", "peer_authentication = \"required\"");
  ssx::SecuritySettings server_settings;
  server_settings.guarantee_encryption = true;
  auto listener = ssx::Listener::bind("127.0.0.1", 0, server_settings);
  ASSERT_TRUE(listener.has_value()) << listener.error().message;
  ASSERT_NE(listener->port(), 0);

  std::string server_saw;
  ssx::SecurityInfo server_info;
  BackgroundThread server([&] {
    ssx::Socket client = listener->accept().value();
    server_info = client.query_security().value();
    server_saw = receive_all(client);
    client.send(bytes("reply:" + server_saw)).value();
    client.shutdown().value();
  });

  ssx::SecuritySettings settings;
  settings.guarantee_encryption = true;
  settings.target_names = {"localhost"};
  ssx::Socket socket = ssx::Socket::connect("localhost", listener->port(), settings).value();
  EXPECT_TRUE(socket.is_open());
  EXPECT_EQ(socket.send(bytes("hello")).value(), 5u);
  socket.shutdown().value();
  EXPECT_EQ(receive_all(socket), "reply:hello");
  ssx::SecurityInfo info = socket.query_security().value();
  server.join();

  EXPECT_TRUE(info.secured() && info.encrypted() && info.peer_authenticated() &&
              info.peer_name_verified());
  EXPECT_EQ(info.protocol, SSX_PROTOCOL_TLS);
  EXPECT_EQ(info.version, "TLSv1.3");
  EXPECT_EQ(info.peer_principal, "localhost");
  EXPECT_EQ(info.local_principal, "spiffe://ssx.test/client");
  EXPECT_EQ(info.policy_rule, "client");
  EXPECT_GT(info.handshake_time.count(), 0);
  EXPECT_FALSE(info.peer_account.has_value());
  EXPECT_EQ(server_saw, "hello");
  EXPECT_EQ(server_info.peer_principal, "spiffe://ssx.test/client");

  // Moving transfers ownership; the moved-from socket is empty and closes nothing.
  ssx::Socket moved = std::move(socket);
  EXPECT_FALSE(socket.is_open());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_TRUE(moved.is_open());
}

TEST_F(TlsTest, CxxFailuresCarryErrnoAndReasonAndThrowFromValue) {
  use_policy();
  ssx::SecuritySettings server_settings;
  auto listener = ssx::Listener::bind("127.0.0.1", 0, server_settings).value();
  BackgroundThread server([&] { (void)listener.accept(); });
  ssx::SecuritySettings settings;
  settings.target_names = {"db.example"};
  auto socket = ssx::Socket::connect("127.0.0.1", listener.port(), settings);
  ASSERT_FALSE(socket.has_value());
  EXPECT_EQ(socket.error().code, EKEYREJECTED);
  EXPECT_EQ(socket.error().reason, SSX_REASON_NAME_MISMATCH);
  EXPECT_NE(socket.error().message.find("does not match target name \"db.example\""),
            std::string::npos);
  try {
    (void)socket.value();
    ADD_FAILURE() << "value() on a failure must throw";
  } catch (const ssx::Error &e) {
    EXPECT_EQ(e.code(), std::error_code(EKEYREJECTED, std::generic_category()));
    EXPECT_EQ(e.reason(), socket.error().message);
  }
  settings.target_names = {"*.bad"};
  auto bad_name = ssx::Socket::connect("127.0.0.1", listener.port(), settings);
  ASSERT_FALSE(bad_name.has_value());
  EXPECT_EQ(bad_name.error().code, EINVAL);
  auto unresolvable = ssx::Socket::connect("no-such-host.invalid", 1, settings);
  ASSERT_FALSE(unresolvable.has_value());
  EXPECT_NE(unresolvable.error().message.find("cannot resolve"), std::string::npos);
}

TEST_F(TlsTest, CxxImpersonationGuardRevertsAtScopeExit) {
  if (!TestUser::available()) GTEST_SKIP() << "needs root and useradd (CI runs as root)";
  TestUser user("x");
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0711), 0);
  use_policy(
      "", "peer_authentication = \"required\"",
      "\n[[identity]]\npeer = \"spiffe://ssx.test/*\"\nuser = " + toml_quote(user.name()) + "\n");
  const std::string root_only = dir_.file("root-only");
  write_text(root_only, "secret", 0600);
  ssx::SecuritySettings server_settings;
  auto listener = ssx::Listener::bind("127.0.0.1", 0, server_settings).value();
  BackgroundThread server([&] {
    ssx::Socket client = listener.accept().value();
    ssx::SecurityInfo info = client.query_security().value();
    ASSERT_TRUE(info.impersonation_available());
    ASSERT_TRUE(info.peer_account.has_value());
    EXPECT_EQ(info.peer_account->user, user.name());
    EXPECT_EQ(info.peer_account->uid, user.uid());
    {
      auto as_peer = ssx::Impersonation::begin(client).value();
      EXPECT_EQ(::geteuid(), user.uid());
      EXPECT_EQ(::open(root_only.c_str(), O_RDONLY | O_CLOEXEC), -1);
      EXPECT_EQ(errno, EACCES);
    }
    EXPECT_EQ(::geteuid(), 0u);
    int fd = ::open(root_only.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    if (fd >= 0) ::close(fd);
  });
  ssx::SecuritySettings settings;
  settings.target_names = {"localhost"};
  auto socket = ssx::Socket::connect("127.0.0.1", listener.port(), settings);
  ASSERT_TRUE(socket.has_value()) << socket.error().message;
  server.join();
}

TEST_F(TlsTest, CxxSocketAbortResetsTheConnection) {
  use_policy();
  ssx::SecuritySettings server_settings;
  server_settings.guarantee_encryption = true;
  auto listener = ssx::Listener::bind("127.0.0.1", 0, server_settings);
  ASSERT_TRUE(listener.has_value()) << listener.error().message;
  BackgroundThread server([&] {
    ssx::Socket peer = listener->accept().value();
    peer.send(bytes("cut")).value();
    peer.abort();
    EXPECT_FALSE(peer.is_open());
  });
  ssx::SecuritySettings settings;
  settings.guarantee_encryption = true;
  settings.target_names = {"localhost"};
  ssx::Socket socket = ssx::Socket::connect("localhost", listener->port(), settings).value();
  server.join();
  std::string got;
  std::byte buf[64];
  Result<std::size_t> n = socket.recv(buf);
  while (n && *n > 0) {
    got.append(reinterpret_cast<const char *>(buf), *n);
    n = socket.recv(buf);
  }
  EXPECT_EQ(std::string("cut").substr(0, got.size()), got);  // a reset may drop unread data
  ASSERT_FALSE(n.has_value()) << "an aborted stream must not end like a complete one";
  EXPECT_EQ(n.error().code, ECONNRESET) << n.error().message;
}

}  // namespace
}  // namespace ssx::test
