// SPDX-License-Identifier: Apache-2.0
// Tests of tools/ssx/common/address.hpp: HOST:PORT as the ssx command takes it.

#include "common/address.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace ssx::cli {
namespace {

TEST(ParseHostPort, DnsNameAndIpv4) {
  auto a = parse_host_port("db.example.org:5432");
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->host, "db.example.org");
  EXPECT_EQ(a->port, 5432);
  auto b = parse_host_port("127.0.0.1:1");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->host, "127.0.0.1");
  EXPECT_EQ(b->port, 1);
}

TEST(ParseHostPort, Ipv6TakesBrackets) {
  auto a = parse_host_port("[::1]:443");
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 443);
  auto b = parse_host_port("[2001:db8::7]:65535");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->host, "2001:db8::7");

  auto bare = parse_host_port("::1:443");
  ASSERT_FALSE(bare.has_value());
  EXPECT_EQ(bare.error().code, EINVAL);
  EXPECT_NE(bare.error().message.find("[::1]:443"), std::string::npos) << bare.error().message;
}

TEST(ParseHostPort, RejectsMalformedInputWithTheReason) {
  struct Case {
    const char *text;
    const char *reason;
  } cases[] = {
      {"localhost", "expected HOST:PORT"},
      {"localhost:", "the port is missing"},
      {":443", "the host is missing"},
      {"host:http", "is not a number"},
      {"host:0", "out of range (1-65535)"},
      {"host:65536", "out of range"},
      {"host:-1", "is not a number"},
      {"host:80x", "is not a number"},
      {"[::1", "missing ']'"},
      {"[::1]443", "expected ':PORT'"},
      {"[db.example]:443", "is not an IPv6 address"},
      {"bad host:1", "space or control character"},
  };
  for (const auto &c : cases) {
    SCOPED_TRACE(c.text);
    auto r = parse_host_port(c.text);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_NE(r.error().message.find(c.reason), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(std::string("\"") + c.text + "\""), std::string::npos)
        << r.error().message;
  }
}

TEST(ParseHostPort, ListenRulesAllowEveryAddressAndPortZero) {
  HostPortRules listen{.allow_empty_host = true, .allow_port_zero = true};
  auto a = parse_host_port(":8443", listen);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->host, "");
  EXPECT_EQ(a->port, 8443);
  auto b = parse_host_port("127.0.0.1:0", listen);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->port, 0);
  auto c = parse_host_port("[::]:0", listen);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->host, "::");
}

TEST(FormatHostPort, BracketsIpv6Only) {
  EXPECT_EQ(format_host_port("::1", 443), "[::1]:443");
  EXPECT_EQ(format_host_port("127.0.0.1", 80), "127.0.0.1:80");
  EXPECT_EQ(format_host_port("db.example", 5432), "db.example:5432");
}

TEST(FormatAddress, Ipv4AndIpv6) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = htons(4433);
  inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
  EXPECT_EQ(format_address(reinterpret_cast<sockaddr *>(&v4)), "192.0.2.7:4433");
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(8443);
  inet_pton(AF_INET6, "2001:db8::7", &v6.sin6_addr);
  EXPECT_EQ(format_address(reinterpret_cast<sockaddr *>(&v6)), "[2001:db8::7]:8443");
}

}  // namespace
}  // namespace ssx::cli
