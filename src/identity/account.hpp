// SPDX-License-Identifier: Apache-2.0
// identity/account.hpp — a verified peer as an account on this machine.
//
// The policy's [[identity]] tables map peer principals (a certificate's URI SAN, DNS SAN or
// subject DN; "unix:uid=N" for AF_UNIX peers) to a local account. The account database (passwd,
// group) is read when a connection is queried, not when the policy loads: accounts may be created
// after the policy.

#ifndef SSX_IDENTITY_ACCOUNT_HPP
#define SSX_IDENTITY_ACCOUNT_HPP

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "policy/policy.hpp"

namespace ssx::identity {

struct Account {
  std::string user;  // "" when the uid has no passwd entry
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

// Mapping is the outcome of mapping one principal.
struct Mapping {
  std::optional<Account> account;  // set when a rule matched and resolved
  std::string why_not;             // when unset: why (no rule matched, unknown user, ...)
};

// map_principal finds the first [[identity]] rule matching |principal| (exact, or prefix for a
// trailing `*`) and resolves it: `user` gives uid, primary gid and (unless `groups` is listed)
// the supplementary groups from the account database; `uid`/`gid` override; `groups` lists
// group names or numbers. |local_uid|, for AF_UNIX peers, is the kernel-attested uid: when no rule
// matches, the peer maps to that uid itself.
Mapping map_principal(const policy::Policy &policy, const std::string &principal,
                      std::optional<uid_t> local_uid = std::nullopt);

}  // namespace ssx::identity

#endif  // SSX_IDENTITY_ACCOUNT_HPP
