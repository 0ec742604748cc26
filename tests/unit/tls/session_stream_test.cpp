// SPDX-License-Identifier: Apache-2.0
// How a tls::Session ends a stream and what it reports once a handshake is done: a clean end
// (close_notify) against a truncation (the transport ended without one, after a FIN, a FIN and
// an RST, or a close), corrupt records, writes to a vanished peer, and what each call waits for.
// Both ends are stepped in the test's own thread (testlib/session_pair.hpp): each case orders its
// events itself, so none needs a sleep to let "the FIN and the RST both arrive".

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "testlib/session_pair.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {
namespace {

using tls::Want;

class SessionStreamTest : public ::testing::Test {
 protected:
  SessionStreamTest() : server_creds_(pki_.server()) {
    options_.client = settings_for(nullptr, pki_.ca_cert());
    options_.server = settings_for(&server_creds_, pki_.ca_cert());
    options_.client_requires.app_names = {target_name("localhost")};
  }

  // connected returns a pair whose handshake is complete, over |transport|.
  std::unique_ptr<SessionPair> connected(Transport transport = Transport::unix_stream) {
    options_.transport = transport;
    auto pair = std::make_unique<SessionPair>(options_);
    const HandshakeOutcome h = pair->handshake();
    EXPECT_TRUE(h.ok()) << h.describe();
    return pair;
  }

  TestPki pki_;
  CredentialFiles server_creds_;
  PairOptions options_;
};

bool is_truncation(const std::optional<Failure> &f) {
  return f && f->code == ECONNRESET &&
         f->message.find("without a TLS close_notify") != std::string::npos;
}

std::string text(const std::optional<Failure> &f) {
  return f ? std::string(std::strerror(f->code)) + ": " + f->message : "no failure";
}

TEST_F(SessionStreamTest, CloseNotifyEndsTheStreamCleanly) {
  auto pair = connected();
  ASSERT_TRUE(pair->write_all(Side::server, "complete").has_value());
  ASSERT_TRUE(pair->close_notify(Side::server).has_value());
  const ReadOutcome r = pair->read(Side::client);
  EXPECT_EQ(r.data, "complete");
  EXPECT_TRUE(r.end_of_stream);
  EXPECT_FALSE(r.failure) << text(r.failure);
  // The end of the stream is sticky: a later read reports it again, and no error.
  char byte;
  auto again = pair->session(Side::client).read(&byte, 1, false);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(again->end_of_stream);
  // A second close_notify is not sent twice.
  auto twice = pair->session(Side::server).send_close_notify();
  ASSERT_TRUE(twice.has_value());
  EXPECT_EQ(*twice, Want::nothing);
}

// The transport ends (FIN, or the AF_UNIX end of stream) without a close_notify: the data that
// arrived is delivered, then ECONNRESET — never a 0 that would make a cut-off stream look whole.
TEST_F(SessionStreamTest, TruncationWithoutCloseNotifyIsAnErrorNotEndOfFile) {
  for (Transport transport : {Transport::unix_stream, Transport::tcp_loopback}) {
    auto pair = connected(transport);
    ASSERT_TRUE(pair->write_all(Side::server, "partial").has_value());
    pair->shutdown_socket(Side::server, SHUT_WR);
    ASSERT_NE(pair->wait_for_event(Side::client, POLLIN), 0);
    const ReadOutcome r = pair->read(Side::client);
    EXPECT_EQ(r.data, "partial");
    EXPECT_FALSE(r.end_of_stream);
    EXPECT_TRUE(is_truncation(r.failure)) << text(r.failure);
  }
}

// The peer's FIN is followed by an RST (shutdown, then close with SO_LINGER 0, as `ssx tunnel`'s
// peers abort). OpenSSL answers the EOF with an alert, whose send fails with EPIPE (an RST in
// CLOSE_WAIT sets that error); the read must still report the truncation, ECONNRESET, and not
// the later write's EPIPE. The test waits until the reset has arrived (POLLERR/POLLHUP, bounded)
// before the server reads anything.
TEST_F(SessionStreamTest, TruncationIsEconnresetWhenFinIsFollowedByReset) {
  auto pair = connected(Transport::tcp_loopback);
  ASSERT_TRUE(pair->write_all(Side::client, "abc").has_value());
  pair->shutdown_socket(Side::client, SHUT_WR);
  pair->reset(Side::client);
  ASSERT_NE(pair->wait_for_event(Side::server, POLLERR) & (POLLERR | POLLHUP), 0)
      << "the reset did not arrive";
  const ReadOutcome r = pair->read(Side::server);
  EXPECT_EQ(r.data, "abc");
  EXPECT_TRUE(is_truncation(r.failure)) << text(r.failure);
}

// The same over AF_UNIX: the peer closes at once; the alert's send fails with EPIPE. (The
// client reads the server's session tickets first: an AF_UNIX socket closed with unread data
// makes its peer's next receive fail with ECONNRESET itself, which is not the path tested here.)
TEST_F(SessionStreamTest, TruncationIsEconnresetWhenThePeerClosed) {
  auto pair = connected(Transport::unix_stream);
  ASSERT_TRUE(pair->write_all(Side::client, "abc").has_value());
  ASSERT_EQ(pair->read(Side::client).data, "");
  pair->reset(Side::client);
  const ReadOutcome r = pair->read(Side::server);
  EXPECT_EQ(r.data, "abc");
  EXPECT_TRUE(is_truncation(r.failure)) << text(r.failure);
}

// A write to a peer that has gone fails with EPIPE or ECONNRESET (no SIGPIPE: reaching the
// assertions proves it); a read afterwards reports its own error, the truncation, after the
// data that did arrive.
TEST_F(SessionStreamTest, ReceiveAfterAFailedSendReportsTheReceivesOwnError) {
  for (Transport transport : {Transport::unix_stream, Transport::tcp_loopback}) {
    auto pair = connected(transport);
    ASSERT_TRUE(pair->write_all(Side::server, "last words").has_value());
    pair->shutdown_socket(Side::server, SHUT_RDWR);  // no close_notify
    ASSERT_NE(pair->wait_for_event(Side::client, POLLIN), 0);
    const std::string chunk(64 * 1024, 'x');
    Result<void> sent;
    for (int i = 0; i < 200 && sent.has_value(); ++i) sent = pair->write_all(Side::client, chunk);
    ASSERT_FALSE(sent.has_value()) << "writes to a shut down peer kept succeeding";
    EXPECT_TRUE(sent.error().code == EPIPE || sent.error().code == ECONNRESET)
        << sent.error().message;
    const ReadOutcome r = pair->read(Side::client);
    EXPECT_EQ(r.data, "last words");
    EXPECT_TRUE(is_truncation(r.failure))
        << "truncation is ECONNRESET, never EPIPE: " << text(r.failure);
  }
}

// A record that does not decrypt (forged, or corrupted on the way) is EPROTO "corrupt or forged",
// the one errno docs/errors.md reserves for tampering.
TEST_F(SessionStreamTest, ForgedRecordIsEproto) {
  auto pair = connected();
  // An application_data record of 32 bytes that no key produced.
  std::string record = {0x17, 0x03, 0x03, 0x00, 0x20};
  record += std::string(32, '\x5a');
  ASSERT_EQ(::send(pair->fd(Side::client), record.data(), record.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(record.size()));
  const ReadOutcome r = pair->read(Side::server);
  EXPECT_EQ(r.data, "");
  ASSERT_TRUE(r.failure);
  EXPECT_EQ(r.failure->code, EPROTO) << r.failure->message;
  EXPECT_NE(r.failure->message.find("corrupt or forged TLS record"), std::string::npos)
      << r.failure->message;
}

// A record cut off in the middle by the end of the transport is a truncation too.
TEST_F(SessionStreamTest, RecordCutOffByTheEndOfTheStreamIsATruncation) {
  auto pair = connected();
  std::string header = {0x17, 0x03, 0x03, 0x01, 0x00};  // announces 256 bytes
  const std::string partial = header + std::string(100, '\x5a');
  ASSERT_EQ(::send(pair->fd(Side::client), partial.data(), partial.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(partial.size()));
  pair->shutdown_socket(Side::client, SHUT_WR);
  const ReadOutcome r = pair->read(Side::server);
  EXPECT_TRUE(is_truncation(r.failure)) << text(r.failure);
}

// What each call waits for: a read with nothing to read waits to read, also while a write that
// found the socket full waits to write; that write, retried with the same bytes once the peer
// has drained the socket, completes, and the close_notify follows it.
TEST_F(SessionStreamTest, EachCallSaysWhatItWaitsFor) {
  auto pair = connected();
  tls::Session &client = pair->session(Side::client);
  char byte;
  auto nothing = client.read(&byte, 1, false);
  ASSERT_TRUE(nothing.has_value()) << nothing.error().message;
  EXPECT_EQ(nothing->bytes, 0u);
  EXPECT_EQ(nothing->want, Want::read);

  // Fill the socket: writes until one waits to write.
  const std::string block(64 * 1024, 'x');
  std::size_t written = 0;
  Want want = Want::nothing;
  for (int i = 0; i < 10000; ++i) {
    auto w = client.write(block.data(), block.size());
    ASSERT_TRUE(w.has_value()) << w.error().message;
    written += w->bytes;
    if (w->bytes == 0) {
      want = w->want;
      break;
    }
  }
  ASSERT_EQ(want, Want::write);
  auto read_wait = client.read(&byte, 1, false);
  ASSERT_TRUE(read_wait.has_value());
  EXPECT_EQ(read_wait->want, Want::read);

  std::size_t received = pair->read(Side::server).data.size();
  auto retried = client.write(block.data(), block.size());
  ASSERT_TRUE(retried.has_value()) << retried.error().message;
  EXPECT_GT(retried->bytes, 0u);
  written += retried->bytes;
  auto closed = pair->close_notify(Side::client);
  ASSERT_TRUE(closed.has_value()) << closed.error().message;
  const ReadOutcome rest = pair->read(Side::server);
  received += rest.data.size();
  EXPECT_TRUE(rest.end_of_stream) << text(rest.failure);
  EXPECT_EQ(received, written);
}

// A write that waited leaves a partly sent record in OpenSSL, which only a write of the same
// bytes can complete; OpenSSL refuses to send an alert behind it ("bad write retry"). Before the
// fix a close after EAGAIN failed with EPROTO, the errno reserved for forged records, and the
// connection could only be abandoned. send_close_notify now completes the record first: the
// peer gets every byte the writes took plus that record, then a clean end of stream.
TEST_F(SessionStreamTest, CloseNotifyWhileAWriteIsPending) {
  auto pair = connected();
  tls::Session &client = pair->session(Side::client);
  const std::string block(64 * 1024, 'x');
  std::size_t taken = 0;
  bool blocked = false;
  for (int i = 0; i < 10000 && !blocked; ++i) {
    auto w = client.write(block.data(), block.size());
    ASSERT_TRUE(w.has_value()) << w.error().message;
    taken += w->bytes;
    blocked = w->bytes == 0;
  }
  ASSERT_TRUE(blocked) << "the socket never filled";
  auto first = client.send_close_notify();
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(*first, Want::write);  // the pending record could not be finished yet
  std::string received = pair->read(Side::server).data;  // room to write again
  auto closed = pair->close_notify(Side::client);
  ASSERT_TRUE(closed.has_value()) << closed.error().message;
  auto rest = pair->read(Side::server);
  EXPECT_TRUE(rest.end_of_stream) << text(rest.failure);
  received += rest.data;
  // Every byte the writes took, then the one record OpenSSL held (one record's worth).
  EXPECT_EQ(received.size(), taken + tls::kMaxRecordPlaintext);
  EXPECT_EQ(received.find_first_not_of('x'), std::string::npos);
}

// A read that finds nothing is where the socket layer gives the connection's idle buffers back
// (Session::release_idle_buffers). With read_ahead the read buffer can hold part of a record
// then: releasing it would lose bytes (CVE-2024-4741 was this with SSL_free_buffers). The
// server's records are taken off the wire and handed to the client in 97-byte pieces, each
// followed by reads until one finds nothing and a release: every piece that ends inside a record
// leaves a partial record in the buffer, and every byte must still arrive intact.
TEST_F(SessionStreamTest, RecordsArrivingInPiecesSurviveIdleBufferRelease) {
  auto pair = connected();
  ASSERT_EQ(pair->read(Side::client).data, "");  // the session tickets
  std::string payload;
  for (int i = 0; payload.size() < 40000; ++i) payload += "record piece " + std::to_string(i) + ";";
  std::size_t at = 0;
  for (std::size_t size : {100u, 16384u, 7u, 9000u}) {  // records of several sizes
    ASSERT_TRUE(pair->write_all(Side::server, payload.substr(at, size)).has_value());
    at += size;
  }
  ASSERT_TRUE(pair->write_all(Side::server, payload.substr(at)).has_value());
  ASSERT_TRUE(pair->close_notify(Side::server).has_value());

  // Take the records off the client's socket.
  std::string wire;
  char chunk[65536];
  for (ssize_t n; (n = ::recv(pair->fd(Side::client), chunk, sizeof chunk, MSG_DONTWAIT)) > 0;) {
    wire.append(chunk, static_cast<std::size_t>(n));
  }
  ASSERT_GT(wire.size(), payload.size());

  tls::Session &client = pair->session(Side::client);
  std::string got;
  bool ended = false;
  int partial = 0;  // reads that found nothing while the records were incomplete
  char buffer[4096];
  for (std::size_t sent = 0; sent < wire.size() && !ended;) {
    const std::size_t piece = std::min<std::size_t>(97, wire.size() - sent);
    ASSERT_EQ(::send(pair->fd(Side::server), wire.data() + sent, piece, MSG_NOSIGNAL),
              static_cast<ssize_t>(piece));
    sent += piece;
    for (int i = 0; i < 1000; ++i) {
      auto r = client.read(buffer, sizeof buffer, false);
      ASSERT_TRUE(r.has_value()) << r.error().message;
      if (r->end_of_stream) {
        ended = true;
        break;
      }
      if (r->bytes == 0) {
        ASSERT_EQ(r->want, Want::read);
        client.release_idle_buffers();
        ++partial;
        break;
      }
      got.append(buffer, r->bytes);
    }
  }
  EXPECT_TRUE(ended);
  EXPECT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload) << "the received bytes differ from those sent";
  EXPECT_GT(partial, 300) << "the test means something only if reads found partial records";
}

// The handshake's own steps: the client's first step sends its ClientHello and waits to read;
// the server has a whole ClientHello only once it has read it.
TEST_F(SessionStreamTest, HandshakeStepsWaitToRead) {
  options_.transport = Transport::unix_stream;
  SessionPair pair(options_);
  EXPECT_FALSE(pair.session(Side::server).hello_received());
  auto server_first = pair.session(Side::server).handshake();
  ASSERT_TRUE(server_first.has_value());
  EXPECT_EQ(*server_first, Want::read) << "nothing sent yet";
  EXPECT_FALSE(pair.session(Side::server).hello_received());
  auto client_first = pair.session(Side::client).handshake();
  ASSERT_TRUE(client_first.has_value());
  EXPECT_EQ(*client_first, Want::read);
  auto server_second = pair.session(Side::server).handshake();
  ASSERT_TRUE(server_second.has_value());
  EXPECT_TRUE(pair.session(Side::server).hello_received());
  EXPECT_FALSE(pair.session(Side::server).peer_spoke_cleartext());
  const HandshakeOutcome h = pair.handshake();
  EXPECT_TRUE(h.ok()) << h.describe();
}

}  // namespace
}  // namespace ssx::test
