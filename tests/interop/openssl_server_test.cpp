// SPDX-License-Identifier: Apache-2.0
// An ssx client against `openssl s_server`: data both ways, what the query reports, client
// certificates, and the negative cases a foreign server can provoke (old protocol versions,
// untrusted, expired and misnamed certificates, key pins, truncation, silence, cipher and group
// pinning), and session resumption.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include "interop.hpp"

namespace ssx::test {
namespace {

class OpensslServerTest : public InteropTest {};

TEST_F(OpensslServerTest, Tls13DataFlowsBothWaysAndQueryDescribesTheSession) {
  interop_policy();
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  exchange(client.get(), server);

  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->protocol, SSX_PROTOCOL_TLS);
  EXPECT_STREQ(info->version, "TLSv1.3");
  ASSERT_NE(info->cipher, nullptr);
  // s_server reports the suite it negotiated by its own (IANA) name; both must agree.
  EXPECT_TRUE(
      server.process->wait_for_output(std::string("CIPHER is ") + info->cipher, kPeerTimeout))
      << info->cipher << "\n"
      << server.process->output();
  EXPECT_NE(info->group, nullptr);
  EXPECT_STREQ(info->peer_principal, "localhost");
  EXPECT_EQ(peer_names_of(*info), (std::vector<std::string>{"localhost", "127.0.0.1", "::1"}));
  const unsigned want = SSX_INFO_SECURED | SSX_INFO_ENCRYPTED | SSX_INFO_PEER_AUTHENTICATED |
                        SSX_INFO_PEER_NAME_VERIFIED;
  EXPECT_EQ(info->flags & want, want);
  // s_server did not ask for a client certificate, so ours was never sent.
  EXPECT_EQ(server.process->output().find("Client certificate"), std::string::npos);
}

TEST_F(OpensslServerTest, ServerRequiringAClientCertificateVerifiesOurs) {
  interop_policy();
  ForeignServer server = start_openssl_server(
      server_creds_,
      {"-tls1_3", "-Verify", "1", "-verify_return_error", "-CAfile", pki_.ca_cert()});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  exchange(client.get(), server);
  const std::string &out = server.process->output();
  // s_server's verify callback saw our leaf verify, and it prints the certificate it got.
  EXPECT_NE(out.find("depth=0 CN = client\nverify return:1"), std::string::npos) << out;
  EXPECT_NE(out.find("Client certificate"), std::string::npos) << out;
  EXPECT_NE(out.find("subject=CN = client"), std::string::npos) << out;
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_STREQ(info->local_principal, "spiffe://ssx.test/client");
}

TEST_F(OpensslServerTest, ServerRequiringAClientCertificateRefusesUsWithoutOne) {
  interop_policy("", "", "", /*client_certificate=*/false);
  ForeignServer server = start_openssl_server(
      server_creds_,
      {"-tls1_3", "-Verify", "1", "-verify_return_error", "-CAfile", pki_.ca_cert()});
  ASSERT_TRUE(server);
  expect_refused(server.port, {"localhost"}, EKEYREJECTED, SSX_REASON_PEER_REQUIRES_CERTIFICATE,
                 "the server requires a client certificate, and none was sent");
  EXPECT_TRUE(server.process->wait_for_output("peer did not return a certificate", kPeerTimeout))
      << server.process->output();
}

// TLS 1.2-only peers: refused under the default (1.3-only) policy, accepted when the policy
// lowers min_tls_version.
TEST_F(OpensslServerTest, Tls12OnlyServerIsADowngradeUnlessPolicyAllowsIt) {
  interop_policy();
  {
    ForeignServer server = start_openssl_server(server_creds_, {"-tls1_2"});
    ASSERT_TRUE(server);
    expect_refused(server.port, {"localhost"}, EPROTO, SSX_REASON_VERSION_MISMATCH,
                   "no TLS version");
  }
  interop_policy("min_tls_version = \"1.2\"");
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_2"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  exchange(client.get(), server);
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_STREQ(info->version, "TLSv1.2");
  // Our default TLS 1.2 list is ECDHE + AEAD only; the server key is ECDSA.
  EXPECT_EQ(std::string(info->cipher).rfind("TLS_ECDHE_ECDSA_WITH_", 0), 0u) << info->cipher;
  EXPECT_NE(info->flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);
}

TEST_F(OpensslServerTest, UntrustedAndExpiredServerCertificatesAreRejected) {
  struct Case {
    const char *label;
    bool rogue;
    pki::Validity validity;
    int expected;
    int expected_reason;
    const char *reason;
  };
  const Case cases[] = {
      {"rogue CA",
       true,
       {},
       EKEYREJECTED,
       SSX_REASON_UNTRUSTED_ISSUER,
       "server certificate of \"localhost\" rejected"},
      {"expired",
       false,
       {-2 * 86400, -86400},
       EKEYEXPIRED,
       SSX_REASON_EXPIRED,
       "certificate has expired"},
      {"not yet valid",
       false,
       {86400, 2 * 86400},
       EKEYEXPIRED,
       SSX_REASON_NOT_YET_VALID,
       "certificate is not yet valid"},
  };
  interop_policy();
  for (const auto &c : cases) {
    SCOPED_TRACE(c.label);
    pki::LeafRequest request = TestPki::server_request();
    request.validity = c.validity;
    CredentialFiles creds =
        pki_.issue(std::string("bad-server-") + (c.rogue ? "rogue" : "expired") +
                       std::to_string(c.expected_reason),
                   request, c.rogue);
    ForeignServer server = start_openssl_server(creds, {"-tls1_3"});
    ASSERT_TRUE(server);
    expect_refused(server.port, {"localhost"}, c.expected, c.expected_reason, c.reason);
  }
}

TEST_F(OpensslServerTest, NameMismatchIsRejectedNamingTheCertificatesSans) {
  interop_policy();
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
  ASSERT_TRUE(server);
  std::string reason = expect_refused(
      server.port, {"db.example"}, EKEYREJECTED, SSX_REASON_NAME_MISMATCH,
      "peer certificate does not match target name \"db.example\": DNS SANs are localhost");
  EXPECT_NE(reason.find("IP SANs are 127.0.0.1, ::1"), std::string::npos) << reason;
}

TEST_F(OpensslServerTest, KeyPinComputedByOpensslConnectsAndAWrongPinFails) {
  interop_policy();
  const std::string pin = spki_pin_of(server_creds_.cert);
  ASSERT_EQ(pin.size(), 7u + 64u);
  {
    ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
    ASSERT_TRUE(server);
    Fd client;
    ASSERT_GE(connect_to(server.port, {pin}, &client), 0) << pin << ": " << last_error_text();
    Info info = query(client.get());
    ASSERT_TRUE(info);
    EXPECT_EQ("sha256:" + std::string(info->peer_spki_sha256), pin);
    EXPECT_NE(info->flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);
    exchange(client.get(), server);
  }
  std::string wrong = pin;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
  ASSERT_TRUE(server);
  expect_refused(server.port, {wrong}, EKEYREJECTED, SSX_REASON_PIN_MISMATCH, "key " + pin);
}

// A clean close_notify from s_server ends the stream with 0. Two ends without one are
// truncations, ECONNRESET and never 0: s_server killed mid-stream (the kernel ends the TCP
// connection with a FIN), and s_server at the end of its stdin (it closes the socket without an
// SSL_shutdown; OpenSSL's own s_client reports "unexpected eof" there too).
TEST_F(OpensslServerTest, CloseNotifyIsEndOfStreamButAnAbruptEndIsTruncation) {
  interop_policy();
  {
    SCOPED_TRACE("s_server -rev: CLOSE sends close_notify");
    ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3", "-rev"});
    ASSERT_TRUE(server);
    Fd client;
    ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
    int error = 0;
    bool eof = false;
    ASSERT_TRUE(ssx_send_all(client.get(), "stressed\n"));
    EXPECT_EQ(recv_until(client.get(), "\n", &error, &eof), "desserts\n") << ssx_last_error();
    ASSERT_TRUE(ssx_send_all(client.get(), "CLOSE\n"));
    EXPECT_EQ(recv_until(client.get(), "never sent", &error, &eof), "");
    EXPECT_TRUE(eof) << std::strerror(error) << " — " << ssx_last_error();
    EXPECT_EQ(error, 0);
  }
  {
    SCOPED_TRACE("ssx_shutdown(SHUT_WR): our close_notify, then s_server's");
    ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
    ASSERT_TRUE(server);
    Fd client;
    ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
    exchange(client.get(), server);
    ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0) << last_error_text();
    EXPECT_TRUE(server.process->wait_for_output("DONE", kPeerTimeout)) << server.process->output();
    int error = 0;
    bool eof = false;
    EXPECT_EQ(recv_until(client.get(), "never sent", &error, &eof), "");
    EXPECT_TRUE(eof) << std::strerror(error) << " — " << ssx_last_error();
    EXPECT_EQ(ssx_send(client.get(), "x", 1, 0), -1);
    EXPECT_EQ(errno, EPIPE) << last_error_text();
    EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_WRONG_STATE) << last_error_text();
  }
  enum class End { kill, stdin_eof };
  for (End end : {End::kill, End::stdin_eof}) {
    SCOPED_TRACE(end == End::kill ? "s_server killed" : "s_server stdin closed");
    ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
    ASSERT_TRUE(server);
    Fd client;
    ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
    exchange(client.get(), server);
    ASSERT_TRUE(server.process->write_input("partial reco"));
    int error = 0;
    bool eof = false;
    EXPECT_EQ(recv_until(client.get(), "reco", &error, &eof), "partial reco");
    if (end == End::kill) {
      server.process->stop();  // SIGKILL
    } else {
      server.process->close_input();
      EXPECT_TRUE(server.process->wait_for_output("DONE", kPeerTimeout));
    }
    for (int call = 0; call < 2; ++call) {
      char buf[64];
      EXPECT_EQ(ssx_recv(client.get(), buf, sizeof buf, 0), -1) << "call " << call;
      EXPECT_EQ(errno, ECONNRESET) << last_error_text();
      EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_TRUNCATED) << last_error_text();
    }
    EXPECT_NE(std::string(ssx_last_error()).find("without a TLS close_notify"), std::string::npos)
        << ssx_last_error();
  }
}

// ssx_sendmsg against a real peer: s_server -msg prints the header of every record it receives.
// 100 iovecs of 10 bytes arrive as one record of 1000 bytes (0x3f9 with TLS 1.3's 17 bytes of
// type and tag), and no record of a single iovec (0x1b) is ever sent. MSG_MORE pieces likewise.
TEST_F(OpensslServerTest, SendmsgAndMsgMoreReachSServerAsFullRecords) {
  interop_policy();
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3", "-msg"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  exchange(client.get(), server);
  std::string payload(1000, 'g');
  payload.back() = '\n';
  std::vector<iovec> iov;
  for (std::size_t i = 0; i < 100; ++i) iov.push_back({payload.data() + i * 10, 10});
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  ASSERT_EQ(ssx_sendmsg(client.get(), &msg, 0), 1000) << last_error_text();
  EXPECT_TRUE(server.process->wait_for_output("17 03 03 03 f9", kPeerTimeout))
      << server.process->output();
  // Five MSG_MORE sends of 100 bytes and a last one of 100: one record of 600 bytes (0x269).
  std::string piece(100, 'm');
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(ssx_send(client.get(), piece.data(), piece.size(), MSG_MORE), 100);
  }
  piece.back() = '\n';
  ASSERT_EQ(ssx_send(client.get(), piece.data(), piece.size(), 0), 100);
  EXPECT_TRUE(server.process->wait_for_output("17 03 03 02 69", kPeerTimeout))
      << server.process->output();
  const std::string out = server.process->output();
  EXPECT_EQ(out.find("17 03 03 00 1b"), std::string::npos) << "a record per iovec";
  EXPECT_EQ(out.find("17 03 03 00 75"), std::string::npos) << "a record per MSG_MORE send";
}

// s_server frozen with SIGSTOP: the kernel still completes the TCP handshake from its backlog,
// but no ServerHello ever comes.
TEST_F(OpensslServerTest, ServerThatNeverAnswersTimesOutWithinHandshakeTimeout) {
  interop_policy("", "", "handshake_timeout_ms = 400");
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
  ASSERT_TRUE(server);
  ASSERT_EQ(::kill(server.process->pid(), SIGSTOP), 0);
  auto start = std::chrono::steady_clock::now();
  Fd client;
  EXPECT_EQ(connect_to(server.port, {"localhost"}, &client), -1);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(errno, ETIMEDOUT) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_HANDSHAKE_TIMEOUT) << last_error_text();
  EXPECT_NE(std::string(ssx_last_error()).find("did not finish within 400 ms"), std::string::npos)
      << ssx_last_error();
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, 3s);
}

TEST_F(OpensslServerTest, PinnedCipherSuiteAndGroupAreWhatIsNegotiated) {
  struct Case {
    const char *suite;
    const char *group;         // as the policy spells it
    const char *openssl_name;  // as OpenSSL reports it
  };
  // The defaults would be TLS_AES_256_GCM_SHA384 and x25519: the second case moves both.
  const Case cases[] = {{"TLS_AES_128_GCM_SHA256", "X25519", "x25519"},
                        {"TLS_CHACHA20_POLY1305_SHA256", "P-384", "secp384r1"}};
  for (const auto &c : cases) {
    SCOPED_TRACE(c.suite);
    interop_policy(
        "", "",
        std::string("cipher_suites = [\"") + c.suite + "\"]\ngroups = [\"" + c.group + "\"]");
    ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
    ASSERT_TRUE(server);
    Fd client;
    ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
    exchange(client.get(), server);
    Info info = query(client.get());
    ASSERT_TRUE(info);
    EXPECT_STREQ(info->cipher, c.suite);
    EXPECT_STREQ(info->group, c.openssl_name);
    EXPECT_TRUE(server.process->wait_for_output(std::string("CIPHER is ") + c.suite, kPeerTimeout))
        << server.process->output();
  }
}

TEST_F(OpensslServerTest, NoCommonCipherSuiteOrGroupIsAProtocolError) {
  interop_policy("", "", "cipher_suites = [\"TLS_AES_128_GCM_SHA256\"]\ngroups = [\"X25519\"]");
  {
    ForeignServer server =
        start_openssl_server(server_creds_, {"-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"});
    ASSERT_TRUE(server);
    expect_refused(server.port, {"localhost"}, EPROTO, SSX_REASON_NO_SHARED_PARAMETERS,
                   "no TLS version, cipher suite or group");
  }
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3", "-groups", "P-256"});
  ASSERT_TRUE(server);
  expect_refused(server.port, {"localhost"}, EPROTO, SSX_REASON_NO_SHARED_PARAMETERS,
                 "no TLS version, cipher suite or group");
}

// A non-blocking ssx client driven by ssx_handshake / ssx_wants / poll against s_server, then
// MSG_DONTWAIT data.
TEST_F(OpensslServerTest, NonBlockingClientIsDrivenToTheEnd) {
  interop_policy();
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
  ASSERT_TRUE(server);
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(client.get(), nullptr, 0), 0) << last_error_text();
  ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost", nullptr, 0), 0);
  sockaddr_in address = loopback_address(server.port);
  // s_server is frozen until the connect has returned, so the handshake cannot finish inside it
  // (against a live s_server it sometimes does: OpenSSL may take long enough after sending its
  // ClientHello for the whole answer to be there when it first reads).
  ASSERT_EQ(::kill(server.process->pid(), SIGSTOP), 0);
  int rc = ssx_connect(client.get(), reinterpret_cast<sockaddr *>(&address), sizeof address);
  int error = errno;
  ASSERT_EQ(::kill(server.process->pid(), SIGCONT), 0);
  ASSERT_EQ(rc, -1);
  ASSERT_EQ(error, EINPROGRESS) << ssx_last_error();

  // poll_for waits (bounded) for what ssx_wants asks for.
  auto poll_for = [&] {
    short events = ssx_wants(client.get());
    EXPECT_NE(events, 0) << "EAGAIN but ssx_wants asks for nothing";
    pollfd fd{client.get(), events, 0};
    EXPECT_EQ(::poll(&fd, 1, 5000), 1) << "timed out waiting for " << events;
  };
  int rounds = 0;
  while (ssx_handshake(client.get()) != 0) {
    ASSERT_EQ(errno, EAGAIN) << last_error_text();
    ASSERT_LT(++rounds, 100);
    poll_for();
  }
  const std::string request = kFromClient;
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ssx_send(client.get(), request.data() + sent, request.size() - sent, MSG_DONTWAIT);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN) << last_error_text();
      poll_for();
      continue;
    }
    sent += static_cast<size_t>(n);
  }
  EXPECT_TRUE(server.process->wait_for_output(kFromClient, kPeerTimeout));
  ASSERT_TRUE(server.process->write_input(kFromServer));
  std::string got;
  char buf[256];
  for (rounds = 0; got.find('\n') == std::string::npos && rounds < 100; ++rounds) {
    ssize_t n = ssx_recv(client.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN) << last_error_text();
      poll_for();
      continue;
    }
    ASSERT_GT(n, 0) << "unexpected end of stream";
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, kFromServer);
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_STREQ(info->version, "TLSv1.3");
}

// The ssx client keeps s_server's TLS 1.3 ticket and resumes on its second connection to it; the
// resumed connection still reports the server's identity.
TEST_F(OpensslServerTest, ClientResumesWithTheTicketTheServerSent) {
  interop_policy();
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3", "-naccept", "2"});
  ASSERT_TRUE(server);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "first connection" : "second connection");
    Fd client;
    ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
    exchange(client.get(), server);  // receiving also takes in the tickets
    Info info = query(client.get());
    ASSERT_TRUE(info);
    EXPECT_EQ(info->flags & SSX_INFO_RESUMED, round == 0 ? 0u : SSX_INFO_RESUMED);
    EXPECT_STREQ(info->peer_principal, "localhost");
    EXPECT_NE(info->flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);
  }
  EXPECT_TRUE(server.process->wait_for_output("Reused session-id", kPeerTimeout))
      << server.process->output();
}

TEST_F(OpensslServerTest, ClientWithSessionTicketsOffDoesNotResume) {
  interop_policy("", "", "session_tickets = false");
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3", "-naccept", "2"});
  ASSERT_TRUE(server);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "first connection" : "second connection");
    Fd client;
    ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
    exchange(client.get(), server);
    Info info = query(client.get());
    ASSERT_TRUE(info);
    EXPECT_EQ(info->flags & SSX_INFO_RESUMED, 0u);
  }
  server.process->stop();  // and read all it printed
  EXPECT_EQ(server.process->output().find("Reused session-id"), std::string::npos);
}

}  // namespace
}  // namespace ssx::test
