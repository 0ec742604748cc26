// pki/pki.hpp — a small certificate authority: make a CA, issue leaf certificates.
//
// Used by `ssx pki`, `ssx demo` and the tests (which make every certificate they need at run
// time; no private key is ever committed). Output is standard PEM that OpenSSL and GnuTLS tools
// accept: X.509 v3, CA with basicConstraints CA:TRUE + keyCertSign/cRLSign, leaves with
// subjectAltName, keyUsage, extendedKeyUsage, subject/authority key identifiers, random serials.
//
// Thread safety: every function is safe to call from any thread.

#ifndef SSX_PKI_PKI_HPP
#define SSX_PKI_PKI_HPP

#include <cstdint>
#include <string>
#include <vector>

#include "ssx/result.hpp"

namespace ssx::pki {

enum class KeyType { ec_p256, ed25519, rsa2048 };

// parse_key_type maps "ec-p256", "ed25519", "rsa2048" to a KeyType; EINVAL otherwise.
Result<KeyType> parse_key_type(const std::string &name);

// Validity is relative to now, in seconds; negative values lie in the past, so an expired
// certificate is {-2 days, -1 day} and a not-yet-valid one {+1 day, +2 days}.
struct Validity {
  std::int64_t not_before_s = -3600;
  std::int64_t not_after_s = 365LL * 24 * 3600;
};

struct LeafRequest {
  std::string common_name;
  std::vector<std::string> dns;   // DNS SANs
  std::vector<std::string> ips;   // IP SANs, textual IPv4 or IPv6
  std::vector<std::string> uris;  // URI SANs, e.g. spiffe://example.org/svc
  Validity validity;
  KeyType key = KeyType::ec_p256;
  bool client = true;   // extendedKeyUsage clientAuth
  bool server = true;   // extendedKeyUsage serverAuth
};

// Credential is a certificate with its chain and private key, all PEM.
struct Credential {
  std::string cert_pem;   // the leaf alone
  std::string chain_pem;  // leaf followed by the issuing CA (what a TLS peer sends)
  std::string key_pem;    // PKCS#8 private key
};

class Authority {
 public:
  // create makes a self-signed CA named |name| (the subject CN).
  static Result<Authority> create(const std::string &name, KeyType key = KeyType::ec_p256,
                                  Validity validity = {-3600, 10LL * 365 * 24 * 3600});
  // from_pem loads a CA from its certificate and key.
  static Result<Authority> from_pem(std::string cert_pem, std::string key_pem);

  // issue signs a new leaf for |request|. EINVAL for a malformed IP, URI or empty request.
  Result<Credential> issue(const LeafRequest &request) const;

  const std::string &cert_pem() const { return cert_pem_; }
  const std::string &key_pem() const { return key_pem_; }

 private:
  Authority(std::string cert_pem, std::string key_pem)
      : cert_pem_(std::move(cert_pem)), key_pem_(std::move(key_pem)) {}
  std::string cert_pem_;
  std::string key_pem_;
};

// write_file writes |content| to |path| atomically (temporary file + rename) with |mode|;
// private keys use 0600. Returns the errno of the failing step with the path in the message.
Result<void> write_file(const std::string &path, const std::string &content, unsigned mode);

}  // namespace ssx::pki

#endif  // SSX_PKI_PKI_HPP
