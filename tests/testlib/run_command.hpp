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
// stderr captured and stdin at /dev/null (or a pipe the test writes). The destructor kills the
// group and reaps the child.
class ChildProcess {
 public:
  enum class Stdin { null, pipe };
  // Starts |argv|; throws std::runtime_error when it cannot. With Stdin::pipe the test feeds the
  // child's standard input with write_stdin and ends it with close_stdin.
  explicit ChildProcess(const std::vector<std::string> &argv, Stdin in = Stdin::null);
  ~ChildProcess();
  ChildProcess(const ChildProcess &) = delete;
  ChildProcess &operator=(const ChildProcess &) = delete;

  // wait_for_output reads the child's output until it contains |text| (true), or until the child
  // closes its output or |timeout| passes (false).
  bool wait_for_output(const std::string &text, std::chrono::milliseconds timeout);

  // wait_for_line waits like wait_for_output for a complete line (ended by '\n') that starts
  // with |prefix|, and returns it without the newline; empty when none arrived in time.
  std::string wait_for_line(const std::string &prefix, std::chrono::milliseconds timeout);

  // write_stdin writes all of |data| to the child's stdin (Stdin::pipe), reading its output
  // meanwhile so that neither side can block the other; false when the child closed its stdin or
  // |timeout| passed first.
  bool write_stdin(const std::string &data, std::chrono::milliseconds timeout);
  // close_stdin ends the child's standard input (it reads end of file); idempotent.
  void close_stdin();

  // wait_exit waits at most |timeout| for the child to exit, collecting its output, and returns
  // its exit status (-1 when a signal killed it), after killing anything it left in its process
  // group. Returns nullopt, leaving the child running, when it did not exit in time.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  // output returns what the child has written so far (as read by wait_for_output/stop).
  const std::string &output() const { return output_; }

  // stop kills the child (SIGKILL to its group) and waits for it; idempotent.
  void stop();

  pid_t pid() const { return pid_; }

 private:
  bool read_output_once(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int in_fd_ = -1;
  std::string output_;
};

}  // namespace ssx::test

#endif  // SSX_TESTLIB_RUN_COMMAND_HPP
