// SPDX-License-Identifier: Apache-2.0
// Process handoff (ssx.h "Processes", docs/handoff.md): after fork() one process at a time uses a
// connection; ssx_release hands it over untouched; ssx_close and ssx_abort in a process that does
// not own the connection send nothing. A real ssx client on loopback checks that what reaches it
// is intact and ends as it should (0 after close_notify, ECONNRESET after a truncation).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

constexpr const char *kRequest = "request from the client";

// wait_child waits (bounded) for |pid| to exit and returns its exit status, -1 otherwise.
int wait_child(pid_t pid, int timeout_ms = 20000) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    ::close(pidfd);
    if (ready != 1) {
      ::kill(pid, SIGKILL);
    }
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void signal_fd(int fd) {
  (void)!::write(fd, "x", 1);
}

void await_fd(int fd) {
  char byte = 0;
  while (::read(fd, &byte, 1) < 0 && errno == EINTR) {
  }
}

// ChildPlan says what the forked child does with the server's connection.
struct ChildPlan {
  int notify_after_recv = -1;  // written once the request has been read
  int wait_before_reply = -1;  // read before replying
};

// serve_in_child reads the request to its close_notify, answers and closes with ssx_close.
// Runs in the child: no gtest, only an exit code.
int serve_in_child(int fd, const ChildPlan &plan) {
  std::string request;
  char buf[256];
  ssize_t n = 0;
  while ((n = ssx_recv(fd, buf, sizeof buf, 0)) > 0) request.append(buf, static_cast<size_t>(n));
  if (n < 0) return 10;
  if (plan.notify_after_recv >= 0) signal_fd(plan.notify_after_recv);
  if (plan.wait_before_reply >= 0) await_fd(plan.wait_before_reply);
  if (!ssx_send_all(fd, "child " + std::to_string(::getpid()) + " answers " + request)) return 11;
  if (ssx_close(fd) != 0) return 12;
  return 0;
}

class HandoffTest : public TlsTest {
 protected:
  // connect_pair makes an established server connection (server_) and its client (client_).
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

  // send_request sends the request and the client's close_notify.
  void send_request() {
    ASSERT_TRUE(ssx_send_all(client_.get(), kRequest)) << last_error_text();
    ASSERT_EQ(ssx_shutdown(client_.get(), SHUT_WR), 0) << last_error_text();
  }

  // expect_child_reply checks that the client gets the child's whole answer, then a clean end.
  void expect_child_reply(pid_t child) {
    int error = -1;
    const std::string reply = ssx_recv_until_eof(client_.get(), &error);
    EXPECT_EQ(reply, "child " + std::to_string(child) + " answers " + kRequest);
    EXPECT_EQ(error, 0) << "the child's close_notify must end the stream: " << std::strerror(error);
  }

  // expect_nothing_for_client checks that |what| sent the client no data and no close_notify.
  void expect_nothing_for_client(const char *what) {
    char buf[16];
    errno = 0;
    EXPECT_EQ(ssx_recv(client_.get(), buf, sizeof buf, MSG_DONTWAIT), -1)
        << what << " sent something";
    EXPECT_EQ(errno, EAGAIN) << what << ": " << last_error_text();
    EXPECT_EQ(ssx_pending(client_.get()), 0u);
  }

  Fd listener_;
  Fd server_;
  Fd client_;
};

// The documented pattern: the child serves, the parent calls ssx_release and close(2).
TEST_F(HandoffTest, ChildServesWhileParentReleases) {
  connect_pair();
  send_request();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(serve_in_child(server_.get(), {}));
  const int fd = server_.release();
  EXPECT_EQ(ssx_release(fd), 0) << last_error_text();
  EXPECT_EQ(::close(fd), 0);
  expect_child_reply(child);
  EXPECT_EQ(wait_child(child), 0);
}

// The common mistake: the parent calls ssx_close on the connection it forked away, before the
// child answers. It must send no close_notify (the client would take it for the end of the
// answer) and the child's answer must arrive whole.
TEST_F(HandoffTest, ParentsSsxCloseDoesNotEndTheChildsStream) {
  connect_pair();
  send_request();
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(go[1]);
    ::_exit(serve_in_child(server_.get(), {-1, go[0]}));
  }
  ::close(go[0]);
  EXPECT_EQ(ssx_close(server_.release()), 0) << last_error_text();
  // Nothing reached the client: no close_notify, no record (only the session tickets the server
  // sent after the handshake, which ssx_recv takes in its stride).
  expect_nothing_for_client("the parent's ssx_close");
  signal_fd(go[1]);
  ::close(go[1]);
  expect_child_reply(child);
  EXPECT_EQ(wait_child(child), 0);
}

// The same mistake with ssx_abort: the parent must not reset (SO_LINGER is shared by the child).
TEST_F(HandoffTest, ParentsSsxAbortDoesNotResetTheChildsConnection) {
  connect_pair();
  send_request();
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(go[1]);
    ::_exit(serve_in_child(server_.get(), {-1, go[0]}));
  }
  ::close(go[0]);
  EXPECT_EQ(ssx_abort(server_.release()), 0) << last_error_text();
  signal_fd(go[1]);
  ::close(go[1]);
  expect_child_reply(child);
  EXPECT_EQ(wait_child(child), 0);
}

// First use after fork wins: once the child has read from the connection, the parent's send
// fails with EPERM and nothing reaches the socket; the parent's ssx_close then sends nothing.
TEST_F(HandoffTest, ParentCannotSendOnceTheChildUsedTheConnection) {
  connect_pair();
  send_request();
  int used[2];
  int go[2];
  ASSERT_EQ(::pipe2(used, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(used[0]);
    ::close(go[1]);
    ::_exit(serve_in_child(server_.get(), {used[1], go[0]}));
  }
  ::close(used[1]);
  ::close(go[0]);
  await_fd(used[0]);
  errno = 0;
  EXPECT_EQ(ssx_send(server_.get(), "forged", 6, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_OWNED_BY_OTHER_PROCESS);
  EXPECT_NE(std::string(ssx_last_error()).find("process " + std::to_string(child)),
            std::string::npos)
      << ssx_last_error();
  EXPECT_NE(std::string(ssx_last_error()).find("ssx_release"), std::string::npos);
  char buf[16];
  EXPECT_EQ(ssx_recv(server_.get(), buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EPERM) << "the parent's state is dropped, every later call fails the same way";
  EXPECT_EQ(ssx_shutdown(server_.get(), SHUT_WR), -1);
  EXPECT_EQ(ssx_close(server_.release()), 0);
  signal_fd(go[1]);
  ::close(go[1]);
  ::close(used[0]);
  expect_child_reply(child);
  EXPECT_EQ(wait_child(child), 0);
}

// ... and the other way round: when the parent uses the connection first, the child is refused.
TEST_F(HandoffTest, ChildIsRefusedWhenTheParentUsedTheConnectionFirst) {
  connect_pair();
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(go[1]);
    await_fd(go[0]);
    errno = 0;
    const bool refused = ssx_send(server_.get(), "child", 5, 0) == -1 && errno == EPERM;
    ::_exit(refused ? 0 : 20);
  }
  ::close(go[0]);
  ASSERT_TRUE(ssx_send_all(server_.get(), "from the parent")) << last_error_text();
  signal_fd(go[1]);
  ::close(go[1]);
  EXPECT_EQ(wait_child(child), 0) << "the child must fail with EPERM";
  EXPECT_EQ(ssx_close(server_.release()), 0);  // owned: close_notify
  int error = -1;
  EXPECT_EQ(ssx_recv_until_eof(client_.get(), &error), "from the parent");
  EXPECT_EQ(error, 0) << std::strerror(error);
}

// A child that calls exec (or exits) can no longer claim the connection: the parent's ssx_close
// then owns it again and sends close_notify, though the parent did not use it since the fork.
TEST_F(HandoffTest, CloseNotifyIsSentOnceTheChildExecs) {
  connect_pair();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl("/bin/true", "true", static_cast<char *>(nullptr));
    ::_exit(127);
  }
  ASSERT_EQ(wait_child(child), 0);
  EXPECT_EQ(ssx_close(server_.release()), 0);
  int error = -1;
  EXPECT_EQ(ssx_recv_until_eof(client_.get(), &error), "");
  EXPECT_EQ(error, 0) << "close_notify expected: " << std::strerror(error);
}

// While a child that might still claim the connection lives, the parent's ssx_close sends
// nothing: when the child then exits without using it, the client sees a truncation.
TEST_F(HandoffTest, NoCloseNotifyWhileAChildMayStillClaimTheConnection) {
  connect_pair();
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(go[1]);
    await_fd(go[0]);
    ::_exit(0);  // never used the connection
  }
  ::close(go[0]);
  EXPECT_EQ(ssx_close(server_.release()), 0);
  ::close(go[1]);  // the child exits
  EXPECT_EQ(wait_child(child), 0);
  int error = -1;
  EXPECT_EQ(ssx_recv_until_eof(client_.get(), &error), "");
  EXPECT_EQ(error, ECONNRESET) << "no close_notify may have been sent";
}

// ssx_release leaves the descriptor open and the connection untouched.
TEST_F(HandoffTest, ReleaseForgetsTheStateAndSendsNothing) {
  connect_pair();
  const int fd = server_.release();
  EXPECT_EQ(ssx_release(fd), 0) << last_error_text();
  EXPECT_GE(::fcntl(fd, F_GETFD), 0) << "the descriptor must stay open";
  expect_nothing_for_client("ssx_release");
  errno = 0;
  EXPECT_EQ(ssx_send(fd, "x", 1, 0), -1);
  EXPECT_EQ(errno, EPERM) << "after ssx_release the socket is not an ssx socket";
  EXPECT_EQ(ssx_release(fd), 0) << "releasing twice is harmless";
  EXPECT_EQ(::close(fd), 0);
  int error = -1;
  EXPECT_EQ(ssx_recv_until_eof(client_.get(), &error), "");
  EXPECT_EQ(error, ECONNRESET) << "close(2) after ssx_release ends without close_notify";
}

TEST(HandoffErrors, ReleaseRejectsDescriptorsThatAreNotOpen) {
  errno = 0;
  EXPECT_EQ(ssx_release(-1), -1);
  EXPECT_EQ(errno, EBADF);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_EQ(ssx_release(p[0]), 0) << "an open descriptor ssx never saw: nothing to forget";
  ::close(p[0]);
  ::close(p[1]);
  errno = 0;
  EXPECT_EQ(ssx_release(p[0]), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_NE(std::string(ssx_last_error()).find("not open"), std::string::npos);
}

}  // namespace
}  // namespace ssx::test
