// SPDX-License-Identifier: Apache-2.0
// Tests of tools/ssx/common/handshake_budget.hpp: which unfinished handshakes a server sheds.

#include "common/handshake_budget.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

namespace ssx::cli {
namespace {

sockaddr_storage v4(const char *text) {
  sockaddr_storage s{};
  auto &a = reinterpret_cast<sockaddr_in &>(s);
  a.sin_family = AF_INET;
  inet_pton(AF_INET, text, &a.sin_addr);
  return s;
}

sockaddr_storage v6(const char *text) {
  sockaddr_storage s{};
  auto &a = reinterpret_cast<sockaddr_in6 &>(s);
  a.sin6_family = AF_INET6;
  inet_pton(AF_INET6, text, &a.sin6_addr);
  return s;
}

const void *tok(int i) {
  return reinterpret_cast<const void *>(static_cast<std::uintptr_t>(i));
}

TEST(HandshakeBudget, ShedsTheOldestWhenFull) {
  HandshakeBudget b({3, 100});
  EXPECT_TRUE(b.admit(tok(1), v4("10.0.0.1")).empty());
  EXPECT_TRUE(b.admit(tok(2), v4("10.0.0.2")).empty());
  EXPECT_TRUE(b.admit(tok(3), v4("10.0.0.3")).empty());
  auto shed = b.admit(tok(4), v4("10.0.0.4"));
  ASSERT_EQ(shed.size(), 1u);
  EXPECT_EQ(shed[0], tok(1));
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.oldest(), tok(2));
}

TEST(HandshakeBudget, FinishedHandshakesFreeTheirPlace) {
  HandshakeBudget b({2, 100});
  EXPECT_TRUE(b.admit(tok(1), v4("10.0.0.1")).empty());
  EXPECT_TRUE(b.admit(tok(2), v4("10.0.0.2")).empty());
  b.finished(tok(1));
  b.finished(tok(99));  // unknown: no-op
  EXPECT_TRUE(b.admit(tok(3), v4("10.0.0.3")).empty());
  EXPECT_EQ(b.size(), 2u);
}

TEST(HandshakeBudget, PerSourceCapShedsThatSourcesOldestOnly) {
  HandshakeBudget b({3, 2});
  EXPECT_TRUE(b.admit(tok(1), v4("10.0.0.9")).empty());
  EXPECT_TRUE(b.admit(tok(2), v4("10.0.0.1")).empty());
  EXPECT_TRUE(b.admit(tok(3), v4("10.0.0.1")).empty());
  auto shed = b.admit(tok(4), v4("10.0.0.1"));
  ASSERT_EQ(shed.size(), 1u);
  EXPECT_EQ(shed[0], tok(2));  // not 1, the oldest overall, which is another source's
  EXPECT_EQ(b.size(), 3u);
  // A source under its share takes the oldest overall instead.
  shed = b.admit(tok(5), v4("10.0.0.5"));
  ASSERT_EQ(shed.size(), 1u);
  EXPECT_EQ(shed[0], tok(1));
}

TEST(HandshakeBudget, BelowTheBudgetOneSourceMayHoldMoreThanItsShare) {
  HandshakeBudget b({100, 2});
  for (int i = 1; i <= 50; ++i) EXPECT_TRUE(b.admit(tok(i), v4("10.0.0.1")).empty()) << i;
  EXPECT_EQ(b.size(), 50u);
}

TEST(HandshakeBudget, Ipv6CountsPerSlash64AndMappedIpv4AsIpv4) {
  HandshakeBudget b({2, 1});
  EXPECT_TRUE(b.admit(tok(1), v6("2001:db8:1:2::1")).empty());
  EXPECT_TRUE(b.admit(tok(2), v6("2001:db8:1:3::1")).empty());  // another /64
  auto shed = b.admit(tok(3), v6("2001:db8:1:2:ffff::7"));      // the /64 of 1: its share is used
  ASSERT_EQ(shed.size(), 1u);
  EXPECT_EQ(shed[0], tok(1));
  shed = b.admit(tok(4), v4("192.0.2.7"));  // a new source: the oldest overall goes
  ASSERT_EQ(shed.size(), 1u);
  EXPECT_EQ(shed[0], tok(2));
  shed = b.admit(tok(5), v6("::ffff:192.0.2.7"));  // the same source as 4
  ASSERT_EQ(shed.size(), 1u);
  EXPECT_EQ(shed[0], tok(4));
  shed = b.admit(tok(6), v6("2001:db8:1:2::9"));  // the /64 of 3
  ASSERT_EQ(shed.size(), 1u);
  EXPECT_EQ(shed[0], tok(3));
}

TEST(HandshakeBudget, LimitsOfZeroAreTreatedAsOne) {
  HandshakeBudget b({0, 0});
  EXPECT_TRUE(b.admit(tok(1), v4("10.0.0.1")).empty());
  auto shed = b.admit(tok(2), v4("10.0.0.2"));
  ASSERT_EQ(shed.size(), 1u);
  EXPECT_EQ(shed[0], tok(1));
}

TEST(HandshakeBudget, DerivedBudgetFollowsTheDescriptorLimit) {
  size_t nofile = 0;
  const size_t one = derive_budget(1, &nofile);
  ASSERT_GT(nofile, 0u);
  EXPECT_GE(one, 1u);
  EXPECT_LE(one, 16384u);
  EXPECT_LE(one, nofile / 2);
  EXPECT_LE(derive_budget(4), one / 4 + 1);
}

}  // namespace
}  // namespace ssx::cli
