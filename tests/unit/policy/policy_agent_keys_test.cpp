// SPDX-License-Identifier: Apache-2.0
// [[key]] tables, agent_socket / agent_timeout_ms and private_key = "agent:NAME": what the
// loader accepts and the FILE:LINE:COLUMN errors it gives (docs/agent.md, docs/policy.md).

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "policy/policy.hpp"
#include "policy/values.hpp"
#include "policy_test_support.hpp"

namespace ssx::policy {
namespace {

using testing::make_certificate;
using testing::TempDir;

class PolicyAgentKeys : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>();
    ASSERT_NO_FATAL_FAILURE(make_certificate(*dir_, "a"));
    ASSERT_NO_FATAL_FAILURE(make_certificate(*dir_, "b"));
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::string path(const std::string &name) { return dir_->file(name); }
  static Result<Policy> parse(const std::string &text, bool check_keys = false) {
    LoadOptions options;
    options.check_keys = check_keys;
    return parse_policy("version = 1\n" + text, path("policy.toml"), options);
  }
  static std::string error_of(const std::string &text, bool check_keys = false) {
    auto p = parse(text, check_keys);
    if (p) return "";
    EXPECT_EQ(p.error().code, EINVAL);
    return p.error().message;
  }
  static std::string at(int line, int column) {
    return path("policy.toml") + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  }
  static std::unique_ptr<TempDir> dir_;
};

std::unique_ptr<TempDir> PolicyAgentKeys::dir_;

TEST_F(PolicyAgentKeys, AcceptsKeysAndAgentReferences) {
  auto p = parse(
      "agent_socket = \"/run/x/agent.sock\"\nagent_timeout_ms = 500\n"
      "[defaults]\nprivate_key = \"agent:host\"\n"
      "[[rule]]\nname = \"web\"\nprivate_key = \"agent:web\"\ncertificate = \"a.crt\"\n"
      "[[key]]\nname = \"host\"\ncertificate = \"a.crt\"\nprivate_key = \"a.key\"\n"
      "users = [\"root\", 1001]\nprograms = [\"/usr/sbin/nginx\"]\n"
      "[[key]]\nname = \"web\"\ncertificate = \"b.crt\"\n"
      "private_key = \"pkcs11:token=ssx;object=web;type=private?pin-source=file:/etc/pin\"\n",
      true);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->agent.socket, "/run/x/agent.sock");
  EXPECT_EQ(p->agent.timeout_ms, 500u);
  ASSERT_EQ(p->keys.size(), 2u);
  EXPECT_EQ(p->keys[0].users, (std::vector<std::string>{"root", "1001"}));
  EXPECT_EQ(p->keys[0].certificate, path("a.crt"));
  EXPECT_EQ(agent_key_name(p->defaults), "host");
  EXPECT_TRUE(has_credentials(p->defaults));
  EXPECT_EQ(p->key("web")->private_key.substr(0, 7), "pkcs11:");
}

TEST_F(PolicyAgentKeys, DefaultsAreTheRunDirectoryAndTwoSeconds) {
  auto p = parse("");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->agent.socket, "/run/ssx/agent.sock");
  EXPECT_EQ(p->agent.timeout_ms, 2000u);
}

TEST_F(PolicyAgentKeys, AgentReferenceToNoKeyIsAnError) {
  EXPECT_EQ(error_of("[defaults]\nprivate_key = \"agent:nope\"\n"),
            at(3, 15) + "private_key \"agent:nope\" names no [[key]] table (the policy has none)");
  EXPECT_EQ(error_of("[defaults]\nprivate_key = \"agent:\"\n").rfind(at(3, 15), 0), 0u);
}

TEST_F(PolicyAgentKeys, ProgramsMustBeAbsolute) {
  EXPECT_EQ(error_of("[[key]]\nname = \"k\"\ncertificate = \"a.crt\"\nprivate_key = \"a.key\"\n"
                     "programs = [\"nginx\"]\n"),
            at(6, 13) + "each element of programs must be an absolute path, not \"nginx\"");
}

TEST_F(PolicyAgentKeys, UnknownUserIsAnErrorWhenKeysAreChecked) {
  const std::string text =
      "[[key]]\nname = \"k\"\ncertificate = \"a.crt\"\nprivate_key = \"a.key\"\n"
      "users = [\"no-such-user-ssx\"]\n";
  EXPECT_EQ(error_of(text), "");  // applications do not resolve the agent's users
  EXPECT_EQ(error_of(text, true),
            at(6, 10) + "unknown user \"no-such-user-ssx\" (no such account)");
}

TEST_F(PolicyAgentKeys, KeyThatDoesNotMatchItsCertificateIsAnErrorWhenKeysAreChecked) {
  const std::string text =
      "[[key]]\nname = \"k\"\ncertificate = \"a.crt\"\nprivate_key = \"b.key\"\n";
  EXPECT_EQ(error_of(text), "");  // applications never read [[key]] private keys
  const std::string e = error_of(text, true);
  EXPECT_EQ(e.rfind(at(5, 15), 0), 0u) << e;
  EXPECT_NE(e.find("does not match certificate"), std::string::npos) << e;
}

TEST_F(PolicyAgentKeys, MalformedPkcs11UrisAreErrors) {
  auto uri_error = [](const std::string &uri) {
    auto r = check_pkcs11_uri(uri);
    return r ? std::string() : r.error().message;
  };
  EXPECT_EQ(uri_error("pkcs11:token=ssx;object=host"), "");
  EXPECT_EQ(uri_error("pkcs11:id=%01%02"), "");
  EXPECT_NE(uri_error("pkcs11:token=ssx").find("must name the key with object= or id="),
            std::string::npos);
  EXPECT_NE(uri_error("pkcs11:tokn=ssx;object=a").find("unknown attribute \"tokn\""),
            std::string::npos);
  EXPECT_NE(uri_error("pkcs11:object=a;type=cert").find("type must be \"private\""),
            std::string::npos);
  EXPECT_NE(uri_error("pkcs11:object=%zz").find("bad %-escape"), std::string::npos);
  EXPECT_NE(uri_error("pkcs11:object=a%2").find("truncated %-escape"), std::string::npos);
  EXPECT_NE(uri_error("pkcs11:object").find("is not ATTRIBUTE=VALUE"), std::string::npos);
  EXPECT_EQ(error_of("[[key]]\nname = \"k\"\ncertificate = \"a.crt\"\n"
                     "private_key = \"pkcs11:object=a b\"\n")
                .rfind(at(5, 15), 0),
            0u);
}

TEST_F(PolicyAgentKeys, KeyTablesNeedNameCertificateAndKey) {
  EXPECT_EQ(error_of("[[key]]\ncertificate = \"a.crt\"\nprivate_key = \"a.key\"\n"),
            at(2, 1) + "[[key]] has no name");
  EXPECT_EQ(error_of("[[key]]\nname = \"k\"\nprivate_key = \"a.key\"\n"),
            at(2, 1) + "[[key]] \"k\" has no certificate");
  EXPECT_EQ(error_of("[[key]]\nname = \"k\"\ncertificate = \"a.crt\"\n"),
            at(2, 1) + "[[key]] \"k\" has no private_key");
  EXPECT_EQ(error_of("[[key]]\nname = \"a b\"\n"),
            at(3, 8) + "key name \"a b\" must be 1 to 64 letters, digits, '.', '_' or '-'");
  EXPECT_EQ(error_of("[[key]]\nname = \"k\"\ncertificate = \"a.crt\"\nprivate_key = \"a.key\"\n"
                     "[[key]]\nname = \"k\"\n"),
            at(7, 8) + "duplicate key name \"k\" (first used on line 2)");
  EXPECT_EQ(error_of("[[key]]\nname = \"k\"\nprogram = [\"/x\"]\n"),
            at(4, 1) + "key \"program\" is not allowed in [[key]] (only in [[rule]])");
  EXPECT_EQ(error_of("agent_timeout_ms = 0\n"),
            at(2, 20) + "agent_timeout_ms must be between 1 and 60000, not 0");
}

}  // namespace
}  // namespace ssx::policy
