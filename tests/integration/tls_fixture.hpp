// SPDX-License-Identifier: Apache-2.0
// tls_fixture.hpp — a loopback world for TLS scenario tests: a test PKI, a policy with a
// server identity for inbound sockets and a client identity for outbound ones, and helpers to
// run an ssx server on a thread.

#ifndef SSX_TESTS_INTEGRATION_TLS_FIXTURE_HPP
#define SSX_TESTS_INTEGRATION_TLS_FIXTURE_HPP

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

// expect_same_info checks that two query results agree on every field, except the flags in
// |ignored_flags| and, unless |same_handshake|, handshake_ns.
inline void expect_same_info(const ssx_security_info &a, const ssx_security_info &b,
                             std::uint32_t ignored_flags = 0, bool same_handshake = true) {
  // std::string(1, '"') + ...: avoids the GCC 12 -O3 false -Wrestrict on `"literal" + std::string`
  // (GCC bug 105329).
  auto text = [](const char *s) {
    return s != nullptr ? std::string(1, '"') + s + '"' : std::string("NULL");
  };
  auto names = [](const char *const *list) {
    std::vector<std::string> out;
    for (; list != nullptr && *list != nullptr; ++list) out.emplace_back(*list);
    return out;
  };
  EXPECT_EQ(a.protocol, b.protocol);
  EXPECT_EQ(a.flags & ~ignored_flags, b.flags & ~ignored_flags);
  EXPECT_EQ(text(a.version), text(b.version));
  EXPECT_EQ(text(a.cipher), text(b.cipher));
  EXPECT_EQ(text(a.group), text(b.group));
  EXPECT_EQ(text(a.peer_principal), text(b.peer_principal));
  EXPECT_EQ(a.peer_names == nullptr, b.peer_names == nullptr);
  EXPECT_EQ(names(a.peer_names), names(b.peer_names));
  EXPECT_EQ(text(a.peer_spki_sha256), text(b.peer_spki_sha256));
  EXPECT_EQ(text(a.peer_chain_pem), text(b.peer_chain_pem));
  EXPECT_EQ(text(a.local_principal), text(b.local_principal));
  EXPECT_EQ(text(a.policy_rule), text(b.policy_rule));
  if (same_handshake) {
    EXPECT_EQ(a.handshake_ns, b.handshake_ns);
  }
  EXPECT_EQ(text(a.peer_user), text(b.peer_user));
  EXPECT_EQ(a.peer_uid, b.peer_uid);
  EXPECT_EQ(a.peer_gid, b.peer_gid);
  EXPECT_EQ(std::vector<gid_t>(a.peer_groups, a.peer_groups + a.peer_group_count),
            std::vector<gid_t>(b.peer_groups, b.peer_groups + b.peer_group_count));
  EXPECT_EQ(a.peer_pid, b.peer_pid);
  EXPECT_EQ(text(a.peer_security_label), text(b.peer_security_label));
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
