// SPDX-License-Identifier: Apache-2.0
#include "policy_diff.hpp"

#include <sys/stat.h>

#include <utility>
#include <vector>

#include "core/policy_state.hpp"

namespace ssx::cli::tunnel {
namespace {

constexpr size_t kMaxDescription = 600;

std::string join(const std::vector<std::string> &items) {
  std::string out;
  for (const auto &item : items) out += (out.empty() ? "" : ",") + item;
  return "[" + out + "]";
}

std::map<std::string, std::string> settings_text(const policy::Settings &s) {
  return {
      {"protocol", std::string(policy::to_string(s.protocol))},
      {"min_tls_version", std::string(policy::to_string(s.min_tls_version))},
      {"cipher_suites", join(s.cipher_suites)},
      {"tls12_ciphers", s.tls12_ciphers},
      {"groups", join(s.groups)},
      {"certificate", s.certificate},
      {"private_key", s.private_key},
      {"trust_bundle", s.trust_bundle},
      {"crl", s.crl},
      {"peer_authentication", std::string(policy::to_string(s.peer_authentication))},
      {"require_peer_target_name", s.require_peer_target_name ? "true" : "false"},
      {"allow_insecure", s.allow_insecure ? "true" : "false"},
      {"handshake_timeout_ms", std::to_string(s.handshake_timeout_ms)},
      {"session_tickets", s.session_tickets ? "true" : "false"},
      {"tcp_nodelay", s.tcp_nodelay ? "true" : "false"},
      {"peer_names", join(s.peer_names)},
      {"deny", s.deny ? "true" : "false"},
  };
}

std::string stamp_of(const std::string &path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

PolicyPicture picture_of_policy_in_force() {
  PolicyPicture picture;
  picture.generation = core::policy_status().generation;
  auto snapshot = core::current_policy();
  if (!snapshot) return picture;
  const policy::Policy &p = (*snapshot)->policy();
  picture.source = p.source;
  picture.tables["[defaults]"] = settings_text(p.defaults);
  for (const auto &rule : p.rules)
    picture.tables["rule \"" + rule.name + "\""] = settings_text(rule.settings);
  picture.tables["[[identity]]"] = {{"count", std::to_string(p.identities.size())}};
  for (const auto &file : (*snapshot)->files()) picture.files[file] = stamp_of(file);
  return picture;
}

std::string describe_changes(const PolicyPicture &before, const PolicyPicture &after) {
  std::vector<std::string> changes;
  if (before.source != after.source) changes.push_back("source " + after.source);
  for (const auto &[table, keys] : after.tables) {
    auto old = before.tables.find(table);
    if (old == before.tables.end()) {
      changes.push_back(table + " added");
      continue;
    }
    for (const auto &[key, value] : keys) {
      auto was = old->second.find(key);
      const std::string from = was == old->second.end() ? "" : was->second;
      if (from == value) continue;
      std::string change = table;
      change += ' ';
      change += key;
      change += ' ';
      change += from;
      change += " -> ";
      change += value;
      changes.push_back(std::move(change));
    }
  }
  for (const auto &[table, keys] : before.tables) {
    if (after.tables.count(table) == 0) changes.push_back(table + " removed");
  }
  for (const auto &[file, stamp] : after.files) {
    auto was = before.files.find(file);
    if (was != before.files.end() && was->second != stamp) changes.push_back(file + " changed");
  }
  if (changes.empty()) return "no change in the policy or its files";
  std::string out = "changed: ";
  for (size_t i = 0; i < changes.size(); ++i) {
    if (out.size() > kMaxDescription) {
      out += "; and " + std::to_string(changes.size() - i) + " more";
      break;
    }
    out += (i > 0 ? "; " : "") + changes[i];
  }
  return out;
}

}  // namespace ssx::cli::tunnel
