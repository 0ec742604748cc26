// SPDX-License-Identifier: Apache-2.0
// Tests of the shared fixture in tests/testlib/test_pki.hpp: every suite relies on it, so its
// promises (private directory, key modes, chains that verify, rogue CA untrusted) are checked here.

#include "testlib/test_pki.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <stdexcept>
#include <string>

#include "ossl/ossl.hpp"
#include "testlib/run_command.hpp"

namespace ssx::test {
namespace {

unsigned mode_of(const std::string &path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

bool exists(const std::string &path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

CommandResult verify(const std::string &ca, const std::string &cert, const std::string &purpose) {
  return run_command(
      {"openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca, cert});
}

TEST(TempDir, IsPrivateAndRemovedRecursively) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    EXPECT_EQ(mode_of(path), 0700u);
    EXPECT_EQ(dir.file("x"), path + "/x");
    ASSERT_EQ(mkdir(dir.file("sub").c_str(), 0755), 0);
    write_text(dir.file("sub/f"), "hello");
    EXPECT_EQ(read_text(dir.file("sub/f")), "hello");
  }
  EXPECT_FALSE(exists(path));
}

TEST(TempDir, EachInstanceIsDistinct) {
  TempDir a;
  TempDir b;
  EXPECT_NE(a.path(), b.path());
}

TEST(TestPki, WritesTrustedAndRogueCaCertificates) {
  TestPki pki;
  EXPECT_EQ(pki.ca_cert(), pki.dir() + "/ca.crt");
  EXPECT_EQ(pki.rogue_ca_cert(), pki.dir() + "/rogue-ca.crt");
  EXPECT_EQ(read_text(pki.ca_cert()), pki.authority().cert_pem());
  EXPECT_EQ(read_text(pki.rogue_ca_cert()), pki.rogue_authority().cert_pem());
  EXPECT_NE(read_text(pki.ca_cert()), read_text(pki.rogue_ca_cert()));
  EXPECT_EQ(mode_of(pki.ca_cert()), 0644u);
}

TEST(TestPki, ServerCredentialsVerifyForServerUseWithKeyPrivate) {
  TestPki pki;
  CredentialFiles server = pki.server();
  EXPECT_EQ(server.cert, pki.dir() + "/server.crt");
  EXPECT_EQ(server.key, pki.dir() + "/server.key");
  EXPECT_EQ(server.chain, server.cert);
  EXPECT_EQ(mode_of(server.key), 0600u);
  auto ok = verify(pki.ca_cert(), server.cert, "sslserver");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(verify(pki.ca_cert(), server.cert, "sslclient").exit_code, 0);
  // The chain file carries the CA after the leaf.
  std::string chain = read_text(server.chain);
  EXPECT_NE(chain.find(pki.authority().cert_pem()), std::string::npos);
  EXPECT_NE(chain.find(pki.authority().cert_pem()), 0u);

  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(chain.data(), static_cast<int>(chain.size())));
  ossl::UniquePtr<X509> leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(leaf);
  EXPECT_EQ(X509_check_host(leaf.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf.get(), "::1", 0), 1);
}

TEST(TestPki, ClientCredentialsVerifyForClientUseWithSpiffeId) {
  TestPki pki;
  CredentialFiles client = pki.client();
  EXPECT_EQ(mode_of(client.key), 0600u);
  auto ok = verify(pki.ca_cert(), client.cert, "sslclient");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(verify(pki.ca_cert(), client.cert, "sslserver").exit_code, 0);
  auto text =
      run_command({"openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", client.cert});
  EXPECT_NE(text.output.find("URI:spiffe://ssx.test/client"), std::string::npos) << text.output;
}

TEST(TestPki, RogueIssuedCredentialsFailAgainstTrustedCa) {
  TestPki pki;
  CredentialFiles rogue = pki.issue("rogue-server", TestPki::server_request(), /*rogue=*/true);
  EXPECT_NE(verify(pki.ca_cert(), rogue.cert, "sslserver").exit_code, 0);
  EXPECT_EQ(verify(pki.rogue_ca_cert(), rogue.cert, "sslserver").exit_code, 0);
}

TEST(TestPki, IssueThrowsOnBadNameOrRequest) {
  TestPki pki;
  EXPECT_THROW(pki.issue("../escape", TestPki::server_request()), std::invalid_argument);
  EXPECT_THROW(pki.issue(".hidden", TestPki::server_request()), std::invalid_argument);
  pki::LeafRequest bad = TestPki::server_request();
  bad.ips = {"not-an-ip"};
  EXPECT_THROW(pki.issue("bad", bad), ssx::Error);
}

}  // namespace
}  // namespace ssx::test
