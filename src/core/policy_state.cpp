#include "core/policy_state.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <shared_mutex>

namespace ssx::core {
namespace {

struct State {
  std::shared_mutex mu;
  bool loaded = false;
  std::shared_ptr<PolicySnapshot> snapshot;  // null while the policy is broken
  Failure error;
};

State &state() {
  static State s;
  return s;
}

// load_default decides the startup policy: the file if there is one, else the built-in defaults.
void load_default(State &s) {
  const char *env = std::getenv("SSX_POLICY");
  const bool explicit_path = env != nullptr && *env != '\0';
  std::string path = policy::policy_path();
  auto loaded = policy::load_policy_file(path);
  if (loaded) {
    s.snapshot = std::make_shared<PolicySnapshot>(std::move(*loaded));
  } else if (loaded.error().code == ENOENT && !explicit_path) {
    s.snapshot = std::make_shared<PolicySnapshot>(policy::builtin_policy());
  } else {
    s.snapshot = nullptr;
    s.error = fail(EACCES, "policy " + path + " is unusable, refusing to secure sockets: " +
                               loaded.error().message);
  }
  s.loaded = true;
}

}  // namespace

Result<std::shared_ptr<tls::Context>> PolicySnapshot::tls_context(const policy::Settings &settings,
                                                                  tls::Role role) {
  std::lock_guard lock(contexts_mu_);
  auto key = std::make_pair(&settings, role);
  if (auto it = contexts_.find(key); it != contexts_.end()) return it->second;
  auto built = tls::Context::build(settings, role);
  if (!built) return built.error();
  contexts_.emplace(key, *built);
  return *built;
}

Result<std::shared_ptr<PolicySnapshot>> current_policy() {
  State &s = state();
  {
    std::shared_lock lock(s.mu);
    if (s.loaded) {
      if (s.snapshot) return s.snapshot;
      return s.error;
    }
  }
  std::unique_lock lock(s.mu);
  if (!s.loaded) load_default(s);
  if (s.snapshot) return s.snapshot;
  return s.error;
}

Result<void> install_policy_file(const std::string &path) {
  auto loaded = policy::load_policy_file(path);
  if (!loaded) return loaded.error();
  auto snapshot = std::make_shared<PolicySnapshot>(std::move(*loaded));
  State &s = state();
  std::unique_lock lock(s.mu);
  s.snapshot = std::move(snapshot);
  s.loaded = true;
  return {};
}

const std::string &executable_path() {
  static const std::string kPath = [] {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }();
  return kPath;
}

}  // namespace ssx::core
