// SPDX-License-Identifier: Apache-2.0
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

// key_type_name is the inverse of parse_key_type: "ec-p256", "ed25519" or "rsa2048".
const char *key_type_name(KeyType key);

// is_dns_name reports whether |name| is a syntactically valid DNS SAN: dot-separated labels of
// letters, digits, '-' and '_', 1–63 characters each, 253 at most in all, no trailing dot; the
// first label may be "*" (a wildcard). A single label ("localhost") is a DNS name.
bool is_dns_name(const std::string &name);

// is_ip_address reports whether |text| is a textual IPv4 (dotted quad) or IPv6 address, without
// a zone index or prefix length.
bool is_ip_address(const std::string &text);

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
  bool client = true;  // extendedKeyUsage clientAuth
  bool server = true;  // extendedKeyUsage serverAuth
  // When set: the leaf's public key (a PEM or DER SubjectPublicKeyInfo), e.g. of a key that
  // lives in a PKCS#11 token; |key| is then ignored and the credential has no key_pem.
  std::string public_key;
};

// validate_request checks |request| the way Authority::issue does before signing anything: a
// common name or at least one SAN, well-formed DNS names, IPs and URIs (with a scheme), a common
// name of at most 64 characters, notBefore before notAfter, offsets within ±100 years, and at
// least one of client/server. EINVAL with a message naming the offending value otherwise.
Result<void> validate_request(const LeafRequest &request);

// Credential is a certificate with its chain and private key, all PEM.
struct Credential {
  std::string cert_pem;   // the leaf alone
  std::string chain_pem;  // leaf followed by the issuing CA (a TLS certificate file)
  std::string key_pem;    // PKCS#8 private key
};

class Authority {
 public:
  // create makes a self-signed CA named |name| (the subject CN).
  static Result<Authority> create(const std::string &name, KeyType key = KeyType::ec_p256,
                                  Validity validity = {-3600, 10LL * 365 * 24 * 3600});
  // from_pem loads a CA from its certificate and key. EINVAL when either does not parse (an
  // encrypted key is refused, never prompted for), when the certificate is not a CA
  // (basicConstraints CA:TRUE, keyCertSign) or when the key does not belong to it. The stored PEM
  // is re-encoded: the first certificate of |cert_pem| and the key as unencrypted PKCS#8.
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
// The temporary file is created 0600 in |path|'s directory and fsync'ed before the rename, and the
// directory after it, so a crash leaves either the old file or the new one. A symlink at |path| is
// replaced, never followed.
Result<void> write_file(const std::string &path, const std::string &content, unsigned mode);

// read_file returns the contents of |path| (at most 1 MiB, which no PEM file of ours approaches).
// The errno of the failing step with the path in the message; EFBIG when the file is larger.
Result<std::string> read_file(const std::string &path);

}  // namespace ssx::pki

#endif  // SSX_PKI_PKI_HPP
