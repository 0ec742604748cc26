// SPDX-License-Identifier: Apache-2.0
// tools/ssx/command.hpp — what every `ssx` subcommand shares: exit codes, how to fail, and the
// registration functions that main.cpp's table lists. See main.cpp for how to add a subcommand.

#ifndef SSX_TOOLS_SSX_COMMAND_HPP
#define SSX_TOOLS_SSX_COMMAND_HPP

#include <CLI/CLI.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "ssx/result.hpp"

namespace ssx::cli {

// Exit codes, the same for every subcommand.
enum ExitCode : int {
  kExitOk = 0,       // did what was asked
  kExitFailure = 1,  // a runtime failure: a file that cannot be read, a CA that exists, …
  kExitUsage = 2,    // a usage or configuration error: bad option, argument or value
};

// CommandError is how a subcommand fails: it throws one, and main prints "ssx: <what()>" on one
// line of stderr and exits with code(). Subcommands never print errors or call exit() themselves.
class CommandError : public std::runtime_error {
 public:
  CommandError(int code, const std::string &message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// usage_error fails with exit code 2: the command line asked for something invalid.
[[noreturn]] inline void usage_error(const std::string &message) {
  throw CommandError(kExitUsage, message);
}

// failure fails with exit code 1: a valid request that could not be carried out.
[[noreturn]] inline void failure(const std::string &message) {
  throw CommandError(kExitFailure, message);
}

// check returns |result|'s value, or fails with |code| and the result's reason.
template <class T>
T check(Result<T> result, int code = kExitFailure) {
  if (!result.has_value()) throw CommandError(code, result.error().message);
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

// set_example adds an "Example:" section to |app|'s --help; every subcommand has one.
inline void set_example(CLI::App *app, const std::string &example) {
  app->footer("\nExample:\n" + example);
}

// Registration functions, one per cmd_<name>.cpp. Each adds its subcommand to the top-level app.
void register_pki(CLI::App &app);
void register_policy(CLI::App &app);
void register_demo(CLI::App &app);
void register_connect(CLI::App &app);
void register_listen(CLI::App &app);
void register_tunnel(CLI::App &app);
void register_agent(CLI::App &app);

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMAND_HPP
