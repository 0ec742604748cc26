// tls_fixture.hpp — a loopback world for TLS scenario tests: a test PKI, a policy with a
// server identity for inbound sockets and a client identity for outbound ones, and helpers to
// run an ssx server on a thread.

#ifndef SSX_TESTS_INTEGRATION_TLS_FIXTURE_HPP
#define SSX_TESTS_INTEGRATION_TLS_FIXTURE_HPP

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "testlib/loopback.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {

struct InfoDeleter {
  void operator()(ssx_security_info *info) const { ssx_free_security_info(info); }
};
using Info = std::unique_ptr<ssx_security_info, InfoDeleter>;

// query returns |fd|'s security info, failing the test when the query fails.
inline Info query(int fd) {
  ssx_security_info *raw = nullptr;
  EXPECT_EQ(ssx_query_socket_security(fd, nullptr, 0, &raw), 0) << last_error_text();
  return Info(raw);
}

class TlsTest : public ::testing::Test {
 protected:
  TlsTest() : server_creds_(pki_.server()), client_creds_(pki_.client()) {}

  // use_policy installs a policy: [defaults] trusting the test CA, then |defaults_extra|, then a
  // rule "server" (inbound: the server certificate, |server_extra|) and a rule "client"
  // (outbound: the client certificate, |client_extra|).
  void use_policy(const std::string &defaults_extra = "", const std::string &server_extra = "",
                  const std::string &client_extra = "", bool client_certificate = true) {
    std::string toml =
        "[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) + "\n" + defaults_extra + "\n";
    toml += "[[rule]]\nname = \"server\"\ndirection = \"inbound\"\ncertificate = " +
            toml_quote(server_creds_.cert) + "\nprivate_key = " + toml_quote(server_creds_.key) +
            "\n" + server_extra + "\n";
    toml += "[[rule]]\nname = \"client\"\ndirection = \"outbound\"\n";
    if (client_certificate) {
      toml += "certificate = " + toml_quote(client_creds_.cert) +
              "\nprivate_key = " + toml_quote(client_creds_.key) + "\n";
    }
    toml += client_extra + "\n";
    install_policy(dir_, toml);
  }

  // serve_one accepts one connection on |listener| in a thread and runs |handler| with the
  // accepted fd (or -1 and the errno when ssx_accept failed).
  std::unique_ptr<BackgroundThread> serve_one(int listener,
                                              std::function<void(int fd, int error)> handler) {
    return std::make_unique<BackgroundThread>([listener, handler] {
      int fd = ssx_accept(listener, nullptr, nullptr);
      int error = fd < 0 ? errno : 0;
      handler(fd, error);
      if (fd >= 0) ssx_close(fd);
    });
  }

  TestPki pki_;
  TempDir dir_;
  CredentialFiles server_creds_;
  CredentialFiles client_creds_;
};

}  // namespace ssx::test

#endif  // SSX_TESTS_INTEGRATION_TLS_FIXTURE_HPP
