// SPDX-License-Identifier: Apache-2.0
// testlib/test_users.hpp — real local accounts for identity tests, created and removed by tests.
//
// Impersonation must be proven with the kernel's own access checks, so tests need real accounts.
// Names carry the process id, so test processes running in parallel never share one. Needs root
// (CI runs as root); TestUser::available() says whether this process can create accounts.

#ifndef SSX_TESTLIB_TEST_USERS_HPP
#define SSX_TESTLIB_TEST_USERS_HPP

#include <sys/types.h>

#include <string>

namespace ssx::test {

class TestUser {
 public:
  // Creates user "ssx<tag><pid>" with its own primary group, and, when |extra_group| is set, a
  // supplementary group "ssxg<tag><pid>" it belongs to. Throws on failure.
  explicit TestUser(const std::string &tag, bool extra_group = false);
  ~TestUser();
  TestUser(const TestUser &) = delete;
  TestUser &operator=(const TestUser &) = delete;

  const std::string &name() const { return name_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }
  gid_t extra_gid() const { return extra_gid_; }  // (gid_t)-1 without an extra group

  // available reports whether accounts can be created here (root with useradd present).
  static bool available();

 private:
  std::string name_;
  std::string group_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  gid_t extra_gid_ = static_cast<gid_t>(-1);
};

// thread_status_ids returns the "Uid:" and "Gid:" lines of /proc/thread-self/status.
std::string thread_status_ids();

}  // namespace ssx::test

#endif  // SSX_TESTLIB_TEST_USERS_HPP
