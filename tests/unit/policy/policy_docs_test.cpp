// SPDX-License-Identifier: Apache-2.0
// docs/policy.md must stay true to the code: its examples are parsed here.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "policy_test_support.hpp"

namespace ssx::policy {
namespace {

using testing::make_certificate;
using testing::make_crl;
using testing::TempDir;

// toml_blocks returns the ```toml blocks of docs/policy.md, found from this file's path.
std::vector<std::string> toml_blocks() {
  const std::filesystem::path doc =
      std::filesystem::path(__FILE__).parent_path() / "../../../docs/policy.md";
  std::ifstream in(doc);
  EXPECT_TRUE(in.good()) << doc;
  std::vector<std::string> blocks;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```toml") {
      inside = true;
      blocks.emplace_back();
    } else if (inside && line == "```") {
      inside = false;
    } else if (inside) {
      blocks.back() += line + "\n";
    }
  }
  return blocks;
}

TEST(PolicyDocs, ErrorExampleGivesTheDocumentedMessage) {
  const std::vector<std::string> blocks = toml_blocks();
  ASSERT_GE(blocks.size(), 3u);
  Result<Policy> policy = parse_policy(blocks[1], "/etc/ssx/policy.toml");
  ASSERT_FALSE(policy.has_value());
  EXPECT_EQ(policy.error().message,
            "/etc/ssx/policy.toml:3:1: unknown key \"min_tls\" in [defaults]; did you mean "
            "\"min_tls_version\"?");
}

TEST(PolicyDocs, CompleteExampleLoads) {
  const std::vector<std::string> blocks = toml_blocks();
  ASSERT_GE(blocks.size(), 3u);
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.file("certs").c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(make_certificate(dir, "certs/host"));
  ASSERT_NO_FATAL_FAILURE(make_certificate(dir, "certs/internal-ca"));
  ASSERT_NO_FATAL_FAILURE(make_crl(dir, "certs/internal-ca"));
  std::filesystem::copy_file(dir.file("certs/internal-ca.crt"), dir.file("certs/internal-ca.pem"));

  Result<Policy> policy = parse_policy(blocks.back(), dir.file("policy.toml"));
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  EXPECT_EQ(policy->defaults.certificate, dir.file("certs/host.crt"));
  EXPECT_EQ(policy->defaults.peer_authentication, PeerAuthentication::required);
  ASSERT_EQ(policy->rules.size(), 5u);
  EXPECT_EQ(policy->rules[0].name, "public-https");
  EXPECT_EQ(policy->rules[0].settings.trust_bundle, "system");
  EXPECT_TRUE(policy->rules[0].settings.certificate.empty());
  EXPECT_EQ(policy->rules[2].settings.min_tls_version, TlsVersion::v1_2);
  EXPECT_TRUE(policy->rules[4].settings.deny);
  ASSERT_EQ(policy->identities.size(), 2u);
  EXPECT_TRUE(policy->identities[1].prefix);
}

}  // namespace
}  // namespace ssx::policy
