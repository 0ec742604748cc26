// SPDX-License-Identifier: Apache-2.0
// The test driver itself (testlib/session_pair.hpp): it completes a handshake over both
// transports, stops at its round bound, and reports a stall (both ends waiting for bytes that
// will never come) at once instead of spinning or timing out.

#include "testlib/session_pair.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "testlib/test_pki.hpp"

namespace ssx::test {
namespace {

class SessionPairTest : public ::testing::Test {
 protected:
  SessionPairTest() : server_creds_(pki_.server()) {
    options_.client = settings_for(nullptr, pki_.ca_cert());
    options_.server = settings_for(&server_creds_, pki_.ca_cert());
    options_.client_requires.app_names = {target_name("localhost")};
  }
  TestPki pki_;
  CredentialFiles server_creds_;
  PairOptions options_;
};

TEST_F(SessionPairTest, CompletesAHandshakeAndMovesDataOverBothTransports) {
  for (Transport transport : {Transport::unix_stream, Transport::tcp_loopback}) {
    options_.transport = transport;
    SessionPair pair(options_);
    const HandshakeOutcome h = pair.handshake();
    ASSERT_TRUE(h.ok()) << h.describe();
    EXPECT_FALSE(h.stalled);
    EXPECT_LE(h.rounds, 4);
    // More than the socket buffers hold: write_all makes the reader drain as it goes.
    std::string big(3 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
    ASSERT_TRUE(pair.write_all(Side::client, big).has_value());
    ASSERT_TRUE(pair.close_notify(Side::client).has_value());
    const ReadOutcome r = pair.read(Side::server);
    EXPECT_TRUE(r.data == big) << "received " << r.data.size() << " of " << big.size();
    EXPECT_TRUE(r.end_of_stream);
    EXPECT_FALSE(r.failure);
  }
}

TEST_F(SessionPairTest, StopsAtItsRoundBound) {
  SessionPair pair(options_);
  const HandshakeOutcome h = pair.handshake(1);
  EXPECT_EQ(h.rounds, 1);
  EXPECT_FALSE(h.ok());
  EXPECT_FALSE(h.stalled);
  EXPECT_FALSE(h.client.failure || h.server.failure);
  EXPECT_TRUE(pair.handshake().ok()) << "a bounded call can be continued";
}

// The server's flight is taken out of the client's socket: the client waits for it and the
// server for the client's Finished. The driver says so after one more round.
TEST_F(SessionPairTest, ReportsAStallInsteadOfWaiting) {
  SessionPair pair(options_);
  ASSERT_EQ(*pair.session(Side::client).handshake(), tls::Want::read);
  ASSERT_EQ(*pair.session(Side::server).handshake(), tls::Want::read);
  char sink[65536];
  ASSERT_GT(::recv(pair.fd(Side::client), sink, sizeof sink, MSG_DONTWAIT), 0);
  const HandshakeOutcome h = pair.handshake();
  EXPECT_TRUE(h.stalled) << h.describe();
  EXPECT_EQ(h.rounds, 1);
  EXPECT_EQ(h.client.want, tls::Want::read);
  EXPECT_EQ(h.server.want, tls::Want::read);
  EXPECT_NE(h.describe().find("client waits to read; server waits to read"), std::string::npos)
      << h.describe();
}

TEST_F(SessionPairTest, SetupErrorsThrow) {
  options_.server.certificate = pki_.dir() + "/missing.crt";
  EXPECT_THROW(SessionPair pair(options_), std::runtime_error);
  EXPECT_THROW(target_name("not a name"), std::runtime_error);
}

}  // namespace
}  // namespace ssx::test
