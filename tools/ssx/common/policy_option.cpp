// SPDX-License-Identifier: Apache-2.0
#include "policy_option.hpp"

#include "../command.hpp"
#include "ssx/ssx.h"

namespace ssx::cli {

CLI::Option *add_policy_option(CLI::App *app, std::string &path) {
  return app
      ->add_option("--policy", path,
                   "Policy file to use instead of $SSX_POLICY or /etc/ssx/policy.toml")
      ->type_name("FILE");
}

void load_policy_option(const std::string &path) {
  if (path.empty()) return;
  if (ssx_load_policy(path.c_str()) != 0) {
    usage_error(std::string("cannot load policy: ") + ssx_last_error());
  }
}

}  // namespace ssx::cli
