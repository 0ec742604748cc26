// SPDX-License-Identifier: Apache-2.0
// The socket state machine recovers from misuse: a public call made in the wrong state fails
// with its errno and leaves the socket exactly as it was, so the calls that should have come
// next still work. One test per public call and state, for client, listening and accepted
// sockets: the wrong call, then the right sequence (connect or accept, handshake, one request
// and one reply) must succeed.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

enum class Where {
  client_configured,     // security set, not connected
  client_connecting,     // non-blocking ssx_connect returned EINPROGRESS
  client_established,    // connected and handshaken
  listener_fresh,        // listen(2) called, never accepted
  listener_accepting,    // has accepted a connection already
  accepted_handshaking,  // from a non-blocking listener, handshake not finished
  accepted_established,  // from a blocking listener
};

enum class Call {
  set_security,
  set_target_name,
  delete_target_names,
  connect,
  accept,
  handshake,
  send,
  recv,
  shutdown,
  query,
  impersonate,
};

struct Case {
  Where where;
  Call call;
  int expected;  // errno
};

const char *name_of(Where w) {
  switch (w) {
    case Where::client_configured:
      return "ClientConfigured";
    case Where::client_connecting:
      return "ClientConnecting";
    case Where::client_established:
      return "ClientEstablished";
    case Where::listener_fresh:
      return "ListenerFresh";
    case Where::listener_accepting:
      return "ListenerAccepting";
    case Where::accepted_handshaking:
      return "AcceptedHandshaking";
    case Where::accepted_established:
      return "AcceptedEstablished";
  }
  return "?";
}

const char *name_of(Call c) {
  switch (c) {
    case Call::set_security:
      return "SetSocketSecurity";
    case Call::set_target_name:
      return "SetTargetName";
    case Call::delete_target_names:
      return "DeleteTargetNames";
    case Call::connect:
      return "Connect";
    case Call::accept:
      return "Accept";
    case Call::handshake:
      return "Handshake";
    case Call::send:
      return "Send";
    case Call::recv:
      return "Recv";
    case Call::shutdown:
      return "Shutdown";
    case Call::query:
      return "Query";
    case Call::impersonate:
      return "Impersonate";
  }
  return "?";
}

// Every wrong-order call, with the errno ssx.h documents for it.
std::vector<Case> all_cases() {
  std::vector<Case> cases;
  auto add = [&](Where w, std::initializer_list<std::pair<Call, int>> calls) {
    for (auto [call, expected] : calls) cases.push_back({w, call, expected});
  };
  add(Where::client_configured, {{Call::set_security, EALREADY},
                                 {Call::accept, EINVAL},
                                 {Call::handshake, ENOTCONN},
                                 {Call::send, ENOTCONN},
                                 {Call::recv, ENOTCONN},
                                 {Call::shutdown, ENOTCONN},
                                 {Call::query, ENOTCONN},
                                 {Call::impersonate, ENOTCONN}});
  add(Where::client_connecting, {{Call::set_security, EALREADY},
                                 {Call::set_target_name, EISCONN},
                                 {Call::delete_target_names, EISCONN},
                                 {Call::connect, EALREADY},
                                 {Call::accept, EINVAL},
                                 {Call::shutdown, ENOTCONN},
                                 {Call::query, ENOTCONN},
                                 {Call::impersonate, ENOTCONN}});
  add(Where::client_established, {{Call::set_security, EALREADY},
                                  {Call::set_target_name, EISCONN},
                                  {Call::delete_target_names, EISCONN},
                                  {Call::connect, EISCONN},
                                  {Call::accept, EINVAL}});
  for (Where w : {Where::listener_fresh, Where::listener_accepting}) {
    add(w, {{Call::set_security, EALREADY},
            {Call::connect, EINVAL},
            {Call::handshake, ENOTCONN},
            {Call::send, ENOTCONN},
            {Call::recv, ENOTCONN},
            {Call::shutdown, ENOTCONN},
            {Call::query, ENOTCONN},
            {Call::impersonate, ENOTCONN}});
  }
  add(Where::accepted_handshaking, {{Call::set_security, EALREADY},
                                    {Call::set_target_name, EISCONN},
                                    {Call::delete_target_names, EISCONN},
                                    {Call::connect, EISCONN},
                                    {Call::accept, EINVAL},
                                    {Call::shutdown, ENOTCONN},
                                    {Call::query, ENOTCONN},
                                    {Call::impersonate, ENOTCONN}});
  add(Where::accepted_established, {{Call::set_security, EALREADY},
                                    {Call::set_target_name, EISCONN},
                                    {Call::delete_target_names, EISCONN},
                                    {Call::connect, EISCONN},
                                    {Call::accept, EINVAL}});
  return cases;
}

constexpr const char *kRequest = "ping";
constexpr const char *kReply = "pong";

class StateMachineTest : public TlsTest, public ::testing::WithParamInterface<Case> {
 protected:
  // misuse makes the wrong call on |fd| and checks it failed with the expected errno and left
  // ssx_wants as it was.
  void misuse(int fd, std::uint16_t port) {
    const Case &c = GetParam();
    const short wants_before = ssx_wants(fd);
    errno = 0;
    const long rc = call(c.call, fd, port);
    const int error = errno;
    EXPECT_EQ(rc, -1) << name_of(c.call) << " succeeded in state " << name_of(c.where);
    EXPECT_EQ(error, c.expected) << std::strerror(error) << ": " << ssx_last_error();
    EXPECT_STRNE(ssx_last_error(), "");
    EXPECT_EQ(ssx_wants(fd), wants_before);
  }

  static long call(Call c, int fd, std::uint16_t port) {
    char buf[8];
    switch (c) {
      case Call::set_security:
        return ssx_set_socket_security(fd, nullptr, 0);
      case Call::set_target_name:
        return ssx_set_socket_peer_target_name(fd, "localhost", nullptr, 0);
      case Call::delete_target_names:
        return ssx_delete_socket_peer_target_name(fd, nullptr, 0);
      case Call::connect: {
        sockaddr_in a = loopback_address(port);
        return ssx_connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
      }
      case Call::accept: {
        int accepted = ssx_accept(fd, nullptr, nullptr);
        if (accepted >= 0) ssx_close(accepted);
        return accepted;
      }
      case Call::handshake:
        return ssx_handshake(fd);
      case Call::send:
        return ssx_send(fd, "x", 1, 0);
      case Call::recv:
        return ssx_recv(fd, buf, sizeof buf, 0);
      case Call::shutdown:
        return ssx_shutdown(fd, SHUT_WR);
      case Call::query: {
        ssx_security_info *info = nullptr;
        int rc = ssx_query_socket_security(fd, nullptr, 0, &info);
        ssx_free_security_info(info);
        return rc;
      }
      case Call::impersonate: {
        int rc = ssx_impersonate_socket_peer(fd, nullptr, 0);
        if (rc == 0) ssx_revert_impersonation();
        return rc;
      }
    }
    return 0;
  }

  // An ssx client on a thread: connects to |port|, sends the request, expects the reply.
  std::unique_ptr<BackgroundThread> client_thread(std::uint16_t port) {
    return std::make_unique<BackgroundThread>([port] {
      Fd fd(ssx_client_connect(port, {"localhost"}));
      ASSERT_GE(fd.get(), 0) << last_error_text();
      EXPECT_TRUE(ssx_send_all(fd.get(), kRequest)) << last_error_text();
      expect_message(fd.get(), kReply);
    });
  }

  static void expect_message(int fd, const std::string &expected) {
    std::string got(expected.size(), '\0');
    EXPECT_EQ(ssx_recv(fd, got.data(), got.size(), MSG_WAITALL),
              static_cast<ssize_t>(expected.size()))
        << last_error_text();
    EXPECT_EQ(got, expected);
  }

  // serve answers one client on an accepted, established |fd|.
  static void serve(int fd) {
    expect_message(fd, kRequest);
    EXPECT_TRUE(ssx_send_all(fd, kReply)) << last_error_text();
  }

  // talk is the client's side of the exchange on an established |fd|.
  static void talk(int fd) {
    EXPECT_TRUE(ssx_send_all(fd, kRequest)) << last_error_text();
    expect_message(fd, kReply);
  }

  // accept_blocking accepts one connection on a blocking |listener| and answers it.
  static void accept_and_serve(int listener) {
    Fd fd(ssx_accept(listener, nullptr, nullptr));
    ASSERT_GE(fd.get(), 0) << last_error_text();
    serve(fd.get());
  }

  // finish_handshake drives a non-blocking socket's handshake to its end, then makes it blocking.
  static void finish_handshake(int fd) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int rc = -1;
    while ((rc = ssx_handshake(fd)) != 0 && std::chrono::steady_clock::now() < deadline) {
      ASSERT_EQ(errno, EAGAIN) << last_error_text();
      pollfd p{fd, ssx_wants(fd), 0};
      ASSERT_NE(p.events, 0);
      ::poll(&p, 1, 1000);
    }
    ASSERT_EQ(rc, 0) << last_error_text();
    ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK), 0);
  }

  static Fd secured_client_socket(bool nonblocking) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
    EXPECT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0) << last_error_text();
    EXPECT_EQ(ssx_set_socket_peer_target_name(fd.get(), "localhost", nullptr, 0), 0);
    return fd;
  }
};

TEST_P(StateMachineTest, WrongCallFailsAndTheRightOnesStillSucceed) {
  use_policy();
  Fd listener = ssx_listener();
  const std::uint16_t port = local_port(listener.get());
  // A second, unrelated listener: the address a misplaced ssx_connect names.
  Fd elsewhere = plain_listener();
  const std::uint16_t other_port = local_port(elsewhere.get());
  const Case &c = GetParam();
  switch (c.where) {
    case Where::client_configured: {
      auto server = std::make_unique<BackgroundThread>([&] { accept_and_serve(listener.get()); });
      Fd fd = secured_client_socket(false);
      misuse(fd.get(), other_port);
      sockaddr_in a = loopback_address(port);
      ASSERT_EQ(ssx_connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0)
          << last_error_text();
      talk(fd.get());
      break;
    }
    case Where::client_connecting: {
      // The server accepts only after the wrong call: until then nothing answers the
      // ClientHello, so the handshake cannot have finished.
      Fd fd = secured_client_socket(true);
      sockaddr_in a = loopback_address(port);
      ASSERT_EQ(ssx_connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), -1);
      ASSERT_EQ(errno, EINPROGRESS) << last_error_text();
      misuse(fd.get(), other_port);
      auto server = std::make_unique<BackgroundThread>([&] { accept_and_serve(listener.get()); });
      finish_handshake(fd.get());
      talk(fd.get());
      break;
    }
    case Where::client_established: {
      auto server = std::make_unique<BackgroundThread>([&] { accept_and_serve(listener.get()); });
      Fd fd(ssx_client_connect(port, {"localhost"}));
      ASSERT_GE(fd.get(), 0) << last_error_text();
      misuse(fd.get(), other_port);
      talk(fd.get());
      break;
    }
    case Where::listener_fresh: {
      misuse(listener.get(), other_port);
      auto client = client_thread(port);
      accept_and_serve(listener.get());
      break;
    }
    case Where::listener_accepting: {
      {
        auto first = client_thread(port);
        accept_and_serve(listener.get());
      }
      misuse(listener.get(), other_port);
      auto second = client_thread(port);
      accept_and_serve(listener.get());
      break;
    }
    case Where::accepted_handshaking: {
      // Both ends are driven from this thread, so the client cannot answer the server's flight
      // behind the test's back: the accepted socket is still handshaking when it is misused.
      ASSERT_EQ(::fcntl(listener.get(), F_SETFL, O_NONBLOCK), 0);
      Fd client = secured_client_socket(true);
      sockaddr_in a = loopback_address(port);
      ASSERT_EQ(ssx_connect(client.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), -1);
      ASSERT_EQ(errno, EINPROGRESS) << last_error_text();
      Fd fd;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (fd.get() < 0 && std::chrono::steady_clock::now() < deadline) {
        int accepted = ssx_accept(listener.get(), nullptr, nullptr);
        if (accepted >= 0) {
          fd.reset(accepted);
          break;
        }
        ASSERT_EQ(errno, EAGAIN) << last_error_text();
        pollfd p{listener.get(), POLLIN, 0};
        ::poll(&p, 1, 1000);
      }
      ASSERT_GE(fd.get(), 0);
      ASSERT_NE(ssx_wants(fd.get()), 0);  // waits for the client's Finished
      misuse(fd.get(), other_port);
      bool client_done = false;
      bool server_done = false;
      while (!(client_done && server_done) && std::chrono::steady_clock::now() < deadline) {
        for (auto [end, done] : {std::pair{client.get(), &client_done}, {fd.get(), &server_done}}) {
          if (*done) continue;
          *done = ssx_handshake(end) == 0;
          if (!*done) {
            ASSERT_EQ(errno, EAGAIN) << last_error_text();
          }
        }
        std::vector<pollfd> fds;
        if (!client_done) fds.push_back({client.get(), ssx_wants(client.get()), 0});
        if (!server_done) fds.push_back({fd.get(), ssx_wants(fd.get()), 0});
        if (!fds.empty()) ::poll(fds.data(), fds.size(), 1000);
      }
      ASSERT_TRUE(client_done && server_done);
      for (int end : {client.get(), fd.get()}) {
        ASSERT_EQ(::fcntl(end, F_SETFL, ::fcntl(end, F_GETFL) & ~O_NONBLOCK), 0);
      }
      EXPECT_TRUE(ssx_send_all(client.get(), kRequest)) << last_error_text();
      serve(fd.get());
      expect_message(client.get(), kReply);
      break;
    }
    case Where::accepted_established: {
      auto client = client_thread(port);
      Fd fd(ssx_accept(listener.get(), nullptr, nullptr));
      ASSERT_GE(fd.get(), 0) << last_error_text();
      misuse(fd.get(), other_port);
      serve(fd.get());
      break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryWrongCall, StateMachineTest, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case> &info) {
                           return std::string(name_of(info.param.where)) + name_of(info.param.call);
                         });

// accept on a socket that is not listening fails without making it a listener: it can still
// connect afterwards.
TEST_F(TlsTest, AcceptBeforeListenLeavesTheSocketUsable) {
  use_policy();
  Fd listener = ssx_listener();
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(fd.get(), "localhost", nullptr, 0), 0);
  EXPECT_EQ(ssx_accept(fd.get(), nullptr, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(std::string(ssx_last_error()).find("listen(2)"), std::string::npos) << ssx_last_error();
  auto server = serve_one(listener.get(), [](int accepted, int error) {
    ASSERT_GE(accepted, 0) << std::strerror(error);
    EXPECT_TRUE(ssx_send_all(accepted, "ok"));
  });
  sockaddr_in a = loopback_address(local_port(listener.get()));
  ASSERT_EQ(ssx_connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0)
      << last_error_text();
  char buf[2];
  EXPECT_EQ(ssx_recv(fd.get(), buf, sizeof buf, MSG_WAITALL), 2) << last_error_text();
}

// A connection that was tried and failed is not misuse: the socket stays failed and says why.
TEST_F(TlsTest, AFailedConnectStaysFailed) {
  use_policy();
  Fd closed = plain_listener();
  const std::uint16_t port = local_port(closed.get());
  closed.reset();  // nothing listens there now
  Fd fd;
  EXPECT_EQ(ssx_client_connect(port, {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &fd), -1);
  EXPECT_EQ(errno, ECONNREFUSED) << last_error_text();
  char buf[1];
  EXPECT_EQ(ssx_recv(fd.get(), buf, 1, 0), -1);
  EXPECT_EQ(errno, ECONNREFUSED) << last_error_text();
  sockaddr_in a = loopback_address(port);
  EXPECT_EQ(ssx_connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), -1);
  EXPECT_NE(std::string(ssx_last_error()).find("an earlier connect failed"), std::string::npos)
      << ssx_last_error();
}

}  // namespace
}  // namespace ssx::test
