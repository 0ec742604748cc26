// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/security_options.hpp — the application's requirements on the command line:
// --name (repeatable), --encrypt, --allow-insecure. What they mean is the library's: the policy
// decides the rest (docs/policy.md).

#ifndef SSX_TOOLS_SSX_COMMON_SECURITY_OPTIONS_HPP
#define SSX_TOOLS_SSX_COMMON_SECURITY_OPTIONS_HPP

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "ssx/ssx.hpp"

namespace ssx::cli {

struct SecurityOptions {
  std::vector<std::string> names;  // peer target names
  bool encrypt = false;            // SSX_GUARANTEE_ENCRYPTION
  bool allow_insecure = false;     // SSX_ALLOW_INSECURE (the policy must agree)
};

// add_security_options adds --name, --encrypt and --allow-insecure (which exclude each other) to
// |app|. |name_help| says what the names apply to (the server, or clients' certificates).
void add_security_options(CLI::App *app, SecurityOptions &options, const std::string &name_help);

// settings_from turns the options into SecuritySettings with |names| as the target names.
SecuritySettings settings_from(const SecurityOptions &options,
                               const std::vector<std::string> &names);

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_SECURITY_OPTIONS_HPP
