// SPDX-License-Identifier: Apache-2.0
// Tests of pki::write_file and pki::read_file: exact modes, atomic replacement, no symlink
// following, and errno-bearing failures.

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "pki/pki.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::pki {
namespace {

unsigned mode_of(const std::string &path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::vector<std::string> entries(const std::string &dir) {
  std::vector<std::string> out;
  DIR *d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent *e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  closedir(d);
  return out;
}

TEST(WriteFile, WritesContentWithExactModeWhateverTheUmask) {
  test::TempDir dir;
  mode_t old = umask(0077);
  auto public_result = write_file(dir.file("a.crt"), "cert", 0644);
  umask(0022);
  auto private_result = write_file(dir.file("a.key"), "key", 0600);
  umask(old);
  ASSERT_TRUE(public_result.has_value()) << public_result.error().message;
  ASSERT_TRUE(private_result.has_value()) << private_result.error().message;
  EXPECT_EQ(mode_of(dir.file("a.crt")), 0644u);
  EXPECT_EQ(mode_of(dir.file("a.key")), 0600u);
  EXPECT_EQ(read_file(dir.file("a.crt")).value(), "cert");
  EXPECT_EQ(read_file(dir.file("a.key")).value(), "key");
}

TEST(WriteFile, ReplacesExistingFileAndLeavesNoTemporaryFiles) {
  test::TempDir dir;
  ASSERT_TRUE(write_file(dir.file("f"), "old contents", 0644).has_value());
  ASSERT_TRUE(write_file(dir.file("f"), "new", 0600).has_value());
  EXPECT_EQ(read_file(dir.file("f")).value(), "new");
  EXPECT_EQ(mode_of(dir.file("f")), 0600u);
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"f"});
}

TEST(WriteFile, ReplacesSymlinkWithoutFollowingIt) {
  test::TempDir dir;
  ASSERT_TRUE(write_file(dir.file("victim"), "untouched", 0644).has_value());
  ASSERT_EQ(symlink(dir.file("victim").c_str(), dir.file("link").c_str()), 0);
  ASSERT_TRUE(write_file(dir.file("link"), "secret", 0600).has_value());
  EXPECT_EQ(read_file(dir.file("victim")).value(), "untouched");
  struct stat st {};
  ASSERT_EQ(lstat(dir.file("link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(read_file(dir.file("link")).value(), "secret");
}

TEST(WriteFile, WritesEmptyAndLargeContent) {
  test::TempDir dir;
  ASSERT_TRUE(write_file(dir.file("empty"), "", 0644).has_value());
  EXPECT_EQ(read_file(dir.file("empty")).value(), "");
  std::string big(300000, 'x');
  ASSERT_TRUE(write_file(dir.file("big"), big, 0644).has_value());
  EXPECT_EQ(read_file(dir.file("big")).value(), big);
}

TEST(WriteFile, FailsWithErrnoAndPathWhenDirectoryIsMissing) {
  test::TempDir dir;
  std::string path = dir.file("missing/f.key");
  auto result = write_file(path, "x", 0600);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ENOENT);
  EXPECT_NE(result.error().message.find(path), std::string::npos) << result.error().message;
}

TEST(WriteFile, RejectsPathWithoutFileName) {
  EXPECT_EQ(write_file("", "x", 0644).error().code, EINVAL);
  EXPECT_EQ(write_file("/tmp/", "x", 0644).error().code, EINVAL);
}

TEST(WriteFile, FailsWhenTargetIsADirectory) {
  test::TempDir dir;
  ASSERT_EQ(mkdir(dir.file("d").c_str(), 0700), 0);
  auto result = write_file(dir.file("d"), "x", 0644);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, EISDIR);
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"d"}) << "temporary file left behind";
}

TEST(ReadFile, ReportsMissingFileAndDirectory) {
  test::TempDir dir;
  auto missing = read_file(dir.file("nope"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_NE(missing.error().message.find(dir.file("nope")), std::string::npos);
  EXPECT_EQ(read_file(dir.path()).error().code, EINVAL);
}

TEST(ReadFile, RefusesFilesOverOneMebibyte) {
  test::TempDir dir;
  ASSERT_TRUE(write_file(dir.file("huge"), std::string((1 << 20) + 1, 'x'), 0644).has_value());
  EXPECT_EQ(read_file(dir.file("huge")).error().code, EFBIG);
}

}  // namespace
}  // namespace ssx::pki
