// SPDX-License-Identifier: Apache-2.0
// UDP sockets secured with DTLS, against peers that are not DTLS servers: what ssx accepts, a
// silent peer (retransmissions, then ETIMEDOUT within handshake_timeout_ms), a peer that answers
// in cleartext (never receives an application byte), and ssx_timeout_ms. The interop suite
// (tests/interop/dtls_interop_test.cpp) has the handshakes with real DTLS servers.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "integration/cli_support.hpp"
#include "integration/tls_fixture.hpp"
#include "ssx/ssx.hpp"
#include "testlib/run_command.hpp"

namespace ssx::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// plain_udp returns a plain UDP socket bound to 127.0.0.1 on a port the kernel picks.
Fd plain_udp() {
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback_address(0);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  return fd;
}

// drain returns every datagram waiting on the plain socket |fd|, replying |reply| to each sender
// when it is not empty.
std::vector<std::string> drain(int fd, const std::string &reply = "") {
  std::vector<std::string> got;
  for (int i = 0; i < 1000; ++i) {  // bounded
    char buf[4096];
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr *>(&from),
                           &from_len);
    if (n < 0) break;
    got.emplace_back(buf, static_cast<size_t>(n));
    if (!reply.empty()) {
      (void)::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr *>(&from),
                     from_len);
    }
  }
  return got;
}

// is_dtls12_handshake says whether |datagram| begins with a DTLS handshake record header
// (content type 22, version 0xfeff or 0xfefd).
bool is_dtls_handshake(const std::string &datagram) {
  return datagram.size() >= 13 && static_cast<unsigned char>(datagram[0]) == 22 &&
         static_cast<unsigned char>(datagram[1]) == 0xfe;
}

class DatagramTest : public TlsTest {};

TEST_F(DatagramTest, UdpSocketsAreSecuredWithDtlsOnly) {
  Fd udp(::socket(AF_INET, SOCK_DGRAM, 0));
  EXPECT_EQ(ssx_set_socket_security(udp.get(), nullptr, 0), 0) << last_error_text();
  Fd udp6(::socket(AF_INET6, SOCK_DGRAM, 0));
  ssx_security_settings dtls{SSX_PROTOCOL_DTLS, SSX_GUARANTEE_ENCRYPTION};
  EXPECT_EQ(ssx_set_socket_security(udp6.get(), &dtls, sizeof dtls), 0) << last_error_text();
  Fd tls_on_udp(::socket(AF_INET, SOCK_DGRAM, 0));
  ssx_security_settings tls{SSX_PROTOCOL_TLS, 0};
  EXPECT_EQ(ssx_set_socket_security(tls_on_udp.get(), &tls, sizeof tls), -1);
  EXPECT_EQ(errno, EPROTONOSUPPORT);
  EXPECT_NE(std::string(ssx_last_error()).find("SSX_PROTOCOL_DTLS"), std::string::npos);

  // Before ssx_connect there is no association: data and queries are ENOTCONN, and nothing
  // changes (a connect still works afterwards).
  EXPECT_EQ(ssx_send(udp.get(), "x", 1, 0), -1);
  EXPECT_EQ(errno, ENOTCONN);
  char buf[8];
  EXPECT_EQ(ssx_recv(udp.get(), buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, ENOTCONN);
  ssx_security_info *info = nullptr;
  EXPECT_EQ(ssx_query_socket_security(udp.get(), nullptr, 0, &info), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(ssx_timeout_ms(udp.get()), -1);
  EXPECT_EQ(ssx_timeout_ms(-1), -1);
}

// A peer that never answers: the ClientHello is sent again when DTLS's timer expires (1 s, then
// doubling), and the handshake fails with ETIMEDOUT once handshake_timeout_ms has passed, not
// before and not much after.
TEST_F(DatagramTest, SilentPeerGetsRetransmissionsThenEtimedout) {
  use_policy("handshake_timeout_ms = 2500");
  Fd silent = plain_udp();
  Fd client;
  const auto start = Clock::now();
  EXPECT_EQ(ssx_client_connect(local_port(silent.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client, SOCK_DGRAM),
            -1);
  const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  EXPECT_EQ(errno, ETIMEDOUT) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_HANDSHAKE_TIMEOUT) << ssx_last_error();
  EXPECT_GE(elapsed.count(), 2500);
  EXPECT_LT(elapsed.count(), 3500);
  const std::vector<std::string> got = drain(silent.get());
  // The first flight at 0, again at 1 s and at 3 s (timer doubling): two before the deadline.
  EXPECT_GE(got.size(), 2u);
  for (const auto &d : got) {
    EXPECT_TRUE(is_dtls_handshake(d));
    EXPECT_LE(d.size(), 1200u) << "every datagram fits the default dtls_mtu";
  }
  EXPECT_EQ(ssx_send(client.get(), "x", 1, 0), -1) << "the failed socket sends nothing";
  EXPECT_TRUE(drain(silent.get()).empty());
}

// A peer that answers in cleartext. DTLS drops what is not a record of the association, so the
// handshake cannot complete and times out; the peer receives handshake records only, never an
// application byte, even though the application tries to send during the handshake. Both ends
// are driven from this thread (non-blocking client).
TEST_F(DatagramTest, CleartextPeerNeverReceivesAnApplicationByte) {
  use_policy("handshake_timeout_ms = 1500");
  Fd peer = plain_udp();
  Fd client(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(client.get(), nullptr, 0), 0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost", nullptr, 0), 0);
  sockaddr_in a = loopback_address(local_port(peer.get()));
  ASSERT_EQ(ssx_connect(client.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), -1);
  ASSERT_EQ(errno, EINPROGRESS);
  std::vector<std::string> received;
  int final_errno = 0;
  const std::string secret = "APPLICATION SECRET";
  for (int turn = 0; turn < 1000; ++turn) {  // bounded; ends at handshake_timeout_ms
    for (auto &d : drain(peer.get(), "HTTP/1.0 200 OK\r\n\r\ncleartext")) received.push_back(d);
    if (ssx_send(client.get(), secret.data(), secret.size(), 0) == -1 && errno != EAGAIN) {
      final_errno = errno;
      break;
    }
    const int timeout = ssx_timeout_ms(client.get());
    ASSERT_GE(timeout, 0);
    pollfd p[2] = {{client.get(), POLLIN, 0}, {peer.get(), POLLIN, 0}};
    ::poll(p, 2, std::min(timeout, 100));
  }
  EXPECT_EQ(final_errno, ETIMEDOUT) << ssx_last_error();
  for (auto &d : drain(peer.get())) received.push_back(d);
  ASSERT_FALSE(received.empty());
  for (const auto &d : received) {
    EXPECT_TRUE(is_dtls_handshake(d));
    EXPECT_EQ(d.find(secret), std::string::npos);
  }
}

// ssx_timeout_ms gives a TCP handshake's deadline too, so one event loop serves both.
TEST_F(DatagramTest, TimeoutMsGivesATcpHandshakeDeadline) {
  use_policy("handshake_timeout_ms = 4000");
  Fd listener = plain_listener();
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(client.get(), nullptr, 0), 0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost", nullptr, 0), 0);
  sockaddr_in a = loopback_address(local_port(listener.get()));
  ASSERT_EQ(ssx_connect(client.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), -1);
  ASSERT_EQ(errno, EINPROGRESS);
  for (int i = 0; i < 100 && ssx_handshake(client.get()) == -1 && errno == EAGAIN; ++i) {
    if (ssx_timeout_ms(client.get()) >= 0) break;  // the TCP connect is done: handshaking
    pollfd p{client.get(), ssx_wants(client.get()), 0};
    ::poll(&p, 1, 100);
  }
  const int left = ssx_timeout_ms(client.get());
  EXPECT_GT(left, 3000);
  EXPECT_LE(left, 4000);
}

// An ssx server (unconnected, bound) and an ssx client (unconnected, ssx_sendto), both
// non-blocking and driven from this thread.
class DatagramServerTest : public TlsTest {
 protected:
  void SetUp() override {
    use_policy("handshake_timeout_ms = 5000", "peer_authentication = \"optional\"");
  }

  static Fd bound_server() {
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    EXPECT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0) << last_error_text();
    sockaddr_in a = loopback_address(0);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    return fd;
  }

  static Fd unbound_client() {
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    EXPECT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0) << last_error_text();
    EXPECT_EQ(ssx_set_socket_peer_target_name(fd.get(), "localhost", nullptr, 0), 0);
    return fd;
  }

  // pump makes one round: the server and the client each take what arrived (ssx_recvfrom,
  // which drives handshakes). Returns what the server received, if anything.
  static std::optional<std::string> pump(int server, int client, sockaddr_storage *from = nullptr) {
    char buf[2048];
    sockaddr_storage ignored{};
    sockaddr_storage *where = from != nullptr ? from : &ignored;
    socklen_t len = sizeof *where;
    std::optional<std::string> got;
    ssize_t n = ssx_recvfrom(server, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(where), &len);
    if (n >= 0) got = std::string(buf, static_cast<size_t>(n));
    (void)ssx_recvfrom(client, buf, sizeof buf, 0, nullptr, nullptr);
    pollfd p[2] = {{server, POLLIN, 0}, {client, POLLIN, 0}};
    ::poll(p, 2, 20);
    return got;
  }

  // send_when_ready sends |data| from |client| to |to| once the handshake allows (bounded).
  static ssize_t send_when_ready(int server, int client, const sockaddr_in &to,
                                 const std::string &data) {
    for (int i = 0; i < 500; ++i) {
      ssize_t n = ssx_sendto(client, data.data(), data.size(), 0,
                             reinterpret_cast<const sockaddr *>(&to), sizeof to);
      if (n >= 0 || errno != EAGAIN) return n;
      pump(server, client);
    }
    errno = ETIMEDOUT;
    return -1;
  }
};

TEST_F(DatagramServerTest, ClientAndServerOnUnconnectedSocketsExchangeAndQueryPerPeer) {
  Fd server = bound_server();
  Fd client = unbound_client();
  ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost", nullptr, 0), 0);
  const sockaddr_in to = loopback_address(local_port(server.get()));
  ASSERT_EQ(send_when_ready(server.get(), client.get(), to, "first"), 5) << last_error_text();
  sockaddr_storage from{};
  std::optional<std::string> got;
  for (int i = 0; i < 100 && !got; ++i) got = pump(server.get(), client.get(), &from);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "first");
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in &>(from).sin_port), local_port(client.get()));

  // The server's query names the client by its address; the client's, the server.
  ssx_security_info *info = nullptr;
  ASSERT_EQ(ssx_query_socket_security(server.get(), reinterpret_cast<sockaddr *>(&from),
                                      sizeof(sockaddr_in), &info),
            0)
      << last_error_text();
  Info server_view(info);
  EXPECT_EQ(server_view->protocol, SSX_PROTOCOL_DTLS);
  EXPECT_STREQ(server_view->peer_principal, "spiffe://ssx.test/client");
  EXPECT_STREQ(server_view->policy_rule, "server");
  ASSERT_EQ(ssx_query_socket_security(client.get(), reinterpret_cast<const sockaddr *>(&to),
                                      sizeof to, &info),
            0)
      << last_error_text();
  Info client_view(info);
  EXPECT_STREQ(client_view->peer_principal, "localhost");
  EXPECT_NE(client_view->flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);

  // The server answers; the client's ssx_recvfrom returns it with the server's address.
  ASSERT_EQ(ssx_sendto(server.get(), "reply", 5, 0, reinterpret_cast<sockaddr *>(&from),
                       sizeof(sockaddr_in)),
            5)
      << last_error_text();
  char buf[64];
  sockaddr_in reply_from{};
  socklen_t reply_len = sizeof reply_from;
  ssize_t n = -1;
  for (int i = 0; i < 100 && n < 0; ++i) {
    n = ssx_recvfrom(client.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&reply_from),
                     &reply_len);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      pollfd p{client.get(), POLLIN, 0};
      ::poll(&p, 1, 20);
    }
  }
  ASSERT_EQ(n, 5);
  EXPECT_EQ(std::string(buf, 5), "reply");
  EXPECT_EQ(ntohs(reply_from.sin_port), local_port(server.get()));

  // Target names of a peer with an association can no longer change.
  EXPECT_EQ(ssx_set_socket_peer_target_name(client.get(), "other.example",
                                            reinterpret_cast<const sockaddr *>(&to), sizeof to),
            -1);
  EXPECT_EQ(errno, EISCONN);
  // A connected-socket call on an unconnected one.
  EXPECT_EQ(ssx_connect(client.get(), reinterpret_cast<const sockaddr *>(&to), sizeof to), -1);
  EXPECT_EQ(errno, EISCONN);

  // ssx_close sends close_notify to every peer: the server forgets the client.
  ASSERT_EQ(ssx_close(client.release()), 0);
  bool forgotten = false;
  for (int i = 0; i < 100 && !forgotten; ++i) {
    char b[16];
    (void)ssx_recvfrom(server.get(), b, sizeof b, 0, nullptr, nullptr);
    forgotten = ssx_query_socket_security(server.get(), reinterpret_cast<sockaddr *>(&from),
                                          sizeof(sockaddr_in), &info) == -1 &&
                errno == ENOTCONN;
    if (!forgotten) {
      pollfd p{server.get(), POLLIN, 0};
      ::poll(&p, 1, 20);
    }
  }
  EXPECT_TRUE(forgotten);
}

// A client that restarts on the same address and port (its old association lost without a
// close_notify) is served again: its new ClientHello replaces the old association once it has
// returned the cookie.
TEST_F(DatagramServerTest, AClientRestartedOnTheSamePortIsServedAgain) {
  Fd server = bound_server();
  const sockaddr_in to = loopback_address(local_port(server.get()));
  std::uint16_t port = 0;
  for (const char *message : {"before", "after"}) {
    Fd client = unbound_client();
    sockaddr_in local = loopback_address(port);
    ASSERT_EQ(::bind(client.get(), reinterpret_cast<sockaddr *>(&local), sizeof local), 0)
        << std::strerror(errno);
    port = local_port(client.get());
    const std::string m(message);
    ASSERT_EQ(send_when_ready(server.get(), client.get(), to, m), static_cast<ssize_t>(m.size()))
        << message << ": " << last_error_text();
    std::optional<std::string> got;
    for (int i = 0; i < 100 && !got; ++i) got = pump(server.get(), client.get());
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, m);
    // A crash: the state goes without a close_notify.
    ASSERT_EQ(ssx_release(client.get()), 0);
  }
}

// A stranger's datagrams never reach the application: cleartext, and a ClientHello without the
// cookie (answered with a HelloVerifyRequest, no association kept).
TEST_F(DatagramServerTest, StrangersGetACookieAndNothingElse) {
  Fd server = bound_server();
  Fd stranger = plain_udp();
  const sockaddr_in to = loopback_address(local_port(server.get()));
  // A DTLS 1.2 ClientHello record header followed by junk, and cleartext.
  std::string hello("\x16\xfe\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x30", 13);
  hello += std::string(48, '\x01');
  for (const std::string &d : {std::string("GET / HTTP/1.0\r\n\r\n"), hello}) {
    ASSERT_EQ(::sendto(stranger.get(), d.data(), d.size(), 0,
                       reinterpret_cast<const sockaddr *>(&to), sizeof to),
              static_cast<ssize_t>(d.size()));
  }
  char buf[64];
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ssx_recvfrom(server.get(), buf, sizeof buf, 0, nullptr, nullptr), -1);
    EXPECT_EQ(errno, EAGAIN);
  }
  const sockaddr_in stranger_address = loopback_address(local_port(stranger.get()));
  ssx_security_info *info = nullptr;
  EXPECT_EQ(
      ssx_query_socket_security(server.get(), reinterpret_cast<const sockaddr *>(&stranger_address),
                                sizeof stranger_address, &info),
      -1);
  EXPECT_EQ(errno, ENOTCONN);
}

TEST_F(DatagramServerTest, PeerAddressesAreChecked) {
  Fd client = unbound_client();
  sockaddr_in zero_port = loopback_address(0);
  EXPECT_EQ(ssx_sendto(client.get(), "x", 1, 0, reinterpret_cast<sockaddr *>(&zero_port),
                       sizeof zero_port),
            -1);
  EXPECT_EQ(errno, EINVAL);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_port = htons(4433);
  EXPECT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost",
                                            reinterpret_cast<sockaddr *>(&any), sizeof any),
            -1);
  EXPECT_EQ(errno, EINVAL);
  sockaddr_in6 six{};
  six.sin6_family = AF_INET6;
  six.sin6_port = htons(4433);
  six.sin6_addr = in6addr_loopback;
  EXPECT_EQ(ssx_sendto(client.get(), "x", 1, 0, reinterpret_cast<sockaddr *>(&six), sizeof six),
            -1);
  EXPECT_EQ(errno, EINVAL) << "an IPv6 peer on an IPv4 socket";
  // A stream socket takes no peer address.
  Fd tcp(::socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_EQ(ssx_set_socket_security(tcp.get(), nullptr, 0), 0);
  sockaddr_in peer = loopback_address(4433);
  EXPECT_EQ(ssx_set_socket_peer_target_name(tcp.get(), "localhost",
                                            reinterpret_cast<sockaddr *>(&peer), sizeof peer),
            -1);
  EXPECT_EQ(errno, EINVAL);
}

// Policy keys for datagrams: transport matches, protocol "dtls" refuses TCP sockets.
TEST_F(DatagramTest, PolicyTransportAndProtocolRules) {
  install_policy(dir_, "[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) +
                           "\n[[rule]]\nname = \"no-udp\"\ntransport = \"udp\"\n"
                           "port = 9\ndeny = true\n"
                           "[[rule]]\nname = \"dtls-only\"\nport = 7\nprotocol = \"dtls\"\n");
  Fd udp;
  EXPECT_EQ(ssx_client_connect(9, {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &udp, SOCK_DGRAM), -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_NE(std::string(ssx_last_error()).find("\"no-udp\""), std::string::npos)
      << ssx_last_error();
  Fd tcp;
  EXPECT_EQ(ssx_client_connect(7, {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &tcp), -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_NE(std::string(ssx_last_error()).find("cannot provide for TCP sockets"), std::string::npos)
      << ssx_last_error();
}

// max_peers and peer_idle_timeout_ms, with values small enough to see them act.
TEST_F(DatagramServerTest, MaxPeersRefusesANewPeerAndIdlePeersAreDropped) {
  use_policy("handshake_timeout_ms = 1000\nmax_peers = 1\npeer_idle_timeout_ms = 2500",
             "peer_authentication = \"optional\"");
  Fd server = bound_server();
  Fd first = unbound_client();
  Fd second = unbound_client();
  const sockaddr_in to = loopback_address(local_port(server.get()));
  ASSERT_EQ(send_when_ready(server.get(), first.get(), to, "one"), 3) << last_error_text();
  std::optional<std::string> got;
  for (int i = 0; i < 100 && !got; ++i) got = pump(server.get(), first.get());
  ASSERT_TRUE(got);
  // The second peer's handshake gets no association: the server is full.
  EXPECT_EQ(send_when_ready(server.get(), second.get(), to, "two"), -1);
  EXPECT_EQ(errno, ETIMEDOUT) << last_error_text();
  // Left idle, the first peer's association is dropped after peer_idle_timeout_ms.
  const sockaddr_in first_address = loopback_address(local_port(first.get()));
  ssx_security_info *still = nullptr;
  ASSERT_EQ(
      ssx_query_socket_security(server.get(), reinterpret_cast<const sockaddr *>(&first_address),
                                sizeof first_address, &still),
      0)
      << "the first peer is still there: " << last_error_text();
  ssx_free_security_info(still);
  bool dropped = false;
  const auto start = Clock::now();
  while (!dropped && Clock::now() - start < milliseconds(5000)) {
    char b[16];
    (void)ssx_recvfrom(server.get(), b, sizeof b, 0, nullptr, nullptr);
    ssx_security_info *info = nullptr;
    dropped =
        ssx_query_socket_security(server.get(), reinterpret_cast<const sockaddr *>(&first_address),
                                  sizeof first_address, &info) == -1 &&
        errno == ENOTCONN;
    ssx_free_security_info(info);  // NULL when the query failed
    if (!dropped) {
      pollfd p{server.get(), POLLIN, 0};
      ::poll(&p, 1, 50);
    }
  }
  EXPECT_TRUE(dropped);
}

// The C++ API: ssx::DatagramSocket, a blocking client and a server thread.
TEST_F(DatagramServerTest, CxxDatagramSocketSendsReceivesAndQueriesPerPeer) {
  sockaddr_in local = loopback_address(0);
  auto server =
      ssx::DatagramSocket::open(AF_INET, {}, reinterpret_cast<sockaddr *>(&local), sizeof local);
  ASSERT_TRUE(server) << server.error().message;
  const timeval five{5, 0};
  ASSERT_EQ(::setsockopt(server->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five), 0);
  const sockaddr_in to = loopback_address(local_port(server->native_handle()));
  std::string principal;
  BackgroundThread serving([&] {
    std::array<std::byte, 256> buf{};
    auto got = server->receive_from(buf);
    if (!got) {
      ADD_FAILURE() << got.error().message;
      return;
    }
    auto info = server->query_security(got->peer_address(), got->peer_length);
    if (info) principal = info->peer_principal;
    const std::string reply =
        "re: " + std::string(reinterpret_cast<char *>(buf.data()), got->length);
    (void)server->send_to(std::as_bytes(std::span(reply)), got->peer_address(), got->peer_length);
  });
  ssx::SecuritySettings settings;
  settings.target_names = {"localhost"};
  auto client = ssx::DatagramSocket::open(AF_INET, settings);
  ASSERT_TRUE(client) << client.error().message;
  ASSERT_EQ(::setsockopt(client->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five), 0);
  const std::string hello = "hi";
  auto sent = client->send_to(std::as_bytes(std::span(hello)),
                              reinterpret_cast<const sockaddr *>(&to), sizeof to);
  ASSERT_TRUE(sent) << sent.error().message;
  EXPECT_EQ(*sent, 2u);
  std::array<std::byte, 256> buf{};
  auto reply = client->receive_from(buf);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(std::string(reinterpret_cast<char *>(buf.data()), reply->length), "re: hi");
  auto info = client->query_security(reinterpret_cast<const sockaddr *>(&to), sizeof to);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->protocol, SSX_PROTOCOL_DTLS);
  EXPECT_EQ(info->peer_principal, "localhost");
  serving.join();
  EXPECT_EQ(principal, "spiffe://ssx.test/client");
}

// `ssx connect --udp`: each line of standard input is one datagram; what the server sends back
// is printed.
TEST_F(DatagramServerTest, CliConnectUdpSendsEachLineAsADatagram) {
  const std::string policy = install_policy(
      dir_, "[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) +
                "\n[[rule]]\nname = \"server\"\ndirection = \"inbound\"\ncertificate = " +
                toml_quote(server_creds_.cert) +
                "\nprivate_key = " + toml_quote(server_creds_.key) +
                "\n[[rule]]\nname = \"client\"\ndirection = \"outbound\"\ncertificate = " +
                toml_quote(client_creds_.cert) +
                "\nprivate_key = " + toml_quote(client_creds_.key) + "\n");
  Fd server(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(server.get(), nullptr, 0), 0);
  sockaddr_in local = loopback_address(0);
  ASSERT_EQ(::bind(server.get(), reinterpret_cast<sockaddr *>(&local), sizeof local), 0);
  const timeval ten{10, 0};
  ASSERT_EQ(::setsockopt(server.get(), SOL_SOCKET, SO_RCVTIMEO, &ten, sizeof ten), 0);
  std::vector<std::string> got;
  BackgroundThread serving([&] {
    for (int i = 0; i < 2; ++i) {
      char buf[256];
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      ssize_t n = ssx_recvfrom(server.get(), buf, sizeof buf, 0,
                               reinterpret_cast<sockaddr *>(&from), &from_len);
      if (n < 0) return;
      got.emplace_back(buf, static_cast<size_t>(n));
      const std::string reply = "echo: " + got.back();
      (void)ssx_sendto(server.get(), reply.data(), reply.size(), 0,
                       reinterpret_cast<sockaddr *>(&from), from_len);
    }
  });
  const std::string bin = ssx_binary();
  CommandResult r = run_command({bin, "connect", "--udp", "--policy", policy,
                                 "127.0.0.1:" + std::to_string(local_port(server.get()))},
                                std::chrono::seconds(20), "one\ntwo\n");
  serving.join();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(got, (std::vector<std::string>{"one\n", "two\n"}));
  EXPECT_NE(r.output.find("echo: one\necho: two\n"), std::string::npos) << r.output;
}

// `ssx listen --udp --json`: one object per datagram with the peer and its verified principal;
// a line of standard input goes back to that peer.
TEST_F(DatagramServerTest, CliListenUdpPrintsEachDatagramWithItsPeer) {
  const std::string policy = install_policy(
      dir_, "[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) +
                "\n[[rule]]\nname = \"server\"\ndirection = \"inbound\"\ncertificate = " +
                toml_quote(server_creds_.cert) +
                "\nprivate_key = " + toml_quote(server_creds_.key) +
                "\n[[rule]]\nname = \"client\"\ndirection = \"outbound\"\ncertificate = " +
                toml_quote(client_creds_.cert) +
                "\nprivate_key = " + toml_quote(client_creds_.key) + "\n");
  ChildProcess listener(
      {ssx_binary(), "listen", "--udp", "--json", "--policy", policy, "127.0.0.1:0"},
      ChildProcess::Stdin::pipe);
  const std::string line = listener.wait_for_line("listening on UDP 127.0.0.1:", seconds(10));
  ASSERT_FALSE(line.empty()) << listener.output();
  const auto port = static_cast<std::uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  Fd client(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(client.get(), nullptr, 0), 0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost", nullptr, 0), 0);
  const timeval ten{10, 0};
  ASSERT_EQ(::setsockopt(client.get(), SOL_SOCKET, SO_RCVTIMEO, &ten, sizeof ten), 0);
  const sockaddr_in to = loopback_address(port);
  ASSERT_EQ(
      ssx_sendto(client.get(), "hello\n", 6, 0, reinterpret_cast<const sockaddr *>(&to), sizeof to),
      6)
      << last_error_text();
  ASSERT_TRUE(listener.wait_for_output("\"data\":\"hello\\n\"", seconds(10))) << listener.output();
  const std::string &out = listener.output();
  EXPECT_NE(out.find("\"peer\":\"127.0.0.1:" + std::to_string(local_port(client.get())) + "\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("spiffe://ssx.test/client"), std::string::npos) << out;
  ASSERT_TRUE(listener.write_input("back to you\n"));
  char buf[64];
  ssize_t n = ssx_recvfrom(client.get(), buf, sizeof buf, 0, nullptr, nullptr);
  ASSERT_EQ(n, 12) << last_error_text();
  EXPECT_EQ(std::string(buf, 12), "back to you\n");
}

}  // namespace
}  // namespace ssx::test
