// SPDX-License-Identifier: Apache-2.0
#include "policy/values.hpp"

#include <arpa/inet.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <vector>

#include "base/text.hpp"
#include "identity/target_name.hpp"

namespace ssx::policy {
namespace {

using base::quote;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// parse_decimal accepts only plain digits (no sign, no spaces), unlike strtol.
bool parse_decimal(std::string_view text, std::int64_t &out) {
  if (text.empty() || text.size() > 9 || !std::all_of(text.begin(), text.end(), is_digit)) {
    return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// parse_ip fills |bytes| (16 bytes) from an IPv4 or IPv6 literal and returns its family, or 0.
int parse_ip(std::string_view text, unsigned char *bytes) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return 0;
  const std::string copy(text);  // inet_pton needs a terminated string
  if (inet_pton(AF_INET, copy.c_str(), bytes) == 1) return AF_INET;
  if (inet_pton(AF_INET6, copy.c_str(), bytes) == 1) return AF_INET6;
  return 0;
}

std::string format_ip(int family, const unsigned char *bytes) {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(family, bytes, buf, sizeof buf) == nullptr) return "?";
  return buf;
}

}  // namespace

Result<Cidr> parse_cidr(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  Cidr cidr;
  cidr.family = parse_ip(address, cidr.bytes);
  if (cidr.family == 0) {
    return fail(EINVAL, "address " + quote(text) + " is not an IPv4 or IPv6 address or network");
  }
  const int max_len = cidr.family == AF_INET ? 32 : 128;
  cidr.prefix_len = max_len;
  if (slash != std::string_view::npos) {
    std::int64_t len = 0;
    if (!parse_decimal(text.substr(slash + 1), len)) {
      return fail(EINVAL, "address " + quote(text) + " has an invalid prefix length");
    }
    if (len > max_len) {
      return fail(EINVAL, "address " + quote(text) + " has a prefix length above " +
                              std::to_string(max_len));
    }
    cidr.prefix_len = static_cast<int>(len);
  }
  Cidr masked = cidr;
  for (int bit = cidr.prefix_len; bit < max_len; ++bit) {
    masked.bytes[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
  }
  if (!std::equal(cidr.bytes, cidr.bytes + 16, masked.bytes)) {
    return fail(EINVAL, "address " + quote(text) + " has bits set beyond the /" +
                            std::to_string(cidr.prefix_len) + " prefix; did you mean " +
                            quote(format_cidr(masked)) + "?");
  }
  return cidr;
}

std::string format_cidr(const Cidr &cidr) {
  return format_ip(cidr.family, cidr.bytes) + "/" + std::to_string(cidr.prefix_len);
}

Result<std::uint16_t> check_port(std::int64_t port) {
  if (port < 1 || port > 65535) {
    return fail(EINVAL, "port " + std::to_string(port) + " is out of range (1-65535)");
  }
  return static_cast<std::uint16_t>(port);
}

Result<PortRange> parse_port_range(std::string_view text) {
  const std::size_t dash = text.find('-');
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  const bool ok =
      dash == std::string_view::npos
          ? parse_decimal(text, lo) && parse_decimal(text, hi)
          : parse_decimal(text.substr(0, dash), lo) && parse_decimal(text.substr(dash + 1), hi);
  if (!ok) {
    return fail(EINVAL, "port range " + quote(text) + " must look like \"8000-8100\"");
  }
  for (std::int64_t port : {lo, hi}) {
    if (port < 1 || port > 65535) {
      return fail(EINVAL, "port range " + quote(text) + ": " + std::to_string(port) +
                              " is out of range (1-65535)");
    }
  }
  if (lo > hi) {
    return fail(EINVAL, "port range " + quote(text) + " is reversed (" + std::to_string(lo) +
                            " > " + std::to_string(hi) + ")");
  }
  return PortRange{static_cast<std::uint16_t>(lo), static_cast<std::uint16_t>(hi)};
}

Result<std::string> check_peer_name(std::string_view name) {
  auto parsed = identity::parse_target_name(name);
  if (!parsed) return std::move(parsed).error();
  return parsed->text();
}

Result<void> check_account_name(std::string_view what, std::string_view name) {
  std::string_view body = name;
  if (!body.empty() && body.back() == '$') body.remove_suffix(1);
  bool ok = !body.empty() && name.size() <= 32 && body.front() != '-';
  for (char c : body) ok = ok && (is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-');
  if (!ok) {
    return fail(EINVAL, std::string(what) + " " + quote(name) +
                            " is not a valid account name (1-32 letters, digits, '.', '_', '-')");
  }
  if (std::all_of(body.begin(), body.end(), is_digit)) {
    return fail(EINVAL, std::string(what) + " " + quote(name) +
                            " is all digits; put numeric ids in uid or gid");
  }
  return {};
}

namespace {

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_digit);
}

}  // namespace

Result<void> check_key_user(std::string_view user, bool resolve) {
  if (all_digits(user)) {
    if (user.size() > 10 || std::stoull(std::string(user)) > 4294967294ULL) {
      return fail(EINVAL, "uid " + quote(user) + " is out of range (0 to 4294967294)");
    }
    return {};
  }
  if (auto ok = check_account_name("user", user); !ok) return ok;
  if (resolve && !resolve_key_user(user)) {
    return fail(EINVAL, "unknown user " + quote(user) + " (no such account)");
  }
  return {};
}

Result<uid_t> resolve_key_user(std::string_view user) {
  if (all_digits(user)) return static_cast<uid_t>(std::stoull(std::string(user)));
  const std::string name(user);
  passwd pw{};
  passwd *found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return fail(ENOENT, "unknown user " + quote(user));
  }
  return found->pw_uid;
}

Result<void> check_pkcs11_uri(std::string_view uri) {
  static constexpr std::string_view kPathAttributes[] = {"token",
                                                         "manufacturer",
                                                         "serial",
                                                         "model",
                                                         "library-manufacturer",
                                                         "library-description",
                                                         "library-version",
                                                         "slot-description",
                                                         "slot-manufacturer",
                                                         "slot-id",
                                                         "object",
                                                         "id",
                                                         "type"};
  static constexpr std::string_view kQueryAttributes[] = {"pin-value", "pin-source", "module-name",
                                                          "module-path"};
  constexpr std::string_view kScheme = "pkcs11:";
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return fail(EINVAL, "PKCS#11 URI " + quote(uri) + " must start with \"pkcs11:\"");
  }
  std::string_view rest = uri.substr(kScheme.size());
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  bool names_object = false;
  auto check_part = [&](std::string_view part, std::span<const std::string_view> known,
                        bool is_path) -> Result<void> {
    const auto eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return fail(EINVAL,
                  "PKCS#11 URI " + quote(uri) + ": " + quote(part) + " is not ATTRIBUTE=VALUE");
    }
    const std::string_view attribute = part.substr(0, eq);
    const std::string_view value = part.substr(eq + 1);
    if (std::find(known.begin(), known.end(), attribute) == known.end()) {
      return fail(EINVAL, "PKCS#11 URI " + quote(uri) + ": unknown attribute " + quote(attribute));
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
      const char c = value[i];
      if (c == '%') {
        if (i + 2 >= value.size()) {
          return fail(EINVAL, "PKCS#11 URI " + quote(uri) + ": truncated %-escape");
        }
        if (!std::isxdigit(static_cast<unsigned char>(value[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(value[i + 2]))) {
          return fail(EINVAL, "PKCS#11 URI " + quote(uri) + ": bad %-escape");
        }
        i += 2;
        continue;
      }
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f ||
          c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' ||
          c == '|' || c == '}' || (is_path && (c == '/' || c == '?' || c == '#'))) {
        return fail(EINVAL, "PKCS#11 URI " + quote(uri) + ": character " +
                                quote(std::string_view(&value[i], 1)) + " must be %-escaped");
      }
    }
    if (is_path && (attribute == "object" || attribute == "id") && !value.empty()) {
      names_object = true;
    }
    if (is_path && attribute == "type" && value != "private") {
      return fail(EINVAL, "PKCS#11 URI " + quote(uri) + ": type must be \"private\" for a key");
    }
    return {};
  };
  auto split = [&](std::string_view text, char sep, std::span<const std::string_view> known,
                   bool is_path) -> Result<void> {
    while (!text.empty()) {
      const auto end = text.find(sep);
      const std::string_view part = text.substr(0, end);
      if (auto r = check_part(part, known, is_path); !r) return r;
      if (end == std::string_view::npos) break;
      text = text.substr(end + 1);
      if (text.empty()) {
        return fail(EINVAL, "PKCS#11 URI " + quote(uri) + ": empty attribute");
      }
    }
    return {};
  };
  if (auto r = split(rest, ';', kPathAttributes, true); !r) return r;
  if (auto r = split(query, '&', kQueryAttributes, false); !r) return r;
  if (!names_object) {
    return fail(EINVAL, "PKCS#11 URI " + quote(uri) + " must name the key with object= or id=");
  }
  return {};
}

std::string_view closest_name(std::string_view name, std::span<const std::string_view> candidates) {
  // The distance costs |name| × |candidate| steps: a key from a hostile file may be a megabyte
  // long, and no key that long is a typo of a short one.
  constexpr std::size_t kMaxGuessable = 64;
  if (name.size() > kMaxGuessable) return {};
  // Levenshtein distance, one row at a time.
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      std::size_t diagonal = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        const std::size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = up;
      }
    }
    return row[b.size()];
  };
  std::string_view best;
  std::size_t best_distance = SIZE_MAX;
  for (std::string_view candidate : candidates) {
    std::size_t d = distance(name, candidate);
    // A truncated key ("min_tls" for "min_tls_version") is far in edit distance but an obvious
    // intent; count it as close.
    if (name.size() >= 4 && candidate.substr(0, name.size()) == name)
      d = std::min<std::size_t>(d, 1);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  const std::size_t limit = std::max<std::size_t>(2, name.size() / 3);
  return best_distance <= limit ? best : std::string_view();
}

std::string base_directory(std::string_view source) {
  const std::size_t slash = source.rfind('/');
  std::string dir = slash == std::string_view::npos ? std::string(".")
                    : slash == 0                    ? std::string("/")
                                                    : std::string(source.substr(0, slash));
  if (dir.front() == '/') return dir;
  // Resolve now: the process may change its working directory before the paths are used.
  std::vector<char> cwd(PATH_MAX);
  if (::getcwd(cwd.data(), cwd.size()) == nullptr) return dir;
  std::string out = cwd.data();
  return dir == "." ? out : resolve_path(out, dir);
}

std::string resolve_path(std::string_view base_dir, std::string_view path) {
  if (!path.empty() && path.front() == '/') return std::string(path);
  std::string out(base_dir);
  if (out.empty() || out.back() != '/') out += '/';
  out += path;
  return out;
}

}  // namespace ssx::policy
