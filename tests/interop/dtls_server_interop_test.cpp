// SPDX-License-Identifier: Apache-2.0
// An ssx DTLS server on one unconnected UDP socket (ssx_recvfrom / ssx_sendto) against clients
// we did not write: `openssl s_client -dtls1_2` and `gnutls-cli --udp`, with and without client
// certificates; two clients with different certificates at once, each queried by its own
// address. The server runs on the test's thread; the clients are child processes.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "interop.hpp"

namespace ssx::test {
namespace {

using Clock = std::chrono::steady_clock;

class DtlsServerTest : public InteropTest {
 protected:
  // dtls_server is an ssx UDP socket bound to 127.0.0.1 (a port the kernel picks) whose
  // ssx_recvfrom gives up after 100 ms, so the test can look at its clients in between.
  static Fd dtls_server() {
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0) << last_error_text();
    sockaddr_in a = loopback_address(0);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    set_io_timeouts(fd.get(), std::chrono::milliseconds(100));
    return fd;
  }

  struct Received {
    sockaddr_storage from{};
    socklen_t from_len = 0;
    std::string data;
    std::string principal;  // the per-peer query's, at the time the datagram arrived
    int query_errno = 0;
  };

  // serve_once waits (100 ms at most) for one datagram, echoes it ("echo: " + data) and returns
  // it with the sender's principal.
  static std::optional<Received> serve_once(int fd) {
    {
      Received r;
      r.from_len = sizeof r.from;
      char buf[2048];
      ssize_t n =
          ssx_recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&r.from), &r.from_len);
      if (n < 0) {
        EXPECT_EQ(errno, EAGAIN) << last_error_text();
        return std::nullopt;
      }
      r.data.assign(buf, static_cast<size_t>(n));
      ssx_security_info *info = nullptr;
      if (ssx_query_socket_security(fd, reinterpret_cast<sockaddr *>(&r.from), r.from_len, &info) ==
          0) {
        if (info->peer_principal != nullptr) r.principal = info->peer_principal;
        EXPECT_EQ(info->protocol, SSX_PROTOCOL_DTLS);
        EXPECT_STREQ(info->version, "DTLSv1.2");
        ssx_free_security_info(info);
      } else {
        r.query_errno = errno;
      }
      const std::string reply = "echo: " + r.data;
      EXPECT_EQ(ssx_sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr *>(&r.from),
                           r.from_len),
                static_cast<ssize_t>(reply.size()))
          << last_error_text();
      return r;
    }
  }

  // serve echoes every datagram until |count| have arrived or kPeerTimeout passed.
  static std::vector<Received> serve(int fd, std::size_t count) {
    std::vector<Received> got;
    const auto end = Clock::now() + kPeerTimeout;
    while (got.size() < count && Clock::now() < end) {
      if (auto r = serve_once(fd)) got.push_back(std::move(*r));
    }
    return got;
  }

  static unsigned net_port(const sockaddr_storage &address) {
    return ntohs(reinterpret_cast<const sockaddr_in &>(address).sin_port);
  }

  std::vector<std::string> s_client_dtls(std::uint16_t port, const CredentialFiles *creds) {
    std::vector<std::string> extra = {"-dtls1_2", "-quiet"};
    if (creds != nullptr) {
      extra.insert(extra.end(), {"-cert", creds->cert, "-key", creds->key});
    }
    return s_client_argv(port, pki_.ca_cert(), extra);
  }

  CredentialFiles client_named(const std::string &name) {
    pki::LeafRequest request = TestPki::client_request(name);
    request.uris = {"spiffe://ssx.test/" + name};
    return pki_.issue(name, request);
  }
};

TEST_F(DtlsServerTest, OpensslClientWithoutCertificateTalksToOurServer) {
  interop_policy();
  Fd server = dtls_server();
  ChildProcess client(s_client_dtls(local_port(server.get()), nullptr), ChildProcess::Stdin::pipe);
  ASSERT_TRUE(client.write_input("hello over dtls\n"));
  auto got = serve(server.get(), 1);
  ASSERT_EQ(got.size(), 1u) << client.output();
  EXPECT_EQ(got[0].data, "hello over dtls\n");
  EXPECT_EQ(got[0].query_errno, 0);
  EXPECT_EQ(got[0].principal, "") << "no client certificate";
  EXPECT_TRUE(client.wait_for_output("echo: hello over dtls", kPeerTimeout)) << client.output();
}

TEST_F(DtlsServerTest, TwoClientsWithDifferentCertificatesAreEachTheirOwnPrincipal) {
  interop_policy("", "peer_authentication = \"required\"");
  Fd server = dtls_server();
  const CredentialFiles alice = client_named("alice");
  const CredentialFiles bob = client_named("bob");
  ChildProcess a(s_client_dtls(local_port(server.get()), &alice), ChildProcess::Stdin::pipe);
  ChildProcess b(s_client_dtls(local_port(server.get()), &bob), ChildProcess::Stdin::pipe);
  ASSERT_TRUE(a.write_input("from alice\n"));
  ASSERT_TRUE(b.write_input("from bob\n"));
  auto got = serve(server.get(), 2);
  ASSERT_EQ(got.size(), 2u) << a.output() << b.output();
  std::map<std::string, std::string> principal_of;
  for (const auto &r : got) principal_of[r.data] = r.principal;
  EXPECT_EQ(principal_of["from alice\n"], "spiffe://ssx.test/alice");
  EXPECT_EQ(principal_of["from bob\n"], "spiffe://ssx.test/bob");
  EXPECT_NE(net_port(got[0].from), net_port(got[1].from));
  EXPECT_TRUE(a.wait_for_output("echo: from alice", kPeerTimeout)) << a.output();
  EXPECT_TRUE(b.wait_for_output("echo: from bob", kPeerTimeout)) << b.output();

  // Per-peer query rules: peer NULL on an unconnected socket is EINVAL; an address without an
  // association is ENOTCONN.
  ssx_security_info *info = nullptr;
  EXPECT_EQ(ssx_query_socket_security(server.get(), nullptr, 0, &info), -1);
  EXPECT_EQ(errno, EINVAL);
  sockaddr_in stranger = loopback_address(9);
  EXPECT_EQ(ssx_query_socket_security(server.get(), reinterpret_cast<sockaddr *>(&stranger),
                                      sizeof stranger, &info),
            -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(ssx_impersonate_socket_peer(server.get(), nullptr, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(ssx_impersonate_socket_peer(server.get(), reinterpret_cast<sockaddr *>(&stranger),
                                        sizeof stranger),
            -1);
  EXPECT_EQ(errno, ENOTCONN);
}

TEST_F(DtlsServerTest, ServerRequiringCertificatesRefusesAClientWithout) {
  interop_policy("", "peer_authentication = \"required\"");
  Fd server = dtls_server();
  ChildProcess client(s_client_dtls(local_port(server.get()), nullptr), ChildProcess::Stdin::pipe);
  ASSERT_TRUE(client.write_input("no certificate\n"));
  // Nothing reaches the application; the client is told (an alert) and gives up.
  for (int i = 0; i < 20; ++i) {  // 2 s of serving
    char buf[256];
    EXPECT_EQ(ssx_recvfrom(server.get(), buf, sizeof buf, 0, nullptr, nullptr), -1);
    EXPECT_EQ(errno, EAGAIN);
  }
  EXPECT_TRUE(client.wait_for_output("alert", kPeerTimeout)) << client.output();
}

TEST_F(DtlsServerTest, GnutlsUdpClientTalksToOurServer) {
  interop_policy();
  Fd server = dtls_server();
  ChildProcess client(
      {"gnutls-cli", "--udp", "-p", std::to_string(local_port(server.get())), "--x509cafile",
       pki_.ca_cert(), "--verify-hostname", "localhost", "127.0.0.1"},
      ChildProcess::Stdin::pipe);
  // gnutls-cli handshakes first (served here), then we give it a line to send.
  std::vector<Received> got;
  const auto end = Clock::now() + kPeerTimeout;
  bool sent = false;
  while (got.empty() && Clock::now() < end) {
    if (auto r = serve_once(server.get())) got.push_back(std::move(*r));
    if (!sent &&
        client.wait_for_output("- Handshake was completed", std::chrono::milliseconds(1))) {
      ASSERT_TRUE(client.write_input("hello from gnutls\n"));
      sent = true;
    }
  }
  ASSERT_EQ(got.size(), 1u) << client.output();
  EXPECT_EQ(got[0].data, "hello from gnutls\n");
  EXPECT_TRUE(client.wait_for_output("echo: hello from gnutls", kPeerTimeout)) << client.output();
  EXPECT_NE(client.output().find("DTLS1.2"), std::string::npos) << client.output();
}

// Per-peer impersonation on one server socket: each client's datagram is handled as the local
// account its own certificate maps to, and the kernel says so (the owner of a file created while
// impersonating). Needs root (CI runs as root); uids need no passwd entry for the kernel.
TEST_F(DtlsServerTest, EachPeerIsImpersonatedAsItsOwnAccount) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (CI runs as root)";
  interop_policy("", "peer_authentication = \"required\"",
                 "\n[[identity]]\npeer = \"spiffe://ssx.test/alice\"\nuid = 61100\ngid = 61100\n"
                 "[[identity]]\npeer = \"spiffe://ssx.test/bob\"\nuid = 61101\ngid = 61101\n");
  ASSERT_EQ(::chmod(dir_.path().c_str(), 01777), 0);
  Fd server = dtls_server();
  const CredentialFiles alice = client_named("alice");
  const CredentialFiles bob = client_named("bob");
  ChildProcess a(s_client_dtls(local_port(server.get()), &alice), ChildProcess::Stdin::pipe);
  ChildProcess b(s_client_dtls(local_port(server.get()), &bob), ChildProcess::Stdin::pipe);
  ASSERT_TRUE(a.write_input("alice\n"));
  ASSERT_TRUE(b.write_input("bob\n"));
  auto got = serve(server.get(), 2);
  ASSERT_EQ(got.size(), 2u) << a.output() << b.output();
  std::map<std::string, uid_t> owner;
  for (const auto &r : got) {
    ASSERT_EQ(ssx_impersonate_socket_peer(server.get(), reinterpret_cast<const sockaddr *>(&r.from),
                                          r.from_len),
              0)
        << last_error_text();
    const std::string path = dir_.file("made-for-" + r.data.substr(0, r.data.size() - 1));
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    struct stat st {};
    const bool made = fd >= 0 && ::fstat(fd, &st) == 0;
    if (fd >= 0) ::close(fd);
    ASSERT_EQ(ssx_revert_impersonation(), 0);
    ASSERT_TRUE(made) << std::strerror(errno);
    owner[r.data] = st.st_uid;
    ::unlink(path.c_str());
  }
  EXPECT_EQ(owner["alice\n"], 61100u);
  EXPECT_EQ(owner["bob\n"], 61101u);
  EXPECT_EQ(::geteuid(), 0u);
}

}  // namespace
}  // namespace ssx::test
