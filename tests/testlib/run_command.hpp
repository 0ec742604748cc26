// SPDX-License-Identifier: Apache-2.0
// testlib/run_command.hpp — run programs from tests: to completion, or in the background.
//
// Tests check ssx against tools we did not write (openssl, certtool, gnutls-cli) and run the ssx
// binary itself. Every wait here is bounded by a timeout, and a child is killed (its whole process
// group, SIGKILL) on every path out of a test, an assertion failure included.

#ifndef SSX_TESTLIB_RUN_COMMAND_HPP
#define SSX_TESTLIB_RUN_COMMAND_HPP

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ssx::test {

// CommandResult is how a finished command ended. |output| holds stdout and stderr interleaved.
struct CommandResult {
  int exit_code = -1;      // the exit status, or -1 when killed by a signal or timed out
  int signal = 0;          // the terminating signal, 0 when the command exited
  bool timed_out = false;  // killed because it outlived its timeout
  std::string output;
};

// run_command runs |argv| (argv[0] looked up in $PATH) with |stdin_text| on its standard input
// and waits at most |timeout| for it to exit; on timeout it kills the child and reports
// timed_out. Throws std::runtime_error when the program cannot be started at all.
CommandResult run_command(const std::vector<std::string> &argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30),
                          const std::string &stdin_text = "");

// describe formats a command line and its result for assertion messages.
std::string describe(const std::vector<std::string> &argv, const CommandResult &result);

// ChildProcess runs a program in the background, in its own process group, with stdout and
// stderr captured and stdin at /dev/null, or on a pipe the test writes to (Stdin::pipe: for
// interactive peers such as `openssl s_server` or `gnutls-cli`, which send what they read there
// and may quit at its end). The destructor kills the group and reaps the child.
class ChildProcess {
 public:
  enum class Stdin { null, pipe };

  // Starts |argv|; throws std::runtime_error when it cannot.
  explicit ChildProcess(const std::vector<std::string> &argv, Stdin input = Stdin::null);
  ~ChildProcess();
  ChildProcess(const ChildProcess &) = delete;
  ChildProcess &operator=(const ChildProcess &) = delete;

  // wait_for_output reads the child's output until it contains |text| (true), or until the child
  // closes its output or |timeout| passes (false).
  bool wait_for_output(const std::string &text, std::chrono::milliseconds timeout);

  // wait_for_line reads the child's output until it holds a complete line (ended by '\n')
  // containing |text|, and returns that line without its end; "" when the child closes its output
  // or |timeout| passes first. Lines are those of the whole output, stdout and stderr together.
  std::string wait_for_line(const std::string &text, std::chrono::milliseconds timeout);

  // write_input writes all of |text| to the child's stdin (Stdin::pipe only) within |timeout|;
  // false when the child stopped reading, closed it, or the time ran out. Never raises SIGPIPE.
  bool write_input(const std::string &text,
                   std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // close_input closes the child's stdin (end of file for the child); idempotent.
  void close_input();

  // wait_for_exit reads the child's output until it closes it and waits for the child to exit,
  // within |timeout|; on timeout the child is killed and the result says timed_out. The whole
  // process group is killed afterwards either way. |output| is everything the child wrote.
  CommandResult wait_for_exit(std::chrono::milliseconds timeout);

  // wait_exit waits at most |timeout| for the child to exit, collecting its output, and returns
  // its exit status (-1 when a signal killed it), after killing anything it left in its process
  // group. Returns nullopt, leaving the child running, when it did not exit in time (unlike
  // wait_for_exit, which kills it).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  // output returns what the child has written so far (as read by wait_for_output/stop).
  const std::string &output() const { return output_; }

  // stop kills the child (SIGKILL to its group) and waits for it; idempotent.
  void stop();

  pid_t pid() const { return pid_; }

 private:
  // wait_until reads output until |done| holds for it (true) or EOF / |timeout| (false).
  template <typename Predicate>
  bool wait_until(Predicate done, std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  std::string output_;
};

}  // namespace ssx::test

#endif  // SSX_TESTLIB_RUN_COMMAND_HPP
