// SPDX-License-Identifier: Apache-2.0
// The merge table of core/effective.hpp, one test per row: the application can only strengthen
// what the administrator's policy says.

#include "core/effective.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace ssx::core {
namespace {

std::shared_ptr<PolicySnapshot> snapshot_with(policy::Settings outbound) {
  policy::Policy p = policy::builtin_policy();
  policy::Rule rule;
  rule.name = "out";
  rule.match.direction = policy::Direction::outbound;
  rule.settings = std::move(outbound);
  p.rules.push_back(rule);
  return std::make_shared<PolicySnapshot>(std::move(p));
}

policy::MatchQuery outbound_query() {
  static sockaddr_in remote = [] {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(443);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }();
  return {policy::Direction::outbound, reinterpret_cast<sockaddr *>(&remote), nullptr, "/bin/x"};
}

AppSettings app_with(std::uint32_t flags, std::vector<std::string> names = {"db.example"}) {
  AppSettings app;
  app.flags = flags;
  for (const auto &n : names) app.names.push_back(*identity::parse_target_name(n));
  return app;
}

TEST(EffectivePolicy, AllowInsecureNeedsBothApplicationAndPolicy) {
  policy::Settings allows;
  allows.allow_insecure = true;
  policy::Settings forbids;
  forbids.allow_insecure = false;
  struct Row {
    std::uint32_t app_flags;
    bool policy_allows;
    bool fallback;
  };
  const Row rows[] = {
      {0, false, false},
      {0, true, false},  // the policy alone never produces cleartext
      {SSX_ALLOW_INSECURE, false, false},
      {SSX_ALLOW_INSECURE, true, true},
      {SSX_ALLOW_INSECURE | SSX_GUARANTEE_ENCRYPTION, true, false},  // guarantee wins
      {SSX_GUARANTEE_ENCRYPTION, true, false},
  };
  for (const auto &row : rows) {
    auto snap = snapshot_with(row.policy_allows ? allows : forbids);
    auto e = decide(app_with(row.app_flags), snap, outbound_query(), AF_INET);
    ASSERT_TRUE(e.has_value()) << e.error().message;
    EXPECT_EQ(e->cleartext_fallback, row.fallback)
        << "flags " << row.app_flags << " policy " << row.policy_allows;
    EXPECT_EQ(e->rule, "out");
  }
}

TEST(EffectivePolicy, DenyRuleRefusesWhateverTheApplicationAsks) {
  policy::Settings s;
  s.deny = true;
  auto e = decide(app_with(SSX_GUARANTEE_ENCRYPTION), snapshot_with(s), outbound_query(), AF_INET);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code, EACCES);
  EXPECT_EQ(e.error().message, "refused by policy rule \"out\" (deny = true)");
}

TEST(EffectivePolicy, BothApplicationAndPolicyNamesAreRequired) {
  policy::Settings s;
  s.peer_names = {"spiffe://td/db"};
  auto e = decide(app_with(0, {"db.example"}), snapshot_with(s), outbound_query(), AF_INET);
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->requirements.app_names.size(), 1u);
  EXPECT_EQ(e->requirements.app_names[0].value, "db.example");
  ASSERT_EQ(e->requirements.policy_names.size(), 1u);
  EXPECT_EQ(e->requirements.policy_names[0].value, "spiffe://td/db");
  EXPECT_EQ(e->requirements.policy_rule, "out");
}

TEST(EffectivePolicy, MissingTargetNameIsRefusedUnlessWaived) {
  policy::Settings required;
  auto e = decide(app_with(0, {}), snapshot_with(required), outbound_query(), AF_INET);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code, EACCES);
  EXPECT_NE(e.error().message.find("no peer target name"), std::string::npos);

  policy::Settings waived;
  waived.require_peer_target_name = false;
  EXPECT_TRUE(
      decide(app_with(0, {}), snapshot_with(waived), outbound_query(), AF_INET).has_value());

  policy::Settings policy_names;
  policy_names.peer_names = {"db.example"};  // a name from the policy is enough
  EXPECT_TRUE(
      decide(app_with(0, {}), snapshot_with(policy_names), outbound_query(), AF_INET).has_value());
}

TEST(EffectivePolicy, InboundSocketsNeedNoTargetName) {
  policy::Policy p = policy::builtin_policy();
  auto snap = std::make_shared<PolicySnapshot>(std::move(p));
  policy::MatchQuery q = outbound_query();
  q.direction = policy::Direction::inbound;
  auto e = decide(app_with(0, {}), snap, q, AF_INET);
  ASSERT_TRUE(e.has_value()) << e.error().message;
  EXPECT_EQ(e->rule, "defaults");
}

TEST(EffectivePolicy, ExplicitProtocolMustBeWhatThePolicySelects) {
  AppSettings app = app_with(0);
  app.protocol = SSX_PROTOCOL_TLS;
  EXPECT_TRUE(decide(app, snapshot_with({}), outbound_query(), AF_INET).has_value());

  policy::Settings local;
  local.protocol = policy::Protocol::local;
  auto e = decide(app_with(0), snapshot_with(local), outbound_query(), AF_INET);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code, EACCES);
  EXPECT_NE(e.error().message.find("selects protocol \"local\""), std::string::npos);
}

TEST(EffectivePolicy, UnixSocketsAreLocalUnlessEncryptionIsRequired) {
  auto snap = snapshot_with({});
  auto local = decide(app_with(0, {}), snap, outbound_query(), AF_UNIX);
  ASSERT_TRUE(local.has_value()) << local.error().message;
  EXPECT_TRUE(local->local);
  auto encrypted = decide(app_with(SSX_GUARANTEE_ENCRYPTION), snap, outbound_query(), AF_UNIX);
  ASSERT_TRUE(encrypted.has_value()) << encrypted.error().message;
  EXPECT_FALSE(encrypted->local);
  AppSettings tls = app_with(0);
  tls.protocol = SSX_PROTOCOL_TLS;
  auto explicit_tls = decide(tls, snap, outbound_query(), AF_UNIX);
  ASSERT_TRUE(explicit_tls.has_value());
  EXPECT_FALSE(explicit_tls->local);
  policy::Settings denied;
  denied.deny = true;
  EXPECT_FALSE(decide(app_with(0), snapshot_with(denied), outbound_query(), AF_UNIX).has_value());
}

}  // namespace
}  // namespace ssx::core
