// SPDX-License-Identifier: Apache-2.0
// ossl/names.hpp — TLS configuration names checked against the OpenSSL that ssx runs with.
//
// The policy names TLS 1.3 cipher suites, TLS 1.2 cipher lists and key-exchange groups as strings.
// Which names exist depends on the OpenSSL build, its providers and its configuration (the
// security level above all), so the only faithful check is to hand each name to OpenSSL. A
// TlsNameChecker does that on a throwaway SSL_CTX that never carries a connection.
//
// This header is free of OpenSSL types so that its callers (the policy loader) need not include
// OpenSSL.
//
// Thread safety: a TlsNameChecker is not safe for concurrent use; give each thread its own.

#ifndef SSX_OSSL_NAMES_HPP
#define SSX_OSSL_NAMES_HPP

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ssx/result.hpp"

namespace ssx::ossl {

class TlsNameChecker {
 public:
  TlsNameChecker();
  ~TlsNameChecker();
  TlsNameChecker(const TlsNameChecker &) = delete;
  TlsNameChecker &operator=(const TlsNameChecker &) = delete;

  // check_tls13_cipher_suite succeeds when |name| is the IANA name of a TLS 1.3 cipher suite
  // that this OpenSSL implements, e.g. "TLS_AES_128_GCM_SHA256". Otherwise it fails with EINVAL
  // and "unknown TLS 1.3 cipher suite "NAME" (known: …)". TLS 1.2 IANA names are rejected too:
  // OpenSSL would silently drop them from a TLS 1.3 list.
  Result<void> check_tls13_cipher_suite(std::string_view name);

  // check_group succeeds when |name| is a key-exchange group OpenSSL knows, e.g. "X25519",
  // "P-256" or "secp384r1" (OpenSSL matches names case-insensitively). Otherwise EINVAL with
  // "unknown group "NAME"".
  Result<void> check_group(std::string_view name);

  // check_tls12_cipher_list succeeds when |list| is an OpenSSL cipher list
  // (e.g. "ECDHE+AESGCM:ECDHE+CHACHA20") that selects at least one TLS 1.2 cipher suite.
  // Otherwise EINVAL with "tls12_ciphers "LIST" selects no TLS 1.2 cipher suite".
  Result<void> check_tls12_cipher_list(std::string_view list);

  // check_tls12_usable checks what a TLS 1.2 handshake could actually offer with |list|, after
  // OpenSSL's security level has filtered it: at least one suite must remain, and none may lack
  // encryption (eNULL) or authentication (aNULL), since either would let an attacker read or
  // impersonate. EINVAL with "tls12_ciphers "LIST" leaves no TLS 1.2 cipher suite usable at
  // OpenSSL security level N" or "tls12_ciphers "LIST" allows SUITE, which does not encrypt"
  // / "…, which does not authenticate the peer; add ":!aNULL"".
  Result<void> check_tls12_usable(std::string_view list);

  // supported_tls13_cipher_suites returns the RFC 8446 cipher suite names this OpenSSL accepts.
  std::vector<std::string> supported_tls13_cipher_suites();

 private:
  bool check_tls13_cipher_suite_known(std::string_view name);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ssx::ossl

#endif  // SSX_OSSL_NAMES_HPP
