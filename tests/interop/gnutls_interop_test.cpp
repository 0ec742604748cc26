// SPDX-License-Identifier: Apache-2.0
// ssx against GnuTLS, a TLS stack that shares no code with OpenSSL: an ssx client talking to
// `gnutls-serv --echo`, and `gnutls-cli` talking to an ssx server.

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "interop.hpp"

namespace ssx::test {
namespace {

constexpr const char *kLine = "ping through gnutls\n";

// GnuTLS priority strings that allow one protocol version only.
constexpr const char *kOnlyTls13 = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
constexpr const char *kOnlyTls12 = "NORMAL:-VERS-ALL:+VERS-TLS1.2";

// echo_once sends kLine over the ssx socket |fd| and checks gnutls-serv echoes exactly that.
void echo_once(int fd) {
  ASSERT_TRUE(ssx_send_all(fd, kLine)) << last_error_text();
  int error = 0;
  bool eof = false;
  EXPECT_EQ(recv_until(fd, "\n", &error, &eof), kLine)
      << std::strerror(error) << " — " << ssx_last_error();
  EXPECT_EQ(error, 0);
  EXPECT_FALSE(eof);
}

class GnutlsServerTest : public InteropTest {};

TEST_F(GnutlsServerTest, Tls13EchoAndQueryDescribeTheSession) {
  interop_policy();
  ForeignServer server =
      start_gnutls_server(server_creds_, {"--disable-client-cert", "--priority", kOnlyTls13});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  echo_once(client.get());
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_STREQ(info->version, "TLSv1.3");
  ASSERT_NE(info->cipher, nullptr);
  EXPECT_EQ(std::string(info->cipher).rfind("TLS_", 0), 0u) << info->cipher;
  EXPECT_NE(info->group, nullptr);
  EXPECT_STREQ(info->peer_principal, "localhost");
  const unsigned want = SSX_INFO_SECURED | SSX_INFO_ENCRYPTED | SSX_INFO_PEER_AUTHENTICATED |
                        SSX_INFO_PEER_NAME_VERIFIED;
  EXPECT_EQ(info->flags & want, want);
  EXPECT_TRUE(server.process->wait_for_output("- Version: TLS1.3", kPeerTimeout))
      << server.process->output();
  // The DNS target name went out as SNI.
  EXPECT_NE(server.process->output().find("- Given server name[1]: localhost"), std::string::npos)
      << server.process->output();
}

// An IP literal is never sent as SNI (RFC 6066 §3), but is matched against the IP SANs.
TEST_F(GnutlsServerTest, IpTargetNameIsMatchedButNotSentAsSni) {
  interop_policy();
  ForeignServer server =
      start_gnutls_server(server_creds_, {"--disable-client-cert", "--priority", kOnlyTls13});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"127.0.0.1"}, &client), 0) << last_error_text();
  echo_once(client.get());
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_NE(info->flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);
  EXPECT_TRUE(server.process->wait_for_output("- Version: TLS1.3", kPeerTimeout))
      << server.process->output();
  server.process->stop();  // and read everything it printed
  EXPECT_EQ(server.process->output().find("Given server name"), std::string::npos)
      << server.process->output();
}

TEST_F(GnutlsServerTest, ServerRequiringAClientCertificateVerifiesOurs) {
  interop_policy();
  ForeignServer server = start_gnutls_server(
      server_creds_, {"--require-client-cert", "--verify-client-cert", "--x509cafile",
                      pki_.ca_cert(), "--priority", kOnlyTls13});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  echo_once(client.get());
  // gnutls-serv prints the verification status and the certificate it received.
  EXPECT_TRUE(server.process->wait_for_output("Subject: CN=client", kPeerTimeout))
      << server.process->output();
  EXPECT_TRUE(server.process->wait_for_output("URI: spiffe://ssx.test/client", kPeerTimeout));
  EXPECT_NE(server.process->output().find("- Status: The certificate is trusted."),
            std::string::npos)
      << server.process->output();
}

TEST_F(GnutlsServerTest, ServerRequiringAClientCertificateRefusesUsWithoutOne) {
  interop_policy("", "", "", /*client_certificate=*/false);
  ForeignServer server = start_gnutls_server(
      server_creds_, {"--require-client-cert", "--verify-client-cert", "--x509cafile",
                      pki_.ca_cert(), "--priority", kOnlyTls13});
  ASSERT_TRUE(server);
  expect_refused(server.port, {"localhost"}, EKEYREJECTED, SSX_REASON_PEER_REQUIRES_CERTIFICATE,
                 "the server requires a client certificate, and none was sent");
  EXPECT_TRUE(server.process->wait_for_output("Certificate is required", kPeerTimeout))
      << server.process->output();
}

TEST_F(GnutlsServerTest, Tls12OnlyServerIsRefusedUnderTheDefaultPolicy) {
  interop_policy();
  ForeignServer server =
      start_gnutls_server(server_creds_, {"--disable-client-cert", "--priority", kOnlyTls12});
  ASSERT_TRUE(server);
  // gnutls-serv answers a ClientHello without a version it accepts with a generic
  // handshake_failure alert (s_server says protocol_version): nothing tells the version apart.
  expect_refused(server.port, {"localhost"}, EPROTO, SSX_REASON_NO_SHARED_PARAMETERS,
                 "no TLS version");

  interop_policy("min_tls_version = \"1.2\"");
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  echo_once(client.get());
  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_STREQ(info->version, "TLSv1.2");
}

class GnutlsClientTest : public InteropTest {
 protected:
  std::vector<std::string> gnutls_cli(std::uint16_t port, const std::vector<std::string> &extra) {
    // The host is the address, so that nothing depends on how "localhost" resolves; the name
    // checked is given separately.
    std::vector<std::string> argv = {"gnutls-cli",   "-p",           std::to_string(port),
                                     "--x509cafile", pki_.ca_cert(), "--verify-hostname",
                                     "localhost"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("127.0.0.1");
    return argv;
  }

  // talk runs gnutls-cli against an ssx line_server: greeting, one line echoed, then its stdin
  // closes and it says goodbye with close_notify.
  CommandResult talk(const std::vector<std::string> &extra, ServerOutcome &outcome) {
    Fd listener = bounded_listener();
    return talk_to_line_server(listener.get(), gnutls_cli(local_port(listener.get()), extra),
                               "line from gnutls-cli\n", outcome);
  }
};

TEST_F(GnutlsClientTest, VerifiesOurServerAndExchangesData) {
  interop_policy();
  ServerOutcome outcome;
  CommandResult r = talk({}, outcome);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("- Status: The certificate is trusted."), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("- Description: (TLS1.3-X.509)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("- Handshake was completed"), std::string::npos) << r.output;
  EXPECT_EQ(outcome.accept_errno, 0) << outcome.accept_reason;
  EXPECT_EQ(outcome.received, "line from gnutls-cli\n");
  EXPECT_TRUE(outcome.clean_end) << "gnutls-cli's close_notify must end the stream with 0: "
                                 << std::strerror(outcome.end_errno);
  ASSERT_TRUE(outcome.info);
  EXPECT_STREQ(outcome.info->version, "TLSv1.3");
}

TEST_F(GnutlsClientTest, ClientCertificateIsReportedWhenPolicyRequiresOne) {
  interop_policy("", "peer_authentication = \"required\"");
  ServerOutcome outcome;
  CommandResult r =
      talk({"--x509certfile", client_creds_.cert, "--x509keyfile", client_creds_.key}, outcome);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(outcome.accept_errno, 0) << outcome.accept_reason;
  ASSERT_TRUE(outcome.info);
  EXPECT_NE(outcome.info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
  EXPECT_STREQ(outcome.info->peer_principal, "spiffe://ssx.test/client");
  EXPECT_TRUE(outcome.clean_end);
}

TEST_F(GnutlsClientTest, ClientWithoutCertificateIsRefusedWhenPolicyRequiresOne) {
  interop_policy("", "peer_authentication = \"required\"");
  Fd listener = bounded_listener();
  ServerOutcome outcome;
  auto server = line_server(listener.get(), outcome);
  ChildProcess client(gnutls_cli(local_port(listener.get()), {}), ChildProcess::Stdin::pipe);
  CommandResult r = client.wait_for_exit(kPeerTimeout);
  server.reset();
  EXPECT_EQ(outcome.accept_errno, EKEYREJECTED) << outcome.accept_reason;
  EXPECT_STREQ(ssx_reason_name(outcome.accept_reason_code), "NO_PEER_CERTIFICATE")
      << outcome.accept_reason;
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Received alert [116]"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(kGreeting), std::string::npos) << "no application data was sent";
}

TEST_F(GnutlsClientTest, Tls12OnlyClientIsRefusedByATls13OnlyServer) {
  interop_policy();
  Fd listener = bounded_listener();
  ServerOutcome outcome;
  auto server = line_server(listener.get(), outcome);
  ChildProcess client(gnutls_cli(local_port(listener.get()), {"--priority", kOnlyTls12}),
                      ChildProcess::Stdin::pipe);
  CommandResult r = client.wait_for_exit(kPeerTimeout);
  server.reset();
  EXPECT_EQ(outcome.accept_errno, EPROTO) << outcome.accept_reason;
  EXPECT_STREQ(ssx_reason_name(outcome.accept_reason_code), "VERSION_MISMATCH")
      << outcome.accept_reason;
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace ssx::test
