// SPDX-License-Identifier: Apache-2.0
// Library defects found while building `ssx tunnel`, each once a failing test; both are
// fixed in the library now, and these tests keep them fixed.
//
// 1. ssx_recv's report of a truncated stream when the peer's FIN is followed by a reset.
//
// Found while building `ssx tunnel`, whose peers abort with shutdown + SO_LINGER 0. ssx.h says
// ssx_recv fails with ECONNRESET "when the TCP stream ended without close_notify". When the FIN
// arrives first and the reset after it, ssx_recv fails with EPIPE ("receive: Broken pipe")
// instead: the kernel reads EOF, OpenSSL answers the unexpected EOF by sending an alert, that
// send fails with EPIPE (an RST in CLOSE_WAIT sets sk_err = EPIPE), and Session::io_failure
// reports the BIO's last errno — set by the alert's *write* — for the *read*.
//
// Proposed fix (src/protocol/tls/socket_bio.cpp, session.cpp): keep the last errno per
// direction (read/write) and clear it on every successful or EOF read; in io_failure for reads,
// report ECONNRESET whenever the BIO saw EOF (peer_closed) or the reason is
// SSL_R_UNEXPECTED_EOF_WHILE_READING, whatever a later write failed with.
//
// `ssx tunnel` treats EPIPE from ssx_recv as a truncation meanwhile.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

using namespace std::chrono_literals;

TEST_F(TlsTest, RecvReportsTruncationAsEconnresetWhenFinIsFollowedByReset) {
  use_policy();
  Fd listener = ssx_listener();
  int server_error = 0;
  std::string server_got;
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << error;
    std::this_thread::sleep_for(300ms);  // FIN and RST both arrive before we read
    char buf[16];
    ssize_t n = ssx_recv(fd, buf, sizeof buf, 0);
    if (n > 0) server_got.assign(buf, static_cast<size_t>(n));
    n = ssx_recv(fd, buf, sizeof buf, 0);
    server_error = n < 0 ? errno : 0;
  });
  Fd client;
  ASSERT_GE(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            0)
      << last_error_text();
  ASSERT_TRUE(ssx_send_all(client.get(), "abc"));
  ::shutdown(client.get(), SHUT_WR);  // FIN, no close_notify
  std::this_thread::sleep_for(100ms);
  linger hard{1, 0};
  ::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  ::close(client.release());  // then RST
  server->join();
  EXPECT_EQ(server_got, "abc");
  EXPECT_EQ(server_error, ECONNRESET) << "got " << strerror(server_error);
}

// ssx_shutdown on a non-blocking socket whose close_notify cannot be written yet fails with
// EAGAIN, but does not record what it waits for: ssx_wants() still reports the previous call's
// wish (here POLLIN, from an ssx_recv), so an event loop that trusts it waits for the wrong
// event. Proposed fix (src/core/secure_socket.cpp, SecureSocket::shutdown): set
// wants_ = events_for(*w) before returning EAGAIN. `ssx tunnel` waits for POLLOUT after an
// EAGAIN from ssx_shutdown whatever ssx_wants() says.
TEST_F(TlsTest, WantsReportsPolloutAfterShutdownWouldBlock) {
  use_policy();
  Fd listener = ssx_listener();
  std::atomic<bool> release{false};
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << error;
    while (!release.load()) std::this_thread::sleep_for(10ms);  // reads nothing meanwhile
  });
  Fd client;
  ASSERT_GE(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            0)
      << last_error_text();
  ASSERT_EQ(::fcntl(client.get(), F_SETFL, O_NONBLOCK), 0);
  std::vector<char> block(64 * 1024, 'x');
  for (int i = 0; i < 100000; ++i) {  // fill every buffer between us and the idle server
    if (ssx_send(client.get(), block.data(), block.size(), 0) < 0) break;
  }
  ASSERT_EQ(errno, EAGAIN);
  char byte;
  ASSERT_EQ(ssx_recv(client.get(), &byte, 1, 0), -1);
  ASSERT_EQ(errno, EAGAIN);
  ASSERT_EQ(ssx_wants(client.get()), POLLIN);
  ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), -1);
  ASSERT_EQ(errno, EAGAIN);
  EXPECT_EQ(ssx_wants(client.get()), POLLOUT) << "close_notify waits for room to write";
  release = true;
  server->join();
}

}  // namespace
}  // namespace ssx::test
