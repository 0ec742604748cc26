// SPDX-License-Identifier: Apache-2.0
// What each end of a failed handshake reports (docs/errors.md): the errno and the message, for
// both the end that refused and the end that was refused. Both tls::Session ends are stepped in
// the test's own thread (testlib/session_pair.hpp), so each case sees exactly one outcome: no
// thread, no sleep, no race between the refusal and the peer's next read.
//
// In TLS 1.3 a client finishes its handshake before the server has checked the client's
// certificate; a server's refusal of the client then reaches the client on its first read. The
// cases say which end learns what, and when.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "ssx/ssx.h"
#include "testlib/session_pair.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {
namespace {

using tls::Want;

// ErrorsTest holds the test PKI and options for a pair in which the client trusts the CA, wants
// "localhost" and presents the client certificate; the server presents the server certificate.
class SessionErrorsTest : public ::testing::Test {
 protected:
  SessionErrorsTest() : server_creds_(pki_.server()), client_creds_(pki_.client()) {
    options_.client = settings_for(&client_creds_, pki_.ca_cert());
    options_.server = settings_for(&server_creds_, pki_.ca_cert());
    options_.client_requires.app_names = {target_name("localhost")};
    options_.client_requires.policy_rule = "client";
    options_.server_requires.policy_rule = "server";
  }

  // want_names sets the names the client requires of the server.
  void want_names(const std::vector<std::string> &names) {
    options_.client_requires.app_names.clear();
    for (const auto &n : names) options_.client_requires.app_names.push_back(target_name(n));
  }

  TestPki pki_;
  CredentialFiles server_creds_;
  CredentialFiles client_creds_;
  PairOptions options_;
};

// has reports whether |failure| holds |code|, |fragment| and (unless -1) the reason code
// |reason| (include/ssx/reasons.h), with a message saying what it holds.
::testing::AssertionResult has(const std::optional<Failure> &failure, int code,
                               const std::string &fragment, int reason = -1) {
  if (!failure) return ::testing::AssertionFailure() << "no failure";
  if (failure->code != code || failure->message.find(fragment) == std::string::npos ||
      (reason >= 0 && failure->reason != reason)) {
    return ::testing::AssertionFailure()
           << "got " << std::strerror(failure->code) << " (" << ssx_reason_name(failure->reason)
           << "): " << failure->message << "\n   want " << std::strerror(code) << " ("
           << (reason >= 0 ? ssx_reason_name(reason) : "any reason") << ") with \"" << fragment
           << "\"";
  }
  return ::testing::AssertionSuccess();
}

TEST_F(SessionErrorsTest, MatchingPairCompletesAndReportsNoFailure) {
  SessionPair pair(options_);
  const HandshakeOutcome h = pair.handshake();
  ASSERT_TRUE(h.ok()) << h.describe();
  EXPECT_FALSE(h.stalled);
  EXPECT_TRUE(pair.session(Side::client).established());
  EXPECT_TRUE(pair.session(Side::server).established());
  const tls::Details d = pair.session(Side::client).details();
  EXPECT_EQ(d.version, "TLSv1.3");
  EXPECT_EQ(d.peer_principal, "localhost");
  EXPECT_TRUE(d.peer_name_verified);
  EXPECT_TRUE(d.peer_authenticated);
}

// The client refuses the server's certificate by name: the client says which names it wanted
// and which the certificate has; the server learns that its certificate was refused (a
// bad_certificate alert), not that it has no cipher in common with the client.
TEST_F(SessionErrorsTest, NameMismatchIsEkeyrejectedOnBothEnds) {
  want_names({"db.example"});
  SessionPair pair(options_);
  const HandshakeOutcome h = pair.handshake();
  EXPECT_TRUE(has(h.client.failure, EKEYREJECTED,
                  "peer certificate does not match target name \"db.example\": DNS SANs are "
                  "localhost",
                  SSX_REASON_NAME_MISMATCH))
      << h.describe();
  EXPECT_TRUE(has(h.server.failure, EKEYREJECTED, "peer rejected our certificate",
                  SSX_REASON_PEER_REFUSED_US))
      << h.describe();
  EXPECT_FALSE(pair.session(Side::client).established());
}

// Each kind of target name matches only its own kind of identity, and the message lists what
// the certificate does have of that kind.
TEST_F(SessionErrorsTest, IpUriAndPinNamesMatchTheirKindOfIdentity) {
  std::string spki;
  {
    want_names({"127.0.0.1"});
    SessionPair pair(options_);
    const HandshakeOutcome h = pair.handshake();
    ASSERT_TRUE(h.ok()) << h.describe();
    const tls::Details d = pair.session(Side::client).details();
    EXPECT_TRUE(d.peer_name_verified);
    spki = d.peer_spki_sha256;
  }
  ASSERT_EQ(spki.size(), 64u);
  struct Case {
    const char *label;
    std::vector<std::string> names;
    const char *fragment;  // nullptr: the handshake succeeds
    int reason = SSX_REASON_NAME_MISMATCH;
  };
  const std::vector<Case> cases = {
      {"right pin", {"sha256:" + spki}, nullptr},
      {"IPv6 literal not in SANs", {"::2"}, "IP SANs are 127.0.0.1, ::1"},
      {"wrong pin", {"sha256:" + std::string(64, '0')}, "key sha256:", SSX_REASON_PIN_MISMATCH},
      {"URI and DNS name the server lacks",
       {"spiffe://ssx.test/server", "other.example"},
       "matches none of the target names"},
      {"one of several matches", {"db.example", "localhost"}, nullptr},
  };
  for (const Case &c : cases) {
    want_names(c.names);
    SessionPair pair(options_);
    const HandshakeOutcome h = pair.handshake();
    if (c.fragment == nullptr) {
      EXPECT_TRUE(h.ok()) << c.label << ": " << h.describe();
    } else {
      EXPECT_TRUE(has(h.client.failure, EKEYREJECTED, c.fragment, c.reason)) << c.label;
      EXPECT_TRUE(has(h.server.failure, EKEYREJECTED, "peer rejected our certificate",
                      SSX_REASON_PEER_REFUSED_US))
          << c.label;
    }
  }
}

// The policy's peer_names must hold as well as the application's names.
TEST_F(SessionErrorsTest, PolicyPeerNamesMustHoldAsWellAsTheApplicationsNames) {
  options_.client_requires.policy_names = {target_name("db.example")};
  SessionPair pair(options_);
  const HandshakeOutcome h = pair.handshake();
  EXPECT_TRUE(has(h.client.failure, EKEYREJECTED,
                  "does not match the peer_names of policy rule \"client\" (\"db.example\")",
                  SSX_REASON_NAME_MISMATCH))
      << h.describe();
  EXPECT_TRUE(has(h.server.failure, EKEYREJECTED, "peer rejected our certificate",
                  SSX_REASON_PEER_REFUSED_US));
}

// A server certificate from an untrusted CA, expired or not yet valid: the client names whose
// certificate it refused and why; the errno says which kind of refusal it was; the server
// learns from the alert that its certificate was refused.
TEST_F(SessionErrorsTest, UntrustedExpiredAndNotYetValidServersAreRejected) {
  struct Case {
    const char *label;
    bool rogue;
    pki::Validity validity;
    int client_errno;
    const char *client_fragment;
    int client_reason;
    int server_errno;
    const char *server_fragment;
  };
  const Case cases[] = {
      {"untrusted CA",
       true,
       {},
       EKEYREJECTED,
       "unable to get local issuer certificate",
       SSX_REASON_UNTRUSTED_ISSUER,
       EKEYREJECTED,
       "peer rejected our certificate (tlsv1 alert unknown ca)"},
      {"expired",
       false,
       {-2 * 86400, -86400},
       EKEYEXPIRED,
       "certificate has expired",
       SSX_REASON_EXPIRED,
       EKEYEXPIRED,
       "peer rejected our certificate as expired"},
      {"not yet valid",
       false,
       {86400, 2 * 86400},
       EKEYEXPIRED,
       "certificate is not yet valid",
       SSX_REASON_NOT_YET_VALID,
       EKEYREJECTED,
       "peer rejected our certificate (sslv3 alert bad certificate)"},
  };
  for (const Case &c : cases) {
    pki::LeafRequest request = TestPki::server_request();
    request.validity = c.validity;
    const CredentialFiles bad =
        pki_.issue(std::string("bad-") + std::to_string(&c - cases), request, c.rogue);
    options_.server = settings_for(&bad, pki_.ca_cert());
    SessionPair pair(options_);
    const HandshakeOutcome h = pair.handshake();
    EXPECT_TRUE(
        has(h.client.failure, c.client_errno,
            std::string("server certificate of \"localhost\" rejected: ") + c.client_fragment,
            c.client_reason))
        << c.label;
    EXPECT_TRUE(
        has(h.server.failure, c.server_errno, c.server_fragment, SSX_REASON_PEER_REFUSED_US))
        << c.label;
  }
}

// A server that requires a client certificate refuses a client without one. The TLS 1.3 client
// has finished its handshake by then and learns of the refusal on its first read — with a
// message that says its policy gave it no certificate.
TEST_F(SessionErrorsTest, ServerRefusesClientWithoutCertificateWhenRequired) {
  options_.client = settings_for(nullptr, pki_.ca_cert());
  options_.server_requires.require_certificate = true;
  SessionPair pair(options_);
  const HandshakeOutcome h = pair.handshake();
  EXPECT_TRUE(h.client.done) << h.describe();
  EXPECT_TRUE(has(h.server.failure, EKEYREJECTED,
                  "client presented no certificate, but the policy requires one",
                  SSX_REASON_NO_PEER_CERTIFICATE))
      << h.describe();
  const ReadOutcome r = pair.read(Side::client);
  EXPECT_EQ(r.data, "");
  EXPECT_TRUE(has(r.failure, EKEYREJECTED,
                  "the server requires a client certificate, and none was sent: the policy "
                  "(rule \"client\") gives this connection no certificate",
                  SSX_REASON_PEER_REQUIRES_CERTIFICATE));
}

// Names required of clients (a listener's target names) make a certificate required, and a
// client certificate that does not carry them is refused.
TEST_F(SessionErrorsTest, ServerRequiresItsTargetNamesOfTheClient) {
  for (const char *name : {"spiffe://ssx.test/client", "spiffe://ssx.test/other"}) {
    const bool match = std::string(name) == "spiffe://ssx.test/client";
    options_.server_requires.app_names = {target_name(name)};
    SessionPair pair(options_);
    const HandshakeOutcome h = pair.handshake();
    EXPECT_TRUE(h.client.done) << name << ": " << h.describe();
    if (match) {
      ASSERT_TRUE(h.ok()) << h.describe();
      const tls::Details d = pair.session(Side::server).details();
      EXPECT_TRUE(d.peer_name_verified);
      EXPECT_TRUE(d.peer_authenticated);
      EXPECT_EQ(d.peer_principal, "spiffe://ssx.test/client");
      continue;
    }
    EXPECT_TRUE(has(h.server.failure, EKEYREJECTED,
                    "peer certificate does not match target name \"spiffe://ssx.test/other\"",
                    SSX_REASON_NAME_MISMATCH))
        << h.describe();
    const ReadOutcome r = pair.read(Side::client);
    EXPECT_TRUE(has(r.failure, EKEYREJECTED,
                    "the server requires a client certificate and did not accept ours",
                    SSX_REASON_PEER_REFUSED_US))
        << name;
  }
}

// A client certificate from an untrusted CA: the server names it; the client learns on its
// first read that the server refused its certificate.
TEST_F(SessionErrorsTest, UntrustedClientCertificateIsRefused) {
  const CredentialFiles rogue = pki_.issue("rogue-client", TestPki::client_request(), true);
  options_.client = settings_for(&rogue, pki_.ca_cert());
  options_.server_requires.require_certificate = true;
  SessionPair pair(options_);
  const HandshakeOutcome h = pair.handshake();
  EXPECT_TRUE(has(h.server.failure, EKEYREJECTED,
                  "client certificate of \"spiffe://ssx.test/client\" rejected: unable to get "
                  "local issuer certificate",
                  SSX_REASON_UNTRUSTED_ISSUER))
      << h.describe();
  const ReadOutcome r = pair.read(Side::client);
  EXPECT_TRUE(has(r.failure, EKEYREJECTED, "peer rejected our certificate (tlsv1 alert unknown ca)",
                  SSX_REASON_PEER_REFUSED_US));
}

// No TLS 1.3 cipher suite, or no group, in common: EPROTO on both ends, with a message that
// sends the administrator to the version, cipher and group settings.
TEST_F(SessionErrorsTest, NothingInCommonIsEprotoOnBothEnds) {
  struct Case {
    const char *label;
    std::vector<std::string> client_suites, server_suites, client_groups, server_groups;
  };
  const Case cases[] = {
      {"cipher suites", {"TLS_AES_128_GCM_SHA256"}, {"TLS_CHACHA20_POLY1305_SHA256"}, {}, {}},
      {"groups", {}, {}, {"X25519"}, {"P-256"}},
  };
  for (const Case &c : cases) {
    options_.client.cipher_suites = c.client_suites;
    options_.server.cipher_suites = c.server_suites;
    options_.client.groups = c.client_groups;
    options_.server.groups = c.server_groups;
    SessionPair pair(options_);
    const HandshakeOutcome h = pair.handshake();
    EXPECT_TRUE(has(h.server.failure, EPROTO, "no TLS version, cipher suite or group in common",
                    SSX_REASON_NO_SHARED_PARAMETERS))
        << c.label << ": " << h.describe();
    EXPECT_TRUE(has(h.client.failure, EPROTO, "no TLS version, cipher suite or group in common",
                    SSX_REASON_NO_SHARED_PARAMETERS))
        << c.label << ": " << h.describe();
  }
}

// A peer that speaks something else than TLS: the server says so and knows it was cleartext.
TEST_F(SessionErrorsTest, CleartextClientIsEprotoNotTls) {
  SessionPair pair(options_);
  const std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ASSERT_EQ(::send(pair.fd(Side::client), request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  auto r = pair.session(Side::server).handshake();
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(has(r.error(), EPROTO, "peer does not speak TLS (its first byte was 0x47",
                  SSX_REASON_NOT_TLS));
  EXPECT_TRUE(pair.session(Side::server).peer_spoke_cleartext());
  EXPECT_FALSE(pair.session(Side::server).hello_received());
}

// A client sees a server that answers in cleartext the same way.
TEST_F(SessionErrorsTest, CleartextServerIsEprotoNotTls) {
  SessionPair pair(options_);
  auto first = pair.session(Side::client).handshake();  // sends the ClientHello
  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_EQ(*first, Want::read);
  const std::string banner = "SSH-2.0-OpenSSH_9.2\r\n";
  ASSERT_EQ(::send(pair.fd(Side::server), banner.data(), banner.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(banner.size()));
  auto r = pair.session(Side::client).handshake();
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(has(r.error(), EPROTO, "peer does not speak TLS", SSX_REASON_NOT_TLS));
}

// The peer goes away in the middle of the handshake: ECONNRESET, "during the TLS handshake" —
// also when the server notices it by its own send failing (EPIPE on AF_UNIX), since the
// handshake sends nothing of the application's.
TEST_F(SessionErrorsTest, PeerClosingDuringTheHandshakeIsEconnreset) {
  for (Transport transport : {Transport::unix_stream, Transport::tcp_loopback}) {
    options_.transport = transport;
    SessionPair pair(options_);
    auto first = pair.session(Side::client).handshake();
    ASSERT_TRUE(first.has_value()) << first.error().message;
    pair.reset(Side::client);
    ASSERT_NE(pair.wait_for_event(Side::server, POLLIN), 0);
    // The ClientHello is in the server's socket, then the end of the stream (or a reset).
    Result<Want> r = Want::read;
    for (int i = 0; i < 100 && r.has_value() && *r != Want::nothing; ++i) {
      r = pair.session(Side::server).handshake();
    }
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ECONNRESET) << r.error().message;
    EXPECT_EQ(r.error().reason, SSX_REASON_PEER_CLOSED_IN_HANDSHAKE) << r.error().message;
    EXPECT_NE(r.error().message.find("during the TLS handshake"), std::string::npos)
        << r.error().message;
  }
}

// A failure is final: the failed end keeps failing, and never reports success later.
TEST_F(SessionErrorsTest, AFailedHandshakeStaysFailed) {
  want_names({"db.example"});
  SessionPair pair(options_);
  const HandshakeOutcome h = pair.handshake();
  ASSERT_TRUE(h.client.failure) << h.describe();
  for (int i = 0; i < 3; ++i) {
    auto again = pair.session(Side::client).handshake();
    ASSERT_FALSE(again.has_value());
    EXPECT_NE(again.error().code, 0);
    EXPECT_FALSE(pair.session(Side::client).established());
  }
  char byte;
  auto read = pair.session(Side::client).read(&byte, 1, false);
  EXPECT_FALSE(read.has_value() && read->bytes > 0) << "no data after a failed handshake";
}

}  // namespace
}  // namespace ssx::test
