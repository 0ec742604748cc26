// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: certificate-versus-target-name matching (protocol/tls/peer_names) on
// certificates the harness builds from fuzzed subjectAltName and common-name values.
//
// Input layout: the target name, a NUL byte, then entries "type byte, length byte, value" until
// the input ends. Type (mod 5): 0 DNS SAN, 1 IP SAN (raw bytes), 2 URI SAN, 3 email SAN, 4 the
// subject CN. Values may hold any byte, NULs included, as a hostile CA could encode them.
//
// Beyond "no crash, leak or sanitizer report", it checks what a match must mean:
//   - a URI target matches only if a URI SAN equals it byte for byte, and does when one does;
//   - a DNS target matches only if some DNS SAN equals it (ASCII case ignored) or is a wildcard
//     "*.REST" whose REST equals the target minus its first label; the CN never counts;
//   - an IP target matches only if an IP SAN holds its bytes;
//   - a key pin matches only the certificate's own SPKI hash (never a fuzzed value).
// And the naming helpers (certificate_names, all_names, principal_of, describe_names) accept
// whatever the certificate holds.
//
// Run: make fuzz-smoke (all targets briefly) or make fuzz-long FUZZ_SECONDS=N.

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "identity/target_name.hpp"
#include "ossl/ossl.hpp"
#include "protocol/tls/peer_names.hpp"

namespace {

using ssx::identity::TargetName;

struct San {
  int type;  // GEN_DNS, GEN_IPADD, GEN_URI, GEN_EMAIL
  std::string value;
};

EVP_PKEY *shared_key() {
  // One key for every certificate: matching never looks at it, and key generation would
  // dominate the run time.
  static EVP_PKEY *key = EVP_EC_gen("P-256");
  return key;
}

bool add_san(GENERAL_NAMES *names, const San &san) {
  GENERAL_NAME *gn = GENERAL_NAME_new();
  if (gn == nullptr) return false;
  ASN1_STRING *s = san.type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
  if (s == nullptr ||
      ASN1_STRING_set(s, san.value.data(), static_cast<int>(san.value.size())) != 1) {
    ASN1_STRING_free(s);
    GENERAL_NAME_free(gn);
    return false;
  }
  GENERAL_NAME_set0_value(gn, san.type, s);
  if (sk_GENERAL_NAME_push(names, gn) == 0) {
    GENERAL_NAME_free(gn);
    return false;
  }
  return true;
}

ssx::ossl::UniquePtr<X509> build_certificate(const std::vector<San> &sans,
                                             const std::string *common_name) {
  ssx::ossl::UniquePtr<X509> cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return nullptr;
  X509_NAME *subject = X509_get_subject_name(cert.get());
  if (common_name != nullptr &&
      X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char *>(common_name->data()),
                                 static_cast<int>(common_name->size()), -1, 0) != 1) {
    return nullptr;  // OpenSSL refuses some CN values (too long): not what this target tests
  }
  if (X509_set_pubkey(cert.get(), shared_key()) != 1) return nullptr;
  if (!sans.empty()) {
    ssx::ossl::UniquePtr<GENERAL_NAMES> names(sk_GENERAL_NAME_new_null());
    if (!names) return nullptr;
    for (const San &san : sans) {
      if (!add_san(names.get(), san)) return nullptr;
    }
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) !=
        1)
      return nullptr;
  }
  return cert;
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// dns_may_match is the necessary condition for a DNS target |name| to match |san|.
bool dns_may_match(std::string_view san, std::string_view name) {
  if (equal_ignoring_case(san, name)) return true;
  if (san.size() >= 2 && san.substr(0, 2) == "*.") {
    const std::size_t dot = name.find('.');
    return dot != std::string_view::npos && equal_ignoring_case(san.substr(1), name.substr(dot));
  }
  return false;
}

bool ip_bytes(const std::string &text, std::string &out) {
  unsigned char buf[16];
  if (::inet_pton(AF_INET, text.c_str(), buf) == 1) {
    out.assign(reinterpret_cast<char *>(buf), 4);
    return true;
  }
  if (::inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    out.assign(reinterpret_cast<char *>(buf), 16);
    return true;
  }
  return false;
}

bool any_san(const std::vector<San> &sans, int type,
             const std::function<bool(const std::string &)> &pred) {
  return std::any_of(sans.begin(), sans.end(),
                     [&](const San &s) { return s.type == type && pred(s.value); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char *>(data), size);
  const std::size_t nul = input.find('\0');
  if (nul == std::string_view::npos) return 0;
  auto target = ssx::identity::parse_target_name(input.substr(0, nul));
  if (!target) return 0;  // target_name_fuzz covers refusals

  std::vector<San> sans;
  std::string common_name;
  bool has_cn = false;
  static constexpr int kTypes[] = {GEN_DNS, GEN_IPADD, GEN_URI, GEN_EMAIL};
  for (std::size_t at = nul + 1; at + 2 <= input.size();) {
    const int type = static_cast<unsigned char>(input[at]) % 5;
    const std::size_t len =
        std::min<std::size_t>(static_cast<unsigned char>(input[at + 1]), input.size() - at - 2);
    std::string value(input.substr(at + 2, len));
    at += 2 + len;
    if (type == 4) {
      common_name = std::move(value);
      has_cn = true;
    } else {
      sans.push_back(San{kTypes[type], std::move(value)});
    }
  }
  auto cert = build_certificate(sans, has_cn ? &common_name : nullptr);
  if (!cert) return 0;

  const bool matched = ssx::tls::certificate_matches(cert.get(), *target);
  const std::string &value = target->value;
  switch (target->kind) {
    case TargetName::Kind::uri: {
      const bool present =
          any_san(sans, GEN_URI, [&](const std::string &san) { return san == value; });
      if (matched != present) std::abort();
      break;
    }
    case TargetName::Kind::dns:
      if (matched && !any_san(sans, GEN_DNS,
                              [&](const std::string &san) { return dns_may_match(san, value); }))
        std::abort();
      break;
    case TargetName::Kind::ip: {
      std::string bytes;
      if (!ip_bytes(value, bytes)) std::abort();  // parse_target_name accepted it as an IP
      if (matched &&
          !any_san(sans, GEN_IPADD, [&](const std::string &san) { return san == bytes; }))
        std::abort();
      break;
    }
    case TargetName::Kind::spki_pin:
      if (matched != (ssx::ossl::spki_sha256_hex(cert.get()) == value)) std::abort();
      break;
    case TargetName::Kind::local_uid:
      if (matched) std::abort();  // a certificate never satisfies a local uid
      break;
  }

  // The naming helpers take whatever a certificate holds.
  const ssx::tls::CertificateNames names = ssx::tls::certificate_names(cert.get());
  if (names.dns.size() + names.ips.size() + names.uris.size() + names.emails.size() != sans.size())
    std::abort();
  (void)ssx::tls::all_names(names);
  (void)ssx::tls::principal_of(names);
  (void)ssx::tls::describe_names(cert.get());
  return 0;
}
