// SPDX-License-Identifier: Apache-2.0
#include "testlib/test_pki.hpp"

#include <openssl/pem.h>
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <stdexcept>

#include "ossl/ossl.hpp"

namespace ssx::test {
namespace {

std::string make_temp_dir() {
  const char *base = getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ssx-test-XXXXXX";
  // mkdtemp creates the directory 0700, so no other user can read the keys inside.
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("TempDir: mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  return tmpl;
}

pki::Authority make_ca(const std::string &name) {
  return pki::Authority::create(name, pki::KeyType::ec_p256).value();
}

void check(bool ok, const std::string &what) {
  if (!ok) throw std::runtime_error("TestPki::intermediate: " + what + ": " + ossl::drain_errors());
}

std::string pem_of(const std::function<int(BIO *)> &write) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  check(bio != nullptr && write(bio.get()) == 1, "cannot write PEM");
  char *data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

template <class T>
ossl::UniquePtr<T> read_pem(const std::string &pem,
                            T *(*read)(BIO *, T **, pem_password_cb *, void *)) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::UniquePtr<T> out(bio ? read(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  check(out != nullptr, "cannot parse the parent CA");
  return out;
}

}  // namespace

TempDir::TempDir() : path_(make_temp_dir()) {}

TempDir::~TempDir() {
  const char *keep = getenv("SSX_TEST_KEEP_TMP");
  if (keep != nullptr && *keep != '\0' && std::string(keep) != "0") {
    std::cerr << "SSX_TEST_KEEP_TMP: kept " << path_ << "\n";
    return;
  }
  std::error_code ignored;  // a destructor must not throw; a leftover temp dir is harmless
  std::filesystem::remove_all(path_, ignored);
}

TestPki::TestPki() : authority_(make_ca("ssx test CA")), rogue_(make_ca("ssx rogue CA")) {
  write_text(ca_cert(), authority_.cert_pem());
  write_text(rogue_ca_cert(), rogue_.cert_pem());
}

CredentialFiles TestPki::issue(const std::string &name, const pki::LeafRequest &request,
                               bool rogue) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    throw std::invalid_argument("TestPki::issue: bad file name \"" + name + "\"");
  }
  pki::Credential credential = (rogue ? rogue_ : authority_).issue(request).value();
  CredentialFiles files;
  files.cert = dir_.file(name + ".crt");
  files.key = dir_.file(name + ".key");
  files.chain = files.cert;
  write_text(files.key, credential.key_pem, 0600);
  write_text(files.cert, credential.chain_pem);
  return files;
}

pki::Authority TestPki::intermediate(const std::string &name) const {
  ossl::ErrorQueueGuard guard;
  auto parent_cert = read_pem<X509>(authority_.cert_pem(), PEM_read_bio_X509);
  auto parent_key = read_pem<EVP_PKEY>(authority_.key_pem(), PEM_read_bio_PrivateKey);
  ossl::UniquePtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  check(key != nullptr, "cannot make a key");
  ossl::UniquePtr<X509> cert(X509_new());
  check(cert != nullptr, "out of memory");
  X509 *x = cert.get();
  static std::atomic<long> serial{0x5000};
  const auto *cn = reinterpret_cast<const unsigned char *>(name.c_str());
  check(X509_set_version(x, X509_VERSION_3) == 1 &&
            ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(x), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600) != nullptr &&
            X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, MBSTRING_UTF8, cn,
                                       -1, -1, 0) == 1 &&
            X509_set_issuer_name(x, X509_get_subject_name(parent_cert.get())) == 1 &&
            X509_set_pubkey(x, key.get()) == 1,
        "cannot fill in the certificate");
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, parent_cert.get(), x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid"}}) {
    ossl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    check(ext != nullptr && X509_add_ext(x, ext.get(), -1) == 1, "cannot add an extension");
  }
  check(X509_sign(x, parent_key.get(), EVP_sha256()) > 0, "cannot sign");
  std::string cert_pem = pem_of([x](BIO *bio) { return PEM_write_bio_X509(bio, x); });
  std::string key_pem = pem_of([&key](BIO *bio) {
    return PEM_write_bio_PKCS8PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  return pki::Authority::from_pem(std::move(cert_pem), std::move(key_pem)).value();
}

pki::LeafRequest TestPki::server_request() {
  pki::LeafRequest request;
  request.common_name = "localhost";
  request.dns = {"localhost"};
  request.ips = {"127.0.0.1", "::1"};
  request.client = false;
  request.server = true;
  return request;
}

pki::LeafRequest TestPki::client_request(const std::string &name) {
  pki::LeafRequest request;
  request.common_name = name;
  request.uris = {"spiffe://ssx.test/client"};
  request.client = true;
  request.server = false;
  return request;
}

CredentialFiles TestPki::server(const std::string &name) {
  return issue(name, server_request());
}

CredentialFiles TestPki::client(const std::string &name) {
  return issue(name, client_request(name));
}

void write_text(const std::string &path, const std::string &text, unsigned mode) {
  pki::write_file(path, text, mode).value();
}

std::string read_text(const std::string &path) {
  return pki::read_file(path).value();
}

}  // namespace ssx::test
