// SPDX-License-Identifier: Apache-2.0
// identity/target_name.hpp — the names an application or policy gives the peer it expects.
//
// One type covers the ways to name a peer: a DNS name, an IP literal, a URI (SPIFFE IDs among
// them), a key pin over the SubjectPublicKeyInfo, and — for AF_UNIX peers, whose identity the
// kernel attests — a local uid, "unix:uid=N". Parsing happens once, when a name is
// set, so that matching never meets a malformed name.

#ifndef SSX_IDENTITY_TARGET_NAME_HPP
#define SSX_IDENTITY_TARGET_NAME_HPP

#include <string>
#include <string_view>
#include <vector>

#include "ssx/result.hpp"

namespace ssx::identity {

// kMaxTargetName bounds every target name, whatever its kind: URIs (SPIFFE IDs are at most 2048
// bytes by the SPIFFE ID standard, §2.3) and the others, which are shorter. DNS names have
// RFC 1035's own bound of 253 characters.
inline constexpr std::size_t kMaxTargetName = 2048;
inline constexpr std::size_t kMaxDnsName = 253;

struct TargetName {
  enum class Kind { dns, ip, uri, spki_pin, local_uid };
  Kind kind = Kind::dns;
  // The canonical value: a lowercase DNS name without a trailing dot; the IP as written; the URI
  // exactly as given; the pin's 64 lowercase hex digits (without "sha256:").
  std::string value;

  // text returns the name as a user would write it ("sha256:…" for pins).
  std::string text() const;
  bool operator==(const TargetName &) const = default;
};

// parse_target_name classifies and checks |name|, the one syntax check for peer names whether
// they come from an application or from the policy's peer_names:
//   - a key pin "sha256:" + 64 hex digits (value in lower case),
//   - "unix:uid=N" for an AF_UNIX peer,
//   - a URI "scheme://…"; "spiffe://" IDs are held to the SPIFFE ID rules (lower-case trust
//     domain, no port or user info, no empty, "." or ".." path segments, no query or fragment),
//   - an IPv4 or IPv6 literal (no brackets, no zone),
//   - a DNS name: letters, digits and '-' in labels of 1-63 characters, at most 253 in all, no
//     trailing dot, no wildcard (a target names a peer, not a pattern), and a last label that is
//     not all digits (value in lower case).
// Any name longer than kMaxTargetName bytes is refused first. EINVAL with a message that starts
// "peer name "NAME"" or "key pin "NAME"" otherwise; NAME is quoted with base::quote, so at most
// a bounded prefix of a long name appears, with control characters escaped.
Result<TargetName> parse_target_name(std::string_view name);

// describe_kind returns "DNS name", "IP address", "URI", "key pin" or "local uid".
const char *describe_kind(TargetName::Kind kind);

}  // namespace ssx::identity

#endif  // SSX_IDENTITY_TARGET_NAME_HPP
