// SPDX-License-Identifier: Apache-2.0
// Scenario tests for TCP sockets secured with TLS: a real ssx client against a real ssx server on
// loopback, with credentials from a test PKI made at run time.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

constexpr const char *kRequest = "ping from the client";
constexpr const char *kReply = "pong from the server";

std::vector<std::string> names_of(const ssx_security_info &info) {
  std::vector<std::string> out;
  for (const char *const *n = info.peer_names; *n != nullptr; ++n) out.emplace_back(*n);
  return out;
}

// An echo-ish server: reads the request until close_notify, answers, shuts down cleanly.
void answer(int fd, int error) {
  ASSERT_GE(fd, 0) << "accept failed: " << std::strerror(error) << " — " << ssx_last_error();
  int recv_error = -1;
  std::string request = ssx_recv_until_eof(fd, &recv_error);
  EXPECT_EQ(recv_error, 0) << ssx_last_error();
  EXPECT_EQ(request, kRequest);
  EXPECT_TRUE(ssx_send_all(fd, kReply)) << last_error_text();
  EXPECT_EQ(ssx_shutdown(fd, SHUT_WR), 0) << last_error_text();
}

TEST_F(TlsTest, ConnectReportsTls13DetailsOnBothSides) {
  use_policy();
  Fd listener = ssx_listener();
  Info server_info;
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error) << " — " << ssx_last_error();
    server_info = query(fd);
    answer(fd, error);
  });

  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  ASSERT_TRUE(ssx_send_all(client.get(), kRequest));
  ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0) << last_error_text();
  int error = -1;
  EXPECT_EQ(ssx_recv_until_eof(client.get(), &error), kReply);
  EXPECT_EQ(error, 0) << "a clean close_notify must end the stream with 0";

  Info info = query(client.get());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->protocol, SSX_PROTOCOL_TLS);
  EXPECT_EQ(info->flags & (SSX_INFO_SECURED | SSX_INFO_ENCRYPTED | SSX_INFO_PEER_AUTHENTICATED |
                           SSX_INFO_PEER_NAME_VERIFIED),
            SSX_INFO_SECURED | SSX_INFO_ENCRYPTED | SSX_INFO_PEER_AUTHENTICATED |
                SSX_INFO_PEER_NAME_VERIFIED);
  EXPECT_EQ(info->flags & SSX_INFO_KERNEL_OFFLOAD, 0u) << "this kernel has no kTLS";
  EXPECT_STREQ(info->version, "TLSv1.3");
  EXPECT_EQ(std::string(info->cipher).rfind("TLS_", 0), 0u) << info->cipher;
  ASSERT_NE(info->group, nullptr);
  EXPECT_STREQ(info->peer_principal, "localhost");
  EXPECT_EQ(names_of(*info), (std::vector<std::string>{"localhost", "127.0.0.1", "::1"}));
  EXPECT_EQ(std::strlen(info->peer_spki_sha256), 64u);
  std::string chain = info->peer_chain_pem;
  EXPECT_EQ(std::count(chain.begin(), chain.end(), '\n') > 10, true);
  EXPECT_EQ(chain.rfind("-----BEGIN CERTIFICATE-----"), 0u)
      << "the leaf alone: the server's file is leaf + CA, and a self-signed CA is not sent";
  EXPECT_STREQ(info->local_principal, "spiffe://ssx.test/client");
  EXPECT_STREQ(info->policy_rule, "client");
  EXPECT_GT(info->handshake_ns, 0u);

  server.reset();
  ASSERT_TRUE(server_info);
  EXPECT_STREQ(server_info->policy_rule, "server");
  EXPECT_STREQ(server_info->local_principal, "localhost");
  EXPECT_EQ(server_info->flags & SSX_INFO_ENCRYPTED, SSX_INFO_ENCRYPTED);
  // peer_authentication defaults to "none": the server did not ask for a client certificate.
  EXPECT_EQ(server_info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
  EXPECT_EQ(server_info->peer_principal, nullptr);
  ASSERT_NE(server_info->peer_names, nullptr);
  EXPECT_EQ(server_info->peer_names[0], nullptr);
}

TEST_F(TlsTest, MutualAuthenticationReportsTheClientIdentity) {
  use_policy("", "peer_authentication = \"required\"");
  Fd listener = ssx_listener();
  Info server_info;
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error) << " — " << ssx_last_error();
    server_info = query(fd);
    answer(fd, error);
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  ASSERT_TRUE(ssx_send_all(client.get(), kRequest));
  ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0);
  int error = -1;
  EXPECT_EQ(ssx_recv_until_eof(client.get(), &error), kReply);
  server.reset();
  ASSERT_TRUE(server_info);
  EXPECT_NE(server_info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
  EXPECT_STREQ(server_info->peer_principal, "spiffe://ssx.test/client");
  EXPECT_EQ(names_of(*server_info),
            (std::vector<std::string>{"spiffe://ssx.test/client", "client"}));
}

TEST_F(TlsTest, ServerRefusesClientWithoutCertificateWhenRequired) {
  use_policy("", "peer_authentication = \"required\"", "", /*client_certificate=*/false);
  Fd listener = ssx_listener();
  int server_errno = 0;
  int server_reason_code = 0;
  std::string server_reason;
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    EXPECT_LT(fd, 0);
    server_errno = error;
    server_reason_code = ssx_last_error_reason();
    server_reason = ssx_last_error();
  });
  Fd client;
  int rc = ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                              &client);
  // In TLS 1.3 the client may finish its handshake before the server's verdict arrives; the
  // refusal then surfaces on the first receive.
  if (rc >= 0) {
    char buf[16];
    EXPECT_EQ(ssx_recv(client.get(), buf, sizeof buf, 0), -1);
    EXPECT_EQ(errno, EKEYREJECTED) << last_error_text();
  } else {
    EXPECT_EQ(errno, EKEYREJECTED) << last_error_text();
  }
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_PEER_REQUIRES_CERTIFICATE) << last_error_text();
  server.reset();
  EXPECT_EQ(server_errno, EKEYREJECTED) << server_reason;
  EXPECT_EQ(server_reason_code, SSX_REASON_NO_PEER_CERTIFICATE) << server_reason;
  EXPECT_NE(server_reason.find("no certificate"), std::string::npos) << server_reason;
}

struct RejectCase {
  const char *label;
  std::vector<std::string> names;
  int expected_errno;
  const char *reason_fragment;
  int expected_reason = SSX_REASON_NAME_MISMATCH;
};

class TargetNameTest : public TlsTest {};

TEST_F(TargetNameTest, WrongDnsNameIsRejectedWithTheCertificatesNames) {
  use_policy();
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int) { EXPECT_LT(fd, 0); });
  Fd client;
  EXPECT_EQ(ssx_client_connect(local_port(listener.get()), {"db.example"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            -1);
  EXPECT_EQ(errno, EKEYREJECTED);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_NAME_MISMATCH);
  std::string reason = ssx_last_error();
  EXPECT_NE(reason.find("peer certificate does not match target name \"db.example\": DNS SANs "
                        "are localhost"),
            std::string::npos)
      << reason;
  // After the failure the socket is unusable and never sends application data.
  EXPECT_EQ(ssx_send(client.get(), "x", 1, 0), -1);
}

TEST_F(TargetNameTest, IpUriAndPinNamesMatchTheirKindOfIdentity) {
  use_policy();
  const std::string spki = [&] {
    // Learn the server's SPKI hash from a first connection's query.
    Fd listener = ssx_listener();
    auto server = serve_one(listener.get(), [](int, int) {});
    Fd client(ssx_client_connect(local_port(listener.get()), {"127.0.0.1"}));
    EXPECT_GE(client.get(), 0) << last_error_text();
    if (client.get() < 0) return std::string();
    Info info = query(client.get());
    EXPECT_NE(info->flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);
    return std::string(info->peer_spki_sha256);
  }();
  ASSERT_EQ(spki.size(), 64u);

  const std::vector<RejectCase> cases = {
      {"right pin", {"sha256:" + spki}, 0, ""},
      {"IPv6 literal not in SANs", {"::2"}, EKEYREJECTED, "IP SANs are 127.0.0.1, ::1"},
      {"wrong pin",
       {"sha256:" + std::string(64, '0')},
       EKEYREJECTED,
       "key sha256:",
       SSX_REASON_PIN_MISMATCH},
      {"URI and DNS name the server lacks",
       {"spiffe://ssx.test/server", "other.example"},
       EKEYREJECTED,
       "matches none of the target names"},
      {"one of several matches", {"db.example", "localhost"}, 0, ""},
  };
  for (const auto &c : cases) {
    Fd listener = ssx_listener();
    auto server = serve_one(listener.get(), [](int, int) {});
    Fd client;
    int rc =
        ssx_client_connect(local_port(listener.get()), c.names, SSX_GUARANTEE_ENCRYPTION, &client);
    if (c.expected_errno == 0) {
      EXPECT_GE(rc, 0) << c.label << ": " << last_error_text();
    } else {
      EXPECT_EQ(rc, -1) << c.label;
      EXPECT_EQ(errno, c.expected_errno) << c.label << ": " << last_error_text();
      EXPECT_STREQ(ssx_reason_name(ssx_last_error_reason()), ssx_reason_name(c.expected_reason))
          << c.label;
      EXPECT_NE(std::string(ssx_last_error()).find(c.reason_fragment), std::string::npos)
          << c.label << ": " << ssx_last_error();
    }
  }
}

TEST_F(TlsTest, UntrustedExpiredAndNotYetValidServersAreRejected) {
  struct Case {
    const char *label;
    bool rogue;
    pki::Validity validity;
    int expected;
    int reason;
  };
  const Case cases[] = {
      {"untrusted CA", true, {}, EKEYREJECTED, SSX_REASON_UNTRUSTED_ISSUER},
      {"expired", false, {-2 * 86400, -86400}, EKEYEXPIRED, SSX_REASON_EXPIRED},
      {"not yet valid", false, {86400, 2 * 86400}, EKEYEXPIRED, SSX_REASON_NOT_YET_VALID},
  };
  for (const auto &c : cases) {
    pki::LeafRequest req = TestPki::server_request();
    req.validity = c.validity;
    server_creds_ = pki_.issue(std::string("bad-") + std::to_string(&c - cases), req, c.rogue);
    use_policy();
    Fd listener = ssx_listener();
    auto server = serve_one(listener.get(), [](int fd, int) { EXPECT_LT(fd, 0); });
    EXPECT_EQ(ssx_client_connect(local_port(listener.get()), {"localhost"}), -1) << c.label;
    EXPECT_EQ(errno, c.expected) << c.label << ": " << last_error_text();
    EXPECT_STREQ(ssx_reason_name(ssx_last_error_reason()), ssx_reason_name(c.reason)) << c.label;
    EXPECT_NE(std::string(ssx_last_error()).find("server certificate of \"localhost\" rejected"),
              std::string::npos)
        << ssx_last_error();
  }
}

TEST_F(TlsTest, ClientWithoutTargetNameIsRefusedUnlessPolicyWaivesIt) {
  use_policy();
  Fd listener = ssx_listener();
  EXPECT_EQ(ssx_client_connect(local_port(listener.get()), {}), -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_POLICY_DENIED);
  EXPECT_NE(std::string(ssx_last_error()).find("no peer target name"), std::string::npos);

  use_policy("", "", "require_peer_target_name = false");
  auto server = serve_one(listener.get(),
                          [](int fd, int error) { EXPECT_GE(fd, 0) << std::strerror(error); });
  Fd client(ssx_client_connect(local_port(listener.get()), {}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  Info info = query(client.get());
  EXPECT_NE(info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u) << "the chain is still verified";
  EXPECT_EQ(info->flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);
}

TEST_F(TlsTest, PolicyPeerNamesMustHoldAsWellAsTheApplicationsNames) {
  use_policy("", "", "peer_names = [\"db.example\"]");
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int) { EXPECT_LT(fd, 0); });
  EXPECT_EQ(ssx_client_connect(local_port(listener.get()), {"localhost"}), -1);
  EXPECT_EQ(errno, EKEYREJECTED);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_NAME_MISMATCH);
  EXPECT_NE(std::string(ssx_last_error()).find("peer_names of policy rule \"client\""),
            std::string::npos)
      << ssx_last_error();
}

TEST_F(TlsTest, ListenerTargetNamesAreRequiredOfClients) {
  use_policy();  // peer_authentication = "none": names on the listener still demand a certificate
  for (const char *name : {"spiffe://ssx.test/client", "spiffe://ssx.test/other"}) {
    const bool match = std::string(name) == "spiffe://ssx.test/client";
    Fd listener = ssx_listener();
    ASSERT_EQ(ssx_set_socket_peer_target_name(listener.get(), name, nullptr, 0), 0);
    int server_errno = -1;
    int server_reason = 0;
    std::uint32_t server_flags = 0;
    auto server = serve_one(listener.get(), [&](int fd, int error) {
      server_errno = error;
      if (fd < 0) server_reason = ssx_last_error_reason();
      if (fd >= 0) server_flags = query(fd)->flags;
    });
    Fd client;
    int rc = ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                                &client);
    if (rc >= 0 && !match) {
      char buf[4];
      EXPECT_EQ(ssx_recv(client.get(), buf, sizeof buf, 0), -1) << "the server refused us";
    }
    server.reset();
    if (match) {
      EXPECT_GE(rc, 0) << last_error_text();
      EXPECT_EQ(server_errno, 0);
      EXPECT_NE(server_flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);
      EXPECT_NE(server_flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
    } else {
      EXPECT_EQ(server_errno, EKEYREJECTED);
      EXPECT_EQ(server_reason, SSX_REASON_NAME_MISMATCH);
      EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_PEER_REFUSED_US);
    }
  }
}

TEST_F(TlsTest, DenyRuleRefusesWithEacces) {
  use_policy("", "", "deny = true");
  Fd listener = ssx_listener();
  EXPECT_EQ(ssx_client_connect(local_port(listener.get()), {"localhost"}), -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_POLICY_DENIED);
  EXPECT_NE(std::string(ssx_last_error()).find("refused by policy rule \"client\""),
            std::string::npos);
}

TEST_F(TlsTest, SilentPeerTimesOutWithinTheHandshakeTimeout) {
  use_policy("handshake_timeout_ms = 300");
  Fd silent = plain_listener();  // accepts in the kernel backlog, never says a word
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ssx_client_connect(local_port(silent.get()), {"localhost"}), -1);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(errno, ETIMEDOUT) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_HANDSHAKE_TIMEOUT);
  EXPECT_NE(std::string(ssx_last_error()).find("did not finish within 300 ms"), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(5));
}

// client_hello_timeout_ms: a blocking accept gives up on a client that sends nothing after that
// long, well before handshake_timeout_ms, and says which deadline it was.
TEST_F(TlsTest, SilentClientFailsAtTheClientHelloTimeout) {
  use_policy("client_hello_timeout_ms = 200\nhandshake_timeout_ms = 20000");
  Fd listener = ssx_listener();
  Fd silent(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address = loopback_address(local_port(listener.get()));
  ASSERT_EQ(::connect(silent.get(), reinterpret_cast<sockaddr *>(&address), sizeof address), 0);
  auto start = std::chrono::steady_clock::now();
  Fd accepted(ssx_accept(listener.get(), nullptr, nullptr));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(accepted.get(), -1);
  EXPECT_EQ(errno, ETIMEDOUT) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_HELLO_TIMEOUT);
  EXPECT_NE(std::string(ssx_last_error()).find("within 200 ms (client_hello_timeout_ms)"),
            std::string::npos)
      << last_error_text();
  EXPECT_GE(took, std::chrono::milliseconds(150));
  EXPECT_LT(took, std::chrono::seconds(5));
}

// Negative: a client that sent its ClientHello in time is not cut off by it, even when the rest
// of its handshake takes longer than client_hello_timeout_ms.
TEST_F(TlsTest, ClientHelloTimeoutDoesNotCutAHandshakeThatStarted) {
  use_policy("client_hello_timeout_ms = 200");
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error);
    EXPECT_TRUE(ssx_send_all(fd, "ok"));
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  char buf[2];
  EXPECT_EQ(ssx_recv(client.get(), buf, 2, MSG_WAITALL), 2) << last_error_text();
}

TEST_F(TlsTest, TruncationWithoutCloseNotifyIsAnErrorNotEndOfFile) {
  use_policy();
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error);
    EXPECT_TRUE(ssx_send_all(fd, "partial"));
    // Cut the TCP connection under TLS: no close_notify is sent.
    ::shutdown(fd, SHUT_RDWR);
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  server.reset();
  int error = 0;
  EXPECT_EQ(ssx_recv_until_eof(client.get(), &error), "partial");
  EXPECT_EQ(error, ECONNRESET);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_TRUNCATED);
  EXPECT_NE(std::string(ssx_last_error()).find("without a TLS close_notify"), std::string::npos)
      << ssx_last_error();
}

// ssx_abort: the peer sees a reset (ECONNRESET), never a clean end — unlike ssx_close, whose
// close_notify says "this is the complete stream". A reset may drop data the peer has not read
// yet, so what arrives is some prefix of what was sent.
TEST_F(TlsTest, AbortMakesThePeerSeeATruncationNotAnEndOfStream) {
  use_policy();
  Fd listener = ssx_listener();
  BackgroundThread server([&listener] {
    int fd = ssx_accept(listener.get(), nullptr, nullptr);
    ASSERT_GE(fd, 0) << last_error_text();
    EXPECT_TRUE(ssx_send_all(fd, "partial"));
    EXPECT_EQ(ssx_abort(fd), 0) << last_error_text();
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "ssx_abort must close the descriptor";
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  server.join();
  int error = 0;
  const std::string got = ssx_recv_until_eof(client.get(), &error);
  EXPECT_EQ(std::string("partial").substr(0, got.size()), got);
  EXPECT_EQ(error, ECONNRESET) << "an aborted stream must not end like a complete one";
  EXPECT_TRUE(ssx_last_error_reason() == SSX_REASON_TRUNCATED ||
              ssx_last_error_reason() == SSX_REASON_CONNECTION_RESET)
      << ssx_reason_name(ssx_last_error_reason());
}

TEST_F(TlsTest, AbortClosesADescriptorSsxNeverSaw) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  EXPECT_EQ(ssx_abort(fds[0]), 0) << last_error_text();
  EXPECT_EQ(::fcntl(fds[0], F_GETFD), -1);
  char byte = 0;
  EXPECT_EQ(::read(fds[1], &byte, 1), 0);  // the other end sees the close
  ::close(fds[1]);
  EXPECT_EQ(ssx_abort(-1), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(TlsTest, WritingToAVanishedPeerFailsWithoutSigpipe) {
  use_policy();
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int) { ASSERT_GE(fd, 0); });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  server.reset();  // the server has closed its end
  std::string chunk(64 * 1024, 'x');
  ssize_t rc = 0;
  for (int i = 0; i < 200 && rc >= 0; ++i)
    rc = ssx_send(client.get(), chunk.data(), chunk.size(), 0);
  // Reaching this line at all proves no SIGPIPE killed the process.
  EXPECT_EQ(rc, -1);
  EXPECT_TRUE(errno == EPIPE || errno == ECONNRESET) << last_error_text();
  EXPECT_TRUE(ssx_last_error_reason() == SSX_REASON_PEER_GONE ||
              ssx_last_error_reason() == SSX_REASON_CONNECTION_RESET)
      << ssx_reason_name(ssx_last_error_reason());
}

TEST_F(TlsTest, OneThreadSendsWhileAnotherReceivesOnTheSameSocket) {
  use_policy();
  Fd listener = ssx_listener();
  constexpr size_t kTotal = 8 << 20;
  auto server = serve_one(listener.get(), [](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error);
    // Echo until the client's close_notify, then close cleanly.
    char buf[32768];
    for (;;) {
      ssize_t n = ssx_recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (!ssx_send_all(fd, std::string(buf, static_cast<size_t>(n)))) break;
    }
    ssx_shutdown(fd, SHUT_WR);
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  std::atomic<size_t> received{0};
  BackgroundThread reader([&] {
    char buf[32768];
    for (;;) {
      ssize_t n = ssx_recv(client.get(), buf, sizeof buf, 0);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        ASSERT_EQ(static_cast<unsigned char>(buf[i]), (received + i) % 251);
      }
      received += static_cast<size_t>(n);
    }
  });
  std::string block(65536, '\0');
  for (size_t sent = 0; sent < kTotal; sent += block.size()) {
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>((sent + i) % 251);
    ASSERT_TRUE(ssx_send_all(client.get(), block)) << last_error_text();
  }
  ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0);
  reader.join();
  EXPECT_EQ(received.load(), kTotal);
}

TEST_F(TlsTest, NonBlockingSocketsAreDrivenWithHandshakeAndWants) {
  use_policy();
  Fd listener = ssx_listener();
  ASSERT_EQ(fcntl(listener.get(), F_SETFL, O_NONBLOCK), 0);
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(client.get(), nullptr, 0), 0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost", nullptr, 0), 0);
  sockaddr_in a = loopback_address(local_port(listener.get()));
  int rc = ssx_connect(client.get(), reinterpret_cast<sockaddr *>(&a), sizeof a);
  ASSERT_EQ(rc, -1);
  ASSERT_EQ(errno, EINPROGRESS) << last_error_text();

  char buf[64];
  Fd server;
  bool client_done = false;
  bool server_done = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(client_done && server_done) && std::chrono::steady_clock::now() < deadline) {
    if (server.get() < 0) {
      int fd = ssx_accept(listener.get(), nullptr, nullptr);
      if (fd >= 0)
        server.reset(fd);
      else
        ASSERT_EQ(errno, EAGAIN) << last_error_text();
    }
    if (!client_done) {
      if (ssx_handshake(client.get()) == 0)
        client_done = true;
      else
        ASSERT_EQ(errno, EAGAIN) << last_error_text();
    }
    if (server.get() >= 0 && !server_done) {
      if (ssx_handshake(server.get()) == 0)
        server_done = true;
      else
        ASSERT_EQ(errno, EAGAIN) << last_error_text();
    }
    std::vector<pollfd> fds;
    if (!client_done) fds.push_back({client.get(), ssx_wants(client.get()), 0});
    if (server.get() >= 0 && !server_done)
      fds.push_back({server.get(), ssx_wants(server.get()), 0});
    if (server.get() < 0) fds.push_back({listener.get(), POLLIN, 0});
    for (auto &p : fds) EXPECT_NE(p.events, 0) << "a pending socket must want something";
    ::poll(fds.data(), fds.size(), 100);
  }
  ASSERT_TRUE(client_done && server_done);
  EXPECT_EQ(ssx_recv(client.get(), buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(ssx_send(server.get(), "hi", 2, 0), 2);
  ssize_t n = -1;
  for (int i = 0; i < 100 && n < 0; ++i) {
    n = ssx_recv(client.get(), buf, sizeof buf, 0);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      pollfd p{client.get(), ssx_wants(client.get()), 0};
      ::poll(&p, 1, 50);
    }
  }
  EXPECT_EQ(n, 2);
}

// A TCP relay that forwards at most |chunk| bytes at a time with a pause after each, so records
// reach the other end in pieces. Runs until either side closes or |stop| is set.
void dribble_relay(int a, int b, std::size_t chunk, const std::atomic<bool> &stop) {
  std::vector<char> buf(chunk);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!stop && std::chrono::steady_clock::now() < deadline) {
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (::poll(fds, 2, 50) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = ::recv(fds[i].fd, buf.data(), buf.size(), 0);
      if (n <= 0) return;
      if (::send(fds[1 - i].fd, buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) return;
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  }
}

// A receive that finds nothing releases the connection's idle buffers (Session::
// release_idle_buffers). With read_ahead the read buffer can hold part of a record at that
// moment: releasing it then would lose bytes (CVE-2024-4741 was this with SSL_free_buffers).
// Records arrive here in 97-byte pieces and the client polls between non-blocking receives, so
// many receives find a partial record; every byte must still arrive intact.
TEST_F(TlsTest, RecordsArrivingInPiecesSurviveIdleBufferRelease) {
  use_policy();
  Fd listener = ssx_listener();
  std::string payload;
  for (int i = 0; payload.size() < 40000; ++i) payload += "record piece " + std::to_string(i) + ";";
  auto server = serve_one(listener.get(), [&payload](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error);
    // Several writes of different sizes: several records, some spanning many pieces.
    std::size_t at = 0;
    for (std::size_t size : {100u, 16384u, 7u, 9000u}) {
      ASSERT_TRUE(ssx_send_all(fd, payload.substr(at, size))) << last_error_text();
      at += size;
    }
    ASSERT_TRUE(ssx_send_all(fd, payload.substr(at))) << last_error_text();
    EXPECT_EQ(ssx_shutdown(fd, SHUT_WR), 0) << last_error_text();
  });
  Fd relay_listener = plain_listener();
  std::atomic<bool> stop{false};
  BackgroundThread relay([&] {
    Fd inbound(::accept4(relay_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    Fd outbound(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback_address(local_port(listener.get()));
    if (inbound.get() < 0 ||
        ::connect(outbound.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
      ADD_FAILURE() << "relay: " << std::strerror(errno);
      return;
    }
    dribble_relay(inbound.get(), outbound.get(), 97, stop);
  });
  Fd client(ssx_client_connect(local_port(relay_listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();

  std::string got;
  int would_block = 0;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ssx_recv(client.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) break;
    if (n > 0) {
      got.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    ASSERT_EQ(errno, EAGAIN) << last_error_text();
    ++would_block;
    pollfd p{client.get(), POLLIN, 0};
    ::poll(&p, 1, 100);
  }
  stop = true;
  EXPECT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload) << "the received bytes differ from those sent";
  // The test means something only if receives really found partial records.
  EXPECT_GT(would_block, 50);
}

// A blocking receive waits in the kernel (recv with MSG_PEEK), which applies SO_RCVTIMEO.
TEST_F(TlsTest, BlockingReceiveHonoursSoRcvtimeo) {
  use_policy();
  Fd listener = ssx_listener();
  std::atomic<bool> done{false};
  auto server = serve_one(listener.get(), [&done](int fd, int) {
    ASSERT_GE(fd, 0);
    for (int i = 0; i < 100 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  timeval tv{0, 200 * 1000};
  ASSERT_EQ(::setsockopt(client.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  char buf[16];
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ssx_recv(client.get(), buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EAGAIN) << last_error_text();
  const auto waited = std::chrono::steady_clock::now() - start;
  done = true;
  EXPECT_NE(std::string(ssx_last_error()).find("SO_RCVTIMEO"), std::string::npos)
      << ssx_last_error();
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  EXPECT_LT(waited, std::chrono::seconds(2));
}

// Signals that interrupt a blocking receive (handler without SA_RESTART) do not end it:
// the receive goes on waiting and returns the data that comes later.
TEST_F(TlsTest, BlockingReceiveSurvivesASignal) {
  use_policy();
  struct sigaction action {};
  action.sa_handler = [](int) {};
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  ASSERT_EQ(::sigaction(SIGUSR1, &action, &previous), 0);
  Fd listener = ssx_listener();
  std::atomic<bool> signalled{false};
  auto server = serve_one(listener.get(), [&signalled](int fd, int) {
    ASSERT_GE(fd, 0);
    for (int i = 0; i < 250 && !signalled; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(ssx_send_all(fd, "late")) << last_error_text();
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  pthread_t receiver = ::pthread_self();
  BackgroundThread signaller([&] {
    for (int i = 0; i < 3; ++i) {  // more than once: each interruption must be survived
      std::this_thread::sleep_for(std::chrono::milliseconds(60));
      ::pthread_kill(receiver, SIGUSR1);
    }
    signalled = true;
  });
  char buf[16];
  ssize_t n = ssx_recv(client.get(), buf, sizeof buf, 0);
  signaller.join();
  EXPECT_EQ(n, 4) << last_error_text();
  if (n == 4) {
    EXPECT_EQ(std::string(buf, 4), "late");
  }
  server.reset();
  ::sigaction(SIGUSR1, &previous, nullptr);
}

TEST_F(TlsTest, SessionResumptionIsReported) {
  use_policy();
  Fd listener = ssx_listener();
  for (int round = 0; round < 2; ++round) {
    auto server = serve_one(listener.get(), [](int fd, int error) { answer(fd, error); });
    Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
    ASSERT_GE(client.get(), 0) << last_error_text();
    Info info = query(client.get());
    EXPECT_EQ((info->flags & SSX_INFO_RESUMED) != 0, round == 1) << "round " << round;
    EXPECT_NE(info->flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);
    ASSERT_TRUE(ssx_send_all(client.get(), kRequest));
    ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0);
    int error = -1;
    EXPECT_EQ(ssx_recv_until_eof(client.get(), &error), kReply);  // reads the ticket too
  }
}

}  // namespace
}  // namespace ssx::test

namespace ssx::test {
namespace {

TEST_F(TlsTest, SessionTicketsOffMeansNoResumption) {
  use_policy("session_tickets = false");
  Fd listener = ssx_listener();
  for (int round = 0; round < 2; ++round) {
    auto server = serve_one(listener.get(), [](int fd, int error) { answer(fd, error); });
    Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
    ASSERT_GE(client.get(), 0) << last_error_text();
    EXPECT_EQ(query(client.get())->flags & SSX_INFO_RESUMED, 0u) << "round " << round;
    ASSERT_TRUE(ssx_send_all(client.get(), kRequest));
    ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0);
    int error = -1;
    EXPECT_EQ(ssx_recv_until_eof(client.get(), &error), kReply);
  }
}

TEST_F(TlsTest, ReceiveAfterAFailedSendReportsTheReceivesOwnError) {
  use_policy();
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int) {
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(ssx_send_all(fd, "last words"));
    ::shutdown(fd, SHUT_RDWR);  // no close_notify
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  server.reset();
  char buf[64];
  EXPECT_EQ(ssx_recv(client.get(), buf, sizeof buf, 0), 10);
  int rc = ssx_recv(client.get(), buf, sizeof buf, 0);
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(errno, ECONNRESET) << "truncation is ECONNRESET, never EPIPE: " << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_TRUNCATED);
}

}  // namespace
}  // namespace ssx::test
