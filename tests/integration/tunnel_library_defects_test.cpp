// SPDX-License-Identifier: Apache-2.0
// A library defect found while building `ssx tunnel`, once a failing test, fixed in the library
// now; this test keeps it fixed. (The other one, ssx_recv's report of a truncated stream when the
// peer's FIN is followed by a reset, is tested at the tls::Session level, both ends in one
// thread: SessionStreamTest.TruncationIsEconnresetWhenFinIsFollowedByReset in
// tests/unit/tls/session_stream_test.cpp.)

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

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
    release.wait(false);  // reads nothing meanwhile
  });
  // However the test ends, the server is released before it is joined.
  struct Release {
    std::atomic<bool> &flag;
    ~Release() {
      flag = true;
      flag.notify_all();
    }
  } releaser{release};
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
}

}  // namespace
}  // namespace ssx::test
