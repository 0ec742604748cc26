// SPDX-License-Identifier: Apache-2.0
// An ssx UDP client (DTLS) against DTLS servers we did not write: `openssl s_server -dtls1_2`
// (with and without a client certificate) and `gnutls-serv --udp`. Datagram semantics (one send
// is one datagram, EMSGSIZE, truncation), the query, the non-blocking loop with ssx_timeout_ms,
// and the negative cases: wrong name, rogue CA, a DTLS 1.0-only server.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "interop.hpp"

namespace ssx::test {
namespace {

class DtlsInteropTest : public InteropTest {
 protected:
  // connect_udp connects an ssx UDP client to 127.0.0.1:|port| requiring |names|, with bounded
  // I/O. Returns the fd, or -1 with errno and ssx_last_error(); |out| always gets the socket.
  static int connect_udp(std::uint16_t port, const std::vector<std::string> &names, Fd *out) {
    int rc = ssx_client_connect(port, names, SSX_GUARANTEE_ENCRYPTION, out, SOCK_DGRAM);
    int saved = errno;
    if (out->get() >= 0) set_io_timeouts(out->get());
    errno = saved;
    return rc;
  }

  // recv_datagram receives one datagram (or "" with |*error| set).
  static std::string recv_datagram(int fd, int *error, std::size_t size = 2048, int flags = 0) {
    std::string buf(size, '\0');
    ssize_t n = ssx_recv(fd, buf.data(), buf.size(), flags);
    *error = n < 0 ? errno : 0;
    if (n < 0) return {};
    buf.resize(std::min(static_cast<std::size_t>(n), size));
    return buf;
  }

  // refused connects to |port| with |names| and checks the failure's errno and reason.
  static std::string refused(std::uint16_t port, const std::vector<std::string> &names,
                             int expected, int reason, const std::string &fragment) {
    Fd client;
    EXPECT_EQ(connect_udp(port, names, &client), -1) << "connect succeeded";
    const int error = errno;
    const std::string text = ssx_last_error();
    EXPECT_EQ(error, expected) << std::strerror(error) << " — " << text;
    EXPECT_STREQ(ssx_reason_name(ssx_last_error_reason()), ssx_reason_name(reason)) << text;
    EXPECT_NE(text.find(fragment), std::string::npos) << text;
    // The socket is dead and sends nothing.
    EXPECT_EQ(ssx_send(client.get(), "x", 1, 0), -1);
    return text;
  }
};

TEST_F(DtlsInteropTest, Dtls12WithOpensslServerCarriesDatagramsAndQueryDescribesIt) {
  interop_policy();
  ForeignServer server = start_openssl_server(server_creds_, {"-dtls1_2"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_udp(server.port, {"localhost"}, &client), 0) << last_error_text();
  EXPECT_EQ(ssx_timeout_ms(client.get()), -1) << "no timer runs once established";

  ASSERT_EQ(ssx_send(client.get(), kFromClient, std::strlen(kFromClient), 0),
            static_cast<ssize_t>(std::strlen(kFromClient)))
      << last_error_text();
  EXPECT_TRUE(server.process->wait_for_output(kFromClient, kPeerTimeout))
      << server.process->output();
  ASSERT_TRUE(server.process->write_input(kFromServer));
  int error = 0;
  EXPECT_EQ(recv_datagram(client.get(), &error), kFromServer) << last_error_text();

  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->protocol, SSX_PROTOCOL_DTLS);
  // OpenSSL 3.0 has no DTLS 1.3: 1.2 is what it negotiates, and what ssx reports.
  EXPECT_STREQ(info->version, "DTLSv1.2");
  ASSERT_NE(info->cipher, nullptr);
  EXPECT_EQ(std::string(info->cipher).rfind("TLS_ECDHE_ECDSA_WITH_", 0), 0u) << info->cipher;
  EXPECT_STREQ(info->peer_principal, "localhost");
  const unsigned want = SSX_INFO_SECURED | SSX_INFO_ENCRYPTED | SSX_INFO_PEER_AUTHENTICATED |
                        SSX_INFO_PEER_NAME_VERIFIED;
  EXPECT_EQ(info->flags & want, want);
  EXPECT_EQ(server.process->output().find("Client certificate"), std::string::npos);
}

TEST_F(DtlsInteropTest, OpensslServerRequiringAClientCertificateVerifiesOurs) {
  interop_policy();
  ForeignServer server = start_openssl_server(
      server_creds_,
      {"-dtls1_2", "-Verify", "1", "-verify_return_error", "-CAfile", pki_.ca_cert()});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_udp(server.port, {"localhost"}, &client), 0) << last_error_text();
  ASSERT_EQ(ssx_send(client.get(), kFromClient, std::strlen(kFromClient), 0),
            static_cast<ssize_t>(std::strlen(kFromClient)))
      << last_error_text();
  EXPECT_TRUE(server.process->wait_for_output(kFromClient, kPeerTimeout))
      << server.process->output();
  const std::string &out = server.process->output();
  EXPECT_NE(out.find("depth=0 CN = client\nverify return:1"), std::string::npos) << out;
  EXPECT_NE(out.find("subject=CN = client"), std::string::npos) << out;
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_STREQ(info->local_principal, "spiffe://ssx.test/client");
}

TEST_F(DtlsInteropTest, GnutlsUdpServerEchoesOurDatagrams) {
  interop_policy();
  ForeignServer server = start_gnutls_server(server_creds_, {"--udp"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_udp(server.port, {"localhost"}, &client), 0) << last_error_text();
  for (const std::string line : {"first datagram\n", "second datagram\n"}) {
    ASSERT_EQ(ssx_send(client.get(), line.data(), line.size(), 0),
              static_cast<ssize_t>(line.size()))
        << last_error_text();
    int error = 0;
    EXPECT_EQ(recv_datagram(client.get(), &error), line) << last_error_text();
  }
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_STREQ(info->version, "DTLSv1.2");
}

// One ssx_send is one datagram: one that does not fit under dtls_mtu (1200 bytes of UDP payload
// by default) fails whole with EMSGSIZE, and the association goes on. A received datagram
// longer than the buffer is cut, the rest discarded (MSG_TRUNC gives its length).
TEST_F(DtlsInteropTest, OversizedSendIsEmsgsizeAndLongDatagramsAreTruncated) {
  interop_policy();
  ForeignServer server = start_openssl_server(server_creds_, {"-dtls1_2"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_udp(server.port, {"localhost"}, &client), 0) << last_error_text();

  const std::string big(1200, 'B');
  EXPECT_EQ(ssx_send(client.get(), big.data(), big.size(), 0), -1);
  EXPECT_EQ(errno, EMSGSIZE) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_DATAGRAM_TOO_LARGE);
  EXPECT_NE(std::string(ssx_last_error()).find("dtls_mtu 1200"), std::string::npos)
      << ssx_last_error();
  EXPECT_EQ(ssx_send(client.get(), "x", 1, MSG_MORE), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);

  // 1100 bytes fit (1200 less the record header, explicit nonce and tag).
  std::string fits(1099, 'f');
  fits += '\n';
  EXPECT_EQ(ssx_send(client.get(), fits.data(), fits.size(), 0), static_cast<ssize_t>(fits.size()))
      << last_error_text();
  EXPECT_TRUE(server.process->wait_for_output(fits, kPeerTimeout));

  ASSERT_TRUE(server.process->write_input("0123456789abcdef\n"));
  int error = 0;
  EXPECT_EQ(recv_datagram(client.get(), &error, 4), "0123") << last_error_text();
  ASSERT_TRUE(server.process->write_input("next\n"));
  EXPECT_EQ(recv_datagram(client.get(), &error), "next\n")
      << "the rest of the first datagram must be gone: " << last_error_text();
  ASSERT_TRUE(server.process->write_input("truncated\n"));
  char small[3];
  EXPECT_EQ(ssx_recv(client.get(), small, sizeof small, MSG_TRUNC), 10) << last_error_text();
  EXPECT_EQ(std::string(small, 3), "tru");
}

TEST_F(DtlsInteropTest, NonBlockingHandshakeIsDrivenWithWantsAndTimeout) {
  // A generous deadline: on a loaded machine DTLS's retransmission backoff (1 s, 2 s, 4 s)
  // must not run into it (this test is about the loop, not the deadline).
  use_policy("handshake_timeout_ms = 20000");
  ForeignServer server = start_openssl_server(server_creds_, {"-dtls1_2"});
  ASSERT_TRUE(server);
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(fd.get(), "localhost", nullptr, 0), 0);
  EXPECT_EQ(ssx_timeout_ms(fd.get()), -1) << "no timer before the handshake";
  sockaddr_in a = loopback_address(server.port);
  // ssx_connect takes the first steps itself; on loopback the server may answer within them, and
  // the handshake is then done at once (0), as ssx.h allows.
  const int rc = ssx_connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a);
  if (rc != 0) {
    ASSERT_EQ(rc, -1);
    ASSERT_EQ(errno, EINPROGRESS) << last_error_text();
  }
  int turns = 0;
  for (; rc != 0 && turns < 400; ++turns) {  // bounded: a handshake takes a handful of turns
    const int timeout = ssx_timeout_ms(fd.get());
    EXPECT_GE(timeout, 0) << "turn " << turns;
    EXPECT_LE(timeout, 20000);  // the policy's handshake_timeout_ms
    pollfd p{fd.get(), static_cast<short>(ssx_wants(fd.get()) & (POLLIN | POLLOUT)), 0};
    ::poll(&p, 1, timeout);
    if (ssx_handshake(fd.get()) == 0) break;
    ASSERT_EQ(errno, EAGAIN) << last_error_text();
  }
  ASSERT_LT(turns, 400) << last_error_text();
  EXPECT_EQ(ssx_timeout_ms(fd.get()), -1);
  ASSERT_EQ(ssx_send(fd.get(), kFromClient, std::strlen(kFromClient), 0),
            static_cast<ssize_t>(std::strlen(kFromClient)));
  EXPECT_TRUE(server.process->wait_for_output(kFromClient, kPeerTimeout));
}

TEST_F(DtlsInteropTest, WrongNameAndRogueCaAreRejected) {
  interop_policy();
  {
    ForeignServer server = start_openssl_server(server_creds_, {"-dtls1_2"});
    ASSERT_TRUE(server);
    refused(server.port, {"db.example"}, EKEYREJECTED, SSX_REASON_NAME_MISMATCH,
            "peer certificate does not match target name \"db.example\"");
  }
  CredentialFiles rogue = pki_.issue("rogue-dtls-server", TestPki::server_request(), true);
  ForeignServer server = start_openssl_server(rogue, {"-dtls1_2"});
  ASSERT_TRUE(server);
  refused(server.port, {"localhost"}, EKEYREJECTED, SSX_REASON_UNTRUSTED_ISSUER,
          "server certificate of \"localhost\" rejected");
}

// A DTLS 1.0-only server is refused whatever else we share with it. With our default cipher
// list (AEAD only, which DTLS 1.0 lacks) it gives up itself (handshake_failure); with CBC
// ciphers allowed it answers in DTLS 1.0, and we refuse the version.
TEST_F(DtlsInteropTest, Dtls10OnlyServerIsRefused) {
  interop_policy();
  {
    ForeignServer server =
        start_openssl_server(server_creds_, {"-dtls1", "-cipher", "ALL:@SECLEVEL=0"});
    ASSERT_TRUE(server);
    refused(server.port, {"localhost"}, EPROTO, SSX_REASON_NO_SHARED_PARAMETERS,
            "handshake failure");
  }
  interop_policy("tls12_ciphers = \"ECDHE+AESGCM:ECDHE+AES:@SECLEVEL=0\"");
  ForeignServer server =
      start_openssl_server(server_creds_, {"-dtls1", "-cipher", "ALL:@SECLEVEL=0"});
  ASSERT_TRUE(server);
  refused(server.port, {"localhost"}, EPROTO, SSX_REASON_VERSION_MISMATCH, "version");
}

// One unconnected client socket, two servers with different certificates, a target name for
// each (ssx_set_socket_peer_target_name with the peer's address): each must match its own; with
// the names swapped, the handshake is refused (EKEYREJECTED) and nothing is sent.
TEST_F(DtlsInteropTest, PerPeerTargetNamesOnOneUnconnectedSocket) {
  interop_policy();
  pki::LeafRequest other = TestPki::server_request();
  other.common_name = "b.example";
  other.dns = {"b.example"};
  other.ips = {};
  const CredentialFiles b_creds = pki_.issue("b-server", other);
  auto names_for = [](int fd, const sockaddr_in &peer, const char *name) {
    return ssx_set_socket_peer_target_name(fd, name, reinterpret_cast<const sockaddr *>(&peer),
                                           sizeof peer);
  };
  {
    ForeignServer a = start_openssl_server(server_creds_, {"-dtls1_2"});
    ForeignServer b = start_openssl_server(b_creds, {"-dtls1_2"});
    ASSERT_TRUE(a);
    ASSERT_TRUE(b);
    const sockaddr_in to_a = loopback_address(a.port);
    const sockaddr_in to_b = loopback_address(b.port);
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0);
    set_io_timeouts(fd.get());
    ASSERT_EQ(names_for(fd.get(), to_a, "localhost"), 0) << last_error_text();
    ASSERT_EQ(names_for(fd.get(), to_b, "b.example"), 0) << last_error_text();
    const std::string to_each[2] = {"to a\n", "to b\n"};
    EXPECT_EQ(ssx_sendto(fd.get(), to_each[0].data(), to_each[0].size(), 0,
                         reinterpret_cast<const sockaddr *>(&to_a), sizeof to_a),
              5)
        << last_error_text();
    EXPECT_EQ(ssx_sendto(fd.get(), to_each[1].data(), to_each[1].size(), 0,
                         reinterpret_cast<const sockaddr *>(&to_b), sizeof to_b),
              5)
        << last_error_text();
    EXPECT_TRUE(a.process->wait_for_output("to a", kPeerTimeout)) << a.process->output();
    EXPECT_TRUE(b.process->wait_for_output("to b", kPeerTimeout)) << b.process->output();
    ssx_security_info *info = nullptr;
    ASSERT_EQ(ssx_query_socket_security(fd.get(), reinterpret_cast<const sockaddr *>(&to_b),
                                        sizeof to_b, &info),
              0);
    Info b_view(info);
    EXPECT_STREQ(b_view->peer_principal, "b.example");
  }
  ForeignServer a = start_openssl_server(server_creds_, {"-dtls1_2"});
  ASSERT_TRUE(a);
  const sockaddr_in to_a = loopback_address(a.port);
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0);
  set_io_timeouts(fd.get());
  ASSERT_EQ(names_for(fd.get(), to_a, "b.example"), 0);  // swapped
  EXPECT_EQ(ssx_sendto(fd.get(), "secret\n", 7, 0, reinterpret_cast<const sockaddr *>(&to_a),
                       sizeof to_a),
            -1);
  EXPECT_EQ(errno, EKEYREJECTED) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_NAME_MISMATCH);
  EXPECT_EQ(a.process->output().find("secret"), std::string::npos);
  // Forgetting the peer's names: the next handshake uses the socket-wide ones.
  ASSERT_EQ(ssx_delete_socket_peer_target_name(fd.get(), reinterpret_cast<const sockaddr *>(&to_a),
                                               sizeof to_a),
            0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(fd.get(), "localhost", nullptr, 0), 0);
}

}  // namespace
}  // namespace ssx::test
