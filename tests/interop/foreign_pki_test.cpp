// SPDX-License-Identifier: Apache-2.0
// Certificates ssx did not make, and certificate checks made against foreign peers: a chain with
// an intermediate CA and an RSA leaf built with the openssl command line, an Ed25519 leaf built
// with GnuTLS's certtool, client certificates that must be refused, and a key pin that must not
// widen what the chain allows.

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "interop.hpp"

namespace ssx::test {
namespace {

int count_certificates(const std::string &pem) {
  int n = 0;
  for (size_t at = pem.find("-----BEGIN CERTIFICATE-----"); at != std::string::npos;
       at = pem.find("-----BEGIN CERTIFICATE-----", at + 1)) {
    ++n;
  }
  return n;
}

class ForeignPkiTest : public InteropTest {
 protected:
  // One RSA-2048 key for every test's leaf: making it is the slow part (about a second).
  static void SetUpTestSuite() {
    keys_ = new TempDir();
    rsa_key_ = keys_->file("rsa.key");
    CommandResult r = run_command({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                                   "rsa_keygen_bits:2048", "-out", rsa_key_},
                                  kPeerTimeout);
    if (r.exit_code != 0) rsa_key_.clear();
  }
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
  }

  // run runs a certificate tool and fails the test unless it exits 0.
  static void run(const std::vector<std::string> &argv) {
    CommandResult r = run_command(argv, kPeerTimeout);
    ASSERT_EQ(r.exit_code, 0) << describe(argv, r);
  }

  // root_key writes the trusted test CA's private key where the tools can read it.
  std::string root_key() {
    std::string path = dir_.file("root.key");
    write_text(path, pki_.authority().key_pem(), 0600);
    return path;
  }

  // openssl_chain builds, with the openssl command line only, an intermediate CA (EC P-256)
  // under the trusted test CA and an RSA-2048 leaf for localhost / 127.0.0.1 under it. Sets
  // leaf_, leaf_key_ and intermediate_.
  void openssl_chain() {
    const std::string root = root_key();
    intermediate_ = dir_.file("int.crt");
    const std::string int_key = dir_.file("int.key");
    write_text(dir_.file("int.ext"),
               "basicConstraints = critical, CA:TRUE, pathlen:0\n"
               "keyUsage = critical, keyCertSign, cRLSign\n"
               "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n");
    ASSERT_NO_FATAL_FAILURE(
        run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", int_key, "-subj", "/O=ssx interop/CN=ssx interop intermediate",
             "-out", dir_.file("int.csr")}));
    ASSERT_NO_FATAL_FAILURE(run({"openssl", "x509", "-req", "-in", dir_.file("int.csr"), "-CA",
                                 pki_.ca_cert(), "-CAkey", root, "-set_serial", "0x1001", "-days",
                                 "30", "-extfile", dir_.file("int.ext"), "-out", intermediate_}));

    ASSERT_FALSE(rsa_key_.empty()) << "openssl genpkey failed";
    leaf_ = dir_.file("leaf.crt");
    leaf_key_ = dir_.file("leaf.key");
    write_text(leaf_key_, read_text(rsa_key_), 0600);
    write_text(dir_.file("leaf.ext"),
               "basicConstraints = CA:FALSE\n"
               "keyUsage = critical, digitalSignature, keyEncipherment\n"
               "extendedKeyUsage = serverAuth\n"
               "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
               "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n");
    ASSERT_NO_FATAL_FAILURE(run({"openssl", "req", "-new", "-key", leaf_key_, "-subj",
                                 "/O=ssx interop/CN=localhost", "-out", dir_.file("leaf.csr")}));
    ASSERT_NO_FATAL_FAILURE(run({"openssl", "x509", "-req", "-in", dir_.file("leaf.csr"), "-CA",
                                 intermediate_, "-CAkey", int_key, "-set_serial", "0x2002", "-days",
                                 "30", "-extfile", dir_.file("leaf.ext"), "-out", leaf_}));
  }

  static inline TempDir *keys_ = nullptr;
  static inline std::string rsa_key_;

  std::string leaf_;
  std::string leaf_key_;
  std::string intermediate_;
};

TEST_F(ForeignPkiTest, OpensslBuiltChainWithIntermediateVerifies) {
  ASSERT_NO_FATAL_FAILURE(openssl_chain());
  interop_policy();
  ForeignServer server =
      start_openssl_server({leaf_, leaf_key_, leaf_}, {"-tls1_3", "-cert_chain", intermediate_});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  exchange(client.get(), server);
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_STREQ(info->peer_principal, "localhost");
  EXPECT_EQ(peer_names_of(*info), (std::vector<std::string>{"localhost", "127.0.0.1"}));
  EXPECT_EQ(count_certificates(info->peer_chain_pem), 2) << "leaf and intermediate, as sent\n"
                                                         << info->peer_chain_pem;
  EXPECT_NE(info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
}

TEST_F(ForeignPkiTest, ServerThatOmitsTheIntermediateIsRejected) {
  ASSERT_NO_FATAL_FAILURE(openssl_chain());
  interop_policy();
  ForeignServer server = start_openssl_server({leaf_, leaf_key_, leaf_}, {"-tls1_3"});
  ASSERT_TRUE(server);
  expect_refused(server.port, {"localhost"}, EKEYREJECTED, SSX_REASON_UNTRUSTED_ISSUER,
                 "unable to get local issuer");
}

// ssx serving the openssl-built RSA chain to s_client, which checks it against the root only.
TEST_F(ForeignPkiTest, OurServerServesAnOpensslBuiltRsaChain) {
  ASSERT_NO_FATAL_FAILURE(openssl_chain());
  const std::string chain = dir_.file("leaf-chain.crt");
  write_text(chain, read_text(leaf_) + read_text(intermediate_));
  server_creds_ = {chain, leaf_key_, chain};
  interop_policy();
  Fd listener = bounded_listener();
  ServerOutcome outcome;
  CommandResult r = talk_to_line_server(
      listener.get(), s_client_argv(local_port(listener.get()), pki_.ca_cert(), {}), "rsa line\n",
      outcome);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Verify return code: 0 (ok)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Peer signature type: RSA-PSS"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("depth=1 O = ssx interop, CN = ssx interop intermediate"),
            std::string::npos)
      << r.output;
  ASSERT_TRUE(outcome.info);
  EXPECT_STREQ(outcome.info->local_principal, "localhost");
}

// An Ed25519 leaf made by GnuTLS's certtool, served by gnutls-serv.
TEST_F(ForeignPkiTest, CerttoolBuiltEd25519CertificateVerifies) {
  const std::string root = root_key();
  const std::string key = dir_.file("ed.key");
  const std::string cert = dir_.file("ed.crt");
  write_text(dir_.file("ed.tmpl"),
             "cn = \"localhost\"\ndns_name = \"localhost\"\nip_address = \"127.0.0.1\"\n"
             "tls_www_server\nsigning_key\nexpiration_days = 30\nserial = 4242\n");
  ASSERT_NO_FATAL_FAILURE(
      run({"certtool", "--generate-privkey", "--key-type", "ed25519", "--outfile", key}));
  ASSERT_NO_FATAL_FAILURE(run({"certtool", "--generate-certificate", "--load-privkey", key,
                               "--load-ca-certificate", pki_.ca_cert(), "--load-ca-privkey", root,
                               "--template", dir_.file("ed.tmpl"), "--outfile", cert}));
  interop_policy();
  ForeignServer server = start_gnutls_server({cert, key, cert}, {"--disable-client-cert"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  ASSERT_TRUE(ssx_send_all(client.get(), "ed25519\n"));
  int error = 0;
  bool eof = false;
  EXPECT_EQ(recv_until(client.get(), "\n", &error, &eof), "ed25519\n") << ssx_last_error();
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_STREQ(info->peer_principal, "localhost");
  EXPECT_TRUE(server.process->wait_for_output("Server Signature: EdDSA-Ed25519", kPeerTimeout))
      << server.process->output();
}

// s_client presenting a client certificate ssx must refuse.
TEST_F(ForeignPkiTest, UntrustedAndExpiredClientCertificatesAreRefused) {
  struct Case {
    const char *label;
    bool rogue;
    pki::Validity validity;
    int expected;
    const char *reason;
    const char *client_sees;  // the alert s_client reports
  };
  const Case cases[] = {
      {"rogue CA", true, {}, EKEYREJECTED, "unable to get local issuer", "alert unknown ca"},
      {"expired",
       false,
       {-2 * 86400, -86400},
       EKEYEXPIRED,
       "certificate has expired",
       "alert certificate expired"},
  };
  interop_policy("", "peer_authentication = \"required\"");
  for (const auto &c : cases) {
    SCOPED_TRACE(c.label);
    pki::LeafRequest request = TestPki::client_request();
    request.validity = c.validity;
    CredentialFiles creds =
        pki_.issue(std::string("bad-client-") + (c.rogue ? "rogue" : "expired"), request, c.rogue);
    Fd listener = bounded_listener();
    ServerOutcome outcome;
    auto server = line_server(listener.get(), outcome);
    ChildProcess client(s_client_argv(local_port(listener.get()), pki_.ca_cert(),
                                      {"-cert", creds.cert, "-key", creds.key}),
                        ChildProcess::Stdin::pipe);
    CommandResult r = client.wait_for_exit(kPeerTimeout);
    server.reset();
    EXPECT_EQ(outcome.accept_errno, c.expected) << outcome.accept_reason;
    EXPECT_STREQ(ssx_reason_name(outcome.accept_reason_code),
                 c.rogue ? "UNTRUSTED_ISSUER" : "EXPIRED")
        << outcome.accept_reason;
    EXPECT_NE(outcome.accept_reason.find("client certificate of \"spiffe://ssx.test/client\" "
                                         "rejected: "),
              std::string::npos)
        << outcome.accept_reason;
    EXPECT_NE(outcome.accept_reason.find(c.reason), std::string::npos) << outcome.accept_reason;
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(c.client_sees), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(kGreeting), std::string::npos);
  }
}

// A pin narrows, it never widens: pinning the key of a certificate that chains to the trusted CA
// but is not for TLS servers (extendedKeyUsage clientAuth only) still fails the chain check.
TEST_F(ForeignPkiTest, PinDoesNotWidenWhatTheChainAllows) {
  interop_policy();
  ForeignServer server = start_openssl_server(client_creds_, {"-tls1_3"});
  ASSERT_TRUE(server);
  expect_refused(server.port, {spki_pin_of(client_creds_.cert)}, EKEYREJECTED,
                 SSX_REASON_BAD_CERTIFICATE, "unsuitable certificate purpose");
}

}  // namespace
}  // namespace ssx::test
