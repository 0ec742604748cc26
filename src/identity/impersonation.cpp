// SPDX-License-Identifier: Apache-2.0
#include "identity/impersonation.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace ssx::identity {
namespace {

// Credentials are per *thread* in the kernel, but glibc's setuid/setgid/setgroups family changes
// every thread of the process (it signals each thread to make the same call, as POSIX requires).
// Impersonation must touch the calling thread only, so these wrappers make the system calls
// directly.
int thread_setresuid(uid_t r, uid_t e, uid_t s) {
  return static_cast<int>(::syscall(SYS_setresuid, r, e, s));
}
int thread_setresgid(gid_t r, gid_t e, gid_t s) {
  return static_cast<int>(::syscall(SYS_setresgid, r, e, s));
}
int thread_setgroups(const std::vector<gid_t> &groups) {
  return static_cast<int>(::syscall(SYS_setgroups, groups.size(), groups.data()));
}

constexpr uid_t kUnchanged = static_cast<uid_t>(-1);
constexpr int kCapSetgid = 6;  // linux/capability.h
constexpr int kCapSetuid = 7;

struct Saved {
  bool active = false;
  uid_t euid = 0;
  gid_t egid = 0;
  std::vector<gid_t> groups;
};

thread_local Saved saved;

// effective_capabilities reads CapEff of the calling thread (capabilities are per thread too).
unsigned long long effective_capabilities() {
  std::ifstream status("/proc/thread-self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  }
  return 0;
}

std::vector<gid_t> current_groups() {
  int n = ::getgroups(0, nullptr);
  std::vector<gid_t> groups(n > 0 ? static_cast<size_t>(n) : 0);
  if (n > 0) n = ::getgroups(n, groups.data());
  groups.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return groups;
}

Failure syscall_failure(const char *call) {
  return fail(errno == EPERM ? EPERM : errno, std::string(call) + ": " + std::strerror(errno));
}

// restore puts back |s| (uid first: with euid 0 again the thread may change gid and groups).
Result<void> restore(const Saved &s) {
  if (thread_setresuid(kUnchanged, s.euid, kUnchanged) != 0) return syscall_failure("setresuid");
  if (thread_setgroups(s.groups) != 0) return syscall_failure("setgroups");
  if (thread_setresgid(kUnchanged, s.egid, kUnchanged) != 0) return syscall_failure("setresgid");
  return {};
}

}  // namespace

bool impersonating() {
  return saved.active;
}

Result<void> impersonate(const Account &account) {
  if (saved.active) return fail(EBUSY, "this thread is already impersonating a peer");
  const unsigned long long caps = effective_capabilities();
  const bool has_setgid = (caps >> kCapSetgid) & 1U;
  const bool has_setuid = (caps >> kCapSetuid) & 1U;
  if (!has_setgid || !has_setuid) {
    std::string missing = !has_setgid && !has_setuid ? "CAP_SETGID and CAP_SETUID"
                          : !has_setgid              ? "CAP_SETGID"
                                                     : "CAP_SETUID";
    return fail(EPERM, "impersonation needs " + missing + ", which this process lacks");
  }
  Saved before;
  before.euid = ::geteuid();
  before.egid = ::getegid();
  before.groups = current_groups();

  // Groups and gid first: once the euid is the peer's, the thread may no longer change them.
  if (thread_setgroups(account.groups) != 0) return syscall_failure("setgroups");
  if (thread_setresgid(kUnchanged, account.gid, kUnchanged) != 0) {
    Failure f = syscall_failure("setresgid");
    (void)restore(before);
    return f;
  }
  if (thread_setresuid(kUnchanged, account.uid, kUnchanged) != 0) {
    Failure f = syscall_failure("setresuid");
    (void)restore(before);
    return f;
  }
  before.active = true;
  saved = std::move(before);
  return {};
}

Result<void> revert() {
  if (!saved.active) return {};
  if (auto r = restore(saved); !r) return r;
  saved = Saved{};
  return {};
}

}  // namespace ssx::identity
