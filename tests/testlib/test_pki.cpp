#include "testlib/test_pki.hpp"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>

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
