// SPDX-License-Identifier: Apache-2.0
// testlib/test_pki.hpp — certificates for tests, made at run time in a private temporary directory.
//
// No private key is ever committed: each test that needs credentials builds a TestPki, which makes
// a trusted CA ("ssx test CA") and an untrusted one ("ssx rogue CA") and issues leaves on demand.
// Keys are EC P-256 unless a request says otherwise, so a fixture costs a few milliseconds.
//
// Failures throw (ssx::Error from the PKI, std::runtime_error otherwise): GoogleTest reports an
// exception escaping a test body or fixture constructor as a failure with its message.
//
// Thread safety: a TestPki may be used from one thread at a time.

#ifndef SSX_TESTLIB_TEST_PKI_HPP
#define SSX_TESTLIB_TEST_PKI_HPP

#include <string>

#include "pki/pki.hpp"

namespace ssx::test {

// TempDir makes a private (0700) directory under $TMPDIR or /tmp and removes it recursively on
// destruction. Set SSX_TEST_KEEP_TMP=1 to keep it for inspection (its path goes to stderr).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  const std::string &path() const { return path_; }
  // file returns path()/name; it creates nothing.
  std::string file(const std::string &name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// CredentialFiles are paths: |cert| holds the leaf followed by its CA (ssx sends the leaf alone),
// |key| the PKCS#8 private key (mode 0600), and |chain| is the same file as |cert|.
struct CredentialFiles {
  std::string cert;
  std::string key;
  std::string chain;
};

// TestPki is a trusted CA and a rogue CA in a TempDir.
class TestPki {
 public:
  // Creates both CAs and writes ca.crt (the trusted CA certificate) and rogue-ca.crt.
  TestPki();

  const std::string &dir() const { return dir_.path(); }
  // ca_cert is the path of the trusted CA's certificate (PEM), the file a peer trusts.
  std::string ca_cert() const { return dir_.file("ca.crt"); }
  // rogue_ca_cert is the path of the untrusted CA's certificate.
  std::string rogue_ca_cert() const { return dir_.file("rogue-ca.crt"); }

  // issue writes dir/<name>.crt (leaf + CA) and dir/<name>.key (0600), signed by the trusted CA,
  // or by the rogue one when |rogue|. |name| must be a plain file name (no '/').
  CredentialFiles issue(const std::string &name, const pki::LeafRequest &request,
                        bool rogue = false);

  // server issues a server-only (serverAuth) certificate with CN "localhost" and the SANs
  // DNS:localhost, IP:127.0.0.1 and IP:::1.
  CredentialFiles server(const std::string &name = "server");
  // client issues a client-only (clientAuth) certificate with CN |name| and the single SAN
  // URI:spiffe://ssx.test/client (whatever |name| is).
  CredentialFiles client(const std::string &name = "client");

  const pki::Authority &authority() const { return authority_; }
  const pki::Authority &rogue_authority() const { return rogue_; }

  // intermediate makes a CA named |name| (EC P-256, basicConstraints CA:TRUE, keyCertSign and
  // cRLSign) signed by the trusted CA. The leaves it issues have it as their chain: their
  // Credential::chain_pem is leaf + intermediate.
  pki::Authority intermediate(const std::string &name) const;

  // The requests server() and client() use, for tests that want a variation of them.
  static pki::LeafRequest server_request();
  static pki::LeafRequest client_request(const std::string &name = "client");

 private:
  TempDir dir_;
  pki::Authority authority_;
  pki::Authority rogue_;
};

// write_text writes |text| to |path| (atomically) with |mode|; throws on failure.
void write_text(const std::string &path, const std::string &text, unsigned mode = 0644);

// read_text returns the contents of |path|; throws on failure.
std::string read_text(const std::string &path);

}  // namespace ssx::test

#endif  // SSX_TESTLIB_TEST_PKI_HPP
