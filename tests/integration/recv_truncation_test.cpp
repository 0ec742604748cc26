// ssx_recv's report of a truncated stream when the peer's FIN is followed by a reset.
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
// DISABLED_ until the library is fixed, so that the suite stays green; run it with
// --gtest_also_run_disabled_tests. `ssx tunnel` treats EPIPE from ssx_recv as a truncation.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

using namespace std::chrono_literals;

TEST_F(TlsTest, DISABLED_RecvReportsTruncationAsEconnresetWhenFinIsFollowedByReset) {
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
  ASSERT_GE(ssx_client_connect(local_port(listener.get()), {"localhost"},
                               SSX_GUARANTEE_ENCRYPTION, &client),
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

}  // namespace
}  // namespace ssx::test
