// SPDX-License-Identifier: Apache-2.0
#include "capi/info_block.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace ssx::capi {
namespace {

// StringArena copies strings into the tail of the block.
class StringArena {
 public:
  explicit StringArena(char *next) : next_(next) {}
  // put copies |s| and returns it, or returns null for an empty string when |empty_is_null|.
  const char *put(const std::string &s, bool empty_is_null = true) {
    if (s.empty() && empty_is_null) return nullptr;
    char *out = next_;
    std::memcpy(out, s.c_str(), s.size() + 1);
    next_ += s.size() + 1;
    return out;
  }

 private:
  char *next_;
};

}  // namespace

ssx_security_info *make_info_block(const core::Report &report) {
  const tls::Details &d = report.tls;
  static const std::vector<gid_t> kNoGroups;
  const std::vector<gid_t> &groups = report.account ? report.account->groups : kNoGroups;
  const std::string user = report.account ? report.account->user : std::string();
  const std::string *strings[] = {&d.version,
                                  &d.cipher,
                                  &d.group,
                                  &d.peer_principal,
                                  &d.peer_spki_sha256,
                                  &d.peer_chain_pem,
                                  &d.local_principal,
                                  &report.rule,
                                  &user,
                                  &report.peer_security_label};
  // Layout: struct | peer_names pointers + NULL | groups | strings. Each part's alignment is no
  // stricter than the one before it.
  size_t bytes = sizeof(ssx_security_info) + (d.peer_names.size() + 1) * sizeof(char *) +
                 groups.size() * sizeof(gid_t);
  for (const std::string *s : strings) bytes += s->size() + 1;
  for (const auto &n : d.peer_names) bytes += n.size() + 1;

  auto *block = static_cast<unsigned char *>(std::calloc(1, bytes));
  if (block == nullptr) return nullptr;
  auto *info = reinterpret_cast<ssx_security_info *>(block);
  auto **names = reinterpret_cast<const char **>(block + sizeof(ssx_security_info));
  auto *group_array = reinterpret_cast<gid_t *>(names + d.peer_names.size() + 1);
  StringArena arena(reinterpret_cast<char *>(group_array + groups.size()));

  info->protocol = report.protocol;
  info->flags = report.flags;
  info->version = arena.put(d.version);
  info->cipher = arena.put(d.cipher);
  info->group = arena.put(d.group);
  info->peer_principal = arena.put(d.peer_principal);
  for (size_t i = 0; i < d.peer_names.size(); ++i) names[i] = arena.put(d.peer_names[i], false);
  names[d.peer_names.size()] = nullptr;
  info->peer_names = names;
  info->peer_spki_sha256 = arena.put(d.peer_spki_sha256);
  info->peer_chain_pem = arena.put(d.peer_chain_pem);
  info->local_principal = arena.put(d.local_principal);
  info->policy_rule = arena.put(report.rule, false);
  info->handshake_ns = report.handshake_ns;
  info->peer_user = arena.put(user);
  info->peer_uid = report.account ? report.account->uid : static_cast<uid_t>(-1);
  info->peer_gid = report.account ? report.account->gid : static_cast<gid_t>(-1);
  std::copy(groups.begin(), groups.end(), group_array);
  info->peer_groups = report.account ? group_array : nullptr;
  info->peer_group_count = groups.size();
  info->peer_pid = report.peer_pid;
  info->peer_security_label = arena.put(report.peer_security_label);
  info->idle_timeout_ms = report.idle_timeout_ms;
  return info;
}

}  // namespace ssx::capi
