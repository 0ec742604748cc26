// SPDX-License-Identifier: Apache-2.0
#include "spawn.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char **environ;

namespace ssx::cli {
namespace {

// What the child reports through the status pipe when it cannot exec.
enum class Step : int { stdio, setgroups, setgid, setuid, exec };

struct ChildFailure {
  Step step;
  int error;
};

const char *step_name(Step step) {
  switch (step) {
    case Step::stdio:
      return "dup2";
    case Step::setgroups:
      return "setgroups";
    case Step::setgid:
      return "setgid";
    case Step::setuid:
      return "setuid";
    case Step::exec:
      break;
  }
  return "exec";
}

std::string home_of(uid_t uid) {
  std::vector<char> buffer(16384);
  passwd pw{};
  passwd *found = nullptr;
  if (getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return "/";
  }
  return pw.pw_dir != nullptr && *pw.pw_dir != '\0' ? pw.pw_dir : "/";
}

bool is_named(const char *entry, const std::string &name) {
  return std::strncmp(entry, name.c_str(), name.size()) == 0 && entry[name.size()] == '=';
}

std::vector<std::string> build_environment(const SpawnRequest &request) {
  std::vector<std::pair<std::string, std::string>> set = request.set;
  if (request.run_as) {
    set.emplace_back("HOME", home_of(request.run_as->uid));
    const std::string user =
        request.run_as->user.empty() ? std::to_string(request.run_as->uid) : request.run_as->user;
    set.emplace_back("USER", user);
    set.emplace_back("LOGNAME", user);
  }
  std::vector<std::string> out;
  for (char **e = environ; e != nullptr && *e != nullptr; ++e) {
    bool dropped = false;
    for (const auto &name : request.unset) dropped = dropped || is_named(*e, name);
    for (const auto &[name, value] : set) dropped = dropped || is_named(*e, name);
    if (!dropped) out.emplace_back(*e);
  }
  for (const auto &[name, value] : set) {
    std::string entry = name;
    entry += '=';
    entry += value;
    out.push_back(std::move(entry));
  }
  return out;
}

// put_on moves |fd| to |target| without close-on-exec (dup2 of a descriptor onto itself would
// leave the flag as it was).
bool put_on(int fd, int target) {
  if (fd == target) return fcntl(fd, F_SETFD, 0) == 0;
  return dup2(fd, target) == target;
}

[[noreturn]] void child_fail(int status_fd, Step step) {
  ChildFailure f{step, errno};
  (void)!write(status_fd, &f, sizeof f);
  _exit(127);
}

}  // namespace

Result<pid_t> spawn(const SpawnRequest &request) {
  if (request.argv.empty()) return Failure{EINVAL, "no command to run"};
  // Everything the child needs is built before fork; after it only async-signal-safe calls.
  std::vector<std::string> env = build_environment(request);
  std::vector<char *> argv, envp;
  for (const auto &a : request.argv) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  for (auto &e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<gid_t> groups = request.run_as ? request.run_as->groups : std::vector<gid_t>{};

  int status[2];
  if (pipe2(status, O_CLOEXEC) != 0) return Failure{errno, std::string("pipe: ") + strerror(errno)};
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(status[0]);
    close(status[1]);
    return Failure{err, std::string("fork: ") + std::strerror(err)};
  }
  if (pid == 0) {
    close(status[0]);
    // Dispositions and the mask survive exec: give the command the defaults it expects.
    (void)signal(SIGPIPE, SIG_DFL);
    (void)signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!put_on(request.stdio, 0) || !put_on(request.stdio, 1)) child_fail(status[1], Step::stdio);
    if (request.run_as) {
      // Groups first, then the gid, then the uid: after setuid nothing else may change.
      if (setgroups(groups.size(), groups.data()) != 0) child_fail(status[1], Step::setgroups);
      if (setgid(request.run_as->gid) != 0) child_fail(status[1], Step::setgid);
      if (setuid(request.run_as->uid) != 0) child_fail(status[1], Step::setuid);
    }
    execvpe(argv[0], argv.data(), envp.data());
    child_fail(status[1], Step::exec);
  }
  close(status[1]);
  ChildFailure f{};
  ssize_t n;
  do {
    n = read(status[0], &f, sizeof f);
  } while (n < 0 && errno == EINTR);
  close(status[0]);
  if (n != static_cast<ssize_t>(sizeof f)) return pid;  // closed empty: exec succeeded

  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (!request.run_as || f.step == Step::exec || f.step == Step::stdio) {
    const std::string step = f.step == Step::exec ? "" : std::string(step_name(f.step)) + ": ";
    return Failure{f.error, "cannot run " + request.argv[0] + ": " + step + std::strerror(f.error)};
  }
  std::string who = request.run_as->user.empty() ? "uid " + std::to_string(request.run_as->uid)
                                                 : request.run_as->user;
  std::string message = "cannot run " + request.argv[0] + " as " + who + ": " + step_name(f.step) +
                        ": " + std::strerror(f.error);
  if (f.error == EPERM) message += " (switching accounts needs root: CAP_SETUID and CAP_SETGID)";
  return Failure{f.error, message};
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace ssx::cli
