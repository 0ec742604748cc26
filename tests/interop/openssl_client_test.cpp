// SPDX-License-Identifier: Apache-2.0
// `openssl s_client` against an ssx server: verification of our server, client certificates
// under the policy's peer_authentication, refused protocol versions, and session resumption.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "interop.hpp"

namespace ssx::test {
namespace {

class OpensslClientTest : public InteropTest {
 protected:
  // talk runs s_client with |extra| against an ssx line_server on a new listener.
  CommandResult talk(const std::vector<std::string> &extra, ServerOutcome &outcome) {
    Fd listener = bounded_listener();
    return talk_on(listener.get(), extra, outcome);
  }

  // talk_on is talk on an existing listener.
  CommandResult talk_on(int listener, const std::vector<std::string> &extra,
                        ServerOutcome &outcome) {
    return talk_to_line_server(listener, s_client_argv(local_port(listener), pki_.ca_cert(), extra),
                               "line from s_client\n", outcome);
  }
};

TEST_F(OpensslClientTest, VerifiesOurServerAndExchangesData) {
  interop_policy();
  ServerOutcome outcome;
  CommandResult r = talk({}, outcome);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Verification: OK"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Verified peername: localhost"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Verify return code: 0 (ok)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("New, TLSv1.3, Cipher is TLS_"), std::string::npos) << r.output;
  EXPECT_EQ(outcome.accept_errno, 0) << outcome.accept_reason;
  EXPECT_EQ(outcome.received, "line from s_client\n");
  EXPECT_TRUE(outcome.clean_end) << "s_client's close_notify must end the stream with 0: "
                                 << std::strerror(outcome.end_errno);
  ASSERT_TRUE(outcome.info);
  EXPECT_STREQ(outcome.info->version, "TLSv1.3");
  EXPECT_STREQ(outcome.info->local_principal, "localhost");
  EXPECT_EQ(outcome.info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u) << "no client certificate";
}

TEST_F(OpensslClientTest, ClientCertificateIsReportedWhenPolicyRequiresOne) {
  interop_policy("", "peer_authentication = \"required\"");
  ServerOutcome outcome;
  CommandResult r = talk({"-cert", client_creds_.cert, "-key", client_creds_.key}, outcome);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(outcome.accept_errno, 0) << outcome.accept_reason;
  ASSERT_TRUE(outcome.info);
  EXPECT_NE(outcome.info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
  EXPECT_STREQ(outcome.info->peer_principal, "spiffe://ssx.test/client");
  EXPECT_EQ(peer_names_of(*outcome.info),
            (std::vector<std::string>{"spiffe://ssx.test/client", "client"}));
  EXPECT_TRUE(outcome.clean_end);
}

TEST_F(OpensslClientTest, ClientWithoutCertificateIsRefusedWhenPolicyRequiresOne) {
  interop_policy("", "peer_authentication = \"required\"");
  Fd listener = bounded_listener();
  ServerOutcome outcome;
  auto server = line_server(listener.get(), outcome);
  ChildProcess client(s_client_argv(local_port(listener.get()), pki_.ca_cert(), {}),
                      ChildProcess::Stdin::pipe);
  CommandResult r = client.wait_for_exit(kPeerTimeout);
  server.reset();
  EXPECT_EQ(outcome.accept_errno, EKEYREJECTED) << outcome.accept_reason;
  EXPECT_STREQ(ssx_reason_name(outcome.accept_reason_code), "NO_PEER_CERTIFICATE")
      << outcome.accept_reason;
  EXPECT_NE(outcome.accept_reason.find("no certificate"), std::string::npos)
      << outcome.accept_reason;
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alert certificate required"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(kGreeting), std::string::npos) << "no application data was sent";
}

TEST_F(OpensslClientTest, Tls12OnlyClientIsRefusedByATls13OnlyServerUnlessPolicyAllowsIt) {
  interop_policy();
  Fd listener = bounded_listener();
  ServerOutcome outcome;
  auto server = line_server(listener.get(), outcome);
  ChildProcess client(s_client_argv(local_port(listener.get()), pki_.ca_cert(), {"-tls1_2"}),
                      ChildProcess::Stdin::pipe);
  CommandResult r = client.wait_for_exit(kPeerTimeout);
  server.reset();
  EXPECT_EQ(outcome.accept_errno, EPROTO) << outcome.accept_reason;
  EXPECT_STREQ(ssx_reason_name(outcome.accept_reason_code), "VERSION_MISMATCH")
      << outcome.accept_reason;
  EXPECT_NE(outcome.accept_reason.find("no TLS version"), std::string::npos)
      << outcome.accept_reason;
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alert protocol version"), std::string::npos) << r.output;

  interop_policy("min_tls_version = \"1.2\"");
  ServerOutcome allowed;
  CommandResult r12 = talk({"-tls1_2"}, allowed);
  EXPECT_EQ(r12.exit_code, 0) << r12.output;
  EXPECT_NE(r12.output.find("New, TLSv1.2, Cipher is ECDHE-ECDSA-"), std::string::npos)
      << r12.output;
  ASSERT_TRUE(allowed.info);
  EXPECT_STREQ(allowed.info->version, "TLSv1.2");
  EXPECT_TRUE(allowed.clean_end);
}

// s_client saves the session from its first connection (-sess_out) and offers it on the second
// (-sess_in): the ssx server resumes it, and still knows who the client is.
TEST_F(OpensslClientTest, ClientResumesItsSessionAndServerStillKnowsTheClient) {
  interop_policy("", "peer_authentication = \"required\"");
  const std::string session = dir_.file("s_client.session");
  const std::vector<std::string> cert = {"-cert", client_creds_.cert, "-key", client_creds_.key};
  Fd listener = bounded_listener();
  ServerOutcome first;
  std::vector<std::string> extra = cert;
  extra.insert(extra.end(), {"-sess_out", session});
  CommandResult r1 = talk_on(listener.get(), extra, first);
  EXPECT_EQ(r1.exit_code, 0) << r1.output;
  EXPECT_NE(r1.output.find("New, TLSv1.3"), std::string::npos) << r1.output;
  ASSERT_TRUE(first.info);
  EXPECT_EQ(first.info->flags & SSX_INFO_RESUMED, 0u);

  ServerOutcome second;
  extra = cert;
  extra.insert(extra.end(), {"-sess_in", session});
  CommandResult r2 = talk_on(listener.get(), extra, second);
  EXPECT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_NE(r2.output.find("Reused, TLSv1.3"), std::string::npos) << r2.output;
  ASSERT_TRUE(second.info);
  EXPECT_NE(second.info->flags & SSX_INFO_RESUMED, 0u);
  EXPECT_NE(second.info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
  EXPECT_STREQ(second.info->peer_principal, "spiffe://ssx.test/client");
}

// session_tickets = false: "whether TLS session tickets (resumption) are used" (docs/policy.md).
TEST_F(OpensslClientTest, ServerWithSessionTicketsOffDoesNotResume) {
  interop_policy("", "session_tickets = false");
  const std::string session = dir_.file("s_client.session");
  Fd listener = bounded_listener();
  ServerOutcome first;
  CommandResult r1 = talk_on(listener.get(), {"-sess_out", session}, first);
  EXPECT_EQ(r1.exit_code, 0) << r1.output;
  EXPECT_NE(r1.output.find("New, TLSv1.3"), std::string::npos) << r1.output;
  ASSERT_TRUE(first.info);
  EXPECT_EQ(first.info->flags & SSX_INFO_RESUMED, 0u);
  // A TLS 1.3 client can only resume with a ticket, and the server issued none: s_client had
  // nothing to save.
  EXPECT_NE(::access(session.c_str(), F_OK), 0) << "the server issued a session ticket";
}

// peer_authentication = "optional": a client without a certificate is let in unauthenticated,
// one with a good certificate is authenticated, and one with a bad certificate is still refused.
TEST_F(OpensslClientTest, OptionalClientCertificateIsVerifiedWhenPresented) {
  interop_policy("", "peer_authentication = \"optional\"");
  {
    SCOPED_TRACE("no certificate");
    ServerOutcome outcome;
    CommandResult r = talk({}, outcome);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(outcome.info);
    EXPECT_EQ(outcome.info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
    EXPECT_EQ(outcome.info->peer_principal, nullptr);
  }
  {
    SCOPED_TRACE("good certificate");
    ServerOutcome outcome;
    CommandResult r = talk({"-cert", client_creds_.cert, "-key", client_creds_.key}, outcome);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(outcome.info);
    EXPECT_NE(outcome.info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
    EXPECT_STREQ(outcome.info->peer_principal, "spiffe://ssx.test/client");
  }
  SCOPED_TRACE("certificate from the rogue CA");
  CredentialFiles rogue = pki_.issue("rogue-client", TestPki::client_request(), /*rogue=*/true);
  Fd listener = bounded_listener();
  ServerOutcome outcome;
  auto server = line_server(listener.get(), outcome);
  ChildProcess client(s_client_argv(local_port(listener.get()), pki_.ca_cert(),
                                    {"-cert", rogue.cert, "-key", rogue.key}),
                      ChildProcess::Stdin::pipe);
  CommandResult r = client.wait_for_exit(kPeerTimeout);
  server.reset();
  EXPECT_EQ(outcome.accept_errno, EKEYREJECTED) << outcome.accept_reason;
  EXPECT_STREQ(ssx_reason_name(outcome.accept_reason_code), "UNTRUSTED_ISSUER")
      << outcome.accept_reason;
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find(kGreeting), std::string::npos);
}

}  // namespace
}  // namespace ssx::test
