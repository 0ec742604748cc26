// SPDX-License-Identifier: Apache-2.0
#include "testlib/test_users.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

#include "testlib/run_command.hpp"

namespace ssx::test {

bool TestUser::available() {
  return ::geteuid() == 0 && ::access("/usr/sbin/useradd", X_OK) == 0;
}

TestUser::TestUser(const std::string &tag, bool extra_group) {
  const std::string suffix = tag + std::to_string(::getpid());
  name_ = "ssx" + suffix;
  std::vector<std::string> add = {"/usr/sbin/useradd", "--no-create-home", "--shell",
                                  "/usr/sbin/nologin", "--user-group"};
  if (extra_group) {
    group_ = "ssxg" + suffix;
    auto g = run_command({"/usr/sbin/groupadd", group_});
    if (g.exit_code != 0) throw std::runtime_error("groupadd: " + g.output);
    add.insert(add.end(), {"--groups", group_});
  }
  add.push_back(name_);
  auto r = run_command(add);
  if (r.exit_code != 0) throw std::runtime_error("useradd: " + r.output);
  passwd *pw = ::getpwnam(name_.c_str());
  if (pw == nullptr) throw std::runtime_error("new user " + name_ + " not found");
  uid_ = pw->pw_uid;
  gid_ = pw->pw_gid;
  if (extra_group) extra_gid_ = ::getgrnam(group_.c_str())->gr_gid;
}

TestUser::~TestUser() {
  run_command({"/usr/sbin/userdel", name_});
  if (!group_.empty()) run_command({"/usr/sbin/groupdel", group_});
}

std::string thread_status_ids() {
  std::ifstream status("/proc/thread-self/status");
  std::string line;
  std::string out;
  while (std::getline(status, line)) {
    if (line.rfind("Uid:", 0) == 0 || line.rfind("Gid:", 0) == 0 || line.rfind("Groups:", 0) == 0) {
      out += line + "\n";
    }
  }
  return out;
}

}  // namespace ssx::test
