// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/policy_option.hpp — the --policy FILE option of the commands that secure
// sockets (connect, listen, tunnel).
//
// Without --policy, ssx uses the policy it always uses ($SSX_POLICY, else /etc/ssx/policy.toml,
// else the built-in defaults). With it, FILE replaces that policy for this process, loaded with
// ssx_load_policy before any socket is secured.

#ifndef SSX_TOOLS_SSX_COMMON_POLICY_OPTION_HPP
#define SSX_TOOLS_SSX_COMMON_POLICY_OPTION_HPP

#include <CLI/CLI.hpp>
#include <string>

namespace ssx::cli {

// add_policy_option adds --policy FILE to |app|; the path goes to |path|.
CLI::Option *add_policy_option(CLI::App *app, std::string &path);

// load_policy_option loads |path| when it is not empty. A file that cannot be loaded is a
// configuration error: it throws CommandError with exit code 2 and the loader's message
// ("FILE:LINE:COLUMN: ..." for an invalid file).
void load_policy_option(const std::string &path);

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_POLICY_OPTION_HPP
