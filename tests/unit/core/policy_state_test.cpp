// SPDX-License-Identifier: Apache-2.0
// PolicySnapshot::build: every TLS context a socket can need is built when the snapshot is, so a
// snapshot never reads its files again (what makes reloading under rotation safe), and a context
// that cannot be built fails the snapshot instead of a later handshake.

#include "core/policy_state.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdio>

#include "ossl/ossl.hpp"
#include "testlib/loopback.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::core {
namespace {

using test::CredentialFiles;
using test::TempDir;
using test::TestPki;

class PolicySnapshotTest : public ::testing::Test {
 protected:
  PolicySnapshotTest() : server_(pki_.server()) {}

  // inbound_policy has [defaults] trusting the test CA and an inbound rule with the server's
  // credentials.
  policy::Policy inbound_policy() {
    const std::string path = dir_.file("policy.toml");
    test::write_text(path,
                     "version = 1\n[defaults]\ntrust_bundle = " + test::toml_quote(pki_.ca_cert()) +
                         "\n[[rule]]\nname = \"server\"\ndirection = \"inbound\"\n"
                         "certificate = " +
                         test::toml_quote(server_.cert) +
                         "\nprivate_key = " + test::toml_quote(server_.key) + "\n");
    return policy::load_policy_file(path).value();
  }

  // remove_credentials deletes the files the policy names.
  void remove_credentials() {
    ASSERT_EQ(::unlink(server_.cert.c_str()), 0);
    ASSERT_EQ(::unlink(server_.key.c_str()), 0);
    ASSERT_EQ(::unlink(pki_.ca_cert().c_str()), 0);
  }

  TestPki pki_;
  TempDir dir_;
  CredentialFiles server_;
};

TEST_F(PolicySnapshotTest, BuiltSnapshotNeverReadsItsFilesAgain) {
  auto snapshot = PolicySnapshot::build(inbound_policy());
  ASSERT_TRUE(snapshot.has_value()) << snapshot.error().message;
  const policy::Policy &p = (*snapshot)->policy();
  const std::string pem = test::read_text(server_.cert);
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::UniquePtr<X509> leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(leaf);
  remove_credentials();

  auto server = (*snapshot)->tls_context(p.rules[0].settings, tls::Role::server);
  ASSERT_TRUE(server.has_value()) << server.error().message;
  EXPECT_EQ(ossl::spki_sha256_hex(SSL_CTX_get0_certificate((*server)->native())),
            ossl::spki_sha256_hex(leaf.get()));
  EXPECT_TRUE((*snapshot)->tls_context(p.defaults, tls::Role::client).has_value());
}

TEST_F(PolicySnapshotTest, UnbuiltSnapshotReadsFilesAtFirstUse) {
  // The control for the test above: without build() the same removal breaks the context.
  auto snapshot = std::make_shared<PolicySnapshot>(inbound_policy());
  remove_credentials();
  auto server = snapshot->tls_context(snapshot->policy().rules[0].settings, tls::Role::server);
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().code, EACCES);
}

TEST_F(PolicySnapshotTest, ContextThatCannotBeBuiltFailsTheSnapshotNamingTheTable) {
  policy::Policy p = policy::builtin_policy();
  p.source = "/etc/ssx/test.toml";
  policy::Rule rule;
  rule.name = "web";
  rule.match.direction = policy::Direction::inbound;
  rule.settings.certificate = dir_.file("missing.crt");
  rule.settings.private_key = dir_.file("missing.key");
  p.rules.push_back(rule);
  auto snapshot = PolicySnapshot::build(std::move(p));
  ASSERT_FALSE(snapshot.has_value());
  EXPECT_EQ(snapshot.error().code, EACCES);
  EXPECT_EQ(snapshot.error().message.rfind(
                "/etc/ssx/test.toml: rule \"web\": certificate " + dir_.file("missing.crt"), 0),
            0u)
      << snapshot.error().message;
}

TEST_F(PolicySnapshotTest, ContextsNoSocketCanUseAreNotBuilt) {
  // Each rule would fail to build the context it does not need: an inbound rule without a
  // certificate as a server, an outbound rule's unreadable credential as a server, a deny rule
  // at all. None of them is built, so the snapshot builds.
  policy::Policy p = policy::builtin_policy();
  policy::Rule inbound;
  inbound.name = "inbound-no-certificate";
  inbound.match.direction = policy::Direction::inbound;
  inbound.settings.trust_bundle = pki_.ca_cert();
  p.rules.push_back(inbound);
  policy::Rule denied;
  denied.name = "denied";
  denied.settings.deny = true;
  denied.settings.certificate = dir_.file("missing.crt");
  denied.settings.private_key = dir_.file("missing.key");
  p.rules.push_back(denied);
  auto snapshot = PolicySnapshot::build(std::move(p));
  ASSERT_TRUE(snapshot.has_value()) << snapshot.error().message;
  // The server context an inbound rule without a certificate would need fails when asked for.
  auto server =
      (*snapshot)->tls_context((*snapshot)->policy().rules[0].settings, tls::Role::server);
  EXPECT_FALSE(server.has_value());
}

TEST_F(PolicySnapshotTest, FilesListsEveryNamedFileOnce) {
  policy::Policy p = inbound_policy();
  p.defaults.crl = "/etc/ssx/ca.crl";
  p.rules.push_back(p.rules[0]);  // the same files again
  p.rules.back().settings.trust_bundle = "system";
  PolicySnapshot snapshot(std::move(p));
  EXPECT_EQ(snapshot.files(), (std::vector<std::string>{pki_.ca_cert(), "/etc/ssx/ca.crl",
                                                        server_.cert, server_.key}));
}

}  // namespace
}  // namespace ssx::core
