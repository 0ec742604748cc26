// SPDX-License-Identifier: Apache-2.0
#include "identity/account.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace ssx::identity {
namespace {

// Buffers for the reentrant account-database calls; retried larger on ERANGE.
constexpr size_t kInitialBuffer = 4096;
constexpr size_t kMaxBuffer = 1 << 20;

std::optional<passwd> lookup_user(const std::string *name, uid_t uid, std::vector<char> &buf) {
  buf.resize(kInitialBuffer);
  for (;;) {
    passwd pw{};
    passwd *out = nullptr;
    int rc = name != nullptr ? ::getpwnam_r(name->c_str(), &pw, buf.data(), buf.size(), &out)
                             : ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &out);
    if (rc == ERANGE && buf.size() < kMaxBuffer) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || out == nullptr) return std::nullopt;
    return pw;
  }
}

std::optional<gid_t> lookup_group(const std::string &name) {
  char *end = nullptr;
  unsigned long numeric = std::strtoul(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0') return static_cast<gid_t>(numeric);
  std::vector<char> buf(kInitialBuffer);
  for (;;) {
    group gr{};
    group *out = nullptr;
    int rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &out);
    if (rc == ERANGE && buf.size() < kMaxBuffer) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || out == nullptr) return std::nullopt;
    return gr.gr_gid;
  }
}

std::vector<gid_t> supplementary_groups(const std::string &user, gid_t gid) {
  int count = 32;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  while (::getgrouplist(user.c_str(), gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<size_t>(count));
  }
  groups.resize(static_cast<size_t>(count));
  return groups;
}

bool matches(const policy::IdentityMapping &rule, const std::string &principal) {
  if (rule.prefix) return principal.compare(0, rule.peer.size(), rule.peer) == 0;
  return principal == rule.peer;
}

// resolve_uid fills an account from the passwd entry of |uid| when there is one.
Account account_for_uid(uid_t uid, std::optional<gid_t> fallback_gid) {
  Account a;
  a.uid = uid;
  a.gid = fallback_gid.value_or(static_cast<gid_t>(uid));
  std::vector<char> buf;
  if (auto pw = lookup_user(nullptr, uid, buf)) {
    a.user = pw->pw_name;
    a.gid = pw->pw_gid;
    a.groups = supplementary_groups(a.user, a.gid);
  } else {
    a.groups = {a.gid};
  }
  return a;
}

}  // namespace

Mapping map_principal(const policy::Policy &policy, const std::string &principal,
                      std::optional<uid_t> local_uid) {
  const policy::IdentityMapping *rule = nullptr;
  for (const auto &candidate : policy.identities) {
    if (matches(candidate, principal)) {
      rule = &candidate;
      break;
    }
  }
  if (rule == nullptr) {
    if (local_uid) return {account_for_uid(*local_uid, std::nullopt), {}};
    return {std::nullopt, "no [[identity]] rule of the policy maps \"" + principal + "\""};
  }

  Account a;
  if (rule->user) {
    std::vector<char> buf;
    auto pw = lookup_user(&*rule->user, 0, buf);
    if (!pw) {
      return {std::nullopt, "[[identity]] rule for \"" + rule->peer + "\" names user \"" +
                                *rule->user + "\", which does not exist on this machine"};
    }
    a.user = pw->pw_name;
    a.uid = pw->pw_uid;
    a.gid = pw->pw_gid;
  } else if (rule->uid) {
    a = account_for_uid(*rule->uid, rule->gid);
  }
  if (rule->uid) a.uid = *rule->uid;
  if (rule->gid) a.gid = *rule->gid;
  if (rule->groups) {
    a.groups.clear();
    for (const auto &name : *rule->groups) {
      auto gid = lookup_group(name);
      if (!gid) {
        return {std::nullopt, "[[identity]] rule for \"" + rule->peer + "\" names group \"" + name +
                                  "\", which does not exist on this machine"};
      }
      a.groups.push_back(*gid);
    }
  } else if (!a.user.empty()) {
    a.groups = supplementary_groups(a.user, a.gid);
  } else if (a.groups.empty()) {
    a.groups = {a.gid};
  }
  return {a, {}};
}

}  // namespace ssx::identity
