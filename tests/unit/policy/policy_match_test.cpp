// SPDX-License-Identifier: Apache-2.0
// Policy::match and Cidr::contains: which rule applies to a socket.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include "policy/policy.hpp"
#include "policy/values.hpp"

namespace ssx::policy {
namespace {

// Address holds a socket address built from text, for queries.
struct Address {
  sockaddr_storage storage{};
  const sockaddr *get() const { return reinterpret_cast<const sockaddr *>(&storage); }
};

Address ip(const std::string &text, std::uint16_t port) {
  Address a;
  auto *in = reinterpret_cast<sockaddr_in *>(&a.storage);
  auto *in6 = reinterpret_cast<sockaddr_in6 *>(&a.storage);
  if (inet_pton(AF_INET, text.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr), 1) << text;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
  }
  return a;
}

Policy parse_ok(const std::string &text) {
  Result<Policy> policy = parse_policy(text, "match.toml");
  EXPECT_TRUE(policy.has_value()) << policy.error().message;
  return policy ? std::move(*policy) : Policy{};
}

// rule_for returns the name of the rule that applies to an outbound (or |direction|) socket.
std::string_view rule_for(const Policy &policy, Direction direction, const sockaddr *remote,
                          const sockaddr *local = nullptr, std::string_view program = {}) {
  MatchQuery query;
  query.direction = direction;
  query.remote = remote;
  query.local = local;
  query.program = program;
  return policy.match(query).rule_name;
}

TEST(PolicyMatch, FallsBackToDefaultsWhenNoRuleMatches) {
  const Policy policy = parse_ok(
      "version = 1\n[defaults]\nhandshake_timeout_ms = 42\n"
      "[[rule]]\nname = \"web\"\nport = 443\n");
  const Address remote = ip("192.0.2.1", 80);
  MatchQuery query;
  query.remote = remote.get();
  const Effective effective = policy.match(query);
  EXPECT_EQ(effective.rule_name, "defaults");
  EXPECT_EQ(effective.settings, &policy.defaults);
  EXPECT_EQ(effective.settings->handshake_timeout_ms, 42u);
}

TEST(PolicyMatch, ReturnsTheRulesSettings) {
  const Policy policy =
      parse_ok("version = 1\n[[rule]]\nname = \"web\"\nport = 443\nhandshake_timeout_ms = 7\n");
  const Address remote = ip("192.0.2.1", 443);
  MatchQuery query;
  query.remote = remote.get();
  const Effective effective = policy.match(query);
  EXPECT_EQ(effective.rule_name, "web");
  EXPECT_EQ(effective.settings, &policy.rules[0].settings);
  EXPECT_EQ(effective.settings->handshake_timeout_ms, 7u);
}

TEST(PolicyMatch, MatchesDirection) {
  const Policy policy = parse_ok(
      "version = 1\n[[rule]]\nname = \"in\"\ndirection = \"inbound\"\n"
      "[[rule]]\nname = \"out\"\ndirection = \"outbound\"\n");
  EXPECT_EQ(rule_for(policy, Direction::inbound, nullptr), "in");
  EXPECT_EQ(rule_for(policy, Direction::outbound, nullptr), "out");
}

TEST(PolicyMatch, ComparesRemotePortOutboundAndLocalPortInbound) {
  const Policy policy = parse_ok("version = 1\n[[rule]]\nname = \"p443\"\nport = 443\n");
  const Address remote443 = ip("192.0.2.1", 443);
  const Address local5000 = ip("10.0.0.1", 5000);
  const Address remote5000 = ip("192.0.2.1", 5000);
  const Address local443 = ip("10.0.0.1", 443);
  EXPECT_EQ(rule_for(policy, Direction::outbound, remote443.get(), local5000.get()), "p443");
  EXPECT_EQ(rule_for(policy, Direction::outbound, remote5000.get(), local443.get()), "defaults");
  EXPECT_EQ(rule_for(policy, Direction::inbound, remote5000.get(), local443.get()), "p443");
  EXPECT_EQ(rule_for(policy, Direction::inbound, remote443.get(), local5000.get()), "defaults");
}

TEST(PolicyMatch, MatchesPortListsAndInclusiveRanges) {
  const Policy policy =
      parse_ok("version = 1\n[[rule]]\nname = \"r\"\nports = [22, \"8000-8099\"]\n");
  for (std::uint16_t port : {22, 8000, 8050, 8099}) {
    const Address a = ip("192.0.2.1", port);
    EXPECT_EQ(rule_for(policy, Direction::outbound, a.get()), "r") << port;
  }
  for (std::uint16_t port : {21, 23, 7999, 8100}) {
    const Address a = ip("192.0.2.1", port);
    EXPECT_EQ(rule_for(policy, Direction::outbound, a.get()), "defaults") << port;
  }
}

TEST(PolicyMatch, MatchesIpv4AndIpv6Networks) {
  const Policy policy = parse_ok(
      "version = 1\n[[rule]]\nname = \"v4\"\naddress = \"172.16.0.0/12\"\n"
      "[[rule]]\nname = \"v6\"\naddress = \"2001:db8:8000::/33\"\n");
  const Address inside4 = ip("172.31.255.255", 1);
  const Address outside4 = ip("172.32.0.0", 1);
  const Address inside6 = ip("2001:db8:8000::1", 1);
  const Address outside6 = ip("2001:db8:7fff::1", 1);
  EXPECT_EQ(rule_for(policy, Direction::outbound, inside4.get()), "v4");
  EXPECT_EQ(rule_for(policy, Direction::outbound, outside4.get()), "defaults");
  EXPECT_EQ(rule_for(policy, Direction::outbound, inside6.get()), "v6");
  EXPECT_EQ(rule_for(policy, Direction::outbound, outside6.get()), "defaults");
}

TEST(PolicyMatch, ComparesRemoteAddressOutboundAndLocalAddressInbound) {
  const Policy policy =
      parse_ok("version = 1\n[[rule]]\nname = \"lan\"\naddress = \"10.0.0.0/8\"\n");
  const Address lan = ip("10.1.2.3", 1000);
  const Address wan = ip("198.51.100.7", 1000);
  EXPECT_EQ(rule_for(policy, Direction::outbound, lan.get(), wan.get()), "lan");
  EXPECT_EQ(rule_for(policy, Direction::outbound, wan.get(), lan.get()), "defaults");
  EXPECT_EQ(rule_for(policy, Direction::inbound, wan.get(), lan.get()), "lan");
  EXPECT_EQ(rule_for(policy, Direction::inbound, lan.get(), wan.get()), "defaults");
}

TEST(PolicyMatch, Ipv4RuleMatchesIpv4MappedIpv6Address) {
  const Policy policy =
      parse_ok("version = 1\n[[rule]]\nname = \"lan\"\naddress = \"10.0.0.0/8\"\n");
  const Address mapped = ip("::ffff:10.9.8.7", 443);
  const Address mapped_outside = ip("::ffff:11.0.0.1", 443);
  EXPECT_EQ(rule_for(policy, Direction::outbound, mapped.get()), "lan");
  EXPECT_EQ(rule_for(policy, Direction::outbound, mapped_outside.get()), "defaults");
}

TEST(PolicyMatch, Ipv6RuleNeverMatchesIpv4) {
  const Policy policy = parse_ok("version = 1\n[[rule]]\nname = \"all6\"\naddress = \"::/0\"\n");
  const Address v4 = ip("10.0.0.1", 443);
  const Address v6 = ip("2001:db8::1", 443);
  EXPECT_EQ(rule_for(policy, Direction::outbound, v4.get()), "defaults");
  EXPECT_EQ(rule_for(policy, Direction::outbound, v6.get()), "all6");
}

TEST(PolicyMatch, UnknownAddressDoesNotMatchRuleAboutAddressOrPort) {
  const Policy policy = parse_ok(
      "version = 1\n[[rule]]\nname = \"addr\"\naddress = \"0.0.0.0/0\"\n"
      "[[rule]]\nname = \"port\"\nport = 443\n"
      "[[rule]]\nname = \"any\"\n");
  EXPECT_EQ(rule_for(policy, Direction::outbound, nullptr), "any");
  // Inbound before accept: the remote is known but the local endpoint, which inbound rules
  // compare, is not.
  const Address remote = ip("10.0.0.1", 443);
  EXPECT_EQ(rule_for(policy, Direction::inbound, remote.get(), nullptr), "any");
  // Non-IP sockets have neither an IP address nor a port.
  Address unix_address;
  unix_address.storage.ss_family = AF_UNIX;
  EXPECT_EQ(rule_for(policy, Direction::outbound, unix_address.get()), "any");
}

TEST(PolicyMatch, MatchesProgramExactlyAndNeverAnUnknownOne) {
  const Policy policy =
      parse_ok("version = 1\n[[rule]]\nname = \"curl\"\nprogram = \"/nonexistent-ssx/bin/curl\"\n");
  EXPECT_EQ(rule_for(policy, Direction::outbound, nullptr, nullptr, "/nonexistent-ssx/bin/curl"),
            "curl");
  EXPECT_EQ(rule_for(policy, Direction::outbound, nullptr, nullptr, "/nonexistent-ssx/bin/curl2"),
            "defaults");
  EXPECT_EQ(rule_for(policy, Direction::outbound, nullptr, nullptr, ""), "defaults");
}

TEST(PolicyMatch, RequiresEveryKeyOfARule) {
  const Policy policy = parse_ok(
      "version = 1\n[[rule]]\nname = \"all\"\ndirection = \"outbound\"\nport = 5432\n"
      "address = \"10.0.0.0/8\"\nprogram = \"/nonexistent-ssx/psql\"\n");
  const Address db = ip("10.0.0.5", 5432);
  const Address other_port = ip("10.0.0.5", 5433);
  const Address other_net = ip("192.0.2.5", 5432);
  EXPECT_EQ(rule_for(policy, Direction::outbound, db.get(), nullptr, "/nonexistent-ssx/psql"),
            "all");
  EXPECT_EQ(rule_for(policy, Direction::inbound, nullptr, db.get(), "/nonexistent-ssx/psql"),
            "defaults");
  EXPECT_EQ(
      rule_for(policy, Direction::outbound, other_port.get(), nullptr, "/nonexistent-ssx/psql"),
      "defaults");
  EXPECT_EQ(
      rule_for(policy, Direction::outbound, other_net.get(), nullptr, "/nonexistent-ssx/psql"),
      "defaults");
  EXPECT_EQ(rule_for(policy, Direction::outbound, db.get(), nullptr, "/nonexistent-ssx/sh"),
            "defaults");
}

TEST(PolicyMatch, FirstMatchingRuleWins) {
  const Policy policy = parse_ok(
      "version = 1\n[[rule]]\nname = \"specific\"\naddress = \"10.0.0.1\"\ndeny = true\n"
      "[[rule]]\nname = \"broad\"\naddress = \"10.0.0.0/8\"\n"
      "[[rule]]\nname = \"shadowed\"\naddress = \"10.0.0.0/24\"\n");
  const Address one = ip("10.0.0.1", 1);
  const Address two = ip("10.0.0.2", 1);
  MatchQuery query;
  query.remote = one.get();
  EXPECT_EQ(policy.match(query).rule_name, "specific");
  EXPECT_TRUE(policy.match(query).settings->deny);
  EXPECT_EQ(rule_for(policy, Direction::outbound, two.get()), "broad");
}

TEST(Cidr, ContainsHonoursPartialPrefixBytes) {
  Result<Cidr> cidr = parse_cidr("192.168.128.0/17");
  ASSERT_TRUE(cidr.has_value()) << cidr.error().message;
  EXPECT_TRUE(cidr->contains(ip("192.168.128.0", 0).get()));
  EXPECT_TRUE(cidr->contains(ip("192.168.255.255", 0).get()));
  EXPECT_FALSE(cidr->contains(ip("192.168.127.255", 0).get()));
  EXPECT_FALSE(cidr->contains(ip("192.169.128.0", 0).get()));
  EXPECT_FALSE(cidr->contains(nullptr));
}

TEST(Cidr, ZeroPrefixContainsEveryAddressOfItsFamily) {
  Result<Cidr> any4 = parse_cidr("0.0.0.0/0");
  ASSERT_TRUE(any4.has_value());
  EXPECT_TRUE(any4->contains(ip("255.255.255.255", 0).get()));
  EXPECT_TRUE(any4->contains(ip("::ffff:1.2.3.4", 0).get()));
  EXPECT_FALSE(any4->contains(ip("::1", 0).get()));
}

}  // namespace
}  // namespace ssx::policy
