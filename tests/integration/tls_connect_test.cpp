// SPDX-License-Identifier: Apache-2.0
// Scenario tests for TCP sockets secured with TLS: a real ssx client against a real ssx server on
// loopback, with credentials from a test PKI made at run time. What one tls::Session reports —
// each refusal's errno and message on both ends, truncations, forged records, what a call waits
// for — is tested below the socket layer, both ends stepped in one thread, in
// tests/unit/tls/session_errors_test.cpp and session_stream_test.cpp; these tests keep what the
// C API adds (accept, connect, blocking waits, threads, the socket's state after a failure).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
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

// A blocking receive waits in the kernel (recv with MSG_PEEK), which applies SO_RCVTIMEO. The
// server sends nothing; it reads until the client's close at the end of the test.
TEST_F(TlsTest, BlockingReceiveHonoursSoRcvtimeo) {
  use_policy();
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int) {
    ASSERT_GE(fd, 0);
    int error = 0;
    EXPECT_EQ(ssx_recv_until_eof(fd, &error), "");
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
  EXPECT_NE(std::string(ssx_last_error()).find("SO_RCVTIMEO"), std::string::npos)
      << ssx_last_error();
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  EXPECT_LT(waited, std::chrono::seconds(2));
}

// blocked_in_recv reports whether thread |tid| of this process sleeps in recvfrom(2) (which
// recv(2) is on Linux), from /proc/self/task/TID/syscall.
bool blocked_in_recv(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  long number = -1;
  return static_cast<bool>(in >> number) && number == SYS_recvfrom;
}

// wait_for polls |condition| until it holds (true) or 10 s pass (false). The 1 ms pause is the
// poll interval of a condition that has no event to wait on (a thread's state in /proc); nothing
// is ordered by it.
template <class F>
bool wait_for(F &&condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::atomic<int> sigusr1_count{0};

// Signals that interrupt a blocking receive (handler without SA_RESTART) do not end it:
// the receive goes on waiting and returns the data that comes later. Each signal is sent once
// the receiving thread sleeps in recv(2), and the next once its handler ran and the thread
// sleeps in recv again; the server sends only after the third.
TEST_F(TlsTest, BlockingReceiveSurvivesASignal) {
  use_policy();
  struct sigaction action {};
  action.sa_handler = [](int) { sigusr1_count.fetch_add(1); };
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  ASSERT_EQ(::sigaction(SIGUSR1, &action, &previous), 0);
  sigusr1_count = 0;
  Fd listener = ssx_listener();
  std::atomic<bool> signalled{false};
  auto server = serve_one(listener.get(), [&signalled](int fd, int) {
    ASSERT_GE(fd, 0);
    signalled.wait(false);
    EXPECT_TRUE(ssx_send_all(fd, "late")) << last_error_text();
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  if (client.get() < 0) signalled = true;  // lets the server finish; the assertion follows
  signalled.notify_all();
  ASSERT_GE(client.get(), 0) << last_error_text();
  const pthread_t receiver = ::pthread_self();
  const pid_t receiver_tid = ::gettid();
  int interrupted = 0;
  BackgroundThread signaller([&] {
    for (int i = 0; i < 3; ++i) {  // more than once: each interruption must be survived
      if (!wait_for([&] { return blocked_in_recv(receiver_tid); })) break;
      ::pthread_kill(receiver, SIGUSR1);
      if (!wait_for([&] { return sigusr1_count.load() > i; })) break;
      ++interrupted;
    }
    signalled = true;
    signalled.notify_all();
  });
  char buf[16];
  ssize_t n = ssx_recv(client.get(), buf, sizeof buf, 0);
  signaller.join();
  EXPECT_EQ(interrupted, 3) << "the receiver was not seen sleeping in recv three times";
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

}  // namespace
}  // namespace ssx::test
