// SPDX-License-Identifier: Apache-2.0
// ssx_query_socket_security keeps what it derives from the peer's certificate after the first
// query of a connection. These tests hold it to giving the same answer every time: across the
// session tickets a client processes after its handshake, on a resumed session, and while other
// threads send and receive on the socket.

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

constexpr const char *kRequest = "ping from the client";
constexpr const char *kReply = "pong from the server";

class QueryTest : public TlsTest {
 protected:
  // Both ends present a certificate, so both queries have a peer to describe.
  void SetUp() override { use_policy("", "peer_authentication = \"required\""); }
};

// Queries before and after the client has read data (and with it the server's session tickets,
// which make OpenSSL replace the client's session object) agree, on both ends.
TEST_F(QueryTest, RepeatedQueriesGiveTheSameAnswer) {
  Fd listener = ssx_listener();
  Info server_first, server_second;
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error) << " — " << ssx_last_error();
    server_first = query(fd);
    int recv_error = -1;
    EXPECT_EQ(ssx_recv_until_eof(fd, &recv_error), kRequest);
    server_second = query(fd);
    EXPECT_TRUE(ssx_send_all(fd, kReply)) << last_error_text();
    EXPECT_EQ(ssx_shutdown(fd, SHUT_WR), 0) << last_error_text();
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  Info first = query(client.get());
  Info second = query(client.get());
  ASSERT_TRUE(ssx_send_all(client.get(), kRequest));
  ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0) << last_error_text();
  int error = -1;
  EXPECT_EQ(ssx_recv_until_eof(client.get(), &error), kReply);
  Info after_reading = query(client.get());
  server.reset();

  ASSERT_TRUE(first && second && after_reading);
  EXPECT_STREQ(first->peer_principal, "localhost");
  EXPECT_NE(first->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
  EXPECT_EQ(std::strlen(first->peer_spki_sha256), 64u);
  {
    SCOPED_TRACE("client: second query");
    expect_same_info(*first, *second);
  }
  {
    SCOPED_TRACE("client: after the session tickets were read");
    expect_same_info(*first, *after_reading);
  }
  ASSERT_TRUE(server_first && server_second);
  EXPECT_STREQ(server_first->peer_principal, "spiffe://ssx.test/client");
  SCOPED_TRACE("server");
  expect_same_info(*server_first, *server_second);
}

// A resumed session reports the peer of the handshake that made it, on both ends, and its own
// repeated queries agree.
TEST_F(QueryTest, ResumedSessionReportsThePeerOfTheFullHandshake) {
  Fd listener = ssx_listener();
  Info client_info[2][2], server_info[2][2];  // [round][query]
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto server = serve_one(listener.get(), [&, round](int fd, int error) {
      ASSERT_GE(fd, 0) << std::strerror(error) << " — " << ssx_last_error();
      server_info[round][0] = query(fd);
      server_info[round][1] = query(fd);
      int recv_error = -1;
      EXPECT_EQ(ssx_recv_until_eof(fd, &recv_error), kRequest);
      EXPECT_TRUE(ssx_send_all(fd, kReply)) << last_error_text();
      EXPECT_EQ(ssx_shutdown(fd, SHUT_WR), 0) << last_error_text();
    });
    Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
    ASSERT_GE(client.get(), 0) << last_error_text();
    client_info[round][0] = query(client.get());
    client_info[round][1] = query(client.get());
    ASSERT_TRUE(ssx_send_all(client.get(), kRequest));
    ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0) << last_error_text();
    int error = -1;
    EXPECT_EQ(ssx_recv_until_eof(client.get(), &error), kReply);  // reads the tickets too
  }
  for (auto *side : {client_info, server_info}) {
    const bool client = side == client_info;
    SCOPED_TRACE(client ? "client" : "server");
    for (int round = 0; round < 2; ++round) {
      for (int q = 0; q < 2; ++q) ASSERT_TRUE(side[round][q]) << round << "/" << q;
    }
    EXPECT_EQ(side[0][0]->flags & SSX_INFO_RESUMED, 0u);
    EXPECT_NE(side[1][0]->flags & SSX_INFO_RESUMED, 0u);
    EXPECT_NE(side[1][0]->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
    EXPECT_STREQ(side[1][0]->peer_principal, client ? "localhost" : "spiffe://ssx.test/client");
    expect_same_info(*side[1][0], *side[1][1]);
    SCOPED_TRACE("resumed against full");
    expect_same_info(*side[0][0], *side[1][0], SSX_INFO_RESUMED, /*same_handshake=*/false);
  }
}

// One thread receives (blocked, mostly) and another sends while this one queries: every query
// succeeds and agrees with the first.
TEST_F(QueryTest, QueriesAgreeWhileOtherThreadsSendAndReceive) {
  constexpr int kMessages = 200;
  const std::string message(512, 'q');
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error) << " — " << ssx_last_error();
    int recv_error = -1;
    std::string all = ssx_recv_until_eof(fd, &recv_error);  // then echo it all back
    EXPECT_EQ(recv_error, 0) << ssx_last_error();
    EXPECT_TRUE(ssx_send_all(fd, all)) << last_error_text();
    EXPECT_EQ(ssx_shutdown(fd, SHUT_WR), 0) << last_error_text();
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  Info reference = query(client.get());
  ASSERT_TRUE(reference);

  std::atomic<bool> done{false};
  std::string received;
  int receive_error = -1;
  std::thread receiver([&] { received = ssx_recv_until_eof(client.get(), &receive_error); });
  std::thread sender([&] {
    for (int i = 0; i < kMessages; ++i) EXPECT_TRUE(ssx_send_all(client.get(), message));
    EXPECT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0) << last_error_text();
    done = true;
  });
  int queries = 0;
  while (!done || queries < 100) {
    Info info = query(client.get());
    ASSERT_TRUE(info);
    expect_same_info(*reference, *info);
    ++queries;
  }
  sender.join();
  receiver.join();
  server.reset();
  EXPECT_EQ(receive_error, 0) << ssx_last_error();
  EXPECT_EQ(received.size(), message.size() * kMessages);
}

}  // namespace
}  // namespace ssx::test
