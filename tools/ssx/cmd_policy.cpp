// SPDX-License-Identifier: Apache-2.0
// tools/ssx/cmd_policy.cpp — `ssx policy check` and `ssx policy explain`: the administrator's view
// of a policy file (docs/policy.md is the reference for the file itself).
//
// `check` does what a process does when it loads or reloads the policy: the loader's validation
// (credential files included) and then every TLS context built, so "valid" here means a process
// would put the file in force. `explain` shows which rule a socket would get and every setting
// that applies to it.

#include <arpa/inet.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/text.hpp"
#include "command.hpp"
#include "core/policy_state.hpp"
#include "ossl/inspect.hpp"
#include "policy/policy.hpp"

namespace ssx::cli {
namespace {

using nlohmann::ordered_json;

struct CheckOptions {
  std::string file;
};

struct ExplainOptions {
  std::string policy;
  std::string connect;
  std::string accept;
  std::string program;
  bool udp = false;
  bool json = false;
};

// --- check
// ----------------------------------------------------------------------------------------

// is_positioned says whether |message| reads "SOURCE:LINE:COLUMN: ...".
bool is_positioned(const std::string &message, const std::string &source) {
  if (message.compare(0, source.size() + 1, source + ":") != 0) return false;
  const std::size_t at = source.size() + 1;
  return at < message.size() && std::isdigit(static_cast<unsigned char>(message[at])) != 0;
}

// invalid_file says whether a load failure means the file is not an acceptable policy (exit 2),
// rather than that it could not be read at all (exit 1).
bool invalid_file(const Failure &failure, const std::string &path) {
  if (failure.code == EINVAL || failure.code == EFBIG) return true;
  struct stat st {};
  return failure.code == EACCES && ::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IWOTH) != 0;
}

// load reads |path| as a policy or fails the command: positioned errors are printed as they are,
// "FILE:LINE:COLUMN: message", before the one-line summary. `ssx policy check` (the
// |print_diagnostic| caller) also checks [[key]] tables as `ssx agent` will use them: users that
// exist, key files that match their certificates.
policy::Policy load(const std::string &path, bool print_diagnostic) {
  policy::LoadOptions options;
  options.check_keys = print_diagnostic;
  auto loaded = policy::load_policy_file(path, options);
  if (loaded) return std::move(*loaded);
  const Failure &f = loaded.error();
  const int code = invalid_file(f, path) ? kExitUsage : kExitFailure;
  if (print_diagnostic && is_positioned(f.message, path)) {
    (void)std::fprintf(stderr, "%s\n", f.message.c_str());
    throw CommandError(code, path + " is not a valid policy");
  }
  throw CommandError(code, f.message);
}

// Findings are what check reports beyond what the loader refuses: problems (exit 2) and warnings
// (exit 0), one line each.
struct Findings {
  std::vector<std::string> problems;
  std::vector<std::string> warnings;
};

constexpr std::time_t kExpiryWarning = 30LL * 24 * 3600;

std::string utc_date(std::time_t t) {
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  char text[32];
  (void)std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

// check_certificate looks at the certificate a table names for what the loader does not refuse
// but a handshake would: the wrong extended key usage for the directions the table serves, a CA
// certificate in place of a leaf, an expired one (a problem) or one about to expire (a warning).
void check_certificate(const std::string &table, const policy::Settings &s,
                       std::optional<policy::Direction> direction, Findings &out) {
  if (s.certificate.empty()) return;
  auto facts = ossl::inspect_certificate_file(s.certificate);
  if (!facts) {
    out.problems.push_back(table + ": " + facts.error().message);
    return;
  }
  const std::string cert = "certificate " + base::quote(s.certificate);
  const bool inbound = !direction || *direction == policy::Direction::inbound;
  const bool outbound = !direction || *direction == policy::Direction::outbound;
  if (facts->is_ca) {
    out.problems.push_back(table + ": " + cert + " is a CA certificate (basicConstraints " +
                           "CA:TRUE), not a leaf; name the certificate issued to this host");
  }
  if (facts->has_extended_key_usage) {
    if (!facts->server_auth && !facts->client_auth) {
      out.problems.push_back(table + ": " + cert +
                             " allows neither TLS server nor TLS client authentication "
                             "(extendedKeyUsage has no serverAuth or clientAuth)");
    } else if (inbound && !outbound && !facts->server_auth) {
      out.problems.push_back(table + ": " + cert +
                             " is used by inbound sockets (a server certificate) but its "
                             "extendedKeyUsage has no serverAuth: clients will refuse it");
    } else if (outbound && !inbound && !facts->client_auth) {
      out.problems.push_back(table + ": " + cert +
                             " is used by outbound sockets (a client certificate) but its "
                             "extendedKeyUsage has no clientAuth: servers will refuse it");
    }
  }
  const std::time_t now = std::time(nullptr);
  if (facts->not_after <= now) {
    out.problems.push_back(table + ": " + cert + " expired on " + utc_date(facts->not_after));
  } else if (facts->not_before > now) {
    out.problems.push_back(table + ": " + cert + " is not valid before " +
                           utc_date(facts->not_before));
  } else if (facts->not_after - now < kExpiryWarning) {
    const long days = static_cast<long>((facts->not_after - now) / std::time_t{86400});
    out.warnings.push_back(table + ": " + cert + " expires in " + std::to_string(days) +
                           (days == 1 ? " day" : " days") + ", on " + utc_date(facts->not_after));
  }
}

bool user_exists(const std::string &name) {
  std::vector<char> buffer(16384);
  passwd pw{};
  passwd *found = nullptr;
  return ::getpwnam_r(name.c_str(), &pw, buffer.data(), buffer.size(), &found) == 0 &&
         found != nullptr;
}

bool group_exists(const std::string &name) {
  if (!name.empty() &&
      std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return true;  // a number: a gid needs no entry
  }
  std::vector<char> buffer(65536);
  group gr{};
  group *found = nullptr;
  return ::getgrnam_r(name.c_str(), &gr, buffer.data(), buffer.size(), &found) == 0 &&
         found != nullptr;
}

// check_identities looks up each [[identity]]'s user and groups: the loader accepts names that do
// not exist (accounts may be created later), so check says so before a peer maps to nothing.
void check_identities(const policy::Policy &p, Findings &out) {
  for (std::size_t i = 0; i < p.identities.size(); ++i) {
    const auto &id = p.identities[i];
    const std::string table = "[[identity]] " + std::to_string(i + 1) + " (peer " +
                              base::quote(id.peer + (id.prefix ? "*" : "")) + ")";
    if (id.user && !user_exists(*id.user)) {
      out.problems.push_back(table + ": user " + base::quote(*id.user) +
                             " does not exist on this host");
    }
    if (id.groups) {
      for (const auto &g : *id.groups) {
        if (!group_exists(g)) {
          out.problems.push_back(table + ": group " + base::quote(g) +
                                 " does not exist on this host");
        }
      }
    }
  }
}

void run_check(const CheckOptions &opts) {
  policy::Policy p = load(opts.file, true);
  Findings findings;
  check_certificate("[defaults]", p.defaults, std::nullopt, findings);
  for (const auto &rule : p.rules) {
    // A certificate a rule inherits from [defaults] is checked once, as [defaults] (which serves
    // both directions, so only a certificate fit for neither is a problem there).
    if (rule.settings.certificate == p.defaults.certificate) continue;
    check_certificate("rule " + base::quote(rule.name), rule.settings, rule.match.direction,
                      findings);
  }
  check_identities(p, findings);
  for (const auto &w : findings.warnings) {
    (void)std::fprintf(stderr, "ssx: warning: %s: %s\n", opts.file.c_str(), w.c_str());
  }
  if (!findings.problems.empty()) {
    for (const auto &problem : findings.problems) {
      (void)std::fprintf(stderr, "%s: %s\n", opts.file.c_str(), problem.c_str());
    }
    throw CommandError(kExitUsage, opts.file + " is not a valid policy");
  }
  const std::size_t rules = p.rules.size();
  const auto denying = std::count_if(p.rules.begin(), p.rules.end(),
                                     [](const policy::Rule &r) { return r.settings.deny; });
  const std::size_t identities = p.identities.size();
  const bool default_deny = p.defaults.deny;
  // Build every TLS context, as a process loading the file would: this reads the credentials
  // once more, as OpenSSL does, and catches what only building a context finds.
  auto snapshot = core::PolicySnapshot::build(std::move(p));
  if (!snapshot) throw CommandError(kExitUsage, snapshot.error().message);
  const std::size_t files = (*snapshot)->files().size();

  std::string summary =
      opts.file + ": valid: " + std::to_string(rules) + (rules == 1 ? " rule" : " rules");
  if (denying > 0) summary += " (" + std::to_string(denying) + " deny)";
  summary += ", " + std::to_string(identities) + (identities == 1 ? " identity" : " identities");
  summary += ", " + std::to_string(files) + (files == 1 ? " file" : " files") + " checked";
  if (default_deny) summary += "; default deny";
  std::printf("%s\n", summary.c_str());
}

// --- explain ----------------------------------------------------------------------------------

// Endpoint is an address a socket connects to or accepts on.
struct Endpoint {
  sockaddr_storage address{};
  std::string text;  // "192.0.2.7:443", "[2001:db8::7]:443"
};

std::uint16_t parse_port(const std::string &text, const std::string &option) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    usage_error(option + ": port must be a number from 1 to 65535, not " + base::quote(text));
  }
  const long port = std::strtol(text.c_str(), nullptr, 10);
  if (port < 1 || port > 65535) {
    usage_error(option + ": port must be a number from 1 to 65535, not " + text);
  }
  return static_cast<std::uint16_t>(port);
}

// split_host_port splits "HOST:PORT" and "[IPV6]:PORT"; a lone "PORT" gives an empty host when
// |port_alone| allows it.
void split_host_port(const std::string &text, const std::string &option, bool port_alone,
                     std::string &host, std::string &port) {
  const std::string form = port_alone ? "[ADDRESS:]PORT" : "HOST:PORT";
  if (!text.empty() && text[0] == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      usage_error(option + " must look like " + form + " (IPv6 as [2001:db8::1]:443), not " +
                  base::quote(text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    return;
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    if (!port_alone) usage_error(option + " must look like " + form + ", not " + base::quote(text));
    host.clear();
    port = text;
    return;
  }
  host = text.substr(0, colon);
  port = text.substr(colon + 1);
  if (host.empty() || host.find(':') != std::string::npos) {
    usage_error(option + " must look like " + form + " (IPv6 as [2001:db8::1]:443), not " +
                base::quote(text));
  }
}

std::string format_endpoint(const sockaddr_storage &ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  const auto *in = reinterpret_cast<const sockaddr_in *>(&ss);
  ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
}

// numeric_endpoint parses an IPv4 or IPv6 literal; nullopt when |host| is not one.
std::optional<Endpoint> numeric_endpoint(const std::string &host, std::uint16_t port) {
  Endpoint e;
  auto *in = reinterpret_cast<sockaddr_in *>(&e.address);
  auto *in6 = reinterpret_cast<sockaddr_in6 *>(&e.address);
  if (::inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
  } else if (::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
  } else {
    return std::nullopt;
  }
  e.text = format_endpoint(e.address);
  return e;
}

// connect_endpoint resolves --connect HOST:PORT; a name with several addresses uses the first.
Endpoint connect_endpoint(const std::string &text) {
  std::string host;
  std::string port_text;
  split_host_port(text, "--connect", false, host, port_text);
  const std::uint16_t port = parse_port(port_text, "--connect");
  if (auto e = numeric_endpoint(host, port)) return *e;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *list = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (rc != 0) failure("cannot resolve " + base::quote(host) + ": " + ::gai_strerror(rc));
  std::vector<Endpoint> found;
  for (addrinfo *ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    Endpoint e;
    std::memcpy(&e.address, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET) {
      reinterpret_cast<sockaddr_in *>(&e.address)->sin_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in6 *>(&e.address)->sin6_port = htons(port);
    }
    e.text = format_endpoint(e.address);
    found.push_back(e);
  }
  ::freeaddrinfo(list);
  if (found.empty()) failure("cannot resolve " + base::quote(host) + ": no IPv4 or IPv6 address");
  if (found.size() > 1) {
    (void)std::fprintf(stderr,
                       "ssx: warning: %s has %zu addresses; explaining the first, %s (rules may "
                       "match the others differently)\n",
                       host.c_str(), found.size(), found.front().text.c_str());
  }
  return found.front();
}

// accept_endpoint parses --accept [ADDRESS:]PORT. Without an address it is 0.0.0.0, the address
// of a listener bound to every interface.
Endpoint accept_endpoint(const std::string &text, bool *address_given) {
  std::string host;
  std::string port_text;
  split_host_port(text, "--accept", true, host, port_text);
  const std::uint16_t port = parse_port(port_text, "--accept");
  *address_given = !host.empty();
  auto e = numeric_endpoint(host.empty() ? "0.0.0.0" : host, port);
  if (!e) usage_error("--accept: " + base::quote(host) + " is not an IPv4 or IPv6 address");
  return *e;
}

// program_path is --program with symbolic links resolved, as the loader resolves a rule's
// `program` and as /proc/self/exe names the running program.
std::string program_path(const std::string &program) {
  if (program.empty()) return program;
  if (program[0] != '/')
    usage_error("--program must be an absolute path, not " + base::quote(program));
  char resolved[PATH_MAX];
  if (::realpath(program.c_str(), resolved) != nullptr) return resolved;
  return program;
}

// kSettingKeys lists every key of [defaults] and [[rule]] in the order of docs/policy.md, with
// its value in TOML terms.
struct SettingKey {
  const char *name;
  ordered_json (*value)(const policy::Settings &s);
};

const SettingKey kSettingKeys[] = {
    {"protocol",
     [](const policy::Settings &s) -> ordered_json { return std::string(to_string(s.protocol)); }},
    {"min_tls_version",
     [](const policy::Settings &s) -> ordered_json {
       return std::string(to_string(s.min_tls_version));
     }},
    {"cipher_suites", [](const policy::Settings &s) -> ordered_json { return s.cipher_suites; }},
    {"tls12_ciphers", [](const policy::Settings &s) -> ordered_json { return s.tls12_ciphers; }},
    {"groups", [](const policy::Settings &s) -> ordered_json { return s.groups; }},
    {"certificate", [](const policy::Settings &s) -> ordered_json { return s.certificate; }},
    {"private_key", [](const policy::Settings &s) -> ordered_json { return s.private_key; }},
    {"trust_bundle", [](const policy::Settings &s) -> ordered_json { return s.trust_bundle; }},
    {"crl", [](const policy::Settings &s) -> ordered_json { return s.crl; }},
    {"peer_authentication",
     [](const policy::Settings &s) -> ordered_json {
       return std::string(to_string(s.peer_authentication));
     }},
    {"require_peer_target_name",
     [](const policy::Settings &s) -> ordered_json { return s.require_peer_target_name; }},
    {"allow_insecure", [](const policy::Settings &s) -> ordered_json { return s.allow_insecure; }},
    {"handshake_timeout_ms",
     [](const policy::Settings &s) -> ordered_json { return s.handshake_timeout_ms; }},
    {"client_hello_timeout_ms",
     [](const policy::Settings &s) -> ordered_json { return s.client_hello_timeout_ms; }},
    {"idle_timeout_ms",
     [](const policy::Settings &s) -> ordered_json {
       if (!s.idle_timeout_ms) return nullptr;
       return *s.idle_timeout_ms;
     }},
    {"session_tickets",
     [](const policy::Settings &s) -> ordered_json { return s.session_tickets; }},
    {"tcp_nodelay", [](const policy::Settings &s) -> ordered_json { return s.tcp_nodelay; }},
    {"peer_names", [](const policy::Settings &s) -> ordered_json { return s.peer_names; }},
    {"deny", [](const policy::Settings &s) -> ordered_json { return s.deny; }},
    {"min_dtls_version",
     [](const policy::Settings &s) -> ordered_json {
       return std::string(to_string(s.min_dtls_version));
     }},
    {"dtls_mtu", [](const policy::Settings &s) -> ordered_json { return s.dtls_mtu; }},
    {"max_peers", [](const policy::Settings &s) -> ordered_json { return s.max_peers; }},
    {"peer_idle_timeout_ms",
     [](const policy::Settings &s) -> ordered_json { return s.peer_idle_timeout_ms; }},
};

// toml_value writes a value as it would appear in the policy file.
std::string toml_value(const ordered_json &value) {
  if (value.is_null()) return "(unset)";
  if (!value.is_array()) return value.dump();
  std::string out = "[";
  for (std::size_t i = 0; i < value.size(); ++i) out += (i > 0 ? ", " : "") + value[i].dump();
  return out + "]";
}

// Explanation is what explain reports, before it is printed as text or JSON.
struct Explanation {
  std::string policy;  // the file, or "(built-in defaults)"
  bool outbound = true;
  bool udp = false;  // a UDP socket (DTLS)
  Endpoint endpoint;
  std::string program;          // "" when not given
  std::string rule;             // "defaults" when no rule matched
  std::size_t rule_number = 0;  // 1-based; 0 for defaults
  std::size_t rule_count = 0;
  struct Key {
    std::string name;
    ordered_json value;
    std::string from;  // "rule", "defaults" or "built-in"
  };
  std::vector<Key> keys;
};

// from_layer names the layer a value comes from: the rule when it differs from [defaults], else
// [defaults] when that differs from the built-in default. A rule that repeats the [defaults]
// value shows as "defaults": the value is the same either way.
std::string from_layer(const ordered_json &value, const ordered_json &defaults,
                       const ordered_json &builtin, bool matched_rule) {
  if (matched_rule && value != defaults) return "rule";
  if (defaults != builtin) return "defaults";
  return "built-in";
}

void print_text(const Explanation &e) {
  std::printf("policy   %s\n", e.policy.c_str());
  std::printf("socket   %s%s %s\n", e.udp ? "UDP, " : "", e.outbound ? "outbound to" : "inbound on",
              e.endpoint.text.c_str());
  std::printf("program  %s\n", e.program.empty() ? "(not given)" : e.program.c_str());
  if (e.rule_number == 0) {
    std::printf("rule     defaults (no [[rule]] of %zu matched)\n", e.rule_count);
  } else {
    std::printf("rule     %s (rule %zu of %zu)\n", base::quote(e.rule).c_str(), e.rule_number,
                e.rule_count);
  }
  const bool denied = std::any_of(e.keys.begin(), e.keys.end(), [](const Explanation::Key &k) {
    return k.name == "deny" && k.value == true;
  });
  std::printf("verdict  %s\n",
              denied ? "refused (deny = true): the socket fails with EACCES" : "secured as below");
  std::printf(
      "\n# effective settings: the rule's keys over [defaults] over the built-in defaults\n");
  std::size_t width = 0;
  for (const auto &k : e.keys)
    width = std::max(width, k.name.size() + 3 + toml_value(k.value).size());
  width = std::min<std::size_t>(width, 72);
  for (const auto &k : e.keys) {
    const std::string line = k.name + " = " + toml_value(k.value);
    const std::string from = k.from == "rule"       ? "rule"
                             : k.from == "defaults" ? "[defaults]"
                                                    : "built-in";
    std::printf("%-*s  # %s\n", static_cast<int>(width), line.c_str(), from.c_str());
  }
}

void print_json(const Explanation &e) {
  ordered_json out;
  out["policy"] = e.policy;
  out["direction"] = e.outbound ? "outbound" : "inbound";
  out["transport"] = e.udp ? "udp" : "tcp";
  out[e.outbound ? "remote" : "local"] = e.endpoint.text;
  out["program"] = e.program.empty() ? ordered_json(nullptr) : ordered_json(e.program);
  out["rule"] = e.rule;
  out["rule_number"] = e.rule_number == 0 ? ordered_json(nullptr) : ordered_json(e.rule_number);
  out["rule_count"] = e.rule_count;
  ordered_json settings = ordered_json::object();
  ordered_json from = ordered_json::object();
  for (const auto &k : e.keys) {
    settings[k.name] = k.value;
    from[k.name] = k.from;
  }
  out["settings"] = settings;
  out["from"] = from;
  std::printf("%s\n", out.dump(2).c_str());
}

void run_explain(const ExplainOptions &opts) {
  if (opts.connect.empty() == opts.accept.empty()) {
    usage_error("give exactly one of --connect HOST:PORT and --accept [ADDRESS:]PORT");
  }
  // The policy: --policy, else the file a process would load, else the built-in defaults.
  policy::Policy p;
  if (!opts.policy.empty()) {
    p = load(opts.policy, false);
  } else {
    const std::string path = policy::policy_path();
    const char *env = std::getenv("SSX_POLICY");
    struct stat st {};
    if ((env == nullptr || *env == '\0') && ::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
      p = policy::builtin_policy();
    } else {
      p = load(path, false);
    }
  }

  Explanation e;
  e.policy = p.source;
  e.outbound = !opts.connect.empty();
  e.udp = opts.udp;
  bool address_given = true;
  e.endpoint =
      e.outbound ? connect_endpoint(opts.connect) : accept_endpoint(opts.accept, &address_given);
  e.program = program_path(opts.program);

  policy::MatchQuery query;
  query.direction = e.outbound ? policy::Direction::outbound : policy::Direction::inbound;
  const auto *address = reinterpret_cast<const sockaddr *>(&e.endpoint.address);
  (e.outbound ? query.remote : query.local) = address;
  query.program = e.program;
  query.transport = e.udp ? policy::Transport::udp : policy::Transport::tcp;
  const policy::Effective matched = p.match(query);
  e.rule = std::string(matched.rule_name);
  e.rule_count = p.rules.size();
  for (std::size_t i = 0; i < p.rules.size(); ++i) {
    if (&p.rules[i].settings == matched.settings) e.rule_number = i + 1;
  }

  // Say what the answer rests on when an input the rules look at was not given.
  const std::size_t tried = e.rule_number == 0 ? p.rules.size() : e.rule_number;
  for (std::size_t i = 0; i < tried; ++i) {
    const policy::Rule &rule = p.rules[i];
    if (rule.match.program && e.program.empty()) {
      (void)std::fprintf(stderr,
                         "ssx: warning: rule %s matches on program; without --program it does "
                         "not match\n",
                         base::quote(rule.name).c_str());
    }
    if (rule.match.address && !address_given) {
      (void)std::fprintf(stderr,
                         "ssx: warning: rule %s matches on the local address, taken as 0.0.0.0; "
                         "give --accept ADDRESS:PORT with the address clients connect to\n",
                         base::quote(rule.name).c_str());
    }
  }

  const policy::Settings builtin;
  for (const SettingKey &key : kSettingKeys) {
    const ordered_json value = key.value(*matched.settings);
    e.keys.push_back(
        {key.name, value,
         from_layer(value, key.value(p.defaults), key.value(builtin), e.rule_number != 0)});
  }
  if (opts.json) {
    print_json(e);
  } else {
    print_text(e);
  }
}

}  // namespace

void register_policy(CLI::App &app) {
  CLI::App *cmd = app.add_subcommand("policy", "Check a policy file; explain which rule applies");
  cmd->require_subcommand(1);
  set_example(cmd,
              "  ssx policy check /etc/ssx/policy.toml\n"
              "  ssx policy explain --connect 10.20.0.5:5432 --program /usr/bin/psql");

  auto check_opts = std::make_shared<CheckOptions>();
  CLI::App *check_cmd = cmd->add_subcommand(
      "check",
      "Validate a policy file as ssx loads it, credential files and TLS contexts included");
  check_cmd->add_option("FILE", check_opts->file, "The policy file")->required();
  check_cmd->footer(
      "\nBeyond what loading checks, it refuses certificates unfit for their use (a rule for "
      "inbound\n"
      "sockets whose certificate lacks serverAuth, outbound without clientAuth, a CA certificate\n"
      "as a leaf, expired) and [[identity]] users or groups that do not exist; a certificate\n"
      "expiring within 30 days is a warning.\n"
      "\nExit status: 0 when FILE is valid (a one-line summary on stdout), 2 when it is not (the\n"
      "first error on stderr as FILE:LINE:COLUMN: message), 1 when FILE cannot be read.\n"
      "\nExample:\n"
      "  ssx policy check /etc/ssx/policy.toml.new && mv /etc/ssx/policy.toml.new "
      "/etc/ssx/policy.toml");
  check_cmd->callback([check_opts] { run_check(*check_opts); });

  auto explain_opts = std::make_shared<ExplainOptions>();
  CLI::App *explain = cmd->add_subcommand(
      "explain", "Show which rule applies to a socket and every setting in effect for it");
  explain->add_option("--policy", explain_opts->policy,
                      "Policy file (default: $SSX_POLICY, else /etc/ssx/policy.toml, else the "
                      "built-in defaults)");
  CLI::Option *connect =
      explain->add_option("--connect", explain_opts->connect,
                          "An outbound socket to HOST:PORT ([IPV6]:PORT; a name is resolved)");
  CLI::Option *accept = explain->add_option(
      "--accept", explain_opts->accept,
      "An inbound socket accepted on [ADDRESS:]PORT (ADDRESS: the local address clients connect "
      "to; default 0.0.0.0)");
  connect->excludes(accept);
  explain->add_option("--program", explain_opts->program,
                      "Absolute path of the program that owns the socket (matches `program`)");
  explain->add_flag("--udp", explain_opts->udp,
                    "A UDP socket (DTLS; matches rules with transport = \"udp\")");
  explain->add_flag("--json", explain_opts->json, "Print JSON instead of text");
  explain->footer(
      "\nGive exactly one of --connect and --accept. Each setting is followed by the layer its\n"
      "value comes from: the rule (where it differs from [defaults]), [defaults], or the\n"
      "built-in default.\n"
      "\nExample:\n"
      "  ssx policy explain --connect db.example.org:5432 --program /usr/bin/psql\n"
      "  ssx policy explain --policy ./policy.toml --accept 127.0.0.1:9100 --json");
  explain->callback([explain_opts] { run_explain(*explain_opts); });
}

}  // namespace ssx::cli
