// SPDX-License-Identifier: Apache-2.0
// TlsNameChecker: names are checked by the OpenSSL ssx runs with.

#include "ossl/names.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace ssx::ossl {
namespace {

TEST(TlsNameChecker, KnowsTheDefaultTls13Suites) {
  TlsNameChecker names;
  for (const char *suite :
       {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
    EXPECT_TRUE(names.check_tls13_cipher_suite(suite).has_value()) << suite;
  }
  const std::vector<std::string> known = names.supported_tls13_cipher_suites();
  EXPECT_NE(std::find(known.begin(), known.end(), "TLS_AES_128_GCM_SHA256"), known.end());
}

TEST(TlsNameChecker, RejectsNonTls13SuiteNamesAndLists) {
  TlsNameChecker names;
  for (const char *bad :
       {"", "TLS_AES_128_GCM_SHA257", "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
        "tls_aes_128_gcm_sha256"}) {
    Result<void> r = names.check_tls13_cipher_suite(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, EINVAL);
  }
}

TEST(TlsNameChecker, ChecksGroups) {
  TlsNameChecker names;
  for (const char *group : {"X25519", "P-256", "P-384", "secp384r1", "prime256v1"}) {
    EXPECT_TRUE(names.check_group(group).has_value()) << group;
  }
  for (const char *bad : {"", "P-255", "X25519:P-256", "X25519,P-256"}) {
    EXPECT_FALSE(names.check_group(bad).has_value()) << bad;
  }
}

TEST(TlsNameChecker, ChecksTls12CipherLists) {
  TlsNameChecker names;
  EXPECT_TRUE(names.check_tls12_cipher_list("ECDHE+AESGCM:ECDHE+CHACHA20").has_value());
  EXPECT_TRUE(names.check_tls12_usable("ECDHE+AESGCM:ECDHE+CHACHA20").has_value());
  EXPECT_FALSE(names.check_tls12_cipher_list("NOTHING-AT-ALL").has_value());
  // TLS 1.3 suites are not TLS 1.2 ciphers.
  EXPECT_FALSE(names.check_tls12_cipher_list("TLS_AES_128_GCM_SHA256").has_value());
  // Valid lists that a safe TLS 1.2 handshake cannot use.
  for (const char *unsafe : {"eNULL", "aNULL", "NULL-SHA256"}) {
    EXPECT_TRUE(names.check_tls12_cipher_list(unsafe).has_value()) << unsafe;
    EXPECT_FALSE(names.check_tls12_usable(unsafe).has_value()) << unsafe;
  }
}

}  // namespace
}  // namespace ssx::ossl
