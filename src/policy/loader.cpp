// SPDX-License-Identifier: Apache-2.0
// TOML → Policy: parse_policy. The only file that includes toml++, which is slow to compile.
//
// Reading order, and so which error is reported when a file has several: toml++'s syntax check,
// then `version`, the top-level keys, [defaults], each [[rule]] in file order, each [[identity]]
// in file order, agent_socket and agent_timeout_ms, each [[key]] in file order, then the
// private_key = "agent:NAME" references (which may come before the [[key]] they name). Within a
// table, keys are read in file order; the checks that combine keys or read files (validate.hpp)
// run after the table's last key. The first error stops loading.

#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <utility>
#include <vector>

#include "agent/protocol.hpp"
#include "base/text.hpp"
#include "identity/target_name.hpp"
#include "ossl/credentials.hpp"
#include "ossl/names.hpp"
#include "ossl/ossl.hpp"
#include "policy/policy.hpp"
#include "policy/prescan.hpp"
#include "policy/toml_names.hpp"
#include "policy/validate.hpp"
#include "policy/values.hpp"

namespace ssx::policy {
namespace {

using agent::valid_key_name;
using base::kQuotedPrefix;
using base::quote;
using Entry = std::pair<const toml::key *, const toml::node *>;

constexpr std::int64_t kMaxHandshakeTimeoutMs = 600000;  // ten minutes
constexpr std::int64_t kMaxIdleTimeoutMs = 604800000;    // a week
constexpr std::int64_t kMaxId = 4294967294;              // (uid_t)-1 means "no change"
// Every string the policy holds is bounded, so that no value can flood a log line or an error
// message: paths by PATH_MAX, rule names (which appear in every log line about a connection) by
// kMaxRuleName, identity peers like target names (identity/target_name.hpp). Account names have
// their own, smaller bound (values.hpp).
constexpr std::size_t kMaxString = PATH_MAX - 1;
constexpr std::size_t kMaxRuleName = 128;

constexpr std::string_view kTopKeys[] = {
    "version", "defaults", "rule", "identity", "key", "agent_socket", "agent_timeout_ms"};
constexpr std::string_view kKeyKeys[] = {"name", "certificate", "private_key", "users", "programs"};
constexpr std::int64_t kMaxAgentTimeoutMs = 60000;
constexpr std::string_view kMatchKeys[] = {"name",  "direction", "transport", "port",
                                           "ports", "address",   "program"};
// Datagram settings' bounds (docs/policy.md).
constexpr std::int64_t kMinDtlsMtu = 512;
constexpr std::int64_t kMaxDtlsMtu = 65507;  // the largest UDP payload
constexpr std::int64_t kMaxPeers = 1000000;
constexpr std::int64_t kMaxPeerIdleTimeoutMs = 86400000;  // a day
constexpr std::string_view kIdentityKeys[] = {"peer", "user", "uid", "gid", "groups"};

// in_file_order returns |table|'s entries in the order they appear in the file: toml::table is
// sorted by key, but errors should be found in reading order.
std::vector<Entry> in_file_order(const toml::table &table) {
  std::vector<Entry> entries;
  for (const auto &[key, node] : table) entries.emplace_back(&key, &node);
  std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) {
    return a.first->source().begin < b.first->source().begin;
  });
  return entries;
}

// one_of spells a list of choices: "a", "b" or "c".
std::string one_of(std::span<const std::string_view> options) {
  std::string out;
  for (std::size_t i = 0; i < options.size(); ++i) {
    if (i > 0) out += i + 1 == options.size() ? " or " : ", ";
    out += quote(options[i]);
  }
  return out;
}

bool contains(std::span<const std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class Loader {
 public:
  Loader(std::string_view source, const LoadOptions &options)
      : source_(source), base_dir_(base_directory(source)), options_(options) {}

  Result<Policy> load(std::string_view text);

 private:
  using Handler = Result<void> (Loader::*)(std::string_view key, const toml::node &node,
                                           Settings &settings);
  struct SettingKey {
    std::string_view name;
    Handler handler;
  };
  // kSettingKeys lists the keys of [defaults], which every [[rule]] may override.
  static const SettingKey kSettingKeys[];
  static std::vector<std::string_view> setting_names();

  // --- Messages ---------------------------------------------------------------------------------

  Failure error_at(const toml::source_position &where, const std::string &message) const {
    return fail(EINVAL, std::string(source_) + ":" + std::to_string(where.line) + ":" +
                            std::to_string(where.column) + ": " + message);
  }
  Failure error(const toml::node &node, const std::string &message) const {
    return error_at(node.source().begin, message);
  }
  Failure error(const toml::key &key, const std::string &message) const {
    return error_at(key.source().begin, message);
  }
  Failure type_error(std::string_view what, const toml::node &node,
                     std::string_view expected) const {
    return error(node, std::string(what) + " must be " + std::string(expected) + ", not " +
                           std::string(toml_type_name(node)));
  }
  // unknown_key explains a key this table does not have: where it belongs if it belongs
  // elsewhere, else the closest key this table does have.
  Failure unknown_key(const toml::key &key, std::string_view table,
                      std::span<const std::string_view> known) const;

  // --- Typed values -----------------------------------------------------------------------------

  Result<std::string_view> string_value(std::string_view what, const toml::node &node,
                                        std::string_view expected = "a string") const;
  Result<bool> bool_value(std::string_view what, const toml::node &node) const;
  Result<std::int64_t> int_value(std::string_view what, const toml::node &node) const;
  Result<std::size_t> choice(std::string_view key, const toml::node &node,
                             std::span<const std::string_view> options) const;
  // string_array calls |each| with every element of the array |node|, which must be strings.
  template <class F>
  Result<void> string_array(std::string_view key, const toml::node &node, F &&each) const;
  Result<std::string> path_value(std::string_view key, const toml::node &node,
                                 bool empty_means_none) const;

  // --- [defaults] and [[rule]] settings ---------------------------------------------------------

  Result<void> set_protocol(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_min_tls_version(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_min_dtls_version(std::string_view key, const toml::node &node, Settings &s);
  // set_bounded sets an integer member of Settings that must lie in [Low, High].
  template <std::uint32_t Settings::*Field, std::int64_t Low, std::int64_t High>
  Result<void> set_bounded(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_cipher_suites(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_tls12_ciphers(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_groups(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_trust_bundle(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_peer_authentication(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_handshake_timeout_ms(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_client_hello_timeout_ms(std::string_view key, const toml::node &node,
                                           Settings &s);
  Result<void> set_idle_timeout_ms(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_peer_names(std::string_view key, const toml::node &node, Settings &s);
  Result<void> set_private_key(std::string_view key, const toml::node &node, Settings &s);
  // set_bool sets a boolean member of Settings.
  template <bool Settings::*Field>
  Result<void> set_bool(std::string_view key, const toml::node &node, Settings &s);
  // set_file sets a path member of Settings for which "" means "none".
  template <std::string Settings::*Field>
  Result<void> set_file(std::string_view key, const toml::node &node, Settings &s);

  // apply_setting applies |key| to |settings| when it is a setting key. Returns false (and does
  // nothing) when it is not one.
  Result<bool> apply_setting(std::string_view key, const toml::node &node, Settings &settings);

  // SetKeys records where a table set each of its setting keys, for the combined checks.
  using SetKeys = std::vector<std::pair<std::string_view, toml::source_position>>;
  Result<void> check_table(const Settings &settings, const SetKeys &set_here);

  // --- Tables -----------------------------------------------------------------------------------

  Result<void> load_version(const toml::table &root) const;
  Result<void> check_top_level(const toml::table &root) const;
  Result<void> load_defaults(const toml::node &node, Policy &policy);
  Result<void> load_rules(const toml::node &node, Policy &policy);
  Result<void> load_rule(const toml::table &table, Policy &policy);
  Result<void> load_match_key(std::string_view key, const toml::node &node, Rule &rule);
  Result<void> load_identities(const toml::node &node, Policy &policy);
  Result<void> load_identity(const toml::table &table, Policy &policy);
  Result<void> load_agent_settings(const toml::table &root, Policy &policy) const;
  Result<void> load_keys(const toml::node &node, Policy &policy);
  Result<void> load_key(const toml::table &table, Policy &policy);
  Result<void> check_key_files(const KeyEntry &key, const toml::table &table) const;
  Result<void> check_agent_references(const Policy &policy) const;

  std::string_view source_;
  std::string base_dir_;
  ossl::TlsNameChecker names_;
  std::map<std::string, std::uint32_t, std::less<>> rule_lines_;      // name → line
  std::map<std::string, std::uint32_t, std::less<>> identity_lines_;  // peer → line
  LoadOptions options_;
  // Each private_key = "agent:NAME" as written, with where, checked once [[key]] tables are read.
  std::vector<std::pair<std::string, toml::source_position>> agent_references_;
};

// In the order docs/policy.md lists them.
const Loader::SettingKey Loader::kSettingKeys[] = {
    {"protocol", &Loader::set_protocol},
    {"min_tls_version", &Loader::set_min_tls_version},
    {"cipher_suites", &Loader::set_cipher_suites},
    {"tls12_ciphers", &Loader::set_tls12_ciphers},
    {"groups", &Loader::set_groups},
    {"certificate", &Loader::set_file<&Settings::certificate>},
    {"private_key", &Loader::set_private_key},
    {"trust_bundle", &Loader::set_trust_bundle},
    {"crl", &Loader::set_file<&Settings::crl>},
    {"peer_authentication", &Loader::set_peer_authentication},
    {"require_peer_target_name", &Loader::set_bool<&Settings::require_peer_target_name>},
    {"allow_insecure", &Loader::set_bool<&Settings::allow_insecure>},
    {"handshake_timeout_ms", &Loader::set_handshake_timeout_ms},
    {"client_hello_timeout_ms", &Loader::set_client_hello_timeout_ms},
    {"idle_timeout_ms", &Loader::set_idle_timeout_ms},
    {"session_tickets", &Loader::set_bool<&Settings::session_tickets>},
    {"tcp_nodelay", &Loader::set_bool<&Settings::tcp_nodelay>},
    {"peer_names", &Loader::set_peer_names},
    {"deny", &Loader::set_bool<&Settings::deny>},
    {"min_dtls_version", &Loader::set_min_dtls_version},
    {"dtls_mtu", &Loader::set_bounded<&Settings::dtls_mtu, kMinDtlsMtu, kMaxDtlsMtu>},
    {"max_peers", &Loader::set_bounded<&Settings::max_peers, 1, kMaxPeers>},
    {"peer_idle_timeout_ms",
     &Loader::set_bounded<&Settings::peer_idle_timeout_ms, 1, kMaxPeerIdleTimeoutMs>},
};

std::vector<std::string_view> Loader::setting_names() {
  std::vector<std::string_view> names;
  for (const SettingKey &k : kSettingKeys) names.push_back(k.name);
  return names;
}

Failure Loader::unknown_key(const toml::key &key, std::string_view table,
                            std::span<const std::string_view> known) const {
  const std::string_view name = key.str();
  const std::vector<std::string_view> settings = setting_names();
  std::string_view home;
  if (contains(settings, name)) {
    home = "in [defaults] and [[rule]]";
  } else if (contains(kMatchKeys, name)) {
    home = "in [[rule]]";
  } else if (contains(kIdentityKeys, name)) {
    home = "in [[identity]]";
  } else if (contains(kKeyKeys, name)) {
    home = "in [[key]]";
  } else if (contains(kTopKeys, name)) {
    home = "at the top level";
  }
  if (!home.empty()) {
    return error(key, "key " + quote(name) + " is not allowed " + std::string(table) + " (only " +
                          std::string(home) + ")");
  }
  std::string message = "unknown key " + quote(name) + " " + std::string(table);
  const std::string_view guess = closest_name(name, known);
  if (!guess.empty()) message += "; did you mean " + quote(guess) + "?";
  return error(key, message);
}

Result<std::string_view> Loader::string_value(std::string_view what, const toml::node &node,
                                              std::string_view expected) const {
  const auto *value = node.as_string();
  if (value == nullptr) return type_error(what, node, expected);
  const std::string &text = value->get();
  if (text.size() > kMaxString) {
    return error(node, std::string(what) + " is longer than " + std::to_string(kMaxString) +
                           " bytes: " + quote(text, kQuotedPrefix));
  }
  // Strings end at a NUL for the C APIs downstream: "a.pem\0junk" would name "a.pem".
  if (text.find('\0') != std::string::npos) {
    return error(node, std::string(what) + " must not contain a NUL character");
  }
  return std::string_view(text);
}

Result<bool> Loader::bool_value(std::string_view what, const toml::node &node) const {
  const auto *value = node.as_boolean();
  if (value == nullptr) return type_error(what, node, "a boolean (true or false)");
  return value->get();
}

Result<std::int64_t> Loader::int_value(std::string_view what, const toml::node &node) const {
  const auto *value = node.as_integer();
  if (value == nullptr) return type_error(what, node, "an integer");
  return value->get();
}

Result<std::size_t> Loader::choice(std::string_view key, const toml::node &node,
                                   std::span<const std::string_view> options) const {
  auto text = string_value(key, node, "a string (" + one_of(options) + ")");
  if (!text) return std::move(text).error();
  for (std::size_t i = 0; i < options.size(); ++i) {
    if (options[i] == *text) return i;
  }
  return error(node, std::string(key) + " must be " + one_of(options) + ", not " + quote(*text));
}

template <class F>
Result<void> Loader::string_array(std::string_view key, const toml::node &node, F &&each) const {
  const auto *array = node.as_array();
  if (array == nullptr) return type_error(key, node, "an array of strings");
  const std::string what = "each element of " + std::string(key);
  for (const toml::node &element : *array) {
    auto text = string_value(what, element);
    if (!text) return std::move(text).error();
    if (auto r = each(*text, element); !r) return r;
  }
  return {};
}

Result<std::string> Loader::path_value(std::string_view key, const toml::node &node,
                                       bool empty_means_none) const {
  auto text = string_value(key, node);
  if (!text) return std::move(text).error();
  if (text->empty()) {
    if (empty_means_none) return std::string();
    return error(node, std::string(key) + " must not be empty");
  }
  return resolve_path(base_dir_, *text);
}

template <bool Settings::*Field>
Result<void> Loader::set_bool(std::string_view key, const toml::node &node, Settings &s) {
  auto value = bool_value(key, node);
  if (!value) return std::move(value).error();
  s.*Field = *value;
  return {};
}

template <std::string Settings::*Field>
Result<void> Loader::set_file(std::string_view key, const toml::node &node, Settings &s) {
  auto path = path_value(key, node, /*empty_means_none=*/true);
  if (!path) return std::move(path).error();
  s.*Field = std::move(*path);
  return {};
}

Result<void> Loader::set_protocol(std::string_view key, const toml::node &node, Settings &s) {
  auto text = string_value(key, node, "a string (\"tls\" or \"dtls\")");
  if (!text) return std::move(text).error();
  if (*text == "tls") {
    s.protocol = Protocol::tls;
    return {};
  }
  if (*text == "dtls") {  // UDP sockets only: a TCP socket under it is refused (EACCES)
    s.protocol = Protocol::dtls;
    return {};
  }
  if (*text == "local") {
    return error(node, "protocol \"local\" is not supported yet (only \"tls\" and \"dtls\" are)");
  }
  return error(node, "protocol must be \"tls\" or \"dtls\", not " + quote(*text));
}

Result<void> Loader::set_min_dtls_version(std::string_view key, const toml::node &node,
                                          Settings &s) {
  static constexpr std::string_view kOptions[] = {"1.2", "1.3"};
  auto text = string_value(key, node, "a string (\"1.2\")");
  if (!text) return std::move(text).error();
  if (*text == "1.0") {
    return error(node, "min_dtls_version \"1.0\" is refused: DTLS 1.0 is obsolete (RFC 8996)");
  }
  auto index = choice(key, node, kOptions);
  if (!index) return std::move(index).error();
  if (*index == 1 && !ossl::dtls13_available()) {
    return error(node,
                 "min_dtls_version \"1.3\": the OpenSSL in use does not provide DTLS 1.3 "
                 "(OpenSSL 3.0 has DTLS 1.2 only)");
  }
  s.min_dtls_version = *index == 0 ? TlsVersion::v1_2 : TlsVersion::v1_3;
  return {};
}

template <std::uint32_t Settings::*Field, std::int64_t Low, std::int64_t High>
Result<void> Loader::set_bounded(std::string_view key, const toml::node &node, Settings &s) {
  auto value = int_value(key, node);
  if (!value) return std::move(value).error();
  if (*value < Low || *value > High) {
    return error(node, std::string(key) + " must be between " + std::to_string(Low) + " and " +
                           std::to_string(High) + ", not " + std::to_string(*value));
  }
  s.*Field = static_cast<std::uint32_t>(*value);
  return {};
}

Result<void> Loader::set_min_tls_version(std::string_view key, const toml::node &node,
                                         Settings &s) {
  static constexpr std::string_view kOptions[] = {"1.2", "1.3"};
  auto index = choice(key, node, kOptions);
  if (!index) return std::move(index).error();
  s.min_tls_version = *index == 0 ? TlsVersion::v1_2 : TlsVersion::v1_3;
  return {};
}

Result<void> Loader::set_cipher_suites(std::string_view key, const toml::node &node, Settings &s) {
  std::vector<std::string> suites;
  auto r =
      string_array(key, node, [&](std::string_view name, const toml::node &at) -> Result<void> {
        if (auto known = names_.check_tls13_cipher_suite(name); !known) {
          return error(at, known.error().message);
        }
        suites.emplace_back(name);
        return {};
      });
  if (!r) return r;
  s.cipher_suites = std::move(suites);
  return {};
}

Result<void> Loader::set_tls12_ciphers(std::string_view key, const toml::node &node, Settings &s) {
  auto text = string_value(key, node);
  if (!text) return std::move(text).error();
  if (!text->empty()) {
    if (auto ok = names_.check_tls12_cipher_list(*text); !ok)
      return error(node, ok.error().message);
  }
  s.tls12_ciphers = std::string(*text);
  return {};
}

Result<void> Loader::set_groups(std::string_view key, const toml::node &node, Settings &s) {
  std::vector<std::string> groups;
  auto r =
      string_array(key, node, [&](std::string_view name, const toml::node &at) -> Result<void> {
        if (auto known = names_.check_group(name); !known) return error(at, known.error().message);
        groups.emplace_back(name);
        return {};
      });
  if (!r) return r;
  s.groups = std::move(groups);
  return {};
}

Result<void> Loader::set_trust_bundle(std::string_view key, const toml::node &node, Settings &s) {
  auto text = string_value(key, node);
  if (!text) return std::move(text).error();
  if (*text == "system") {
    s.trust_bundle = "system";
    return {};
  }
  auto path = path_value(key, node, /*empty_means_none=*/false);
  if (!path) return std::move(path).error();
  s.trust_bundle = std::move(*path);
  return {};
}

Result<void> Loader::set_peer_authentication(std::string_view key, const toml::node &node,
                                             Settings &s) {
  static constexpr std::string_view kOptions[] = {"required", "optional", "none"};
  static constexpr PeerAuthentication kValues[] = {
      PeerAuthentication::required, PeerAuthentication::optional, PeerAuthentication::none};
  auto index = choice(key, node, kOptions);
  if (!index) return std::move(index).error();
  s.peer_authentication = kValues[*index];
  s.peer_authentication_set = true;
  return {};
}

Result<void> Loader::set_handshake_timeout_ms(std::string_view key, const toml::node &node,
                                              Settings &s) {
  auto value = int_value(key, node);
  if (!value) return std::move(value).error();
  if (*value < 1 || *value > kMaxHandshakeTimeoutMs) {
    return error(node, std::string(key) + " must be between 1 and " +
                           std::to_string(kMaxHandshakeTimeoutMs) + ", not " +
                           std::to_string(*value));
  }
  s.handshake_timeout_ms = static_cast<std::uint32_t>(*value);
  return {};
}

Result<void> Loader::set_client_hello_timeout_ms(std::string_view key, const toml::node &node,
                                                 Settings &s) {
  auto value = int_value(key, node);
  if (!value) return std::move(value).error();
  if (*value < 1 || *value > kMaxHandshakeTimeoutMs) {
    return error(node, std::string(key) + " must be between 1 and " +
                           std::to_string(kMaxHandshakeTimeoutMs) + ", not " +
                           std::to_string(*value));
  }
  s.client_hello_timeout_ms = static_cast<std::uint32_t>(*value);
  return {};
}

Result<void> Loader::set_idle_timeout_ms(std::string_view key, const toml::node &node,
                                         Settings &s) {
  auto value = int_value(key, node);
  if (!value) return std::move(value).error();
  if (*value < 0 || *value > kMaxIdleTimeoutMs) {
    return error(node, std::string(key) + " must be between 0 (no limit) and " +
                           std::to_string(kMaxIdleTimeoutMs) + ", not " + std::to_string(*value));
  }
  s.idle_timeout_ms = static_cast<std::uint32_t>(*value);
  return {};
}

Result<void> Loader::set_peer_names(std::string_view key, const toml::node &node, Settings &s) {
  std::vector<std::string> names;
  auto r =
      string_array(key, node, [&](std::string_view name, const toml::node &at) -> Result<void> {
        auto canonical = check_peer_name(name);
        if (!canonical) return error(at, canonical.error().message);
        names.push_back(std::move(*canonical));
        return {};
      });
  if (!r) return r;
  s.peer_names = std::move(names);
  return {};
}

Result<void> Loader::set_private_key(std::string_view key, const toml::node &node, Settings &s) {
  auto text = string_value(key, node);
  if (!text) return std::move(text).error();
  if (text->substr(0, kAgentKeyPrefix.size()) == kAgentKeyPrefix) {
    const std::string_view name = text->substr(kAgentKeyPrefix.size());
    if (!valid_key_name(name)) {
      return error(node, "private_key " + quote(*text) +
                             " must name a [[key]]: \"agent:\" then 1 to 64 letters, digits, '.', "
                             "'_' or '-'");
    }
    agent_references_.emplace_back(std::string(name), node.source().begin);
    s.private_key = std::string(*text);
    return {};
  }
  return set_file<&Settings::private_key>(key, node, s);
}

Result<bool> Loader::apply_setting(std::string_view key, const toml::node &node,
                                   Settings &settings) {
  for (const SettingKey &k : kSettingKeys) {
    if (k.name != key) continue;
    if (auto r = (this->*k.handler)(key, node, settings); !r) return std::move(r).error();
    return true;
  }
  return false;
}

Result<void> Loader::check_table(const Settings &settings, const SetKeys &set_here) {
  std::vector<std::string_view> keys;
  for (const auto &[key, where] : set_here) keys.push_back(key);
  const std::optional<SettingsProblem> problem = check_settings(settings, keys, names_);
  if (!problem) return {};
  for (const auto &[key, where] : set_here) {
    if (key == problem->key) return error_at(where, problem->failure.message);
  }
  // check_settings blames only keys in |set_here|; this is a safety net.
  return error_at(set_here.front().second, problem->failure.message);
}

Result<void> Loader::load_version(const toml::table &root) const {
  const toml::node *version = root.get("version");
  if (version == nullptr) {
    return error_at(toml::source_position{1, 1},
                    "missing \"version = 1\" (the policy format version) at the top level");
  }
  auto value = int_value("version", *version);
  if (!value) return std::move(value).error();
  if (*value != 1) {
    return error(*version, "unsupported policy version " + std::to_string(*value) +
                               " (this ssx reads version 1)");
  }
  return {};
}

Result<void> Loader::check_top_level(const toml::table &root) const {
  for (const auto &[key, node] : in_file_order(root)) {
    const std::string_view name = key->str();
    if (name == "defaults") {
      if (!node->is_table()) return type_error("defaults", *node, "a table ([defaults])");
    } else if (name == "rule" || name == "identity" || name == "key") {
      if (!node->is_array_of_tables()) {
        return type_error(name, *node,
                          "an array of tables ([[" + std::string(name) + "]] for each one)");
      }
    } else if (name != "version" && name != "agent_socket" && name != "agent_timeout_ms") {
      return unknown_key(*key, "at the top level", kTopKeys);
    }
  }
  return {};
}

Result<void> Loader::load_defaults(const toml::node &node, Policy &policy) {
  const std::vector<std::string_view> known = setting_names();
  SetKeys set_here;
  for (const auto &[key, value] : in_file_order(*node.as_table())) {
    auto applied = apply_setting(key->str(), *value, policy.defaults);
    if (!applied) return std::move(applied).error();
    if (!*applied) return unknown_key(*key, "in [defaults]", known);
    set_here.emplace_back(key->str(), value->source().begin);
  }
  if (set_here.empty()) return {};
  return check_table(policy.defaults, set_here);
}

Result<void> Loader::load_rules(const toml::node &node, Policy &policy) {
  for (const toml::node &element : *node.as_array()) {
    if (auto r = load_rule(*element.as_table(), policy); !r) return r;
  }
  return {};
}

Result<void> Loader::load_match_key(std::string_view key, const toml::node &node, Rule &rule) {
  Match &match = rule.match;
  if (key == "name") {
    auto name = string_value(key, node);
    if (!name) return std::move(name).error();
    if (name->empty()) return error(node, "rule name must not be empty");
    if (name->size() > kMaxRuleName) {
      return error(node, "rule name is longer than " + std::to_string(kMaxRuleName) +
                             " bytes: " + quote(*name, kQuotedPrefix));
    }
    // Rule names appear in log lines: no control characters, so none can forge a line.
    if (std::any_of(name->begin(), name->end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      return error(node, "rule name " + quote(*name) + " must not contain control characters");
    }
    if (*name == "defaults") {
      return error(node, "rule name \"defaults\" is reserved (it names the [defaults] table)");
    }
    if (auto it = rule_lines_.find(*name); it != rule_lines_.end()) {
      return error(node, "duplicate rule name " + quote(*name) + " (first used on line " +
                             std::to_string(it->second) + ")");
    }
    rule_lines_.emplace(*name, node.source().begin.line);
    rule.name = std::string(*name);
  } else if (key == "direction") {
    static constexpr std::string_view kOptions[] = {"inbound", "outbound"};
    auto index = choice(key, node, kOptions);
    if (!index) return std::move(index).error();
    match.direction = *index == 0 ? Direction::inbound : Direction::outbound;
  } else if (key == "transport") {
    static constexpr std::string_view kOptions[] = {"tcp", "udp"};
    auto index = choice(key, node, kOptions);
    if (!index) return std::move(index).error();
    match.transport = *index == 0 ? Transport::tcp : Transport::udp;
  } else if (key == "port") {
    auto value = int_value(key, node);
    if (!value) return std::move(value).error();
    auto port = check_port(*value);
    if (!port) return error(node, port.error().message);
    match.ports.push_back(PortRange{*port, *port});
  } else if (key == "ports") {
    const auto *array = node.as_array();
    if (array == nullptr) {
      return type_error(key, node, "an array of ports and \"LOW-HIGH\" ranges");
    }
    if (array->empty()) return error(node, "ports is empty; remove it to match any port");
    for (const toml::node &element : *array) {
      if (const auto *number = element.as_integer()) {
        auto port = check_port(number->get());
        if (!port) return error(element, port.error().message);
        match.ports.push_back(PortRange{*port, *port});
        continue;
      }
      auto text =
          string_value("each element of ports", element, "an integer or a \"LOW-HIGH\" string");
      if (!text) return std::move(text).error();
      auto range = parse_port_range(*text);
      if (!range) return error(element, range.error().message);
      match.ports.push_back(*range);
    }
  } else if (key == "address") {
    auto text = string_value(key, node, "a string (an address or CIDR network)");
    if (!text) return std::move(text).error();
    auto cidr = parse_cidr(*text);
    if (!cidr) return error(node, cidr.error().message);
    match.address = *cidr;
  } else if (key == "program") {
    auto text = string_value(key, node);
    if (!text) return std::move(text).error();
    if (text->empty() || text->front() != '/') {
      return error(node, "program must be an absolute path, not " + quote(*text));
    }
    // The query names the running executable as the kernel reports it (/proc/self/exe), with
    // every symbolic link resolved, so resolve the policy's path the same way: otherwise a rule
    // for /usr/bin/python3, a link, could never match. A program that does not exist yet is kept
    // as written.
    std::string program(*text);
    char resolved[PATH_MAX];
    if (::realpath(program.c_str(), resolved) != nullptr) program = resolved;
    match.program = std::move(program);
  }
  return {};
}

Result<void> Loader::load_rule(const toml::table &table, Policy &policy) {
  Rule rule;
  rule.settings = policy.defaults;
  std::vector<std::string_view> known = setting_names();
  known.insert(known.end(), std::begin(kMatchKeys), std::end(kMatchKeys));
  SetKeys set_here;
  for (const auto &[key, value] : in_file_order(table)) {
    const std::string_view name = key->str();
    if (contains(kMatchKeys, name)) {
      if (auto r = load_match_key(name, *value, rule); !r) return r;
      continue;
    }
    auto applied = apply_setting(name, *value, rule.settings);
    if (!applied) return std::move(applied).error();
    if (!*applied) return unknown_key(*key, "in [[rule]]", known);
    set_here.emplace_back(name, value->source().begin);
  }
  if (rule.name.empty()) {
    return error(table, "[[rule]] has no name (add name = \"...\"; names appear in logs)");
  }
  if (!set_here.empty()) {
    if (auto r = check_table(rule.settings, set_here); !r) return r;
  }
  policy.rules.push_back(std::move(rule));
  return {};
}

Result<void> Loader::load_identities(const toml::node &node, Policy &policy) {
  for (const toml::node &element : *node.as_array()) {
    if (auto r = load_identity(*element.as_table(), policy); !r) return r;
  }
  return {};
}

Result<void> Loader::load_identity(const toml::table &table, Policy &policy) {
  IdentityMapping mapping;
  for (const auto &[key, value] : in_file_order(table)) {
    const std::string_view name = key->str();
    if (name == "peer") {
      auto text = string_value(name, *value);
      if (!text) return std::move(text).error();
      std::string_view peer = *text;
      if (!peer.empty() && peer.back() == '*') {
        mapping.prefix = true;
        peer.remove_suffix(1);
      }
      if (text->size() > identity::kMaxTargetName) {
        return error(*value, "peer is longer than " + std::to_string(identity::kMaxTargetName) +
                                 " bytes: " + quote(*text, kQuotedPrefix));
      }
      if (peer.empty()) {
        return error(*value,
                     "peer must name a principal or a prefix ending in '*'; a lone \"*\" "
                     "would map every peer");
      }
      if (peer.find('*') != std::string_view::npos) {
        return error(*value, "peer " + quote(*text) + " may contain '*' only at the end");
      }
      if (auto it = identity_lines_.find(*text); it != identity_lines_.end()) {
        return error(*value, "duplicate identity for peer " + quote(*text) +
                                 " (first mapped on line " + std::to_string(it->second) + ")");
      }
      identity_lines_.emplace(*text, value->source().begin.line);
      mapping.peer = std::string(peer);
    } else if (name == "user") {
      auto text = string_value(name, *value);
      if (!text) return std::move(text).error();
      if (auto ok = check_account_name("user", *text); !ok) {
        return error(*value, ok.error().message);
      }
      mapping.user = std::string(*text);
    } else if (name == "uid" || name == "gid") {
      auto id = int_value(name, *value);
      if (!id) return std::move(id).error();
      if (*id < 0 || *id > kMaxId) {
        return error(*value, std::string(name) + " must be between 0 and " +
                                 std::to_string(kMaxId) + ", not " + std::to_string(*id));
      }
      (name == "uid" ? mapping.uid : mapping.gid) = static_cast<std::uint32_t>(*id);
    } else if (name == "groups") {
      std::vector<std::string> groups;
      auto r = string_array(name, *value,
                            [&](std::string_view group, const toml::node &at) -> Result<void> {
                              if (auto ok = check_account_name("group", group); !ok) {
                                return error(at, ok.error().message);
                              }
                              groups.emplace_back(group);
                              return {};
                            });
      if (!r) return r;
      mapping.groups = std::move(groups);
    } else {
      return unknown_key(*key, "in [[identity]]", kIdentityKeys);
    }
  }
  if (mapping.peer.empty()) return error(table, "[[identity]] has no peer");
  if (!mapping.user && !mapping.uid) {
    return error(table, "[[identity]] for peer " +
                            quote(mapping.peer + (mapping.prefix ? "*" : "")) +
                            " needs user or uid");
  }
  policy.identities.push_back(std::move(mapping));
  return {};
}

Result<void> Loader::load_agent_settings(const toml::table &root, Policy &policy) const {
  if (const toml::node *node = root.get("agent_socket")) {
    auto path = path_value("agent_socket", *node, /*empty_means_none=*/false);
    if (!path) return std::move(path).error();
    // sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
    if (path->size() > 107) {
      return error(*node, "agent_socket is longer than 107 bytes (the AF_UNIX limit): " +
                              quote(*path, kQuotedPrefix));
    }
    policy.agent.socket = std::move(*path);
  }
  if (const toml::node *node = root.get("agent_timeout_ms")) {
    auto value = int_value("agent_timeout_ms", *node);
    if (!value) return std::move(value).error();
    if (*value < 1 || *value > kMaxAgentTimeoutMs) {
      return error(*node, "agent_timeout_ms must be between 1 and " +
                              std::to_string(kMaxAgentTimeoutMs) + ", not " +
                              std::to_string(*value));
    }
    policy.agent.timeout_ms = static_cast<std::uint32_t>(*value);
  }
  return {};
}

Result<void> Loader::load_keys(const toml::node &node, Policy &policy) {
  for (const toml::node &element : *node.as_array()) {
    if (auto r = load_key(*element.as_table(), policy); !r) return r;
  }
  return {};
}

Result<void> Loader::load_key(const toml::table &table, Policy &policy) {
  KeyEntry entry;
  entry.line = table.source().begin.line;
  for (const auto &[key, value] : in_file_order(table)) {
    const std::string_view name = key->str();
    if (name == "name") {
      auto text = string_value(name, *value);
      if (!text) return std::move(text).error();
      if (!valid_key_name(*text)) {
        return error(*value, "key name " + quote(*text) +
                                 " must be 1 to 64 letters, digits, '.', '_' or '-'");
      }
      if (const KeyEntry *other = policy.key(*text)) {
        return error(*value, "duplicate key name " + quote(*text) + " (first used on line " +
                                 std::to_string(other->line) + ")");
      }
      entry.name = std::string(*text);
    } else if (name == "certificate") {
      auto path = path_value(name, *value, /*empty_means_none=*/false);
      if (!path) return std::move(path).error();
      entry.certificate = std::move(*path);
    } else if (name == "private_key") {
      auto text = string_value(name, *value);
      if (!text) return std::move(text).error();
      if (text->substr(0, 7) == "pkcs11:") {
        if (auto ok = check_pkcs11_uri(*text); !ok) return error(*value, ok.error().message);
        entry.private_key = std::string(*text);
      } else if (text->substr(0, kAgentKeyPrefix.size()) == kAgentKeyPrefix) {
        return error(
            *value, "a [[key]]'s private_key must be a file or a PKCS#11 URI, not " + quote(*text));
      } else {
        auto path = path_value(name, *value, /*empty_means_none=*/false);
        if (!path) return std::move(path).error();
        entry.private_key = std::move(*path);
      }
    } else if (name == "users") {
      const auto *array = value->as_array();
      if (array == nullptr) {
        return type_error(name, *value, "an array of account names and uids");
      }
      for (const toml::node &element : *array) {
        std::string user;
        if (const auto *number = element.as_integer()) {
          if (number->get() < 0 || number->get() > kMaxId) {
            return error(element, "uid must be between 0 and " + std::to_string(kMaxId) + ", not " +
                                      std::to_string(number->get()));
          }
          user = std::to_string(number->get());
        } else {
          auto text = string_value("each element of users", element, "an account name or a uid");
          if (!text) return std::move(text).error();
          user = std::string(*text);
        }
        if (auto ok = check_key_user(user, options_.check_keys); !ok) {
          return error(element, ok.error().message);
        }
        entry.users.push_back(std::move(user));
      }
    } else if (name == "programs") {
      auto r = string_array(
          name, *value, [&](std::string_view program, const toml::node &at) -> Result<void> {
            if (program.empty() || program.front() != '/') {
              return error(
                  at, "each element of programs must be an absolute path, not " + quote(program));
            }
            std::string resolved_path(program);
            char resolved[PATH_MAX];
            if (::realpath(resolved_path.c_str(), resolved) != nullptr) resolved_path = resolved;
            entry.programs.push_back(std::move(resolved_path));
            return {};
          });
      if (!r) return r;
    } else {
      return unknown_key(*key, "in [[key]]", kKeyKeys);
    }
  }
  if (entry.name.empty()) return error(table, "[[key]] has no name");
  if (entry.certificate.empty()) {
    return error(table, "[[key]] " + quote(entry.name) + " has no certificate");
  }
  if (entry.private_key.empty()) {
    return error(table, "[[key]] " + quote(entry.name) + " has no private_key");
  }
  if (options_.check_keys) {
    if (auto r = check_key_files(entry, table); !r) return r;
  }
  policy.keys.push_back(std::move(entry));
  return {};
}

Result<void> Loader::check_key_files(const KeyEntry &key, const toml::table &table) const {
  const toml::node *cert_node = table.get("certificate");
  const toml::node *key_node = table.get("private_key");
  if (key.private_key.substr(0, 7) == "pkcs11:") {
    if (auto r = ossl::check_certificate_file(key.certificate); !r) {
      return error(*cert_node, r.error().message);
    }
    return {};  // the token is opened by the agent, which reports a missing object itself
  }
  ossl::KeyPairPart part = ossl::KeyPairPart::both;
  if (auto r = ossl::check_key_pair(key.certificate, key.private_key, &part); !r) {
    return error(part == ossl::KeyPairPart::certificate ? *cert_node : *key_node,
                 r.error().message);
  }
  return {};
}

Result<void> Loader::check_agent_references(const Policy &policy) const {
  for (const auto &[name, where] : agent_references_) {
    if (policy.key(name) != nullptr) continue;
    std::string known;
    for (const KeyEntry &k : policy.keys) known += (known.empty() ? "" : ", ") + quote(k.name);
    return error_at(where, "private_key \"agent:" + name + "\" names no [[key]] table" +
                               (known.empty() ? std::string(" (the policy has none)")
                                              : " (the policy's keys: " + known + ")"));
  }
  return {};
}

Result<Policy> Loader::load(std::string_view text) {
  // Size and nesting are bounded before toml++ sees a byte: it recurses once per level.
  if (auto r = prescan_policy(text, source_); !r) return std::move(r).error();
  toml::table root;
  try {
    root = toml::parse(text, source_);
  } catch (const toml::parse_error &e) {
    std::string description(e.description());
    if (!description.empty() && description[0] >= 'A' && description[0] <= 'Z') {
      description[0] = static_cast<char>(description[0] - 'A' + 'a');
    }
    return error_at(e.source().begin, "invalid TOML: " + description);
  }
  if (auto r = load_version(root); !r) return std::move(r).error();
  if (auto r = check_top_level(root); !r) return std::move(r).error();
  Policy policy;
  policy.source = std::string(source_);
  if (const toml::node *defaults = root.get("defaults")) {
    if (auto r = load_defaults(*defaults, policy); !r) return std::move(r).error();
  }
  if (const toml::node *rules = root.get("rule")) {
    if (auto r = load_rules(*rules, policy); !r) return std::move(r).error();
  }
  if (const toml::node *identities = root.get("identity")) {
    if (auto r = load_identities(*identities, policy); !r) return std::move(r).error();
  }
  if (auto r = load_agent_settings(root, policy); !r) return std::move(r).error();
  if (const toml::node *keys = root.get("key")) {
    if (auto r = load_keys(*keys, policy); !r) return std::move(r).error();
  }
  if (auto r = check_agent_references(policy); !r) return std::move(r).error();
  return policy;
}

}  // namespace

Result<Policy> parse_policy(std::string_view text, std::string_view source,
                            const LoadOptions &options) {
  return Loader(source, options).load(text);
}

}  // namespace ssx::policy
