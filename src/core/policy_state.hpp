// SPDX-License-Identifier: Apache-2.0
// core/policy_state.hpp — the policy in force for this process, what is built from it, and how
// it is reloaded.
//
// A PolicySnapshot pairs one immutable Policy with the TLS contexts built from its settings, so a
// context is built once per (settings, role) and shared by every connection that uses it. Sockets
// hold a shared_ptr to the snapshot they were secured under: installing a new policy affects new
// connections only, never established ones.
//
// Reloading. The policy in force is replaced, without a restart, in two ways:
//   - reload_policy() (ssx_reload_policy) re-reads the policy file and everything it names now;
//   - current_policy(), on the path that secures every new socket, checks at most once per
//     check interval (1 s; $SSX_POLICY_CHECK_INTERVAL_MS, 0 = never) whether the policy file or
//     any certificate, key, trust bundle or CRL it names changed, and reloads when one did.
// Either way a complete new snapshot is built (the policy validated, every TLS context it needs
// built, so a key that does not match its certificate fails here and not in a handshake) and
// swapped in atomically. A reload that fails changes nothing: the last good snapshot stays in
// force, the failure is returned (reload_policy) or logged on stderr (automatic check: one line,
// lines at least a second apart, the same message at most once a minute) and the next check
// tries again.
//
// Change detection polls stat(2) rather than using inotify; policy_state.cpp says why, and how a
// file caught half-written is kept from ever being used.
//
// Thread safety: everything here may be called from any thread.

#ifndef SSX_CORE_POLICY_STATE_HPP
#define SSX_CORE_POLICY_STATE_HPP

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "policy/policy.hpp"
#include "protocol/tls/context.hpp"

namespace ssx::core {

class PolicySnapshot {
 public:
  // Wraps |policy| without building anything: contexts are built on first use. Tests use this;
  // the policy in force is always made with build().
  explicit PolicySnapshot(policy::Policy policy) : policy_(std::move(policy)) {}

  // build wraps |policy| and builds now every TLS context a socket can need under it that reads
  // a file the policy names: for the settings of [defaults] and of each [[rule]] that select TLS,
  // do not deny and name a certificate, trust bundle file or CRL, a client context (unless the
  // rule is inbound only) and a server context when they have a certificate (unless the rule is
  // outbound only). The snapshot thereby holds the credentials and trust as the files were at
  // this moment and never reads them again. Contexts whose only file is the system trust store
  // are still built on first use: nothing in them rotates, and loading the store costs about
  // 100 ms per context. Fails (with the context's errno, usually EACCES) naming the table:
  // "SOURCE: rule "web": certificate ...".
  static Result<std::shared_ptr<PolicySnapshot>> build(policy::Policy policy);

  const policy::Policy &policy() const { return policy_; }

  // tls_context returns the context for |settings| (which must belong to this snapshot's policy)
  // in |role|, building it on first use. Build failures are not cached.
  Result<std::shared_ptr<tls::Context>> tls_context(const policy::Settings &settings,
                                                    tls::Role role);

  // dtls_context returns the DTLS context for |settings| in |role|, derived on first use from
  // the TLS context of the same settings and role (tls::Context::build_datagram): the same
  // credentials, chain, trust store and CRLs, so no file is read again.
  Result<std::shared_ptr<tls::Context>> dtls_context(const policy::Settings &settings,
                                                     tls::Role role);

  // files returns every file the policy names: certificates, keys, trust bundles other than
  // "system", CRLs, each once, in the order they first appear ([defaults], then the rules).
  std::vector<std::string> files() const;

 private:
  policy::Policy policy_;
  std::mutex contexts_mu_;
  std::map<std::pair<const policy::Settings *, tls::Role>, std::shared_ptr<tls::Context>> contexts_;
  std::map<std::pair<const policy::Settings *, tls::Role>, std::shared_ptr<tls::Context>>
      dtls_contexts_;
};

// current_policy returns the policy in force, loading it on first use from policy::policy_path().
// With no $SSX_POLICY and no /etc/ssx/policy.toml the built-in defaults apply; a file that is set
// but missing, unreadable or invalid is EACCES (fail closed) with the loader's message, until a
// valid policy is installed or the file is fixed. When the check interval has passed it first
// checks the files for changes (see above), reloading on this thread when they changed; other
// threads meanwhile go on with the snapshot in force.
Result<std::shared_ptr<PolicySnapshot>> current_policy();

// install_policy_file loads |path| and, if it is valid, makes it the policy in force for new
// connections, and the file that reloads read from then on. On failure nothing changes.
Result<void> install_policy_file(const std::string &path);

// reload_policy loads the policy file in force again (the one install_policy_file last installed,
// else policy::policy_path()), with every file it names, and on success makes it the policy in
// force for new connections. On failure the policy in force does not change and the loader's (or
// the TLS context's) failure is returned. A default path without a file keeps the built-in
// defaults; a file that disappears after it was in force is an error (ENOENT).
Result<void> reload_policy();

// set_policy_check_interval sets how often current_policy() looks for changed files, 0 to stop
// looking, and makes the next call look. Initially $SSX_POLICY_CHECK_INTERVAL_MS (read with
// secure_getenv; 0 to 3600000), else 1000.
void set_policy_check_interval(std::chrono::milliseconds interval);

// PolicyStatus describes the reload machinery, for tests and diagnostics.
struct PolicyStatus {
  std::string path;              // the policy file reloads read
  std::uint64_t generation = 0;  // incremented each time a snapshot is installed
  std::string last_failure;      // the last failed load or reload, "" after a success
};
PolicyStatus policy_status();

// executable_path returns the target of /proc/self/exe ("" if unreadable), read once.
const std::string &executable_path();

}  // namespace ssx::core

#endif  // SSX_CORE_POLICY_STATE_HPP
