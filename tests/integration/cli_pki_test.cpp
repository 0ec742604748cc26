// SPDX-License-Identifier: Apache-2.0
// Scenario tests of `ssx pki`: run the built ssx binary, then check what it wrote with tools we
// did not write (openssl verify, certtool) and with a real TLS 1.3 handshake between
// `openssl s_server` and `openssl s_client` on loopback.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "testlib/run_command.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {
namespace {

using std::chrono::seconds;

CommandResult ssx(std::vector<std::string> args) {
  args.insert(args.begin(), ssx_binary());
  return run_command(args, seconds(60));
}

unsigned mode_of(const std::string &path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

CommandResult openssl_verify(const std::string &ca, const std::string &cert,
                             const std::string &purpose) {
  return run_command(
      {"openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca, cert});
}

CommandResult certtool_verify(const std::string &ca, const std::string &chain) {
  return run_command({"certtool", "--verify", "--load-ca-certificate", ca, "--infile", chain});
}

class CliPki : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(ssx_binary().c_str(), X_OK), 0)
        << ssx_binary() << " is missing: build the ssx_cli target first";
    pki_ = tmp_.file("pki");
  }

  // init_and_issue makes a CA in pki_ and issues |name| with |extra| arguments.
  void init_and_issue(const std::string &name, std::vector<std::string> extra = {}) {
    auto init = ssx({"pki", "init", pki_});
    ASSERT_EQ(init.exit_code, 0) << init.output;
    std::vector<std::string> args = {"pki", "issue", pki_, name};
    args.insert(args.end(), extra.begin(), extra.end());
    auto issue = ssx(args);
    ASSERT_EQ(issue.exit_code, 0) << issue.output;
  }

  std::string file(const std::string &name) const { return pki_ + "/" + name; }

  TempDir tmp_;
  std::string pki_;
};

// TlsServer is `openssl s_server -www` on 127.0.0.1 at a port the kernel picks; the destructor
// (ChildProcess) kills it on every path.
class TlsServer {
 public:
  TlsServer(const std::string &cert, const std::string &key, std::vector<std::string> extra = {})
      : child_(argv(cert, key, extra)) {
    // s_server prints "ACCEPT 127.0.0.1:<port>" once it listens; with port 0 that line is the
    // only way to learn the port, and waiting for it removes any race with the first connection.
    std::string line = child_.wait_for_line("ACCEPT ", seconds(10));
    size_t colon = line.rfind(':');
    if (colon != std::string::npos) port_ = line.substr(colon + 1);
    if (port_.empty()) ADD_FAILURE() << "openssl s_server did not start:\n" << child_.output();
  }
  const std::string &port() const { return port_; }
  const std::string &output() const { return child_.output(); }

 private:
  static std::vector<std::string> argv(const std::string &cert, const std::string &key,
                                       const std::vector<std::string> &extra) {
    std::vector<std::string> args = {"openssl", "s_server", "-cert",       cert,   "-key",
                                     key,       "-accept",  "127.0.0.1:0", "-www", "-tls1_3"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  ChildProcess child_;
  std::string port_;
};

CommandResult s_client(const std::string &port, const std::string &ca, const std::string &host,
                       std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"openssl",
                                   "s_client",
                                   "-connect",
                                   "127.0.0.1:" + port,
                                   "-CAfile",
                                   ca,
                                   "-verify_return_error",
                                   "-verify_hostname",
                                   host,
                                   "-tls1_3",
                                   "-ign_eof"};
  args.insert(args.end(), extra.begin(), extra.end());
  // The request makes s_server -www answer and close, which ends s_client (-ign_eof waits for it).
  return run_command(args, seconds(20), "GET / HTTP/1.0\r\n\r\n");
}

TEST_F(CliPki, InitWritesPrivateDirectoryAndCaFiles) {
  pki_ = tmp_.file("nested/pki");
  auto init = ssx({"pki", "init", pki_, "--name", "integration CA", "--days", "30"});
  ASSERT_EQ(init.exit_code, 0) << init.output;
  EXPECT_EQ(mode_of(pki_), 0700u);
  EXPECT_EQ(mode_of(file("ca.key")), 0600u);
  EXPECT_EQ(mode_of(file("ca.crt")), 0644u);
  EXPECT_NE(init.output.find(file("ca.crt")), std::string::npos) << init.output;
  EXPECT_NE(init.output.find(file("ca.key")), std::string::npos) << init.output;
  auto text = run_command({"openssl", "x509", "-noout", "-subject", "-in", file("ca.crt")});
  EXPECT_NE(text.output.find("CN = integration CA"), std::string::npos) << text.output;
  // Self-signed and a CA: openssl verifies it against itself.
  EXPECT_EQ(openssl_verify(file("ca.crt"), file("ca.crt"), "any").exit_code, 0);
}

TEST_F(CliPki, IssuedChainPassesOpensslAndCerttoolVerify) {
  init_and_issue("server.ssx.test", {"--ip", "127.0.0.1", "--dns", "server.ssx.test"});
  EXPECT_EQ(mode_of(file("server.ssx.test.key")), 0600u);
  auto openssl = openssl_verify(file("ca.crt"), file("server.ssx.test.crt"), "sslserver");
  EXPECT_EQ(openssl.exit_code, 0) << openssl.output;
  auto gnutls = certtool_verify(file("ca.crt"), file("server.ssx.test.crt"));
  EXPECT_EQ(gnutls.exit_code, 0) << gnutls.output;
  EXPECT_NE(gnutls.output.find("Chain verification output: Verified"), std::string::npos)
      << gnutls.output;
}

TEST_F(CliPki, EveryKeyTypeIssuesVerifiableCertificates) {
  for (const char *key : {"ec-p256", "ed25519", "rsa2048"}) {
    SCOPED_TRACE(key);
    pki_ = tmp_.file(std::string("pki-") + key);
    auto init = ssx({"pki", "init", pki_, "--key", key});
    ASSERT_EQ(init.exit_code, 0) << init.output;
    auto issue = ssx({"pki", "issue", pki_, "leaf.ssx.test", "--key", key});
    ASSERT_EQ(issue.exit_code, 0) << issue.output;
    auto result = openssl_verify(file("ca.crt"), file("leaf.ssx.test.crt"), "sslserver");
    EXPECT_EQ(result.exit_code, 0) << result.output;
  }
}

TEST_F(CliPki, NameThatIsDnsOrIpBecomesTheSanWhenNoneIsGiven) {
  init_and_issue("host.ssx.test");
  ASSERT_EQ(ssx({"pki", "issue", pki_, "192.0.2.7"}).exit_code, 0);
  auto dns = run_command(
      {"openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", file("host.ssx.test.crt")});
  EXPECT_NE(dns.output.find("DNS:host.ssx.test"), std::string::npos) << dns.output;
  auto ip = run_command(
      {"openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", file("192.0.2.7.crt")});
  EXPECT_NE(ip.output.find("IP Address:192.0.2.7"), std::string::npos) << ip.output;
}

TEST_F(CliPki, ClientAndServerFlagsSelectExtendedKeyUsage) {
  init_and_issue("svc.ssx.test", {"--server"});
  ASSERT_EQ(ssx({"pki", "issue", pki_, "agent", "--uri", "spiffe://ssx.test/agent", "--client"})
                .exit_code,
            0);
  EXPECT_EQ(openssl_verify(file("ca.crt"), file("svc.ssx.test.crt"), "sslserver").exit_code, 0);
  EXPECT_NE(openssl_verify(file("ca.crt"), file("svc.ssx.test.crt"), "sslclient").exit_code, 0);
  EXPECT_EQ(openssl_verify(file("ca.crt"), file("agent.crt"), "sslclient").exit_code, 0);
  EXPECT_NE(openssl_verify(file("ca.crt"), file("agent.crt"), "sslserver").exit_code, 0);
}

TEST_F(CliPki, IssuedServerCertificateCompletesVerifiedHandshake) {
  init_and_issue("server.ssx.test", {"--server"});
  TlsServer server(file("server.ssx.test.crt"), file("server.ssx.test.key"));
  ASSERT_FALSE(server.port().empty());

  auto ok = s_client(server.port(), file("ca.crt"), "server.ssx.test");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("Verify return code: 0 (ok)"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("Verified peername: server.ssx.test"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("TLSv1.3"), std::string::npos) << ok.output;

  // The same server fails verification for any other name.
  auto wrong = s_client(server.port(), file("ca.crt"), "other.ssx.test");
  EXPECT_NE(wrong.exit_code, 0) << wrong.output;
  EXPECT_NE(wrong.output.find("hostname mismatch"), std::string::npos) << wrong.output;
}

TEST_F(CliPki, ServerOfAnotherCaFailsVerification) {
  init_and_issue("server.ssx.test");
  std::string other = tmp_.file("other");
  ASSERT_EQ(ssx({"pki", "init", other}).exit_code, 0);
  TlsServer server(file("server.ssx.test.crt"), file("server.ssx.test.key"));
  ASSERT_FALSE(server.port().empty());
  auto result = s_client(server.port(), other + "/ca.crt", "server.ssx.test");
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("unable to get local issuer certificate"), std::string::npos)
      << result.output;
}

TEST_F(CliPki, IssuedClientCertificateAuthenticatesToServerRequiringOne) {
  init_and_issue("server.ssx.test", {"--server"});
  ASSERT_EQ(ssx({"pki", "issue", pki_, "client", "--uri", "spiffe://ssx.test/client", "--client"})
                .exit_code,
            0);
  TlsServer server(file("server.ssx.test.crt"), file("server.ssx.test.key"),
                   {"-Verify", "1", "-CAfile", file("ca.crt"), "-verify_return_error"});
  ASSERT_FALSE(server.port().empty());
  auto result = s_client(server.port(), file("ca.crt"), "server.ssx.test",
                         {"-cert", file("client.crt"), "-key", file("client.key")});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  // s_server -www answers with the client certificate it verified.
  EXPECT_NE(result.output.find("URI:spiffe://ssx.test/client"), std::string::npos) << result.output;
}

TEST_F(CliPki, ExistingCaIsKeptWithoutForce) {
  ASSERT_EQ(ssx({"pki", "init", pki_}).exit_code, 0);
  std::string before = read_text(file("ca.crt"));
  auto again = ssx({"pki", "init", pki_});
  expect_one_line_error(again, 1, "init over an existing CA");
  EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--force"), std::string::npos) << again.output;
  EXPECT_EQ(read_text(file("ca.crt")), before);

  auto forced = ssx({"pki", "init", pki_, "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_NE(read_text(file("ca.crt")), before);
}

TEST_F(CliPki, ExistingLeafIsKeptWithoutForce) {
  init_and_issue("server.ssx.test");
  std::string before = read_text(file("server.ssx.test.crt"));
  expect_one_line_error(ssx({"pki", "issue", pki_, "server.ssx.test"}), 1, "re-issue");
  EXPECT_EQ(read_text(file("server.ssx.test.crt")), before);
  EXPECT_EQ(ssx({"pki", "issue", pki_, "server.ssx.test", "--force"}).exit_code, 0);
  EXPECT_NE(read_text(file("server.ssx.test.crt")), before);
}

// --public-key certifies a key made elsewhere (in a PKCS#11 token, by openssl): only NAME.crt is
// written, its key is that key, and a file that is not a public key is refused, writing nothing.
TEST_F(CliPki, PublicKeyOptionCertifiesAKeyMadeElsewhere) {
  auto init = ssx({"pki", "init", pki_});
  ASSERT_EQ(init.exit_code, 0) << init.output;
  const std::string key = tmp_.file("outside.key");
  const std::string pub = tmp_.file("outside.pub");
  ASSERT_EQ(run_command({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                         "ec_paramgen_curve:P-256", "-out", key})
                .exit_code,
            0);
  ASSERT_EQ(run_command({"openssl", "pkey", "-in", key, "-pubout", "-out", pub}).exit_code, 0);
  auto issue = ssx({"pki", "issue", pki_, "outside.ssx.test", "--public-key", pub});
  ASSERT_EQ(issue.exit_code, 0) << issue.output;
  EXPECT_NE(access(file("outside.ssx.test.key").c_str(), F_OK), 0);
  auto openssl = openssl_verify(file("ca.crt"), file("outside.ssx.test.crt"), "sslserver");
  EXPECT_EQ(openssl.exit_code, 0) << openssl.output;
  auto cert_pub =
      run_command({"openssl", "x509", "-in", file("outside.ssx.test.crt"), "-pubkey", "-noout"});
  auto key_pub = run_command({"openssl", "pkey", "-in", key, "-pubout"});
  EXPECT_EQ(cert_pub.output, key_pub.output);

  auto bad = ssx({"pki", "issue", pki_, "bad.ssx.test", "--public-key", file("ca.crt")});
  expect_one_line_error(bad, 1, "a certificate is not a public key");
  EXPECT_NE(bad.output.find("is not a PEM or DER SubjectPublicKeyInfo"), std::string::npos)
      << bad.output;
  EXPECT_NE(access(file("bad.ssx.test.crt").c_str(), F_OK), 0);
}

TEST_F(CliPki, IssueWithoutCaFailsWithExitOne) {
  auto result = ssx({"pki", "issue", tmp_.file("no-such-dir"), "server.ssx.test"});
  expect_one_line_error(result, 1, "issue without a CA");
  EXPECT_NE(result.output.find("ssx pki init"), std::string::npos) << result.output;
}

TEST_F(CliPki, BadUsageExitsTwoWithOneLineError) {
  ASSERT_EQ(ssx({"pki", "init", pki_}).exit_code, 0);
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"no-such-command"},
      {"pki"},
      {"pki", "init"},
      {"pki", "init", pki_, "--key", "dsa"},
      {"pki", "init", pki_, "--days", "0"},
      {"pki", "init", pki_, "--days", "many"},
      {"pki", "init", pki_, "--no-such-option"},
      {"pki", "issue", pki_},
      {"pki", "issue", pki_, "x.test", "--ip", "300.1.1.1"},
      {"pki", "issue", pki_, "x.test", "--ip", "fe80::1%eth0"},
      {"pki", "issue", pki_, "x.test", "--dns", "bad name"},
      {"pki", "issue", pki_, "x.test", "--uri", "no-scheme"},
      {"pki", "issue", pki_, "a/b"},
      {"pki", "issue", pki_, ".hidden"},
      {"pki", "issue", pki_, "ca"},
  };
  for (const auto &args : cases) {
    std::string context = "ssx";
    for (const auto &a : args) context += " " + a;
    expect_one_line_error(ssx(args), 2, context);
  }
  // Nothing was written by the failed issues.
  auto ls = run_command({"ls", "-A", pki_});
  EXPECT_EQ(ls.output, "ca.crt\nca.key\n");
}

TEST_F(CliPki, VersionAndHelpExitZero) {
  auto version = ssx({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.output.rfind("ssx ", 0), 0u) << version.output;
  for (std::vector<std::string> args : {std::vector<std::string>{"--help"},
                                        {"pki", "--help"},
                                        {"pki", "init", "--help"},
                                        {"pki", "issue", "--help"}}) {
    auto help = ssx(args);
    EXPECT_EQ(help.exit_code, 0) << help.output;
    EXPECT_NE(help.output.find("Example"), std::string::npos) << help.output;
  }
}

}  // namespace
}  // namespace ssx::test
