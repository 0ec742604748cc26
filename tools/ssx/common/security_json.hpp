// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/security_json.hpp — what a query returned, as JSON and in words.
//
// The JSON object is a stable interface (scripts parse it); docs/cli.md lists its keys. Keys are
// never renamed or removed; new ones may be added.

#ifndef SSX_TOOLS_SSX_COMMON_SECURITY_JSON_HPP
#define SSX_TOOLS_SSX_COMMON_SECURITY_JSON_HPP

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ssx/ssx.hpp"

namespace ssx::cli {

// protocol_name is the protocol as the policy file spells it: "tls", "local", "dtls", or
// "none" for cleartext.
const char *protocol_name(ssx_protocol protocol);

// flag_words names the SSX_INFO_* flags set in |flags|, e.g. {"secured", "encrypted",
// "peer authenticated"}.
std::vector<std::string> flag_words(std::uint32_t flags);

// handshake_ms is the handshake time in milliseconds, rounded to the microsecond.
double handshake_ms(const SecurityInfo &info);

// security_json is the query result as one JSON object, keys in a fixed order:
// protocol, version, cipher, group, secured, encrypted, peer_authenticated, peer_name_verified,
// resumed, kernel_offload, policy_rule, handshake_ms, and peer {principal, names, spki_sha256,
// user, uid, gid, groups}. Strings that do not apply are null; peer.names is always an array;
// user, uid, gid and groups are null unless the peer maps to a local account.
nlohmann::ordered_json security_json(const SecurityInfo &info);

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_SECURITY_JSON_HPP
