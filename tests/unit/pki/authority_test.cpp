// SPDX-License-Identifier: Apache-2.0
// Tests of pki::Authority: the certificates it makes must satisfy OpenSSL's and GnuTLS's own
// command-line verifiers (tools we did not write), and carry exactly the extensions we promise.

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "ossl/ossl.hpp"
#include "pki/pki.hpp"
#include "testlib/run_command.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::pki {
namespace {

using ossl::UniquePtr;
using test::CommandResult;
using test::run_command;

constexpr std::int64_t kDay = 24 * 3600;

UniquePtr<X509> parse_cert(const std::string &pem) {
  UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) ADD_FAILURE() << "certificate does not parse: " << ossl::drain_errors();
  return cert;
}

UniquePtr<EVP_PKEY> parse_key(const std::string &pem) {
  UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) ADD_FAILURE() << "key does not parse: " << ossl::drain_errors();
  return key;
}

// openssl_verify runs `openssl verify -x509_strict -CAfile ca <extra> cert`.
CommandResult openssl_verify(const std::string &ca, const std::string &cert,
                             std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"openssl", "verify", "-x509_strict", "-CAfile", ca};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(cert);
  return run_command(argv);
}

CommandResult certtool_verify(const std::string &ca, const std::string &chain) {
  return run_command({"certtool", "--verify", "--load-ca-certificate", ca, "--infile", chain});
}

Authority make_ca(KeyType key = KeyType::ec_p256) {
  return Authority::create("unit test CA", key).value();
}

LeafRequest server_request() {
  LeafRequest request;
  request.common_name = "server.ssx.test";
  request.dns = {"server.ssx.test", "*.svc.ssx.test"};
  request.ips = {"127.0.0.1", "::1", "2001:db8::7"};
  request.uris = {"spiffe://ssx.test/server"};
  return request;
}

// Names lists a certificate's subjectAltNames as "DNS:x", "IP:a.b.c.d" / "IP:<16 hex bytes>",
// "URI:x".
std::vector<std::string> subject_alt_names(X509 *cert, int *critical = nullptr) {
  std::vector<std::string> out;
  UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES *>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, critical, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names.get(), i);
    int type = 0;
    auto *value = static_cast<ASN1_STRING *>(GENERAL_NAME_get0_value(name, &type));
    std::string bytes(reinterpret_cast<const char *>(ASN1_STRING_get0_data(value)),
                      static_cast<size_t>(ASN1_STRING_length(value)));
    if (type == GEN_DNS) out.push_back("DNS:" + bytes);
    if (type == GEN_URI) out.push_back("URI:" + bytes);
    if (type == GEN_IPADD) {
      out.push_back("IP:" + ossl::to_hex(reinterpret_cast<const unsigned char *>(bytes.data()),
                                         bytes.size()));
    }
  }
  return out;
}

class AuthorityTest : public ::testing::Test {
 protected:
  // write_chain writes |credential| into the temp dir as <name>.crt / <name>.key.
  std::string write_chain(const std::string &name, const Credential &credential) {
    test::write_text(dir_.file(name + ".key"), credential.key_pem, 0600);
    test::write_text(dir_.file(name + ".crt"), credential.chain_pem);
    return dir_.file(name + ".crt");
  }
  std::string write_ca(const std::string &name, const Authority &ca) {
    test::write_text(dir_.file(name), ca.cert_pem());
    return dir_.file(name);
  }
  test::TempDir dir_;
};

TEST(ParseKeyType, MapsEveryNameAndBack) {
  for (KeyType key : {KeyType::ec_p256, KeyType::ed25519, KeyType::rsa2048}) {
    auto parsed = parse_key_type(key_type_name(key));
    ASSERT_TRUE(parsed.has_value()) << key_type_name(key);
    EXPECT_EQ(*parsed, key);
  }
}

TEST(ParseKeyType, RejectsUnknownNameWithEinval) {
  auto parsed = parse_key_type("dsa1024");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().code, EINVAL);
  EXPECT_NE(parsed.error().message.find("dsa1024"), std::string::npos);
}

TEST(IsDnsName, AcceptsHostNamesAndLeftMostWildcard) {
  for (const char *name :
       {"localhost", "a.b", "server.ssx.test", "*.ssx.test", "x-1.y_2.z", "123.example"}) {
    EXPECT_TRUE(is_dns_name(name)) << name;
  }
}

TEST(IsDnsName, RejectsMalformedNames) {
  std::string long_label(64, 'a');
  for (const std::string &name :
       std::vector<std::string>{"", ".", "a.", ".a", "a..b", "-a.b", "a-.b", "a b", "a/b", "*",
                                "a.*.b", "*a.b", "\xc3\xa9.test", long_label}) {
    EXPECT_FALSE(is_dns_name(name)) << name;
  }
}

TEST(IsIpAddress, AcceptsV4AndV6RejectsTheRest) {
  for (const char *ip : {"127.0.0.1", "0.0.0.0", "::1", "::", "2001:db8::7", "::ffff:10.0.0.1"}) {
    EXPECT_TRUE(is_ip_address(ip)) << ip;
  }
  for (const char *ip : {"", "1.2.3", "256.1.1.1", "1.2.3.4.5", "10.0.0.1/8", "fe80::1%eth0", "::g",
                         "1:2:3:4:5:6:7:8:9", " 127.0.0.1", "localhost"}) {
    EXPECT_FALSE(is_ip_address(ip)) << ip;
  }
}

TEST_F(AuthorityTest, CreatesCaWithCriticalBasicConstraintsKeyCertSignAndSki) {
  Authority ca = make_ca();
  auto cert = parse_cert(ca.cert_pem());
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  int critical = -1;
  UniquePtr<BASIC_CONSTRAINTS> bc(static_cast<BASIC_CONSTRAINTS *>(
      X509_get_ext_d2i(cert.get(), NID_basic_constraints, &critical, nullptr)));
  ASSERT_TRUE(bc);
  EXPECT_TRUE(bc->ca);
  EXPECT_EQ(critical, 1);
  UniquePtr<ASN1_STRING> key_usage(
      static_cast<ASN1_STRING *>(X509_get_ext_d2i(cert.get(), NID_key_usage, &critical, nullptr)));
  ASSERT_TRUE(key_usage);
  EXPECT_EQ(critical, 1);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
  EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);
  // Self-signed: issuer is subject and its own key verifies the signature.
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())), 0);
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(cert.get())), 1);
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "unit test CA");
  EXPECT_EQ(ca.key_pem().rfind("-----BEGIN PRIVATE KEY-----", 0), 0u) << "not PKCS#8 PEM";
}

TEST_F(AuthorityTest, IssuedChainPassesOpensslVerify) {
  Authority ca = make_ca();
  std::string chain = write_chain("leaf", ca.issue(server_request()).value());
  std::string ca_file = write_ca("ca.crt", ca);
  for (const char *purpose : {"sslserver", "sslclient"}) {
    std::vector<std::string> extra = {"-purpose", purpose};
    auto result = openssl_verify(ca_file, chain, extra);
    EXPECT_EQ(result.exit_code, 0) << purpose << "\n" << test::describe({"openssl verify"}, result);
    EXPECT_NE(result.output.find(": OK"), std::string::npos) << result.output;
  }
}

TEST_F(AuthorityTest, IssuedChainPassesCerttoolVerify) {
  Authority ca = make_ca();
  std::string chain = write_chain("leaf", ca.issue(server_request()).value());
  auto result = certtool_verify(write_ca("ca.crt", ca), chain);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("Chain verification output: Verified"), std::string::npos)
      << result.output;
}

TEST_F(AuthorityTest, IssuesEveryRequestedSubjectAltName) {
  Authority ca = make_ca();
  Credential credential = ca.issue(server_request()).value();
  auto cert = parse_cert(credential.cert_pem);
  ASSERT_TRUE(cert);
  int critical = -1;
  std::vector<std::string> expected = {"DNS:server.ssx.test",
                                       "DNS:*.svc.ssx.test",
                                       "IP:7f000001",
                                       "IP:00000000000000000000000000000001",
                                       "IP:20010db8000000000000000000000007",
                                       "URI:spiffe://ssx.test/server"};
  EXPECT_EQ(subject_alt_names(cert.get(), &critical), expected);
  EXPECT_EQ(critical, 0) << "SAN need not be critical when the subject has a CN";
  // OpenSSL's own matchers agree.
  EXPECT_EQ(X509_check_host(cert.get(), "server.ssx.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "a.svc.ssx.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "other.ssx.test", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.2", 0), 0);
}

TEST_F(AuthorityTest, LeafWithoutCommonNameHasEmptySubjectAndCriticalSan) {
  Authority ca = make_ca();
  LeafRequest request;
  request.uris = {"spiffe://ssx.test/workload"};
  Credential credential = ca.issue(request).value();
  auto cert = parse_cert(credential.cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(cert.get())), 0);
  int critical = -1;
  EXPECT_EQ(subject_alt_names(cert.get(), &critical).size(), 1u);
  EXPECT_EQ(critical, 1) << "RFC 5280 §4.2.1.6 requires a critical SAN with an empty subject";
  auto result = openssl_verify(write_ca("ca.crt", ca), write_chain("leaf", credential));
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST_F(AuthorityTest, LeafCarriesUsageConstraintsAndKeyIdentifiers) {
  Authority ca = make_ca();
  LeafRequest request = server_request();
  request.client = false;
  Credential credential = ca.issue(request).value();
  auto cert = parse_cert(credential.cert_pem);
  auto ca_cert = parse_cert(ca.cert_pem());
  ASSERT_TRUE(cert && ca_cert);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  int critical = -1;
  UniquePtr<BASIC_CONSTRAINTS> bc(static_cast<BASIC_CONSTRAINTS *>(
      X509_get_ext_d2i(cert.get(), NID_basic_constraints, &critical, nullptr)));
  ASSERT_TRUE(bc);
  EXPECT_FALSE(bc->ca);
  EXPECT_EQ(critical, 1);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(cert.get());
  const ASN1_OCTET_STRING *ca_skid = X509_get0_subject_key_id(ca_cert.get());
  ASSERT_NE(akid, nullptr);
  ASSERT_NE(ca_skid, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(akid, ca_skid), 0);
  EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
  EXPECT_EQ(X509_check_issued(ca_cert.get(), cert.get()), X509_V_OK);
  // The chain is the leaf followed by the CA.
  EXPECT_EQ(credential.chain_pem, credential.cert_pem + ca.cert_pem());
}

TEST_F(AuthorityTest, ClientOnlyLeafFailsServerPurpose) {
  Authority ca = make_ca();
  LeafRequest request = server_request();
  request.server = false;
  Credential credential = ca.issue(request).value();
  auto cert = parse_cert(credential.cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  std::string ca_file = write_ca("ca.crt", ca);
  std::string chain = write_chain("leaf", credential);
  EXPECT_EQ(openssl_verify(ca_file, chain, {"-purpose", "sslclient"}).exit_code, 0);
  auto result = openssl_verify(ca_file, chain, {"-purpose", "sslserver"});
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("error 26 at 0 depth lookup: unsuitable certificate purpose"),
            std::string::npos)
      << result.output;
}

TEST_F(AuthorityTest, SerialsArePositiveRandomAndFitTwentyOctets) {
  Authority ca = make_ca();
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    auto cert = parse_cert(ca.issue(server_request()).value().cert_pem);
    ASSERT_TRUE(cert);
    UniquePtr<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
    ASSERT_TRUE(serial);
    EXPECT_FALSE(BN_is_negative(serial.get()));
    EXPECT_FALSE(BN_is_zero(serial.get()));
    EXPECT_LE(BN_num_bits(serial.get()), 159);
    char *hex = BN_bn2hex(serial.get());
    seen.emplace_back(hex);
    OPENSSL_free(hex);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end()) << "serials repeat";
}

TEST_F(AuthorityTest, ExpiredLeafFailsOpensslVerifyAsExpired) {
  Authority ca = make_ca();
  LeafRequest request = server_request();
  request.validity = {-2 * kDay, -1 * kDay};
  std::string ca_file = write_ca("ca.crt", ca);
  std::string chain = write_chain("expired", ca.issue(request).value());
  auto result = openssl_verify(ca_file, chain);
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("error 10 at 0 depth lookup: certificate has expired"),
            std::string::npos)
      << result.output;
  auto gnutls = certtool_verify(ca_file, chain);
  EXPECT_NE(gnutls.exit_code, 0) << gnutls.output;
  EXPECT_NE(gnutls.output.find("expired"), std::string::npos) << gnutls.output;
}

TEST_F(AuthorityTest, NotYetValidLeafFailsOpensslVerifyAsNotYetValid) {
  Authority ca = make_ca();
  LeafRequest request = server_request();
  request.validity = {1 * kDay, 2 * kDay};
  std::string ca_file = write_ca("ca.crt", ca);
  std::string chain = write_chain("future", ca.issue(request).value());
  auto result = openssl_verify(ca_file, chain);
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("error 9 at 0 depth lookup: certificate is not yet valid"),
            std::string::npos)
      << result.output;
  auto gnutls = certtool_verify(ca_file, chain);
  EXPECT_NE(gnutls.exit_code, 0) << gnutls.output;
  EXPECT_NE(gnutls.output.find("not yet valid"), std::string::npos) << gnutls.output;
}

TEST_F(AuthorityTest, ValidityFollowsRequestOffsets) {
  Authority ca = make_ca();
  LeafRequest request = server_request();
  request.validity = {-10 * kDay, 30 * kDay};
  auto cert = parse_cert(ca.issue(request).value().cert_pem);
  ASSERT_TRUE(cert);
  int days = 0, secs = 0;
  ASSERT_EQ(
      ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())),
      1);
  EXPECT_EQ(days, 40);
  EXPECT_EQ(secs, 0);
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notBefore(cert.get())), 1);
  EXPECT_EQ(days, -10);  // ASN1_TIME_diff(…, nullptr = now, notBefore); within a minute
}

TEST_F(AuthorityTest, RogueLeafFailsVerificationAgainstTrustedCa) {
  Authority trusted = make_ca();
  Authority rogue = Authority::create("rogue CA").value();
  std::string chain = write_chain("rogue-leaf", rogue.issue(server_request()).value());
  auto result = openssl_verify(write_ca("ca.crt", trusted), chain);
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("unable to get local issuer certificate"), std::string::npos)
      << result.output;
  auto gnutls = certtool_verify(dir_.file("ca.crt"), chain);
  EXPECT_NE(gnutls.exit_code, 0) << gnutls.output;
  // The rogue CA itself vouches for it, so the failure above is the trust, not the certificate.
  EXPECT_EQ(openssl_verify(write_ca("rogue.crt", rogue), chain).exit_code, 0);
}

class AuthorityKeyTypes : public AuthorityTest,
                          public ::testing::WithParamInterface<std::tuple<KeyType, KeyType>> {};

TEST_P(AuthorityKeyTypes, IssuesChainThatBothVerifiersAccept) {
  auto [ca_key, leaf_key] = GetParam();
  Authority ca = make_ca(ca_key);
  LeafRequest request = server_request();
  request.key = leaf_key;
  Credential credential = ca.issue(request).value();

  auto key = parse_key(credential.key_pem);
  auto cert = parse_cert(credential.cert_pem);
  ASSERT_TRUE(key && cert);
  EXPECT_EQ(credential.key_pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u) << "not PKCS#8 PEM";
  const char *expected_type = leaf_key == KeyType::ec_p256   ? "EC"
                              : leaf_key == KeyType::ed25519 ? "ED25519"
                                                             : "RSA";
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), expected_type)) << expected_type;
  if (leaf_key == KeyType::rsa2048) {
    EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 2048);
  }
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  uint32_t usage = KU_DIGITAL_SIGNATURE | (leaf_key == KeyType::rsa2048 ? KU_KEY_ENCIPHERMENT : 0);
  EXPECT_EQ(X509_get_key_usage(cert.get()), usage);
  if (ca_key == KeyType::ed25519) {
    EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ED25519);
  }

  std::string ca_file = write_ca("ca.crt", ca);
  std::string chain = write_chain("leaf", credential);
  auto result = openssl_verify(ca_file, chain, {"-purpose", "sslserver"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  auto gnutls = certtool_verify(ca_file, chain);
  EXPECT_EQ(gnutls.exit_code, 0) << gnutls.output;
}

INSTANTIATE_TEST_SUITE_P(
    AllPairs, AuthorityKeyTypes,
    ::testing::Combine(::testing::Values(KeyType::ec_p256, KeyType::ed25519, KeyType::rsa2048),
                       ::testing::Values(KeyType::ec_p256, KeyType::ed25519, KeyType::rsa2048)),
    [](const auto &info) {
      std::string name = std::string(key_type_name(std::get<0>(info.param))) + "_ca_" +
                         key_type_name(std::get<1>(info.param)) + "_leaf";
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

TEST(AuthorityIssue, RejectsBadIpWithEinvalNamingIt) {
  Authority ca = make_ca();
  for (const char *ip : {"256.1.1.1", "1.2.3", "fe80::1%eth0", "10.0.0.0/8", "::g", ""}) {
    LeafRequest request = server_request();
    request.ips = {"127.0.0.1", ip};
    auto issued = ca.issue(request);
    ASSERT_FALSE(issued.has_value()) << ip;
    EXPECT_EQ(issued.error().code, EINVAL) << ip;
    EXPECT_NE(issued.error().message.find(std::string("invalid IP address \"") + ip + "\""),
              std::string::npos)
        << issued.error().message;
  }
}

TEST(AuthorityIssue, RejectsMalformedRequestsWithEinval) {
  Authority ca = make_ca();
  auto expect_einval = [&](LeafRequest request, const std::string &why) {
    auto issued = ca.issue(request);
    ASSERT_FALSE(issued.has_value()) << why;
    EXPECT_EQ(issued.error().code, EINVAL) << why << ": " << issued.error().message;
    EXPECT_FALSE(issued.error().message.empty());
  };
  expect_einval(LeafRequest{}, "empty request");
  LeafRequest r = server_request();
  r.dns = {"bad name"};
  expect_einval(r, "DNS with a space");
  r = server_request();
  r.uris = {"no-scheme"};
  expect_einval(r, "URI without scheme");
  r = server_request();
  r.uris = {"spiffe://has space"};
  expect_einval(r, "URI with a space");
  r = server_request();
  r.common_name = std::string(65, 'c');
  expect_einval(r, "65-character CN");
  r = server_request();
  r.validity = {kDay, -kDay};
  expect_einval(r, "notAfter before notBefore");
  r = server_request();
  r.validity = {0, 1000LL * 365 * kDay};
  expect_einval(r, "1000 years");
  r = server_request();
  r.client = r.server = false;
  expect_einval(r, "neither client nor server");
}

TEST(AuthorityCreate, RejectsEmptyNameAndReversedValidity) {
  EXPECT_EQ(Authority::create("").error().code, EINVAL);
  EXPECT_EQ(Authority::create("ca", KeyType::ec_p256, {kDay, 0}).error().code, EINVAL);
}

TEST(AuthorityFromPem, RoundTripsAndIssuesVerifiableLeaves) {
  Authority ca = make_ca(KeyType::ed25519);
  Authority loaded = Authority::from_pem(ca.cert_pem(), ca.key_pem()).value();
  EXPECT_EQ(loaded.cert_pem(), ca.cert_pem());
  EXPECT_EQ(loaded.key_pem(), ca.key_pem());
  auto leaf = parse_cert(loaded.issue(server_request()).value().cert_pem);
  auto ca_cert = parse_cert(ca.cert_pem());
  ASSERT_TRUE(leaf && ca_cert);
  EXPECT_EQ(X509_verify(leaf.get(), X509_get0_pubkey(ca_cert.get())), 1);
}

TEST(AuthorityFromPem, RejectsKeyOfAnotherCa) {
  Authority a = make_ca();
  Authority b = make_ca();
  auto loaded = Authority::from_pem(a.cert_pem(), b.key_pem());
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, EINVAL);
  EXPECT_NE(loaded.error().message.find("does not match"), std::string::npos);
  EXPECT_EQ(ERR_peek_error(), 0u) << "stale OpenSSL errors left behind";
}

TEST(AuthorityFromPem, RejectsLeafAsCa) {
  Authority ca = make_ca();
  Credential leaf = ca.issue(server_request()).value();
  auto loaded = Authority::from_pem(leaf.cert_pem, leaf.key_pem);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, EINVAL);
  EXPECT_NE(loaded.error().message.find("not a CA"), std::string::npos);
}

TEST(AuthorityFromPem, RejectsGarbageAndNeverLeaksKeyMaterial) {
  Authority ca = make_ca();
  auto bad_cert = Authority::from_pem("not a certificate", ca.key_pem());
  ASSERT_FALSE(bad_cert.has_value());
  EXPECT_EQ(bad_cert.error().code, EINVAL);
  std::string truncated_key = ca.key_pem().substr(0, ca.key_pem().size() / 2);
  auto bad_key = Authority::from_pem(ca.cert_pem(), truncated_key);
  ASSERT_FALSE(bad_key.has_value());
  EXPECT_EQ(bad_key.error().code, EINVAL);
  // The message names the problem; it must not echo the (partial) key it was given.
  std::string body = truncated_key.substr(28, 40);  // past "-----BEGIN PRIVATE KEY-----\n"
  EXPECT_EQ(bad_key.error().message.find(body), std::string::npos) << bad_key.error().message;
}

TEST(AuthorityFromPem, RefusesEncryptedKeyWithoutPrompting) {
  Authority ca = make_ca();
  auto key = parse_key(ca.key_pem());
  ASSERT_TRUE(key);
  UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  char pass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), pass,
                                          sizeof pass - 1, nullptr, nullptr),
            1);
  char *data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  // If this prompted on the terminal, the test would hang rather than fail.
  auto loaded = Authority::from_pem(ca.cert_pem(), std::string(data, static_cast<size_t>(len)));
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, EINVAL);
}

}  // namespace
}  // namespace ssx::pki
