// SPDX-License-Identifier: Apache-2.0
#include "ossl/names.hpp"

#include <cerrno>

#include "base/text.hpp"
#include "ossl/ossl.hpp"

namespace ssx::ossl {
namespace {

// The cipher suites RFC 8446 §B.4 defines; OpenSSL builds may implement a subset.
constexpr const char *kRfc8446Suites[] = {
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",   "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256",
};

bool is_tls13(const SSL_CIPHER *cipher) {
  // TLS 1.3 suites do not fix the key exchange; OpenSSL reports them with NID_kx_any.
  return SSL_CIPHER_get_kx_nid(cipher) == NID_kx_any;
}

// A single name must not smuggle in a list: OpenSSL splits its arguments on ':' (and groups
// also on ','), which would let one array element name several entries.
bool is_single_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Failure no_tls12_suite(std::string_view list) {
  return fail(EINVAL, "tls12_ciphers " + base::quote(list) + " selects no TLS 1.2 cipher suite");
}

}  // namespace

struct TlsNameChecker::Impl {
  UniquePtr<SSL_CTX> ctx;

  // fresh returns a new SSL_CTX: each check must start from OpenSSL's defaults, and a failed
  // setter may leave a context half-updated.
  static UniquePtr<SSL_CTX> fresh() { return UniquePtr<SSL_CTX>(SSL_CTX_new(TLS_method())); }

  // with_tls12_list returns a fresh context whose TLS 1.2 cipher list is |list|, or null when
  // |list| selects no TLS 1.2 suite: SSL_CTX_set_cipher_list fails then (TLS 1.3 suites are
  // configured separately and do not count).
  static UniquePtr<SSL_CTX> with_tls12_list(std::string_view list) {
    UniquePtr<SSL_CTX> ctx = fresh();
    const std::string text(list);
    if (ctx && SSL_CTX_set_cipher_list(ctx.get(), text.c_str()) == 1) return ctx;
    ERR_clear_error();
    return nullptr;
  }

  // scratch returns the shared context for checks that only read their setter's result.
  SSL_CTX *scratch() {
    if (!ctx) ctx = fresh();
    return ctx.get();
  }
};

TlsNameChecker::TlsNameChecker() : impl_(std::make_unique<Impl>()) {}
TlsNameChecker::~TlsNameChecker() = default;

std::vector<std::string> TlsNameChecker::supported_tls13_cipher_suites() {
  std::vector<std::string> out;
  for (const char *name : kRfc8446Suites) {
    if (check_tls13_cipher_suite_known(name)) out.emplace_back(name);
  }
  return out;
}

bool TlsNameChecker::check_tls13_cipher_suite_known(std::string_view name) {
  ErrorQueueGuard guard;
  SSL_CTX *ctx = impl_->scratch();
  if (ctx == nullptr || !is_single_name(name)) return false;
  const std::string text(name);
  // SSL_CTX_set_ciphersuites skips names it does not know and fails only when none is left;
  // it also accepts TLS 1.2 IANA names. So look for the suite in the resulting list.
  if (SSL_CTX_set_ciphersuites(ctx, text.c_str()) != 1) {
    ERR_clear_error();
    return false;
  }
  STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER *cipher = sk_SSL_CIPHER_value(ciphers, i);
    if (is_tls13(cipher) && text == SSL_CIPHER_standard_name(cipher)) return true;
  }
  return false;
}

Result<void> TlsNameChecker::check_tls13_cipher_suite(std::string_view name) {
  if (check_tls13_cipher_suite_known(name)) return {};
  std::string known;
  for (const std::string &suite : supported_tls13_cipher_suites()) {
    if (!known.empty()) known += ", ";
    known += suite;
  }
  return fail(EINVAL,
              "unknown TLS 1.3 cipher suite " + base::quote(name) + " (known: " + known + ")");
}

Result<void> TlsNameChecker::check_group(std::string_view name) {
  ErrorQueueGuard guard;
  SSL_CTX *ctx = impl_->scratch();
  const std::string text(name);
  if (ctx == nullptr || !is_single_name(name) || SSL_CTX_set1_groups_list(ctx, text.c_str()) != 1) {
    ERR_clear_error();
    return fail(EINVAL, "unknown group " + base::quote(name));
  }
  return {};
}

Result<void> TlsNameChecker::check_tls12_cipher_list(std::string_view list) {
  ErrorQueueGuard guard;
  if (!Impl::with_tls12_list(list)) return no_tls12_suite(list);
  return {};
}

Result<void> TlsNameChecker::check_tls12_usable(std::string_view list) {
  ErrorQueueGuard guard;
  UniquePtr<SSL_CTX> ctx = Impl::with_tls12_list(list);
  if (!ctx) return no_tls12_suite(list);
  UniquePtr<SSL> ssl(SSL_new(ctx.get()));
  if (!ssl || SSL_set_min_proto_version(ssl.get(), TLS1_2_VERSION) != 1 ||
      SSL_set_max_proto_version(ssl.get(), TLS1_2_VERSION) != 1) {
    return fail(ENOMEM, "cannot check tls12_ciphers: " + drain_errors());
  }
  // The supported list is what a handshake may use: the configured list filtered by protocol
  // version and by the security level in force (openssl.cnf may raise or lower it).
  STACK_OF(SSL_CIPHER) *supported = SSL_get1_supported_ciphers(ssl.get());
  const int count = supported == nullptr ? 0 : sk_SSL_CIPHER_num(supported);
  std::string problem;
  for (int i = 0; i < count && problem.empty(); ++i) {
    const SSL_CIPHER *cipher = sk_SSL_CIPHER_value(supported, i);
    if (SSL_CIPHER_get_cipher_nid(cipher) == NID_undef) {
      problem = std::string("allows ") + SSL_CIPHER_get_name(cipher) + ", which does not encrypt";
    } else if (SSL_CIPHER_get_auth_nid(cipher) == NID_auth_null) {
      problem = std::string("allows ") + SSL_CIPHER_get_name(cipher) +
                ", which does not authenticate the peer; add \":!aNULL\"";
    }
  }
  sk_SSL_CIPHER_free(supported);
  ERR_clear_error();
  if (count == 0) {
    problem = "leaves no TLS 1.2 cipher suite usable at OpenSSL security level " +
              std::to_string(SSL_get_security_level(ssl.get()));
  }
  if (!problem.empty()) return fail(EINVAL, "tls12_ciphers " + base::quote(list) + " " + problem);
  return {};
}

}  // namespace ssx::ossl
