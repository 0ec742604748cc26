// SPDX-License-Identifier: Apache-2.0
// policy/policy.hpp — the administrator's policy: what it says, and how a socket finds its rule.
//
// A Policy is an immutable value built once from /etc/ssx/policy.toml ($SSX_POLICY overrides the
// path; docs/policy.md is the reference). Everything in it has been validated when it was built,
// so code downstream never re-checks a key: an invalid file never produces a Policy, and the caller
// keeps failing closed (EACCES) with the loader's FILE:LINE:COLUMN message instead.
//
// Thread safety: a Policy is read-only after construction and may be shared between threads.

#ifndef SSX_POLICY_POLICY_HPP
#define SSX_POLICY_POLICY_HPP

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssx/result.hpp"

namespace ssx::policy {

enum class Protocol { tls, local, dtls };
enum class TlsVersion { v1_2, v1_3 };
enum class PeerAuthentication { none, optional, required };
enum class Direction { inbound, outbound };
// Transport is the kind of socket a rule is about: TCP (streams, TLS) or UDP (datagrams, DTLS).
enum class Transport { tcp, udp };

// to_string returns the spelling the policy file uses: "tls", "1.3", "required", "inbound", ….
std::string_view to_string(Protocol protocol);
std::string_view to_string(TlsVersion version);
std::string_view to_string(PeerAuthentication authentication);
std::string_view to_string(Direction direction);
std::string_view to_string(Transport transport);

// Settings are the keys of [defaults] that every [[rule]] may override. The member initialisers
// are the built-in defaults that apply when no policy file exists: TLS 1.3 only, the system trust
// store, no local certificate, a peer target name required, cleartext never allowed.
struct Settings {
  Protocol protocol = Protocol::tls;
  TlsVersion min_tls_version = TlsVersion::v1_3;
  std::vector<std::string> cipher_suites;  // TLS 1.3 IANA names; empty = OpenSSL's defaults
  std::string tls12_ciphers;               // OpenSSL cipher string; empty = our safe default
  std::vector<std::string> groups;         // "X25519", "P-256", …; empty = OpenSSL's defaults
  std::string certificate;                 // PEM path (leaf first, then chain); empty = none
  // PEM path, unencrypted, mode 0600; or "agent:NAME", a [[key]] that `ssx agent` holds (the
  // library then never opens a key file; see agent_key_name); empty = none.
  std::string private_key;
  std::string trust_bundle = "system";  // file, directory, or "system"
  std::string crl;                      // PEM path; empty = revocation not checked
  PeerAuthentication peer_authentication = PeerAuthentication::none;  // server side
  // The file says peer_authentication for this table (or, for a rule, in [defaults]). Programs
  // that want client certificates unless the administrator decided otherwise read this (see
  // core::require_client_certificates_by_default).
  bool peer_authentication_set = false;
  bool require_peer_target_name = true;
  bool allow_insecure = false;
  std::uint32_t handshake_timeout_ms = 10000;
  // Server side: time allowed for the client's first flight (its ClientHello) to arrive, counted
  // from the accept; within handshake_timeout_ms. Idle connections then cost a server 2 s, not 10.
  std::uint32_t client_hello_timeout_ms = 2000;
  // Time an established connection may carry nothing either way; 0 = no limit; unset = the
  // application's choice (the library itself never enforces it; it reports it in the query, and
  // `ssx tunnel` / `ssx listen` apply it, with their own default when it is unset).
  std::optional<std::uint32_t> idle_timeout_ms;
  bool session_tickets = true;
  // TCP_NODELAY on secured TCP sockets (connected and accepted), as Go's net package does: a
  // client's last handshake flight and its first small record must not wait for a delayed ACK.
  bool tcp_nodelay = true;
  std::vector<std::string> peer_names;  // names the peer must satisfy besides the application's
  bool deny = false;  // refuse matching sockets with EACCES (in [defaults]: default-deny)

  // Datagram sockets (UDP, DTLS; docs/datagram.md). DTLS 1.2 is the only version OpenSSL 3.0
  // provides; 1.0 is always refused.
  // dtls_mtu is the largest UDP payload ssx sends: every DTLS record, handshake fragments
  // included, fits in one datagram of at most this many bytes (1200 fits every path, as QUIC
  // assumes); an ssx_send whose record would not fit fails with EMSGSIZE.
  std::uint32_t dtls_mtu = 1200;
  // The lowest DTLS version accepted: 1.2 (1.0 is always refused; 1.3 only where the OpenSSL
  // in use provides it).
  TlsVersion min_dtls_version = TlsVersion::v1_2;
  // Unconnected server sockets: at most this many peers with an association at once.
  std::uint32_t max_peers = 1024;
  // An association that carried nothing for this long is dropped (unconnected sockets).
  std::uint32_t peer_idle_timeout_ms = 300000;
};

// kAgentKeyPrefix starts a private_key that names a [[key]] held by `ssx agent`.
inline constexpr std::string_view kAgentKeyPrefix = "agent:";

// agent_key_name returns NAME when |settings| say private_key = "agent:NAME", else "".
std::string_view agent_key_name(const Settings &settings);

// has_credentials reports whether |settings| give this end a certificate to present: a
// certificate file, or an agent key (whose certificate the agent serves when none is set).
bool has_credentials(const Settings &settings);

// KeyEntry is one [[key]] table: a private key that `ssx agent` holds and signs with for the
// programs it names (docs/agent.md). Applications read the same policy file but never open
// |private_key|; only the agent (and `ssx policy check`) does.
struct KeyEntry {
  std::string name;         // agent_key_name() of the settings that use it
  std::string certificate;  // absolute PEM path: leaf first, then its chain
  std::string private_key;  // absolute PEM path, or a PKCS#11 URI ("pkcs11:...")
  // Who may use the key: account names or decimal uids as written; empty = root only. Names are
  // resolved by the agent when it loads the policy (and checked by load options check_keys).
  std::vector<std::string> users;
  // Executables (absolute, symbolic links resolved as for a rule's program) allowed to use the
  // key; empty = any program of an allowed user.
  std::vector<std::string> programs;
  std::uint32_t line = 0;  // where the table starts, for messages
};

// AgentSettings are the top-level keys that say where the agent is.
struct AgentSettings {
  std::string socket = "/run/ssx/agent.sock";  // agent_socket
  std::uint32_t timeout_ms = 2000;             // agent_timeout_ms: one request's whole exchange
};

// PortRange is an inclusive range; a single port has lo == hi.
struct PortRange {
  std::uint16_t lo = 0;
  std::uint16_t hi = 0;
};

// Cidr is an IPv4 or IPv6 network. An IPv4 network also matches IPv4-mapped IPv6 addresses.
struct Cidr {
  int family = AF_INET;       // AF_INET or AF_INET6
  unsigned char bytes[16]{};  // network address, first 4 bytes used for AF_INET
  int prefix_len = 0;
  bool contains(const sockaddr *address) const;
};

// Match holds a rule's match keys; an absent key matches everything.
struct Match {
  std::optional<Direction> direction;
  std::optional<Transport> transport;  // absent: TCP and UDP sockets alike
  std::vector<PortRange> ports;        // `port` and `ports` together; empty = any
  std::optional<Cidr> address;         // remote address outbound, local address inbound
  // Absolute path compared with /proc/self/exe's target. Symbolic links in it are resolved when
  // the policy is loaded (when the file exists then), since /proc/self/exe names the real file.
  std::optional<std::string> program;
};

// Rule is one [[rule]] table. |settings| is already [defaults] with the rule's overrides applied.
struct Rule {
  std::string name;
  Match match;
  Settings settings;
};

// IdentityMapping is one [[identity]] table: peer principals to a local account.
struct IdentityMapping {
  std::string peer;  // exact principal, or a prefix when |prefix| is set (trailing `*`)
  bool prefix = false;
  std::optional<std::string> user;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<std::vector<std::string>> groups;
};

// MatchQuery describes a socket for rule matching.
struct MatchQuery {
  Direction direction = Direction::outbound;
  const sockaddr *remote = nullptr;  // may be null when unknown (inbound before accept)
  const sockaddr *local = nullptr;   // may be null when unknown
  std::string_view program;          // the process's executable path; empty = unknown
  Transport transport = Transport::tcp;
};

// Effective is what matching yields: the settings to apply and the name of the rule that applied
// ("defaults" when none did).
struct Effective {
  const Settings *settings = nullptr;
  std::string_view rule_name;
};

struct Policy {
  std::string source;  // the file it came from, or "(built-in defaults)"
  Settings defaults;
  std::vector<Rule> rules;
  std::vector<IdentityMapping> identities;
  std::vector<KeyEntry> keys;  // [[key]] tables, in file order
  AgentSettings agent;
  uid_t owner = 0;  // the policy file's owner: the agent may run as root or as this user

  // key returns the [[key]] called |name|, or null.
  const KeyEntry *key(std::string_view name) const;

  // match returns the first rule whose match keys all hold for |query|, else the defaults.
  // The port compared is the remote port outbound and the local port inbound.
  Effective match(const MatchQuery &query) const;
};

// builtin_policy returns the policy in force when no policy file exists.
Policy builtin_policy();

// parse_policy parses and validates TOML |text|. |source| names it in messages, which read
// "SOURCE:LINE:COLUMN: message", and is taken as the file's path: relative credential paths are
// resolved against its directory (the working directory when it has none) and stored absolute.
// Credential files named by the policy are checked too (readable, key matches certificate, key
// not accessible by group or others). On failure the code is EINVAL and the message is the first
// error found; docs/policy.md gives the order in which tables are checked. Before any parsing,
// a text above 1 MiB fails with EFBIG ("SOURCE: policy is larger than 1 MiB (N bytes)") and one
// nested deeper than the limit with EINVAL at the offending character (policy/prescan.hpp).
//
// |options| decide what is checked beyond the text: see LoadOptions.
struct LoadOptions {
  // check_keys: also check each [[key]] the way `ssx agent` will use it: its users exist, its
  // certificate file holds a certificate and its private key file (not a PKCS#11 URI) is a key
  // that matches it. Applications leave this off: they never read [[key]] private keys.
  bool check_keys = false;
};
Result<Policy> parse_policy(std::string_view text, std::string_view source,
                            const LoadOptions &options = {});

// load_policy_file reads and parses the file at |path|. A missing file is ENOENT; an unreadable
// one its errno (EISDIR for a directory); an invalid one EINVAL with the first error as
// "PATH:LINE:COLUMN: message". A file that others may write is refused with EACCES (anyone could
// otherwise rewrite every program's security), one above 1 MiB with EFBIG. Messages of file-level
// failures read "PATH: reason".
Result<Policy> load_policy_file(const std::string &path, const LoadOptions &options = {});

// policy_path returns $SSX_POLICY when set and non-empty, else "/etc/ssx/policy.toml". The
// variable is read with secure_getenv, so a set-user-ID or set-group-ID program always uses the
// system path: its caller must not choose the policy that secures it.
std::string policy_path();

}  // namespace ssx::policy

#endif  // SSX_POLICY_POLICY_HPP
