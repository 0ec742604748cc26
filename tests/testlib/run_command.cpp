// SPDX-License-Identifier: Apache-2.0
#include "testlib/run_command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

namespace ssx::test {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const std::string &what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// Pipe is a pipe whose ends close with it; both ends are close-on-exec, so a child only keeps the
// end it dup2's onto a standard descriptor.
struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (pipe2(fd, O_CLOEXEC) != 0) throw_errno("pipe2");
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (fd[0] >= 0) close(fd[0]);
    fd[0] = -1;
  }
  void close_write() {
    if (fd[1] >= 0) close(fd[1]);
    fd[1] = -1;
  }
  int release_read() { return std::exchange(fd[0], -1); }
  int release_write() { return std::exchange(fd[1], -1); }
};

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// spawn forks and execs |argv| in a new process group with |stdin_fd| as standard input and
// |out_fd| as standard output and error. It reports a failed exec by throwing, which it learns
// through a close-on-exec pipe: the pipe closes empty on success and carries errno on failure.
pid_t spawn(const std::vector<std::string> &argv, int stdin_fd, int out_fd) {
  if (argv.empty()) throw std::runtime_error("spawn: empty argv");
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char *> args;
  for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  Pipe status;
  pid_t pid = fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(stdin_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) {
      int err = errno;
      (void)!write(status.fd[1], &err, sizeof err);
      _exit(127);
    }
    execvp(args[0], args.data());
    int err = errno;
    (void)!write(status.fd[1], &err, sizeof err);
    _exit(127);
  }
  // Also from the parent, so that a kill(-pid) cannot race the child's own setpgid.
  setpgid(pid, pid);
  status.close_write();
  int err = 0;
  ssize_t n;
  do {
    n = read(status.fd[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof err)) {
    waitpid(pid, nullptr, 0);
    errno = err;
    throw_errno("cannot run " + argv[0]);
  }
  return pid;
}

void fill_status(int status, CommandResult &result) {
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
}

// kill_and_reap ends |pid|'s whole process group and collects the child's status.
int kill_and_reap(pid_t pid) {
  kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// read_available appends what |fd| has to |out|; returns false at end of file or on error.
bool read_available(int fd, std::string &out) {
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    return false;
  }
}

// BlockSigpipe keeps SIGPIPE from killing the test when a child closes its stdin before reading
// everything; the process-wide disposition is left alone, since tests of ssx's own SIGPIPE
// handling need the default. A SIGPIPE raised meanwhile is consumed before unblocking.
class BlockSigpipe {
 public:
  BlockSigpipe() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~BlockSigpipe() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    timespec zero{};
    while (sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
};

}  // namespace

CommandResult run_command(const std::vector<std::string> &argv, std::chrono::milliseconds timeout,
                          const std::string &stdin_text) {
  BlockSigpipe block_sigpipe;
  Pipe in;
  Pipe out;
  pid_t pid = spawn(argv, in.fd[0], out.fd[1]);
  in.close_read();
  out.close_write();
  fcntl(out.fd[0], F_SETFL, O_NONBLOCK);
  fcntl(in.fd[1], F_SETFL, O_NONBLOCK);

  CommandResult result;
  auto deadline = Clock::now() + timeout;
  size_t written = 0;
  if (stdin_text.empty()) in.close_write();
  bool out_open = true;
  while (out_open && !result.timed_out) {
    pollfd fds[2] = {{out.fd[0], POLLIN, 0}, {in.fd[1], POLLOUT, 0}};
    nfds_t nfds = in.fd[1] >= 0 ? 2 : 1;
    int ready = poll(fds, nfds, remaining_ms(deadline));
    if (ready < 0 && errno != EINTR) break;
    if (ready == 0) {
      result.timed_out = true;
      break;
    }
    if (fds[0].revents != 0) out_open = read_available(out.fd[0], result.output);
    if (nfds == 2 && fds[1].revents != 0) {
      ssize_t n = write(in.fd[1], stdin_text.data() + written, stdin_text.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_text.size()) {
        in.close_write();
      }
    }
  }
  in.close_write();

  // The output is closed; the child is exiting or has exited. Wait for it within the deadline.
  while (!result.timed_out) {
    // WNOWAIT leaves the child a zombie, which keeps its process-group id from being reused
    // until the group is killed below.
    siginfo_t info{};
    int r = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid == pid) {
      // A grandchild left in the group by the command must not outlive the test.
      fill_status(kill_and_reap(pid), result);
      return result;
    }
    if (r < 0 && errno != EINTR) throw_errno("waitid");
    if (remaining_ms(deadline) == 0) {
      result.timed_out = true;
      break;
    }
    // Poll interval of a bounded wait for the exit (waitid WNOHANG); a pidfd would avoid it.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill_and_reap(pid);
  result.exit_code = -1;
  return result;
}

std::string describe(const std::vector<std::string> &argv, const CommandResult &result) {
  std::string out = "command:";
  for (const auto &a : argv) out += " " + a;
  if (result.timed_out) {
    out += "\ntimed out";
  } else if (result.signal != 0) {
    out += "\nkilled by signal " + std::to_string(result.signal);
  } else {
    out += "\nexit code " + std::to_string(result.exit_code);
  }
  out += "\noutput:\n" + result.output;
  return out;
}

ChildProcess::ChildProcess(const std::vector<std::string> &argv, Stdin input) {
  Pipe out;
  if (input == Stdin::pipe) {
    Pipe in;
    pid_ = spawn(argv, in.fd[0], out.fd[1]);
    in.close_read();
    in_fd_ = in.release_write();
    fcntl(in_fd_, F_SETFL, O_NONBLOCK);
  } else {
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) throw_errno("open /dev/null");
    try {
      pid_ = spawn(argv, null_fd, out.fd[1]);
    } catch (...) {
      close(null_fd);
      throw;
    }
    close(null_fd);
  }
  out.close_write();
  out_fd_ = out.release_read();
  fcntl(out_fd_, F_SETFL, O_NONBLOCK);
}

bool ChildProcess::write_input(const std::string &text, std::chrono::milliseconds timeout) {
  BlockSigpipe block_sigpipe;
  auto deadline = Clock::now() + timeout;
  size_t written = 0;
  while (written < text.size()) {
    if (in_fd_ < 0) return false;
    ssize_t n = write(in_fd_, text.data() + written, text.size() - written);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;
    pollfd fd{in_fd_, POLLOUT, 0};
    int ready = poll(&fd, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
  }
  return true;
}

void ChildProcess::close_input() {
  if (in_fd_ >= 0) close(in_fd_);
  in_fd_ = -1;
}

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    siginfo_t info{};
    int r = waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid == pid_) break;
    if (r < 0 && errno != EINTR) throw_errno("waitid");
    if (remaining_ms(deadline) == 0) return std::nullopt;
    // Keep draining the child's output so that it can never block on a full pipe.
    if (out_fd_ >= 0) {
      pollfd fd{out_fd_, POLLIN, 0};
      if (poll(&fd, 1, std::min(remaining_ms(deadline), 10)) > 0 &&
          !read_available(out_fd_, output_)) {
        close(out_fd_);
        out_fd_ = -1;
      }
    } else {
      // Poll interval of a bounded wait for the exit (waitid WNOHANG); a pidfd would avoid it.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  CommandResult result;
  fill_status(kill_and_reap(pid_), result);
  pid_ = -1;
  close_input();
  if (out_fd_ >= 0) {
    read_available(out_fd_, output_);
    close(out_fd_);
    out_fd_ = -1;
  }
  return result.exit_code;
}

CommandResult ChildProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  CommandResult result;
  auto deadline = Clock::now() + timeout;
  while (out_fd_ >= 0 && !result.timed_out) {
    pollfd fd{out_fd_, POLLIN, 0};
    int ready = poll(&fd, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      result.timed_out = true;
      break;
    }
    if (!read_available(out_fd_, output_)) {
      close(out_fd_);
      out_fd_ = -1;
    }
  }
  while (!result.timed_out && pid_ > 0) {
    siginfo_t info{};
    int r = waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid == pid_) {
      fill_status(kill_and_reap(pid_), result);
      pid_ = -1;
      break;
    }
    if (r < 0 && errno != EINTR) throw_errno("waitid");
    if (remaining_ms(deadline) == 0) {
      result.timed_out = true;
      break;
    }
    // Poll interval of a bounded wait for the exit (waitid WNOHANG); a pidfd would avoid it.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop();
  if (result.timed_out) result.exit_code = -1;
  result.output = output_;
  return result;
}

ChildProcess::~ChildProcess() {
  stop();
}

template <typename Predicate>
bool ChildProcess::wait_until(Predicate done, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!done(output_)) {
    if (out_fd_ < 0) return false;
    pollfd fd{out_fd_, POLLIN, 0};
    int ready = poll(&fd, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    if (!read_available(out_fd_, output_)) {
      close(out_fd_);
      out_fd_ = -1;
    }
  }
  return true;
}

bool ChildProcess::wait_for_output(const std::string &text, std::chrono::milliseconds timeout) {
  return wait_until([&](const std::string &out) { return out.find(text) != std::string::npos; },
                    timeout);
}

std::string ChildProcess::wait_for_line(const std::string &text,
                                        std::chrono::milliseconds timeout) {
  std::string line;
  auto complete_line = [&](const std::string &out) {
    for (size_t at = out.find(text); at != std::string::npos; at = out.find(text, at + 1)) {
      size_t end = out.find('\n', at);
      if (end == std::string::npos) return false;
      size_t begin = out.rfind('\n', at);
      begin = begin == std::string::npos ? 0 : begin + 1;
      line = out.substr(begin, end - begin);
      return true;
    }
    return false;
  };
  if (!wait_until(complete_line, timeout)) return "";
  return line;
}

void ChildProcess::stop() {
  close_input();
  if (pid_ > 0) {
    kill_and_reap(pid_);
    pid_ = -1;
  }
  if (out_fd_ >= 0) {
    read_available(out_fd_, output_);
    close(out_fd_);
    out_fd_ = -1;
  }
}

}  // namespace ssx::test
