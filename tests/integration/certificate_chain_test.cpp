// SPDX-License-Identifier: Apache-2.0
// Which certificates ssx sends after its own leaf (docs/policy.md, `certificate`): the file's
// chain without self-signed certificates, or, for a file that holds the leaf alone, the
// intermediates found in the trust store when the policy was loaded. A raw OpenSSL client shows
// exactly what came over the wire (SSL_get_peer_cert_chain); an ssx peer shows it in
// peer_chain_pem, which is how the client role is checked.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "ossl/ossl.hpp"
#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

constexpr const char *kIntermediate = "ssx test intermediate";

std::string common_name(X509 *cert) {
  char buf[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf) < 0)
    return "?";
  return buf;
}

int count_certificates(const char *pem) {
  int n = 0;
  const std::string text = pem != nullptr ? pem : "";
  for (size_t at = text.find("-----BEGIN CERTIFICATE-----"); at != std::string::npos;
       at = text.find("-----BEGIN CERTIFICATE-----", at + 1)) {
    ++n;
  }
  return n;
}

// SeenChain is what a raw OpenSSL client saw of the server's certificates.
struct SeenChain {
  bool handshake_ok = false;
  long verify_result = -1;            // SSL_get_verify_result against the client's CA file
  std::vector<std::string> subjects;  // common name of each certificate sent, leaf first
  std::string error;
};

// raw_client makes one TLS 1.3 handshake with plain OpenSSL to 127.0.0.1:|port|, trusting only
// |ca_file|. It verifies the chain but lets the handshake finish whatever the result, so that
// what was sent can be looked at even when it does not verify.
SeenChain raw_client(std::uint16_t port, const std::string &ca_file) {
  SeenChain seen;
  ossl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
      SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
    seen.error = "client context: " + ossl::drain_errors();
    return seen;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);  // the result is still recorded
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    seen.error = "socket failed";
    return seen;
  }
  const timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address = loopback_address(port);
  ossl::UniquePtr<SSL> ssl(SSL_new(ctx.get()));
  if (::connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 || !ssl ||
      SSL_set_fd(ssl.get(), fd) != 1) {
    seen.error = "connect failed";
  } else if (SSL_connect(ssl.get()) != 1) {
    seen.error = "handshake failed: " + ossl::drain_errors();
  } else {
    seen.handshake_ok = true;
    seen.verify_result = SSL_get_verify_result(ssl.get());
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl.get());  // a client's includes the leaf
    for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
      seen.subjects.push_back(common_name(sk_X509_value(chain, i)));
    }
    SSL_shutdown(ssl.get());
  }
  ssl.reset();
  ::close(fd);
  return seen;
}

class CertificateChainTest : public TlsTest {
 protected:
  CertificateChainTest() : intermediate_(pki_.intermediate(kIntermediate)) {}

  // issue_under_intermediate writes a leaf issued by the intermediate and its key; the
  // certificate file holds the leaf, then the intermediate when |with_intermediate|, then the
  // root when |with_root|.
  CredentialFiles issue_under_intermediate(const std::string &name, const pki::LeafRequest &request,
                                           bool with_intermediate, bool with_root) {
    pki::Credential credential = intermediate_.issue(request).value();
    CredentialFiles files;
    files.cert = dir_.file(name + ".crt");
    files.key = dir_.file(name + ".key");
    files.chain = files.cert;
    write_text(files.key, credential.key_pem, 0600);
    write_text(files.cert, credential.cert_pem +
                               (with_intermediate ? intermediate_.cert_pem() : "") +
                               (with_root ? pki_.authority().cert_pem() : ""));
    return files;
  }

  // see_server runs an ssx server for one connection and returns what a raw client trusting
  // only the root saw.
  SeenChain see_server() {
    Fd listener = ssx_listener();
    auto server = serve_one(listener.get(), [](int, int) {});
    return raw_client(local_port(listener.get()), pki_.ca_cert());
  }

  pki::Authority intermediate_;
};

// The benchmark's and `ssx pki`'s file: the leaf and the self-signed CA that issued it.
TEST_F(CertificateChainTest, LeafAndRootFileSendsTheLeafAlone) {
  use_policy();
  SeenChain seen = see_server();
  ASSERT_TRUE(seen.handshake_ok) << seen.error;
  EXPECT_EQ(seen.verify_result, X509_V_OK) << X509_verify_cert_error_string(seen.verify_result);
  EXPECT_EQ(seen.subjects, (std::vector<std::string>{"localhost"})) << "the root is not sent";
}

// (a) leaf + intermediate + root in the file: the intermediate goes out, the root does not.
TEST_F(CertificateChainTest, FullChainFileSendsTheIntermediateButNotTheRoot) {
  server_creds_ = issue_under_intermediate("server-full", TestPki::server_request(), true, true);
  use_policy();
  SeenChain seen = see_server();
  ASSERT_TRUE(seen.handshake_ok) << seen.error;
  EXPECT_EQ(seen.verify_result, X509_V_OK) << X509_verify_cert_error_string(seen.verify_result);
  EXPECT_EQ(seen.subjects, (std::vector<std::string>{"localhost", kIntermediate}));
}

// The file's chain is used as it is (less its root) even when the server's own trust store could
// not complete it: here the server trusts only the rogue CA, as a server whose clients come from
// another PKI would.
TEST_F(CertificateChainTest, FileChainIsSentWhenTheTrustStoreCannotCompleteIt) {
  for (bool with_root : {false, true}) {
    SCOPED_TRACE(with_root ? "leaf + intermediate + root" : "leaf + intermediate");
    server_creds_ = issue_under_intermediate(with_root ? "server-full" : "server-int",
                                             TestPki::server_request(), true, with_root);
    use_policy("", "trust_bundle = " + toml_quote(pki_.rogue_ca_cert()));
    SeenChain seen = see_server();
    ASSERT_TRUE(seen.handshake_ok) << seen.error;
    EXPECT_EQ(seen.verify_result, X509_V_OK) << X509_verify_cert_error_string(seen.verify_result);
    EXPECT_EQ(seen.subjects, (std::vector<std::string>{"localhost", kIntermediate}));
  }
}

// (b) a leaf-only file whose intermediate is only in the server's trust_bundle: the chain is
// completed from the store (once, when the policy is loaded), still without the root, and a
// client that holds only the root verifies it.
TEST_F(CertificateChainTest, LeafOnlyFileIsCompletedFromTheTrustStore) {
  server_creds_ = issue_under_intermediate("server-leaf", TestPki::server_request(), false, false);
  const std::string bundle = dir_.file("root-and-intermediate.crt");
  write_text(bundle, pki_.authority().cert_pem() + intermediate_.cert_pem());
  use_policy("", "trust_bundle = " + toml_quote(bundle));
  SeenChain seen = see_server();
  ASSERT_TRUE(seen.handshake_ok) << seen.error;
  EXPECT_EQ(seen.verify_result, X509_V_OK) << X509_verify_cert_error_string(seen.verify_result);
  EXPECT_EQ(seen.subjects, (std::vector<std::string>{"localhost", kIntermediate}));

  // An ssx client holding only the root accepts it too.
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(),
                          [](int fd, int error) { EXPECT_GE(fd, 0) << std::strerror(error); });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_NE(info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
  EXPECT_EQ(count_certificates(info->peer_chain_pem), 2) << info->peer_chain_pem;
}

// (c) a leaf-only file whose issuer the server's store does not hold: the policy still loads and
// the leaf is sent alone, and the client refuses it as it always did.
TEST_F(CertificateChainTest, LeafWithUnknownIssuerIsSentAloneAndRefusedByTheClient) {
  server_creds_ =
      issue_under_intermediate("server-orphan", TestPki::server_request(), false, false);
  use_policy();  // the server trusts the root only: the intermediate is nowhere
  SeenChain seen = see_server();
  ASSERT_TRUE(seen.handshake_ok) << seen.error;
  EXPECT_EQ(seen.verify_result, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
      << X509_verify_cert_error_string(seen.verify_result);
  EXPECT_EQ(seen.subjects, (std::vector<std::string>{"localhost"}));

  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int) { EXPECT_LT(fd, 0); });
  Fd client;
  EXPECT_EQ(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            -1);
  EXPECT_EQ(errno, EKEYREJECTED) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_UNTRUSTED_ISSUER);
  EXPECT_NE(std::string(ssx_last_error()).find("unable to get local issuer certificate"),
            std::string::npos)
      << ssx_last_error();
}

// The client role loads its certificate the same way: a client whose file holds leaf +
// intermediate + root sends leaf + intermediate, and the server authenticates it.
TEST_F(CertificateChainTest, ClientCertificateChainIsSentWithoutTheRoot) {
  client_creds_ = issue_under_intermediate("client-full", TestPki::client_request(), true, true);
  use_policy("", "peer_authentication = \"required\"");
  Fd listener = ssx_listener();
  Info server_info;
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error) << " — " << ssx_last_error();
    server_info = query(fd);
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  char byte = 0;
  ssx_recv(client.get(), &byte, 1, 0);  // the server's verdict on our certificate, then its close
  server.reset();
  ASSERT_TRUE(server_info);
  EXPECT_NE(server_info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
  EXPECT_STREQ(server_info->peer_principal, "spiffe://ssx.test/client");
  EXPECT_EQ(count_certificates(server_info->peer_chain_pem), 2) << "leaf + intermediate:\n"
                                                                << server_info->peer_chain_pem;
}

}  // namespace
}  // namespace ssx::test
