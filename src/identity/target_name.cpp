#include "identity/target_name.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

namespace ssx::identity {
namespace {

constexpr std::string_view kPinPrefix = "sha256:";
constexpr std::string_view kLocalUidPrefix = "unix:uid=";

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

Failure bad(std::string_view name, const std::string &why) {
  return fail(EINVAL, "invalid peer target name \"" + std::string(name) + "\": " + why);
}

Result<TargetName> parse_pin(std::string_view name) {
  std::string_view hex = name.substr(kPinPrefix.size());
  if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), is_hex)) {
    return bad(name, "a key pin is \"sha256:\" followed by 64 hex digits (the SHA-256 of the "
                     "peer's SubjectPublicKeyInfo)");
  }
  std::string value(hex);
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return TargetName{TargetName::Kind::spki_pin, std::move(value)};
}

Result<TargetName> parse_local_uid(std::string_view name) {
  std::string_view digits = name.substr(kLocalUidPrefix.size());
  if (digits.empty() || digits.size() > 10 ||
      !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }) ||
      std::stoull(std::string(digits)) > 0xfffffffeULL) {
    return bad(name, "a local peer is named \"unix:uid=N\" with N a decimal uid");
  }
  return TargetName{TargetName::Kind::local_uid,
                    std::string(kLocalUidPrefix) + std::to_string(std::stoull(std::string(digits)))};
}

Result<TargetName> parse_uri(std::string_view name, size_t scheme_end) {
  std::string_view scheme = name.substr(0, scheme_end);
  if (scheme.empty() || !std::isalpha(static_cast<unsigned char>(scheme[0])) ||
      !std::all_of(scheme.begin(), scheme.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '+' || c == '-' || c == '.';
      })) {
    return bad(name, "URI scheme must be a letter followed by letters, digits, '+', '-' or '.'");
  }
  if (name.size() == scheme_end + 3) return bad(name, "URI has nothing after \"://\"");
  if (std::any_of(name.begin(), name.end(),
                  [](unsigned char c) { return c <= 0x20 || c >= 0x7f; })) {
    return bad(name, "URI contains whitespace, control or non-ASCII characters");
  }
  return TargetName{TargetName::Kind::uri, std::string(name)};
}

Result<TargetName> parse_dns(std::string_view name) {
  std::string value(name);
  if (!value.empty() && value.back() == '.') value.pop_back();  // absolute form
  if (value.empty()) return bad(name, "empty name");
  if (value.size() > 253) return bad(name, "DNS name longer than 253 bytes");
  size_t start = 0;
  while (start <= value.size()) {
    size_t dot = value.find('.', start);
    if (dot == std::string::npos) dot = value.size();
    std::string_view label(value.data() + start, dot - start);
    if (label.empty()) return bad(name, "empty DNS label");
    if (label.size() > 63) return bad(name, "DNS label longer than 63 bytes");
    if (label == "*" || label.find('*') != std::string_view::npos) {
      return bad(name, "wildcards belong in certificates, not in target names");
    }
    for (unsigned char c : label) {
      if (!std::isalnum(c) && c != '-' && c != '_') {
        return bad(name, std::string("character '") + static_cast<char>(c) +
                             "' is not allowed in a DNS name");
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return bad(name, "a DNS label may not start or end with '-'");
    }
    start = dot + 1;
  }
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return TargetName{TargetName::Kind::dns, std::move(value)};
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
  if (name.empty()) return bad(name, "empty name");
  if (name.find('\0') != std::string_view::npos) return bad(name, "embedded NUL byte");
  if (name.substr(0, kPinPrefix.size()) == kPinPrefix) return parse_pin(name);
  if (name.substr(0, kLocalUidPrefix.size()) == kLocalUidPrefix) return parse_local_uid(name);
  if (size_t scheme_end = name.find("://"); scheme_end != std::string_view::npos) {
    return parse_uri(name, scheme_end);
  }
  std::string text(name);
  unsigned char buf[16];
  if (::inet_pton(AF_INET, text.c_str(), buf) == 1 || ::inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    return TargetName{TargetName::Kind::ip, std::move(text)};
  }
  if (name.find(':') != std::string_view::npos) {
    return bad(name, "not a valid IPv6 address, and ':' is not allowed in a DNS name");
  }
  return parse_dns(name);
}

}  // namespace ssx::identity
