// SPDX-License-Identifier: Apache-2.0
// Hostile input from outside the library's own files: target names from the API, and a policy
// that once crashed every process loading it, sent to a running tunnel.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "ssx/ssx.hpp"
#include "testlib/loopback.hpp"
#include "tunnel_fixture.hpp"

namespace ssx::test {
namespace {

TEST(TargetNameApi, HundredKilobyteNamesAreRefusedWithABoundedError) {
  const std::string names[] = {
      "spiffe://example.org/" + std::string(100000, 'u'),  // a URI
      std::string(100000, 'a'),                            // a DNS name
      std::string(50000, 'a') + "." + std::string(50000, 'b'),
  };
  for (const std::string &name : names) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_GE(fd.get(), 0);
    SecuritySettings settings;
    settings.target_names = {name};
    const Result<void> r = detail::apply_settings(fd.get(), settings);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, EINVAL);
    const std::string error = ssx_last_error();
    EXPECT_LT(error.size(), 400u) << error.substr(0, 400);
    EXPECT_EQ(error.rfind("peer name \"", 0), 0u) << error.substr(0, 400);
    EXPECT_NE(error.find("...\""), std::string::npos) << error.substr(0, 400);
  }
  // At the bounds, accepted.
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SecuritySettings settings;
  settings.target_names = {"spiffe://example.org/" + std::string(2048 - 21, 'u')};
  EXPECT_TRUE(detail::apply_settings(fd.get(), settings).has_value()) << ssx_last_error();
}

class HostilePolicyTunnelTest : public TunnelTest {};

TEST_F(HostilePolicyTunnelTest, SighupWithFortyThousandSegmentPolicyKeepsServing) {
  EchoServer echo;
  start_pair(echo.port());
  std::string header = "a";
  for (int i = 1; i < 40000; ++i) header += ".a";
  write_text(server_policy_, "version = 1\n[" + header + "]\nx = 1\n");
  server_->signal(SIGHUP);
  ASSERT_TRUE(server_->wait_for_log("policy reload failed, keeping the previous policy", 10s))
      << server_->log().substr(0, 2000);
  EXPECT_NE(server_->log().find(server_policy_ + ":2:33: nesting deeper than 16"),
            std::string::npos)
      << server_->log().substr(0, 2000);
  EXPECT_LT(server_->log().size(), 4000u) << "the log quotes the hostile file";
  Fd c = plain_connect(client_->port());
  ASSERT_TRUE(send_all(c.get(), "still works"));
  EXPECT_EQ(recv_exactly(c.get(), 11), "still works");
}

}  // namespace
}  // namespace ssx::test
