// SPDX-License-Identifier: Apache-2.0
#include "ossl/ossl.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

namespace ssx::ossl {

std::string drain_errors() {
  std::string out;
  unsigned long code = 0;
  char buf[256];
  while ((code = ERR_get_error()) != 0) {
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

bool free_buffers_is_safe_in(unsigned major, unsigned minor, unsigned patch) {
  if (major != 3) return major > 3;
  switch (minor) {
    case 0:
      return patch >= 14;
    case 1:
      return patch >= 6;
    case 2:
      return patch >= 2;
    case 3:
      return patch >= 1;
    default:
      return true;
  }
}

bool dtls13_available() {
#ifdef DTLS1_3_VERSION
  return true;
#else
  return false;
#endif
}

bool free_buffers_is_safe() {
  static const bool safe = free_buffers_is_safe_in(OPENSSL_version_major(), OPENSSL_version_minor(),
                                                   OPENSSL_version_patch());
  return safe;
}

UniquePtr<BIO> read_file_bio(const std::string &path) {
  return UniquePtr<BIO>(BIO_new_file(path.c_str(), "r"));
}

std::string to_hex(const unsigned char *bytes, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

void append_pem(std::string &out, const char *label, const unsigned char *der, size_t len) {
  constexpr size_t kLineBytes = 48;  // 64 base64 characters
  out.reserve(out.size() + 2 * (std::strlen(label) + 17) + (len + 2) / 3 * 4 +
              (len + kLineBytes - 1) / kLineBytes);
  out += "-----BEGIN ";
  out += label;
  out += "-----\n";
  unsigned char line[65];
  for (size_t at = 0; at < len; at += kLineBytes) {
    const size_t n = std::min(kLineBytes, len - at);
    const int chars = EVP_EncodeBlock(line, der + at, static_cast<int>(n));
    out.append(reinterpret_cast<const char *>(line), static_cast<size_t>(chars));
    out += '\n';
  }
  out += "-----END ";
  out += label;
  out += "-----\n";
}

bool append_certificate_pem(std::string &out, X509 *cert) {
  unsigned char *der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) return false;
  append_pem(out, "CERTIFICATE", der, static_cast<size_t>(len));
  OPENSSL_free(der);
  return true;
}

std::string spki_sha256_hex(X509 *cert) {
  unsigned char *der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len <= 0) return {};
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), digest);
  OPENSSL_free(der);
  return to_hex(digest, sizeof digest);
}

}  // namespace ssx::ossl
