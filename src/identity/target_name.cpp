// SPDX-License-Identifier: Apache-2.0
#include "identity/target_name.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>

#include "base/text.hpp"

namespace ssx::identity {
namespace {

constexpr std::string_view kPinPrefix = "sha256:";
constexpr std::string_view kLocalUidPrefix = "unix:uid=";

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

Failure bad(std::string_view name, std::string_view why) {
  return fail(EINVAL, "peer name " + base::quote(name) + " " + std::string(why));
}

Result<TargetName> parse_pin(std::string_view name) {
  std::string_view hex = name.substr(kPinPrefix.size());
  if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), is_hex)) {
    return fail(EINVAL,
                "key pin " + base::quote(name) + " must be \"sha256:\" followed by 64 hex digits");
  }
  std::string value(hex);
  std::transform(value.begin(), value.end(), value.begin(), to_lower);  // as spki_sha256_hex writes
  return TargetName{TargetName::Kind::spki_pin, std::move(value)};
}

Result<TargetName> parse_local_uid(std::string_view name) {
  std::string_view digits = name.substr(kLocalUidPrefix.size());
  if (digits.empty() || digits.size() > 10 ||
      !std::all_of(digits.begin(), digits.end(), is_digit) ||
      std::stoull(std::string(digits)) > 0xfffffffeULL) {
    return bad(name, "is not a local peer name (\"unix:uid=N\" with N a decimal uid)");
  }
  return TargetName{
      TargetName::Kind::local_uid,
      std::string(kLocalUidPrefix) + std::to_string(std::stoull(std::string(digits)))};
}

// check_spiffe_id applies the SPIFFE ID format (SPIFFE-ID.md §2): lower-case trust domain of
// [a-z0-9._-], path segments of [a-zA-Z0-9._-], no empty, "." or ".." segment, no trailing slash,
// no query, fragment, port or user info.
Result<void> check_spiffe_id(std::string_view name) {
  std::string_view rest = name.substr(std::string_view("spiffe://").size());
  const std::size_t slash = rest.find('/');
  const std::string_view domain = rest.substr(0, slash);
  if (domain.empty()) return bad(name, "is not a valid SPIFFE ID (no trust domain)");
  for (char c : domain) {
    if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '-' || c == '_')) {
      return bad(name,
                 "is not a valid SPIFFE ID (the trust domain may hold only lower-case letters, "
                 "digits, '.', '-' and '_')");
    }
  }
  if (slash == std::string_view::npos) return {};
  std::string_view path = rest.substr(slash + 1);
  for (;;) {
    const std::size_t next = path.find('/');
    const std::string_view segment = path.substr(0, next);
    if (segment.empty() || segment == "." || segment == "..") {
      return bad(name,
                 "is not a valid SPIFFE ID (empty, \".\" or \"..\" path segment, or a trailing "
                 "'/')");
    }
    for (char c : segment) {
      if (!(is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '_')) {
        return bad(name,
                   "is not a valid SPIFFE ID (path segments may hold only letters, digits, '.', "
                   "'-' and '_')");
      }
    }
    if (next == std::string_view::npos) return {};
    path = path.substr(next + 1);
  }
}

// parse_uri accepts "scheme://rest" with an RFC 3986 §3.1 scheme and a non-empty rest free of
// spaces and control characters: URIs are matched as exact strings, so that is all matching needs.
Result<TargetName> parse_uri(std::string_view name, std::size_t scheme_end) {
  const std::string_view scheme = name.substr(0, scheme_end);
  bool scheme_ok = !scheme.empty() && is_alpha(scheme[0]);
  for (char c : scheme) {
    scheme_ok = scheme_ok && (is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.');
  }
  if (!scheme_ok) return bad(name, "is not a valid URI (bad scheme)");
  const std::string_view rest = name.substr(scheme_end + 3);
  if (rest.empty()) return bad(name, "is not a valid URI (nothing after \"://\")");
  for (char c : rest) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return bad(name, "is not a valid URI (contains a space, control or non-ASCII character)");
    }
  }
  std::string lower(scheme);
  std::transform(lower.begin(), lower.end(), lower.begin(), to_lower);
  if (lower == "spiffe") {
    if (scheme != "spiffe")
      return bad(name, "is not a valid SPIFFE ID (the scheme must be lower case)");
    if (auto r = check_spiffe_id(name); !r) return r.error();
  }
  return TargetName{TargetName::Kind::uri, std::string(name)};
}

// parse_dns applies RFC 1123 §2.1 host name syntax; the last-label rule follows RFC 3696 §2 (so
// "10.0.0.256" is not taken for a host name).
Result<TargetName> parse_dns(std::string_view name) {
  if (name.size() > kMaxDnsName) return bad(name, "is longer than 253 characters (RFC 1035)");
  if (name.back() == '.') return bad(name, "must not end with '.'");
  if (name.find('*') != std::string_view::npos) {
    return bad(name, "contains a wildcard: wildcards belong in certificates, not in target names");
  }
  std::string_view rest = name;
  std::string_view label;
  for (;;) {
    const std::size_t dot = rest.find('.');
    label = rest.substr(0, dot);
    if (label.empty()) return bad(name, "has an empty label");
    if (label.size() > 63) return bad(name, "has a label longer than 63 characters");
    for (char c : label) {
      if (!(is_alpha(c) || is_digit(c) || c == '-')) {
        return bad(name,
                   "is not a DNS name, IP address, URI or sha256: key pin (DNS labels may hold "
                   "only letters, digits and '-')");
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return bad(name, "has a DNS label that starts or ends with '-'");
    }
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  if (std::all_of(label.begin(), label.end(), is_digit)) {
    return bad(name, "is neither an IP address nor a DNS name (all-numeric last label)");
  }
  std::string value(name);
  std::transform(value.begin(), value.end(), value.begin(), to_lower);
  return TargetName{TargetName::Kind::dns, std::move(value)};
}

bool is_ip_literal(std::string_view name) {
  if (name.empty() || name.size() >= INET6_ADDRSTRLEN) return false;
  const std::string copy(name);  // inet_pton needs a terminated string
  unsigned char bytes[16];
  return inet_pton(AF_INET, copy.c_str(), bytes) == 1 ||
         inet_pton(AF_INET6, copy.c_str(), bytes) == 1;
}

}  // namespace

std::string TargetName::text() const {
  return kind == Kind::spki_pin ? std::string(kPinPrefix) + value : value;
}

const char *describe_kind(TargetName::Kind kind) {
  switch (kind) {
    case TargetName::Kind::dns:
      return "DNS name";
    case TargetName::Kind::ip:
      return "IP address";
    case TargetName::Kind::uri:
      return "URI";
    case TargetName::Kind::spki_pin:
      return "key pin";
    case TargetName::Kind::local_uid:
      return "local uid";
    default:
      return "name";
  }
}

Result<TargetName> parse_target_name(std::string_view name) {
  if (name.empty()) return bad(name, "is empty");
  if (name.size() > kMaxTargetName) {
    return bad(name, "is longer than " + std::to_string(kMaxTargetName) + " bytes (" +
                         std::to_string(name.size()) + " bytes)");
  }
  if (name.find('\0') != std::string_view::npos) return bad(name, "contains a NUL byte");
  if (name.substr(0, kPinPrefix.size()) == kPinPrefix) return parse_pin(name);
  if (name.substr(0, kLocalUidPrefix.size()) == kLocalUidPrefix) return parse_local_uid(name);
  if (const std::size_t scheme_end = name.find("://"); scheme_end != std::string_view::npos) {
    return parse_uri(name, scheme_end);
  }
  if (is_ip_literal(name)) return TargetName{TargetName::Kind::ip, std::string(name)};
  if (name.find(':') != std::string_view::npos) {
    return bad(name, "is not a valid IP address, URI or sha256: key pin");
  }
  return parse_dns(name);
}

}  // namespace ssx::identity
