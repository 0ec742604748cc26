// SPDX-License-Identifier: Apache-2.0
// append_pem must write exactly what OpenSSL's PEM writer writes: the query's peer_chain_pem
// changed writers, and applications may compare it byte for byte.

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <string>
#include <vector>

#include "ossl/ossl.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::ossl {
namespace {

std::string bio_text(BIO *bio) {
  char *data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

TEST(AppendPem, MatchesPemWriteBioForEveryLengthAroundTheLineSize) {
  std::vector<unsigned char> bytes(400);
  ASSERT_EQ(RAND_bytes(bytes.data(), static_cast<int>(bytes.size())), 1);
  for (size_t len = 1; len <= bytes.size(); ++len) {
    UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
    ASSERT_TRUE(bio);
    ASSERT_GT(PEM_write_bio(bio.get(), "CERTIFICATE", "", bytes.data(), static_cast<long>(len)), 0);
    std::string ours = "prefix\n";
    append_pem(ours, "CERTIFICATE", bytes.data(), len);
    ASSERT_EQ(ours, "prefix\n" + bio_text(bio.get())) << "length " << len;
  }
}

TEST(AppendPem, CertificateMatchesPemWriteBioX509) {
  test::TestPki pki;
  for (const std::string &pem : {pki.authority().cert_pem(), test::read_text(pki.server().cert)}) {
    UniquePtr<BIO> in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    UniquePtr<X509> cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
    ASSERT_TRUE(cert);
    UniquePtr<BIO> out(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_X509(out.get(), cert.get()), 1);
    std::string ours;
    ASSERT_TRUE(append_certificate_pem(ours, cert.get()));
    EXPECT_EQ(ours, bio_text(out.get()));
    EXPECT_EQ(pem.substr(0, ours.size()), ours) << "the first certificate of the file, as written";
  }
}

}  // namespace
}  // namespace ssx::ossl
