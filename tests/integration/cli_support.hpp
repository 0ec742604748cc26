// SPDX-License-Identifier: Apache-2.0
// cli_support.hpp — running the built `ssx` binary from integration tests: where it is, and
// `ssx listen` in the background with the port it picked.

#ifndef SSX_TESTS_INTEGRATION_CLI_SUPPORT_HPP
#define SSX_TESTS_INTEGRATION_CLI_SUPPORT_HPP

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "testlib/run_command.hpp"

namespace ssx::test {

// ssx_binary is $SSX_TEST_BIN_DIR/tools/ssx/ssx (ctest sets the variable); run by hand, the
// binary is found relative to this test executable in the build tree.
inline std::string ssx_binary() {
  const char *bin_dir = std::getenv("SSX_TEST_BIN_DIR");
  if (bin_dir != nullptr && *bin_dir != '\0') return std::string(bin_dir) + "/tools/ssx/ssx";
  char self[4096] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string exe(self, n > 0 ? static_cast<size_t>(n) : 0);
  return exe.substr(0, exe.rfind('/')) + "/../tools/ssx/ssx";
}

// ssx_argv is {ssx_binary(), args...}.
inline std::vector<std::string> ssx_argv(std::vector<std::string> args) {
  args.insert(args.begin(), ssx_binary());
  return args;
}

// expect_one_line_error checks the CLI convention: exit |code|, one line "ssx: …" and nothing
// else.
inline void expect_one_line_error(const CommandResult &result, int code,
                                  const std::string &context) {
  EXPECT_EQ(result.exit_code, code) << context << "\n" << result.output;
  EXPECT_EQ(result.output.rfind("ssx: ", 0), 0u) << context << "\n" << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << context << "\n"
                                                                             << result.output;
}

// BackgroundListen runs `ssx listen ARGS...` and waits for its "ssx: listening on ADDR" line;
// the ChildProcess kills it on every path out of the test.
class BackgroundListen {
 public:
  explicit BackgroundListen(const std::vector<std::string> &args,
                            ChildProcess::Stdin in = ChildProcess::Stdin::null)
      : child_(listen_argv(args), in) {
    std::string line = child_.wait_for_line("ssx: listening on ", std::chrono::seconds(10));
    size_t colon = line.rfind(':');
    if (colon != std::string::npos) port_ = line.substr(colon + 1);
    if (port_.empty()) ADD_FAILURE() << "ssx listen did not start:\n" << child_.output();
  }
  const std::string &port() const { return port_; }
  ChildProcess &child() { return child_; }
  const std::string &output() const { return child_.output(); }

 private:
  static std::vector<std::string> listen_argv(std::vector<std::string> args) {
    args.insert(args.begin(), "listen");
    return ssx_argv(std::move(args));
  }
  ChildProcess child_;
  std::string port_;
};

}  // namespace ssx::test

#endif  // SSX_TESTS_INTEGRATION_CLI_SUPPORT_HPP
