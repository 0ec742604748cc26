// core/policy_state.hpp — the policy in force for this process, and what is built from it.
//
// A PolicySnapshot pairs one immutable Policy with the TLS contexts built from its settings, so a
// context is built once per (settings, role) and shared by every connection that uses it. Sockets
// hold a shared_ptr to the snapshot they were secured under: installing a new policy affects new
// connections only, never established ones.
//
// Thread safety: everything here may be called from any thread.

#ifndef SSX_CORE_POLICY_STATE_HPP
#define SSX_CORE_POLICY_STATE_HPP

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "policy/policy.hpp"
#include "protocol/tls/context.hpp"

namespace ssx::core {

class PolicySnapshot {
 public:
  explicit PolicySnapshot(policy::Policy policy) : policy_(std::move(policy)) {}
  const policy::Policy &policy() const { return policy_; }

  // tls_context returns the context for |settings| (which must belong to this snapshot's policy)
  // in |role|, building it on first use. Build failures are not cached: a fixed credential file
  // is picked up by the next connection.
  Result<std::shared_ptr<tls::Context>> tls_context(const policy::Settings &settings,
                                                    tls::Role role);

 private:
  policy::Policy policy_;
  std::mutex contexts_mu_;
  std::map<std::pair<const policy::Settings *, tls::Role>, std::shared_ptr<tls::Context>> contexts_;
};

// current_policy returns the policy in force, loading it on first use from policy::policy_path().
// With no $SSX_POLICY and no /etc/ssx/policy.toml the built-in defaults apply; a file that is set
// but missing, unreadable or invalid is EACCES (fail closed) with the loader's message, until a
// valid policy is installed.
Result<std::shared_ptr<PolicySnapshot>> current_policy();

// install_policy_file loads |path| and, if it is valid, makes it the policy in force for new
// connections. On failure the policy in force is unchanged.
Result<void> install_policy_file(const std::string &path);

// executable_path returns the target of /proc/self/exe ("" if unreadable), read once.
const std::string &executable_path();

}  // namespace ssx::core

#endif  // SSX_CORE_POLICY_STATE_HPP
