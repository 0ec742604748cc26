// SPDX-License-Identifier: Apache-2.0
// Tests of tools/ssx/common/unix_address.hpp: unix:PATH as the ssx command takes it, stale
// socket files, and removing a listener's socket file only while it is still ours.

#include "common/unix_address.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <string>

#include "common/address.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::cli {
namespace {

TEST(UnixAddress, ParsesAPathIntoASockaddr) {
  ASSERT_TRUE(is_unix_address("unix:/run/x.sock"));
  EXPECT_FALSE(is_unix_address("unix"));
  EXPECT_FALSE(is_unix_address("127.0.0.1:80"));
  auto a = parse_unix_address("unix:/run/x.sock");
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->path, "/run/x.sock");
  EXPECT_EQ(a->address.sun_family, AF_UNIX);
  EXPECT_STREQ(a->address.sun_path, "/run/x.sock");
  EXPECT_EQ(a->length, offsetof(sockaddr_un, sun_path) + 12);
  EXPECT_EQ(format_address(a->get()), "unix:/run/x.sock");
  auto relative = parse_unix_address("unix:rel.sock");
  ASSERT_TRUE(relative.has_value());
  EXPECT_EQ(relative->path, "rel.sock");
}

TEST(UnixAddress, TheLongestPathFitsAndOneByteMoreIsRefused) {
  const std::string longest(kMaxUnixPath, 'p');
  ASSERT_EQ(kMaxUnixPath, 107U);
  auto ok = parse_unix_address("unix:" + longest);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(std::strlen(ok->address.sun_path), kMaxUnixPath);
  auto bad = parse_unix_address("unix:" + longest + "p");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, EINVAL);
  EXPECT_NE(bad.error().message.find("the path is 108 bytes; an AF_UNIX socket path holds at "
                                     "most 107 (sun_path)"),
            std::string::npos)
      << bad.error().message;
  // The message quotes a bounded prefix of what was given.
  auto huge = parse_unix_address("unix:" + std::string(100000, 'h'));
  ASSERT_FALSE(huge.has_value());
  EXPECT_LT(huge.error().message.size(), 600U);
}

TEST(UnixAddress, EmptyPathsAndControlCharactersAreRefused) {
  for (const char *text : {"unix:", "unix:/a\nb", "unix:/a\x7f", "/run/x.sock"}) {
    auto r = parse_unix_address(text);
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "a control character echoed";
  }
}

TEST(UnixAddress, FormatsUnnamedAbstractAndHostilePeerPaths) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  EXPECT_EQ(format_unix_address(&a), "unix:(unnamed)");
  a.sun_path[1] = 'x';
  EXPECT_EQ(format_unix_address(&a), "unix:(abstract)");
  std::memcpy(a.sun_path, "/tmp/a\nforged", 13);
  EXPECT_EQ(format_unix_address(&a), "unix:/tmp/a?forged");
}

class StaleSocket : public ::testing::Test {
 protected:
  test::TempDir dir_;
  std::string path_ = dir_.file("s.sock");

  int bind_here(bool listening) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = parse_unix_address("unix:" + path_);
    EXPECT_EQ(::bind(fd, a->get(), a->length), 0) << std::strerror(errno);
    if (listening) {
      EXPECT_EQ(::listen(fd, 1), 0);
    }
    return fd;
  }
};

TEST_F(StaleSocket, NothingThereIsFine) {
  EXPECT_TRUE(clear_stale_unix_socket(path_).has_value());
}

TEST_F(StaleSocket, ADeadSocketIsRemoved) {
  ::close(bind_here(false));
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  auto r = clear_stale_unix_socket(path_);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_NE(::lstat(path_.c_str(), &st), 0);
}

TEST_F(StaleSocket, ALiveSocketIsInUse) {
  int fd = bind_here(true);
  auto r = clear_stale_unix_socket(path_);
  ::close(fd);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EADDRINUSE);
  EXPECT_NE(r.error().message.find("Address already in use"), std::string::npos);
}

TEST_F(StaleSocket, AFileIsNeverRemoved) {
  { std::ofstream(path_) << "data"; }
  auto r = clear_stale_unix_socket(path_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EEXIST);
  struct stat st {};
  EXPECT_EQ(::lstat(path_.c_str(), &st), 0);
}

TEST_F(StaleSocket, TheSocketFileIsRemovedOnlyWhileItIsStillOurs) {
  ::close(bind_here(true));
  { UnixSocketFile ours(path_); }
  struct stat st {};
  EXPECT_NE(::lstat(path_.c_str(), &st), 0) << "our socket file stayed";

  // Still listening (so its inode cannot be reused) when another program replaces the file at
  // the same path: not ours to remove.
  const int listening = bind_here(true);
  UnixSocketFile ours(path_);
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  const int other = bind_here(true);
  ours.remove();
  EXPECT_EQ(::lstat(path_.c_str(), &st), 0) << "another program's socket file was removed";
  ::close(other);
  ::close(listening);
}

}  // namespace
}  // namespace ssx::cli
