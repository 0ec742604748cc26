// SPDX-License-Identifier: Apache-2.0
// tools/ssx/main.cpp — the `ssx` command: a table of subcommands, one source file each.
//
// Adding a subcommand `ssx foo`:
//   1. Write tools/ssx/cmd_foo.cpp defining `void register_foo(CLI::App &app)` in ssx::cli. It
//      calls app.add_subcommand("foo", "<one-line summary>"), adds its options and any nested
//      subcommands, gives each an example with set_example(), and sets a callback that does the
//      work. Options live in a std::shared_ptr captured by the callback (the App outlives the
//      registration function). CMake picks the new file up by itself.
//   2. Declare register_foo in command.hpp and add a row to kCommands below; the table's order is
//      the order of `ssx --help`.
//
// Conventions for every subcommand:
//   - exit 0 on success, 1 on a runtime failure, 2 on a usage or configuration error;
//   - a failure is one line on stderr, "ssx: <reason>", never a stack trace. Callbacks report one
//     by throwing cli::CommandError (usage_error(), failure(), check()); main() prints it. Any
//     other exception is caught here too and counts as a runtime failure. Errors CLI11 finds while
//     parsing (missing argument, bad value, failed ->check) are usage errors;
//   - --help shows an example; what the user asked for goes to stdout, warnings to stderr
//     prefixed "ssx: warning: ".

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "command.hpp"
#include "ssx/result.hpp"
#include "ssx/version.h"

namespace {

struct Command {
  const char *name;  // for readers of this table; the registrar names the subcommand itself
  void (*register_command)(CLI::App &app);
};

constexpr Command kCommands[] = {
    {"demo", ssx::cli::register_demo},     {"connect", ssx::cli::register_connect},
    {"listen", ssx::cli::register_listen}, {"pki", ssx::cli::register_pki},
    {"policy", ssx::cli::register_policy}, {"tunnel", ssx::cli::register_tunnel},
    {"agent", ssx::cli::register_agent},
};

// help_hint names the --help of the deepest subcommand the user reached, e.g. "ssx pki issue
// --help", so that a one-line error still tells them where to look.
std::string help_hint(const CLI::App &app) {
  std::string path = app.get_name();
  const CLI::App *current = &app;
  while (true) {
    auto parsed = current->get_subcommands();
    if (parsed.empty()) break;
    current = parsed.front();
    path += " " + current->get_name();
  }
  return "see '" + path + " --help'";
}

void print_error(const std::string &message) {
  (void)std::fprintf(stderr, "ssx: %s\n", message.c_str());
}

// run builds the command line from kCommands, parses it (which runs the chosen subcommand) and
// turns every way of failing into a one-line message and an exit code.
int run(int argc, char **argv) {
  CLI::App app("ssx — secure sockets by administrator policy: tools for the ssx library", "ssx");
  try {
    app.set_version_flag("--version", std::string("ssx ") + SSX_VERSION_STRING);
    app.require_subcommand(1);
    ssx::cli::set_example(&app,
                          "  ssx demo\n"
                          "  ssx pki init ./pki\n"
                          "  ssx pki issue ./pki server.example.org --ip 192.0.2.10");
    for (const Command &command : kCommands) command.register_command(app);
    app.parse(argc, argv);  // subcommand callbacks run inside parse()
    // Output that never reached its destination (a full disk, a closed pipe) is a failure too.
    if (std::fflush(stdout) != 0) {
      print_error(std::string("cannot write output: ") + std::strerror(errno));
      return ssx::cli::kExitFailure;
    }
    return ssx::cli::kExitOk;
  } catch (const CLI::ParseError &e) {
    // --help and --version arrive as "successful" parse errors; CLI11 prints them.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    print_error(std::string(e.what()) + " (" + help_hint(app) + ")");
    return ssx::cli::kExitUsage;
  } catch (const ssx::cli::CommandError &e) {
    print_error(e.what());
    return e.code();
  } catch (const ssx::Error &e) {
    print_error(e.reason());
    return ssx::cli::kExitFailure;
  } catch (const std::exception &e) {
    print_error(e.what());
    return ssx::cli::kExitFailure;
  }
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (...) {
    // Only reachable when reporting an error failed (e.g. out of memory): keep the promise of a
    // one-line message and no stack trace.
    (void)std::fputs("ssx: unexpected internal error\n", stderr);
    return ssx::cli::kExitFailure;
  }
}
