// SPDX-License-Identifier: Apache-2.0
// Tests of tests/testlib/run_command.hpp: exit codes, captured output, stdin, bounded waits and
// that background children die with their owner.

#include "testlib/run_command.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <stdexcept>

namespace ssx::test {
namespace {

using std::chrono::milliseconds;

TEST(RunCommand, ReportsExitCodeAndInterleavedOutput) {
  auto result = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_FALSE(result.timed_out);
  EXPECT_NE(result.output.find("out\n"), std::string::npos);
  EXPECT_NE(result.output.find("err\n"), std::string::npos);
}

TEST(RunCommand, FeedsStdin) {
  auto result = run_command({"cat"}, std::chrono::seconds(10), "hello\n");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, "hello\n");
}

TEST(RunCommand, SurvivesChildThatIgnoresStdin) {
  // The child exits without reading; writing the rest must not raise SIGPIPE in the test.
  auto result = run_command({"true"}, std::chrono::seconds(10), std::string(1 << 20, 'x'));
  EXPECT_EQ(result.exit_code, 0);
}

TEST(RunCommand, KillsCommandThatOutlivesTimeout) {
  auto start = std::chrono::steady_clock::now();
  auto result = run_command({"sleep", "30"}, milliseconds(200));  // a command that outlives it
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(RunCommand, ThrowsWhenProgramDoesNotExist) {
  EXPECT_THROW(run_command({"/nonexistent/ssx-no-such-program"}), std::runtime_error);
}

TEST(ChildProcess, WaitsForCompleteLineWithPrefix) {
  // The pause splits the line across two writes (the case under test); were the halves to
  // arrive together the test would still hold. `exec sleep 30` keeps the child running.
  ChildProcess child(
      {"sh", "-c", "echo noise; printf 'PORT 12'; sleep 0.2; echo 34; exec sleep 30"});
  EXPECT_EQ(child.wait_for_line("PORT ", std::chrono::seconds(10)), "PORT 1234") << child.output();
  EXPECT_EQ(child.wait_for_line("MISSING", milliseconds(50)), "");
}

TEST(ChildProcess, WaitsForOutputAndIsKilledOnDestruction) {
  pid_t pid = -1;
  {
    ChildProcess child({"sh", "-c", "echo ready; exec sleep 30"});  // runs until killed
    pid = child.pid();
    EXPECT_TRUE(child.wait_for_output("ready", std::chrono::seconds(10))) << child.output();
    EXPECT_FALSE(child.wait_for_output("never printed", milliseconds(50)));
  }
  // Reaped, so the pid no longer names our child.
  EXPECT_EQ(kill(pid, 0), -1);
}

TEST(ChildProcess, TakesInputOnAPipeAndReportsItsExit) {
  ChildProcess child({"sh", "-c", "read line; echo \"got $line\"; cat; exit 4"},
                     ChildProcess::Stdin::pipe);
  ASSERT_TRUE(child.write_input("first\n"));
  EXPECT_EQ(child.wait_for_line("got", std::chrono::seconds(10)), "got first") << child.output();
  ASSERT_TRUE(child.write_input("rest\n"));
  child.close_input();
  CommandResult result = child.wait_for_exit(std::chrono::seconds(10));
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_EQ(result.output, "got first\nrest\n");
  EXPECT_FALSE(child.write_input("late")) << "stdin is closed";
}

TEST(ChildProcess, WaitForExitIsBoundedAndKillsTheChild) {
  ChildProcess child({"sleep", "30"}, ChildProcess::Stdin::pipe);  // outlives the wait
  auto start = std::chrono::steady_clock::now();
  CommandResult result = child.wait_for_exit(milliseconds(100));
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace ssx::test
