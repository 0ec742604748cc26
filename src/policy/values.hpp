// SPDX-License-Identifier: Apache-2.0
// policy/values.hpp — parsers and checks for single policy values, independent of TOML.
//
// The loader calls these for each value it reads and prefixes their messages with the value's
// FILE:LINE:COLUMN. They are separate so that other code (the CLI, the identity layer checking an
// application's peer target names) applies exactly the same syntax rules.
//
// Thread safety: every function is safe to call from any thread.

#ifndef SSX_POLICY_VALUES_HPP
#define SSX_POLICY_VALUES_HPP

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "policy/policy.hpp"
#include "ssx/result.hpp"

namespace ssx::policy {

// parse_cidr parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128 network).
// A network whose address has bits set beyond the prefix is rejected with the network that was
// probably meant ("10.0.0.1/8" → "did you mean "10.0.0.0/8"?"), since silently masking it would
// make the rule match more than the administrator wrote. EINVAL with "address "TEXT" …".
Result<Cidr> parse_cidr(std::string_view text);

// format_cidr returns |cidr| as "ADDRESS/PREFIX".
std::string format_cidr(const Cidr &cidr);

// check_port returns EINVAL "port N is out of range (1-65535)" unless 1 <= |port| <= 65535.
Result<std::uint16_t> check_port(std::int64_t port);

// parse_port_range parses "8000-8100" (inclusive) or a single "8000". EINVAL with
// "port range "TEXT" …" when it is malformed, reversed or outside 1-65535.
Result<PortRange> parse_port_range(std::string_view text);

// check_peer_name checks the syntax of a peer target name and returns it in canonical form;
// it is identity::parse_target_name (the one definition of peer-name syntax) as text.
Result<std::string> check_peer_name(std::string_view name);

// check_account_name succeeds for a user or group name: 1-32 characters from letters, digits,
// '.', '_' and '-', not starting with '-', optionally ending in '$', and not all digits (a number
// belongs in uid or gid). |what| ("user", "group") starts the EINVAL message.
Result<void> check_account_name(std::string_view what, std::string_view name);

// check_key_user checks one element of a [[key]]'s users: a decimal uid (0 to 4294967294) or an
// account name (check_account_name). With |resolve| a name must also exist (getpwnam_r):
// EINVAL "unknown user "NAME"".
Result<void> check_key_user(std::string_view user, bool resolve);

// resolve_key_user returns the uid |user| (a checked element of users) stands for: ENOENT when
// the account does not exist (any more).
Result<uid_t> resolve_key_user(std::string_view user);

// check_pkcs11_uri checks the syntax of an RFC 7512 PKCS#11 URI naming a private key:
// "pkcs11:" then ';'-separated path attributes ATTR=VALUE (token, manufacturer, serial, model,
// library-manufacturer, library-description, library-version, slot-description,
// slot-manufacturer, slot-id, object, id, type), at least one of object and id, type (if any)
// "private", values percent-encoded where needed, then optionally '?' and query attributes
// (pin-value, pin-source, module-name, module-path). EINVAL naming the first problem.
Result<void> check_pkcs11_uri(std::string_view uri);

// closest_name returns the candidate |name| is most likely a typo of, or "" when none is close
// (always "" for a name longer than 64 bytes, which no typo of a key is).
std::string_view closest_name(std::string_view name, std::span<const std::string_view> candidates);

// base_directory returns the absolute directory against which relative paths in the policy
// named |source| are resolved: the directory part of |source|, or the working directory when
// |source| has none.
std::string base_directory(std::string_view source);

// resolve_path returns |path| when it is absolute, else |base_dir|/|path|.
std::string resolve_path(std::string_view base_dir, std::string_view path);

}  // namespace ssx::policy

#endif  // SSX_POLICY_VALUES_HPP
