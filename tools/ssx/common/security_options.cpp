// SPDX-License-Identifier: Apache-2.0
#include "security_options.hpp"

namespace ssx::cli {

void add_security_options(CLI::App *app, SecurityOptions &options, const std::string &name_help) {
  app->add_option("--name", options.names, name_help)
      ->type_name("TARGET")
      ->type_size(1)
      ->allow_extra_args(false);
  CLI::Option *encrypt = app->add_flag(
      "--encrypt", options.encrypt,
      "Require encryption (SSX_GUARANTEE_ENCRYPTION): fail rather than run in cleartext");
  CLI::Option *insecure = app->add_flag(
      "--allow-insecure", options.allow_insecure,
      "Allow cleartext with a peer that does not speak TLS (SSX_ALLOW_INSECURE), where the "
      "policy also says allow_insecure = true");
  encrypt->excludes(insecure);
}

SecuritySettings settings_from(const SecurityOptions &options,
                               const std::vector<std::string> &names) {
  SecuritySettings settings;
  settings.guarantee_encryption = options.encrypt;
  settings.allow_insecure = options.allow_insecure;
  settings.target_names = names;
  return settings;
}

}  // namespace ssx::cli
