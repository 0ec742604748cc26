// SPDX-License-Identifier: Apache-2.0
// Context::build settles the certificates that follow our leaf once, and turns OpenSSL's
// per-handshake auto-chaining off (what is actually sent is checked end to end in
// tests/integration/certificate_chain_test.cpp).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/tls/context.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::tls {
namespace {

std::string common_name(X509 *cert) {
  char buf[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf) < 0)
    return "?";
  return buf;
}

class ContextChainTest : public ::testing::Test {
 protected:
  ContextChainTest() : intermediate_(pki_.intermediate("ssx test intermediate")) {
    pki::Credential leaf = intermediate_.issue(test::TestPki::server_request()).value();
    leaf_pem_ = leaf.cert_pem;
    settings_.private_key = dir_.file("server.key");
    settings_.certificate = dir_.file("server.crt");
    settings_.trust_bundle = pki_.ca_cert();
    test::write_text(settings_.private_key, leaf.key_pem, 0600);
  }

  // build writes |certificate_file| and builds a server context from settings_; returns the
  // common names of the chain that follows the leaf.
  std::vector<std::string> build(const std::string &certificate_file) {
    test::write_text(settings_.certificate, certificate_file);
    auto context = Context::build(settings_, Role::server);
    EXPECT_TRUE(context.has_value()) << context.error().message;
    if (!context) return {"(not built)"};
    SSL_CTX *ctx = (*context)->native();
    EXPECT_NE(SSL_CTX_get_mode(ctx) & SSL_MODE_NO_AUTO_CHAIN, 0u)
        << "the chain must not be built again at every handshake";
    STACK_OF(X509) *chain = nullptr;
    EXPECT_EQ(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
    std::vector<std::string> names;
    for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
      names.push_back(common_name(sk_X509_value(chain, i)));
    }
    return names;
  }

  test::TestPki pki_;
  test::TempDir dir_;
  pki::Authority intermediate_;
  policy::Settings settings_;
  std::string leaf_pem_;
};

TEST_F(ContextChainTest, FileChainKeepsItsIntermediateAndLosesItsRoot) {
  EXPECT_EQ(build(leaf_pem_ + intermediate_.cert_pem() + pki_.authority().cert_pem()),
            (std::vector<std::string>{"ssx test intermediate"}));
}

TEST_F(ContextChainTest, LeafOnlyFileIsCompletedFromTheTrustStoreAtBuild) {
  settings_.trust_bundle = dir_.file("bundle.crt");
  test::write_text(settings_.trust_bundle, pki_.authority().cert_pem() + intermediate_.cert_pem());
  EXPECT_EQ(build(leaf_pem_), (std::vector<std::string>{"ssx test intermediate"}));
}

TEST_F(ContextChainTest, LeafWithUnknownIssuerIsBuiltWithNoChain) {
  EXPECT_EQ(build(leaf_pem_), (std::vector<std::string>{}));
}

}  // namespace
}  // namespace ssx::tls
