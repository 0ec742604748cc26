// SPDX-License-Identifier: Apache-2.0
// Event loops (ssx.h, ssx_wants / ssx_pending): input that ssx has read ahead must never be
// hidden from a program that waits on the socket. And examples/epoll_server.c, run as a program,
// serves many clients at once while silent ones hang on.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ssx/ssx.hpp"
#include "testlib/run_command.hpp"
#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

using Clock = std::chrono::steady_clock;

// wait_for_kernel_bytes waits (bounded) until the kernel holds at least |n| bytes for |fd|.
bool wait_for_kernel_bytes(int fd, int n) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    int queued = 0;
    if (::ioctl(fd, FIONREAD, &queued) == 0 && queued >= n) return true;
    if (Clock::now() > deadline) return false;
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 10);  // readable already: wait for the rest a little at a time
    std::this_thread::yield();
  }
}

class EventLoopTest : public TlsTest {
 protected:
  void connect_pair() {
    use_policy();
    listener_ = ssx_listener();
    int accepted = -1;
    {
      BackgroundThread server([&] { accepted = ssx_accept(listener_.get(), nullptr, nullptr); });
      client_ = Fd(ssx_client_connect(local_port(listener_.get()), {"localhost"}));
    }
    ASSERT_GE(client_.get(), 0) << last_error_text();
    ASSERT_GE(accepted, 0) << last_error_text();
    server_ = Fd(accepted);
  }
  Fd listener_;
  Fd server_;
  Fd client_;
};

// The symptom of issue 13: two small records arrive together; ssx_recv returns the first, and
// the socket looks idle to poll while ssx holds the second. ssx_pending and ssx_wants show it.
TEST_F(EventLoopTest, SecondRecordReadAheadIsVisibleThroughPendingAndWants) {
  connect_pair();
  ASSERT_EQ(ssx_send(client_.get(), "one", 3, 0), 3);
  ASSERT_EQ(ssx_send(client_.get(), "two!", 4, 0), 4);
  // Two TLS 1.3 records: 5 header + data + 1 type + 16 tag bytes each.
  ASSERT_TRUE(wait_for_kernel_bytes(server_.get(), (5 + 3 + 17) + (5 + 4 + 17)));
  EXPECT_EQ(ssx_pending(server_.get()), 0u) << "nothing read from the socket yet";
  EXPECT_EQ(ssx_wants(server_.get()) & SSX_POLLPENDING, 0);

  char buf[64];
  ASSERT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), 3) << last_error_text();
  EXPECT_EQ(std::string(buf, 3), "one");
  pollfd p{server_.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the kernel has handed both records to ssx already";
  EXPECT_EQ(ssx_pending(server_.get()), 4u);
  EXPECT_NE(ssx_wants(server_.get()) & SSX_POLLPENDING, 0) << "ssx holds input: do not wait";

  ASSERT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), 4) << last_error_text();
  EXPECT_EQ(std::string(buf, 4), "two!");
  EXPECT_EQ(ssx_pending(server_.get()), 0u);
  EXPECT_EQ(ssx_wants(server_.get()) & SSX_POLLPENDING, 0);
  errno = 0;
  EXPECT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(ssx_wants(server_.get()), POLLIN) << "now the socket itself must bring more";
}

// wait_readable waits (bounded) until poll reports |fd| readable.
bool wait_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 10000) == 1;
}

// The client's first data can arrive with its Finished, and the server's handshake step then
// reads both: the handshake is done, the data is held, and the socket itself will never become
// readable for it. ssx_wants says "call again now" (SSX_POLLPENDING alone), never POLLIN, which
// an edge-triggered loop would wait for in vain (the tunnel's setup stalled on exactly this, at
// random, when ssx_accept's first step finished a handshake). Both ends in this one thread.
TEST_F(EventLoopTest, DataReadWithTheLastHandshakeFlightIsHeldInputNotAWaitForPollin) {
  use_policy();
  listener_ = ssx_listener();
  ASSERT_EQ(::fcntl(listener_.get(), F_SETFL, O_NONBLOCK), 0);
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  ASSERT_GE(client.get(), 0);
  ASSERT_EQ(ssx_set_socket_security(client.get(), nullptr, 0), 0) << last_error_text();
  ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost", nullptr, 0), 0);
  const sockaddr_in to = loopback_address(local_port(listener_.get()));
  const int rc = ssx_connect(client.get(), reinterpret_cast<const sockaddr *>(&to), sizeof to);
  ASSERT_EQ(rc, -1);
  ASSERT_TRUE(errno == EINPROGRESS || errno == EAGAIN) << last_error_text();
  // The client's ClientHello is out once it waits for the server's reply.
  for (int i = 0; i < 100 && ssx_wants(client.get()) != POLLIN; ++i) {
    ASSERT_EQ(ssx_handshake(client.get()), -1);
    ASSERT_EQ(errno, EAGAIN) << last_error_text();
    pollfd p{client.get(), ssx_wants(client.get()), 0};
    ::poll(&p, 1, 100);
  }
  ASSERT_EQ(ssx_wants(client.get()), POLLIN);

  // The server's first step: ClientHello in, its whole flight out, then it waits.
  ASSERT_TRUE(wait_readable(listener_.get()));
  server_ = Fd(ssx_accept(listener_.get(), nullptr, nullptr));
  ASSERT_GE(server_.get(), 0) << last_error_text();
  ASSERT_EQ(ssx_wants(server_.get()), POLLIN);

  // The client finishes and sends at once: Finished and the data are on their way together.
  ASSERT_TRUE(wait_readable(client.get()));
  int step = -1;
  for (int i = 0; i < 100 && (step = ssx_handshake(client.get())) != 0; ++i) {
    ASSERT_EQ(errno, EAGAIN) << last_error_text();
    ASSERT_TRUE(wait_readable(client.get()));
  }
  ASSERT_EQ(step, 0) << last_error_text();
  ASSERT_EQ(ssx_send(client.get(), "first", 5, 0), 5) << last_error_text();

  // Loopback has delivered both by now (send returned); the server's next step reads them.
  ASSERT_TRUE(wait_readable(server_.get()));
  ASSERT_TRUE(wait_for_kernel_bytes(server_.get(), 5 + 5 + 17));
  ASSERT_EQ(ssx_handshake(server_.get()), 0) << last_error_text();
  pollfd p{server_.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the data was read with the Finished";
  EXPECT_EQ(ssx_pending(server_.get()), 5u);
  EXPECT_EQ(ssx_wants(server_.get()), SSX_POLLPENDING) << "call again now, do not wait";
  char buf[16];
  ASSERT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), 5) << last_error_text();
  EXPECT_EQ(std::string(buf, 5), "first");
}

// A partial read leaves decrypted bytes in ssx; MSG_PEEK does not consume them.
TEST_F(EventLoopTest, PendingCountsBytesLeftByAShortReadAndAPeek) {
  connect_pair();
  ASSERT_EQ(ssx_send(client_.get(), "0123456789", 10, 0), 10);
  ASSERT_TRUE(wait_for_kernel_bytes(server_.get(), 5 + 10 + 17));
  char buf[16];
  ASSERT_EQ(ssx_recv(server_.get(), buf, 4, MSG_PEEK | MSG_DONTWAIT), 4);
  EXPECT_EQ(ssx_pending(server_.get()), 10u);
  ASSERT_EQ(ssx_recv(server_.get(), buf, 4, MSG_DONTWAIT), 4);
  EXPECT_EQ(ssx_pending(server_.get()), 6u);
  EXPECT_NE(ssx_wants(server_.get()) & SSX_POLLPENDING, 0);
  ASSERT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), 6);
  EXPECT_EQ(std::string(buf, 6), "456789");
  EXPECT_EQ(ssx_pending(server_.get()), 0u);
}

// The peer's close_notify read ahead with its last data is held input too: ssx_recv returns 0
// without waiting, though it is not data (ssx_pending stays 0).
TEST_F(EventLoopTest, CloseNotifyReadAheadIsHeldInput) {
  connect_pair();
  ASSERT_EQ(ssx_send(client_.get(), "last", 4, 0), 4);
  ASSERT_EQ(ssx_shutdown(client_.get(), SHUT_WR), 0);
  // The data record, then the close_notify alert (5 + 2 + 17).
  ASSERT_TRUE(wait_for_kernel_bytes(server_.get(), (5 + 4 + 17) + (5 + 2 + 17)));
  char buf[16];
  ASSERT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), 4);
  EXPECT_EQ(ssx_pending(server_.get()), 0u);
  EXPECT_NE(ssx_wants(server_.get()) & SSX_POLLPENDING, 0);
  EXPECT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), 0) << last_error_text();
  EXPECT_EQ(ssx_wants(server_.get()) & SSX_POLLPENDING, 0) << "the end was delivered";
}

// Corrupt records read ahead are held input: ssx_recv reports the failure without waiting.
TEST_F(EventLoopTest, CorruptRecordReadAheadIsHeldInputAndFailsTheNextRecv) {
  connect_pair();
  ASSERT_EQ(ssx_send(client_.get(), "good", 4, 0), 4);
  ASSERT_TRUE(wait_for_kernel_bytes(server_.get(), 5 + 4 + 17));
  // A forged record (right header, random body) behind the good one, on the raw socket.
  const unsigned char forged[5 + 20] = {23, 3, 3, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  ASSERT_EQ(::send(client_.get(), forged, sizeof forged, MSG_NOSIGNAL),
            static_cast<ssize_t>(sizeof forged));
  ASSERT_TRUE(wait_for_kernel_bytes(server_.get(), 5 + 4 + 17 + static_cast<int>(sizeof forged)));
  char buf[16];
  ASSERT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), 4);
  EXPECT_NE(ssx_wants(server_.get()) & SSX_POLLPENDING, 0);
  EXPECT_EQ(ssx_pending(server_.get()), 0u);
  errno = 0;
  EXPECT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EPROTO) << ssx_last_error();
}

// The C++ wrapper says the same.
TEST_F(EventLoopTest, CxxSocketReportsPendingInput) {
  connect_pair();
  ssx::Socket server(server_.release());
  ASSERT_EQ(ssx_send(client_.get(), "ab", 2, 0), 2);
  ASSERT_EQ(ssx_send(client_.get(), "cd", 2, 0), 2);
  ASSERT_TRUE(wait_for_kernel_bytes(server.native_handle(), 2 * (5 + 2 + 17)));
  std::byte buf[8];
  auto n = server.recv(buf, MSG_DONTWAIT);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(server.pending(), 2u);
  EXPECT_TRUE(server.input_held());
  ASSERT_TRUE(server.recv(buf, MSG_DONTWAIT));
  EXPECT_EQ(server.pending(), 0u);
  EXPECT_FALSE(server.input_held());
}

TEST(EventLoopErrors, PendingAndWantsAreZeroForWhatIsNotAnSsxConnection) {
  EXPECT_EQ(ssx_pending(-1), 0u);
  EXPECT_EQ(ssx_wants(-1), 0);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_EQ(ssx_pending(p[0]), 0u);
  EXPECT_EQ(ssx_wants(p[0]), 0);
  ::close(p[0]);
  ::close(p[1]);
  Fd unconnected(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ssx_security_settings s{SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
  ASSERT_EQ(ssx_set_socket_security(unconnected.get(), &s, sizeof s), 0);
  EXPECT_EQ(ssx_pending(unconnected.get()), 0u);
  EXPECT_EQ(ssx_wants(unconnected.get()), 0);
}

}  // namespace
}  // namespace ssx::test
