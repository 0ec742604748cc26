// SPDX-License-Identifier: Apache-2.0
#include "policy_source.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

#include "ssx/ssx.h"

namespace ssx::cli::tunnel {

namespace {
constexpr const char *kSystemPolicy = "/etc/ssx/policy.toml";
}

PolicySource::PolicySource(std::optional<std::string> path) {
  if (path) {
    path_ = *path;
    explicit_ = true;
    return;
  }
  // As the library decides (secure_getenv: a set-user-ID tunnel ignores $SSX_POLICY).
  const char *env = ::secure_getenv("SSX_POLICY");
  if (env != nullptr && *env != '\0') {
    path_ = env;
    explicit_ = true;
  } else {
    path_ = kSystemPolicy;
  }
}

Result<void> PolicySource::load() {
  if (!explicit_) {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0 && errno == ENOENT) {
      builtin_ = true;  // what the library does too: no file, built-in defaults
      return {};
    }
  }
  if (ssx_load_policy(path_.c_str()) != 0) return Failure{errno, ssx_last_error()};
  builtin_ = false;
  return {};
}

Result<void> PolicySource::reload() {
  if (!explicit_ && !builtin_) {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0 && errno == ENOENT) {
      return fail(ENOENT, path_ + ": cannot open policy file: No such file or directory");
    }
  }
  // Switch to ssx_reload_policy() here once the library has it.
  return load();
}

std::string PolicySource::describe() const {
  return builtin_ ? std::string("built-in defaults (no ") + kSystemPolicy + ")" : path_;
}

}  // namespace ssx::cli::tunnel
