// SPDX-License-Identifier: Apache-2.0
#include "pki/pki.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "ossl/ossl.hpp"

namespace ssx::pki {
namespace {

using ossl::UniquePtr;

// Offsets beyond ±100 years are certainly a mistake, and keeping them bounded keeps the day count
// handed to OpenSSL far from int overflow.
constexpr std::int64_t kMaxOffsetSeconds = 100LL * 366 * 24 * 3600;
// RFC 5280 Appendix A: ub-common-name INTEGER ::= 64.
constexpr size_t kMaxCommonName = 64;
constexpr size_t kMaxFileSize = 1 << 20;

// ossl_failure builds a Failure from |what| followed by this thread's OpenSSL errors, which
// describe the cause and never carry key material.
Failure ossl_failure(int code, std::string what) {
  std::string errors = ossl::drain_errors();
  if (!errors.empty()) what += ": " + errors;
  return fail(code, std::move(what));
}

std::string errno_message(const std::string &what, const std::string &path, int err) {
  return what + " " + path + ": " + std::strerror(err);
}

bool is_ascii_printable(const std::string &s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// is_uri accepts an absolute URI as RFC 3986 §3 begins one: a scheme (ALPHA *( ALPHA / DIGIT /
// "+" / "-" / "." )), a colon and something after it, all printable ASCII (an IA5String).
bool is_uri(const std::string &uri) {
  size_t colon = uri.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == uri.size()) return false;
  if (!is_ascii_printable(uri)) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(uri[0])) return false;
  for (size_t i = 1; i < colon; ++i) {
    char c = uri[i];
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// ip_octets parses |text| into its 4 or 16 network-order octets; empty when it is no address.
std::string ip_octets(const std::string &text) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return std::string(buf, buf + 4);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return std::string(buf, buf + 16);
  return {};
}

Result<UniquePtr<EVP_PKEY>> generate_key(KeyType type) {
  EVP_PKEY *key = nullptr;
  switch (type) {
    case KeyType::ec_p256:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::ed25519:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
    case KeyType::rsa2048:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
      break;
  }
  if (key == nullptr) {
    return ossl_failure(EIO, std::string("cannot generate ") + key_type_name(type) + " key");
  }
  return UniquePtr<EVP_PKEY>(key);
}

// Ed25519 and Ed448 sign the message itself (RFC 8032 PureEdDSA), so X509_sign must be given no
// digest for them; everything else signs with SHA-256.
const EVP_MD *signing_digest(EVP_PKEY *key) {
  if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) return nullptr;
  return EVP_sha256();
}

// No passphrase is ever asked for: the default callback would prompt on the terminal, which a
// library must not do, so an encrypted key simply fails to load.
int refuse_passphrase(char *, int, int, void *) {
  return -1;
}

Result<UniquePtr<X509>> parse_cert(const std::string &pem) {
  UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return ossl_failure(ENOMEM, "cannot read certificate");
  UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, refuse_passphrase, nullptr));
  if (!cert) return ossl_failure(EINVAL, "cannot parse PEM certificate");
  return cert;
}

Result<UniquePtr<EVP_PKEY>> parse_key(const std::string &pem) {
  UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return ossl_failure(ENOMEM, "cannot read private key");
  UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr));
  if (!key)
    return ossl_failure(EINVAL, "cannot parse PEM private key (encrypted keys are refused)");
  return key;
}

Result<std::string> bio_contents(BIO *bio) {
  char *data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0 || (len > 0 && data == nullptr)) return ossl_failure(EIO, "cannot read PEM output");
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> cert_to_pem(X509 *cert) {
  UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return ossl_failure(EIO, "cannot encode certificate as PEM");
  }
  return bio_contents(bio.get());
}

Result<std::string> key_to_pem(EVP_PKEY *key) {
  // A secure-memory BIO clears the encoded key when it is freed.
  UniquePtr<BIO> bio(BIO_new(BIO_s_secmem()));
  if (!bio ||
      PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ossl_failure(EIO, "cannot encode private key as PKCS#8 PEM");
  }
  return bio_contents(bio.get());
}

// random_serial returns a positive, non-zero serial of at most 159 bits: RFC 5280 §4.1.2.2 allows
// 20 octets, and a clear top bit keeps the DER INTEGER within them. CA/B Forum BR 7.1 asks for 64
// bits of randomness; this has 159.
Result<UniquePtr<ASN1_INTEGER>> random_serial() {
  UniquePtr<BIGNUM> bn(BN_new());
  if (!bn || BN_rand(bn.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
    return ossl_failure(EIO, "cannot generate serial number");
  }
  if (BN_is_zero(bn.get()) && BN_one(bn.get()) != 1) {
    return ossl_failure(EIO, "cannot generate serial number");
  }
  UniquePtr<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return ossl_failure(EIO, "cannot encode serial number");
  return serial;
}

Result<void> set_time(ASN1_TIME *time, std::int64_t offset_s) {
  // Split into days and seconds so that the long seconds argument never overflows.
  int days = static_cast<int>(offset_s / 86400);
  long seconds = static_cast<long>(offset_s % 86400);
  if (X509_time_adj_ex(time, days, seconds, nullptr) == nullptr) {
    return ossl_failure(EINVAL, "cannot set certificate validity");
  }
  return {};
}

Result<void> validate_validity(const Validity &v) {
  if (v.not_before_s < -kMaxOffsetSeconds || v.not_before_s > kMaxOffsetSeconds ||
      v.not_after_s < -kMaxOffsetSeconds || v.not_after_s > kMaxOffsetSeconds) {
    return fail(EINVAL, "validity offsets must lie within 100 years of now");
  }
  if (v.not_before_s >= v.not_after_s) {
    return fail(EINVAL, "validity: notBefore must come before notAfter");
  }
  return {};
}

// add_extension adds one extension written in OpenSSL's configuration syntax. Only fixed strings
// from this file go through here; names from a request never do (they could smuggle in syntax).
Result<void> add_extension(X509 *cert, X509V3_CTX *ctx, int nid, const char *value) {
  UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return ossl_failure(EIO, std::string("cannot add extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  return {};
}

Result<void> push_name(GENERAL_NAMES *names, int type, const std::string &bytes) {
  UniquePtr<ASN1_STRING> value(type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new());
  UniquePtr<GENERAL_NAME> name(GENERAL_NAME_new());
  if (!value || !name ||
      ASN1_STRING_set(value.get(), bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return ossl_failure(ENOMEM, "cannot build subjectAltName");
  }
  GENERAL_NAME_set0_value(name.get(), type, value.release());
  // On success the stack owns the name; on failure it is still ours to free.
  GENERAL_NAME *owned = name.release();
  if (sk_GENERAL_NAME_push(names, owned) == 0) {
    GENERAL_NAME_free(owned);
    return ossl_failure(ENOMEM, "cannot build subjectAltName");
  }
  return {};
}

// add_subject_alt_names builds the SAN extension from typed values rather than from a
// "DNS:a,IP:b" string, so no request value is ever parsed as configuration syntax.
Result<void> add_subject_alt_names(X509 *cert, const LeafRequest &request) {
  if (request.dns.empty() && request.ips.empty() && request.uris.empty()) return {};
  UniquePtr<GENERAL_NAMES> names(sk_GENERAL_NAME_new_null());
  if (!names) return ossl_failure(ENOMEM, "cannot build subjectAltName");
  for (const auto &dns : request.dns) {
    if (auto r = push_name(names.get(), GEN_DNS, dns); !r) return r;
  }
  for (const auto &ip : request.ips) {
    if (auto r = push_name(names.get(), GEN_IPADD, ip_octets(ip)); !r) return r;
  }
  for (const auto &uri : request.uris) {
    if (auto r = push_name(names.get(), GEN_URI, uri); !r) return r;
  }
  // RFC 5280 §4.2.1.6: with an empty subject the SAN extension must be critical.
  int critical = request.common_name.empty() ? 1 : 0;
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), critical, X509V3_ADD_DEFAULT) !=
      1) {
    return ossl_failure(EIO, "cannot add subjectAltName");
  }
  return {};
}

// new_cert starts a v3 certificate: version, random serial, validity, subject and public key.
Result<UniquePtr<X509>> new_cert(const std::string &common_name, const Validity &validity,
                                 EVP_PKEY *key) {
  UniquePtr<X509> cert(X509_new());
  if (!cert) return ossl_failure(ENOMEM, "cannot allocate certificate");
  auto serial = random_serial();
  if (!serial) return std::move(serial).error();
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(cert.get(), serial->get()) != 1) {
    return ossl_failure(EIO, "cannot set certificate version and serial");
  }
  if (auto r = set_time(X509_getm_notBefore(cert.get()), validity.not_before_s); !r) {
    return std::move(r).error();
  }
  if (auto r = set_time(X509_getm_notAfter(cert.get()), validity.not_after_s); !r) {
    return std::move(r).error();
  }
  X509_NAME *subject = X509_get_subject_name(cert.get());
  if (!common_name.empty()) {
    const auto *cn = reinterpret_cast<const unsigned char *>(common_name.c_str());
    if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8, cn, -1, -1, 0) != 1) {
      return ossl_failure(EINVAL, "cannot set subject common name \"" + common_name + "\"");
    }
  }
  if (X509_set_pubkey(cert.get(), key) != 1) {
    return ossl_failure(EIO, "cannot set certificate public key");
  }
  return cert;
}

Result<void> sign(X509 *cert, EVP_PKEY *key) {
  if (X509_sign(cert, key, signing_digest(key)) <= 0) {
    return ossl_failure(EIO, "cannot sign certificate");
  }
  return {};
}

bool is_dns_label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

Result<KeyType> parse_key_type(const std::string &name) {
  if (name == "ec-p256") return KeyType::ec_p256;
  if (name == "ed25519") return KeyType::ed25519;
  if (name == "rsa2048") return KeyType::rsa2048;
  return fail(EINVAL, "unknown key type \"" + name + "\" (expected ec-p256, ed25519 or rsa2048)");
}

const char *key_type_name(KeyType key) {
  switch (key) {
    case KeyType::ec_p256:
      return "ec-p256";
    case KeyType::ed25519:
      return "ed25519";
    case KeyType::rsa2048:
      return "rsa2048";
  }
  return "unknown";
}

bool is_dns_name(const std::string &name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  bool first = true;
  while (true) {
    size_t dot = name.find('.', start);
    size_t end = dot == std::string::npos ? name.size() : dot;
    size_t len = end - start;
    if (len == 0 || len > 63) return false;  // also rejects "a..b", ".a" and "a."
    // RFC 6125 §6.4.3: a wildcard is the whole left-most label, and never the only label.
    bool wildcard = first && len == 1 && name[start] == '*' && dot != std::string::npos;
    if (!wildcard) {
      for (size_t i = start; i < end; ++i) {
        if (!is_dns_label_char(name[i])) return false;
      }
      if (name[start] == '-' || name[end - 1] == '-') return false;
    }
    if (dot == std::string::npos) return true;
    start = dot + 1;
    first = false;
  }
}

bool is_ip_address(const std::string &text) {
  return !ip_octets(text).empty();
}

Result<void> validate_request(const LeafRequest &request) {
  if (request.common_name.empty() && request.dns.empty() && request.ips.empty() &&
      request.uris.empty()) {
    return fail(EINVAL, "empty certificate request: give a common name or at least one SAN");
  }
  if (request.common_name.size() > kMaxCommonName) {
    return fail(EINVAL, "common name longer than 64 characters (RFC 5280 ub-common-name)");
  }
  if (request.common_name.find('\0') != std::string::npos) {
    return fail(EINVAL, "common name contains a NUL character");
  }
  for (const auto &dns : request.dns) {
    if (!is_dns_name(dns)) return fail(EINVAL, "invalid DNS name \"" + dns + "\"");
  }
  for (const auto &ip : request.ips) {
    if (!is_ip_address(ip)) return fail(EINVAL, "invalid IP address \"" + ip + "\"");
  }
  for (const auto &uri : request.uris) {
    if (!is_uri(uri)) return fail(EINVAL, "invalid URI \"" + uri + "\" (expected scheme:rest)");
  }
  if (!request.client && !request.server) {
    return fail(EINVAL, "certificate request allows neither client nor server use");
  }
  return validate_validity(request.validity);
}

Result<Authority> Authority::create(const std::string &name, KeyType key_type, Validity validity) {
  ossl::ErrorQueueGuard guard;
  if (name.empty() || name.size() > kMaxCommonName) {
    return fail(EINVAL, "CA name must have 1 to 64 characters");
  }
  if (auto r = validate_validity(validity); !r) return std::move(r).error();
  auto key = generate_key(key_type);
  if (!key) return std::move(key).error();
  auto cert = new_cert(name, validity, key->get());
  if (!cert) return std::move(cert).error();
  X509 *x = cert->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1) {
    return ossl_failure(EIO, "cannot set CA issuer name");
  }
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  // RFC 5280 §4.2.1.9 and §4.2.1.3: a CA marks basicConstraints critical and, since it signs
  // certificates and CRLs, asserts exactly keyCertSign and cRLSign.
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    if (auto r = add_extension(x, &ctx, nid, value); !r) return std::move(r).error();
  }
  if (auto r = sign(x, key->get()); !r) return std::move(r).error();
  auto cert_pem = cert_to_pem(x);
  if (!cert_pem) return std::move(cert_pem).error();
  auto key_pem = key_to_pem(key->get());
  if (!key_pem) return std::move(key_pem).error();
  return Authority(std::move(*cert_pem), std::move(*key_pem));
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): by value is the published signature.
Result<Authority> Authority::from_pem(std::string cert_pem, std::string key_pem) {
  ossl::ErrorQueueGuard guard;
  auto cert = parse_cert(cert_pem);
  if (!cert) return std::move(cert).error();
  auto key = parse_key(key_pem);
  if (!key) return std::move(key).error();
  // X509_check_ca returns 1 only for basicConstraints CA:TRUE (with keyCertSign when keyUsage is
  // present); other non-zero values are legacy v1 or Netscape forms we do not sign with.
  if (X509_check_ca(cert->get()) != 1) {
    return fail(EINVAL, "certificate is not a CA (needs basicConstraints CA:TRUE and keyCertSign)");
  }
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ossl::drain_errors();
    return fail(EINVAL, "CA private key does not match the CA certificate");
  }
  auto clean_cert = cert_to_pem(cert->get());
  if (!clean_cert) return std::move(clean_cert).error();
  auto clean_key = key_to_pem(key->get());
  if (!clean_key) return std::move(clean_key).error();
  return Authority(std::move(*clean_cert), std::move(*clean_key));
}

Result<Credential> Authority::issue(const LeafRequest &request) const {
  ossl::ErrorQueueGuard guard;
  if (auto r = validate_request(request); !r) return std::move(r).error();
  auto ca_cert = parse_cert(cert_pem_);
  if (!ca_cert) return std::move(ca_cert).error();
  auto ca_key = parse_key(key_pem_);
  if (!ca_key) return std::move(ca_key).error();

  Result<ossl::UniquePtr<EVP_PKEY>> key = fail(EINVAL, "");
  if (!request.public_key.empty()) {
    ossl::UniquePtr<BIO> bio(
        BIO_new_mem_buf(request.public_key.data(), static_cast<int>(request.public_key.size())));
    ossl::UniquePtr<EVP_PKEY> pub(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)
                                      : nullptr);
    if (!pub) {
      const auto *der = reinterpret_cast<const unsigned char *>(request.public_key.data());
      pub.reset(d2i_PUBKEY(nullptr, &der, static_cast<long>(request.public_key.size())));
    }
    ERR_clear_error();
    if (!pub) return fail(EINVAL, "the public key is not a PEM or DER SubjectPublicKeyInfo");
    key = std::move(pub);
  } else {
    key = generate_key(request.key);
  }
  if (!key) return std::move(key).error();
  auto cert = new_cert(request.common_name, request.validity, key->get());
  if (!cert) return std::move(cert).error();
  X509 *x = cert->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(ca_cert->get())) != 1) {
    return ossl_failure(EIO, "cannot set issuer name");
  }

  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, ca_cert->get(), x, nullptr, nullptr, 0);
  // RSA key exchange (TLS 1.2 and before) encrypts to the key, so RSA leaves also carry
  // keyEncipherment; EC and Ed25519 keys only ever sign.
  const char *key_usage = EVP_PKEY_is_a(key->get(), "RSA") == 1
                              ? "critical,digitalSignature,keyEncipherment"
                              : "critical,digitalSignature";
  std::string eku;
  if (request.server) eku += "serverAuth";
  if (request.client) eku += eku.empty() ? "clientAuth" : ",clientAuth";
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:FALSE"}, std::pair{NID_key_usage, key_usage},
        std::pair{NID_ext_key_usage, eku.c_str()}, std::pair{NID_subject_key_identifier, "hash"},
        // "issuer" only when the CA has no subjectKeyIdentifier to copy.
        std::pair{NID_authority_key_identifier, "keyid,issuer"}}) {
    if (auto r = add_extension(x, &ctx, nid, value); !r) return std::move(r).error();
  }
  if (auto r = add_subject_alt_names(x, request); !r) return std::move(r).error();
  if (auto r = sign(x, ca_key->get()); !r) return std::move(r).error();

  auto leaf_pem = cert_to_pem(x);
  if (!leaf_pem) return std::move(leaf_pem).error();
  Credential credential;
  if (request.public_key.empty()) {
    auto key_pem = key_to_pem(key->get());
    if (!key_pem) return std::move(key_pem).error();
    credential.key_pem = std::move(*key_pem);
  }
  credential.chain_pem = *leaf_pem + cert_pem_;
  credential.cert_pem = std::move(*leaf_pem);
  return credential;
}

Result<void> write_file(const std::string &path, const std::string &content, unsigned mode) {
  if (path.empty() || path.back() == '/')
    return fail(EINVAL, "write_file: no file name in \"" + path + "\"");
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  // The temporary file sits beside the target so that rename() stays within one filesystem and
  // is atomic; mkstemp creates it 0600, so a key is never readable by others, even briefly.
  std::string tmp = dir + "/." + base + ".tmp.XXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return fail(errno, errno_message("cannot create a temporary file for", path, errno));

  auto abandon = [&](const char *what) -> Failure {
    int err = errno;
    if (fd >= 0) close(fd);
    unlink(tmp.c_str());
    return fail(err, errno_message(what, path, err));
  };
  if (fchmod(fd, static_cast<mode_t>(mode & 07777)) != 0) return abandon("cannot set the mode of");
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return abandon("cannot write");
    }
    done += static_cast<size_t>(n);
  }
  // fsync before rename: otherwise a crash can leave the new name pointing at empty contents.
  if (fsync(fd) != 0) return abandon("cannot sync");
  int rc = close(fd);
  fd = -1;
  if (rc != 0) return abandon("cannot close");
  // rename() replaces whatever |path| names, a symlink included, without following it.
  if (rename(tmp.c_str(), path.c_str()) != 0) return abandon("cannot rename a temporary file to");

  // Persist the directory entry too. The file is already in place, so a failure here is not
  // reported: the caller can do nothing about it.
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return {};
}

Result<std::string> read_file(const std::string &path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail(errno, errno_message("cannot open", path, errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return fail(err, errno_message("cannot stat", path, err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return fail(EINVAL, "cannot read " + path + ": not a regular file");
  }
  std::string out;
  char buf[16384];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return fail(err, errno_message("cannot read", path, err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFileSize) {
      close(fd);
      return fail(EFBIG, "cannot read " + path + ": larger than 1 MiB");
    }
  }
  close(fd);
  return out;
}

}  // namespace ssx::pki
