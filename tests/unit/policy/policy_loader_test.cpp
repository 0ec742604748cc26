// SPDX-License-Identifier: Apache-2.0
// parse_policy: the format, one malformed input per class of error, and rule overrides.
// Credential files are in policy_credentials_test.cpp.

#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>

#include "policy/policy.hpp"

namespace ssx::policy {
namespace {

// error_of parses |text| as "p.toml" and returns the failure message ("" when it parsed).
std::string error_of(const std::string &text) {
  Result<Policy> policy = parse_policy(text, "p.toml");
  if (policy) return "";
  EXPECT_EQ(policy.error().code, EINVAL);
  return policy.error().message;
}

Policy parse_ok(const std::string &text) {
  Result<Policy> policy = parse_policy(text, "/etc/ssx/policy.toml");
  EXPECT_TRUE(policy.has_value()) << policy.error().message;
  return policy ? std::move(*policy) : Policy{};
}

TEST(PolicyLoader, ParsesFullExampleWithoutFiles) {
  const Policy policy = parse_ok(R"(
version = 1

[defaults]
protocol = "tls"
min_tls_version = "1.2"
cipher_suites = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
tls12_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20"
groups = ["X25519", "P-256"]
trust_bundle = "system"
peer_authentication = "optional"
require_peer_target_name = false
allow_insecure = false
handshake_timeout_ms = 5000
session_tickets = false
tcp_nodelay = false
peer_names = ["db.example.com", "10.0.0.7", "::1", "spiffe://example.org/db",
              "sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"]

[[rule]]
name = "metrics"
direction = "inbound"
port = 9100
ports = [9200, "9300-9399"]
address = "10.0.0.0/8"
program = "/opt/ssx-test-does-not-exist/exporter"
allow_insecure = true

[[rule]]
name = "block-legacy"
address = "2001:db8::/32"
deny = true

[[identity]]
peer = "spiffe://example.org/db"
user = "postgres"
groups = ["ssl-cert", "backup"]

[[identity]]
peer = "spiffe://example.org/ops/*"
uid = 1000
gid = 1000
)");
  EXPECT_EQ(policy.source, "/etc/ssx/policy.toml");
  const Settings &d = policy.defaults;
  EXPECT_EQ(d.protocol, Protocol::tls);
  EXPECT_EQ(d.min_tls_version, TlsVersion::v1_2);
  EXPECT_EQ(d.cipher_suites,
            (std::vector<std::string>{"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}));
  EXPECT_EQ(d.tls12_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20");
  EXPECT_EQ(d.groups, (std::vector<std::string>{"X25519", "P-256"}));
  EXPECT_EQ(d.trust_bundle, "system");
  EXPECT_EQ(d.peer_authentication, PeerAuthentication::optional);
  EXPECT_FALSE(d.require_peer_target_name);
  EXPECT_FALSE(d.allow_insecure);
  EXPECT_EQ(d.handshake_timeout_ms, 5000u);
  EXPECT_FALSE(d.session_tickets);
  EXPECT_FALSE(d.tcp_nodelay);
  EXPECT_TRUE(policy::Settings{}.tcp_nodelay);  // the built-in default
  // Key pins are kept in lower case, the form ossl::spki_sha256_hex produces.
  EXPECT_EQ(d.peer_names,
            (std::vector<std::string>{
                "db.example.com", "10.0.0.7", "::1", "spiffe://example.org/db",
                "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"}));
  EXPECT_FALSE(d.deny);

  ASSERT_EQ(policy.rules.size(), 2u);
  const Rule &metrics = policy.rules[0];
  EXPECT_EQ(metrics.name, "metrics");
  EXPECT_EQ(metrics.match.direction, Direction::inbound);
  ASSERT_EQ(metrics.match.ports.size(), 3u);
  EXPECT_EQ(metrics.match.ports[0].lo, 9100);
  EXPECT_EQ(metrics.match.ports[0].hi, 9100);
  EXPECT_EQ(metrics.match.ports[1].lo, 9200);
  EXPECT_EQ(metrics.match.ports[1].hi, 9200);
  EXPECT_EQ(metrics.match.ports[2].lo, 9300);
  EXPECT_EQ(metrics.match.ports[2].hi, 9399);
  ASSERT_TRUE(metrics.match.address.has_value());
  EXPECT_EQ(metrics.match.address->family, AF_INET);
  EXPECT_EQ(metrics.match.address->prefix_len, 8);
  EXPECT_EQ(metrics.match.address->bytes[0], 10);
  EXPECT_EQ(metrics.match.program, "/opt/ssx-test-does-not-exist/exporter");
  EXPECT_TRUE(metrics.settings.allow_insecure);
  EXPECT_EQ(metrics.settings.handshake_timeout_ms, 5000u);  // inherited

  const Rule &legacy = policy.rules[1];
  EXPECT_EQ(legacy.name, "block-legacy");
  EXPECT_FALSE(legacy.match.direction.has_value());
  EXPECT_TRUE(legacy.match.ports.empty());
  ASSERT_TRUE(legacy.match.address.has_value());
  EXPECT_EQ(legacy.match.address->family, AF_INET6);
  EXPECT_EQ(legacy.match.address->prefix_len, 32);
  EXPECT_TRUE(legacy.settings.deny);

  ASSERT_EQ(policy.identities.size(), 2u);
  EXPECT_EQ(policy.identities[0].peer, "spiffe://example.org/db");
  EXPECT_FALSE(policy.identities[0].prefix);
  EXPECT_EQ(policy.identities[0].user, "postgres");
  EXPECT_FALSE(policy.identities[0].uid.has_value());
  EXPECT_EQ(policy.identities[0].groups, (std::vector<std::string>{"ssl-cert", "backup"}));
  EXPECT_EQ(policy.identities[1].peer, "spiffe://example.org/ops/");
  EXPECT_TRUE(policy.identities[1].prefix);
  EXPECT_EQ(policy.identities[1].uid, 1000u);
  EXPECT_EQ(policy.identities[1].gid, 1000u);
  EXPECT_FALSE(policy.identities[1].user.has_value());
}

TEST(PolicyLoader, VersionAloneGivesBuiltInDefaults) {
  const Policy policy = parse_ok("version = 1\n");
  const Policy builtin = builtin_policy();
  EXPECT_EQ(policy.defaults.min_tls_version, builtin.defaults.min_tls_version);
  EXPECT_EQ(policy.defaults.trust_bundle, builtin.defaults.trust_bundle);
  EXPECT_EQ(policy.defaults.require_peer_target_name, builtin.defaults.require_peer_target_name);
  EXPECT_EQ(policy.defaults.allow_insecure, builtin.defaults.allow_insecure);
  EXPECT_EQ(policy.defaults.handshake_timeout_ms, builtin.defaults.handshake_timeout_ms);
  EXPECT_TRUE(policy.rules.empty());
  EXPECT_TRUE(policy.identities.empty());
}

TEST(PolicyLoader, BuiltinPolicyIsTls13OnlyWithSystemTrustAndNoCleartext) {
  const Policy policy = builtin_policy();
  EXPECT_EQ(policy.source, "(built-in defaults)");
  EXPECT_EQ(policy.defaults.protocol, Protocol::tls);
  EXPECT_EQ(policy.defaults.min_tls_version, TlsVersion::v1_3);
  EXPECT_EQ(policy.defaults.trust_bundle, "system");
  EXPECT_TRUE(policy.defaults.certificate.empty());
  EXPECT_TRUE(policy.defaults.require_peer_target_name);
  EXPECT_FALSE(policy.defaults.allow_insecure);
  EXPECT_FALSE(policy.defaults.deny);
  EXPECT_TRUE(policy.rules.empty());
}

// --- Overrides ---------------------------------------------------------------------------------

TEST(PolicyLoader, RuleOverridesOnlyTheKeysItSets) {
  const Policy policy = parse_ok(R"(
version = 1
[defaults]
min_tls_version = "1.2"
handshake_timeout_ms = 3000
groups = ["X25519"]
peer_names = ["a.example"]

[[rule]]
name = "strict"
min_tls_version = "1.3"
peer_names = []
groups = ["P-384"]

[[rule]]
name = "plain"
)");
  ASSERT_EQ(policy.rules.size(), 2u);
  const Settings &strict = policy.rules[0].settings;
  EXPECT_EQ(strict.min_tls_version, TlsVersion::v1_3);
  EXPECT_EQ(strict.groups, (std::vector<std::string>{"P-384"}));
  EXPECT_TRUE(strict.peer_names.empty());  // an empty array replaces, it does not append
  EXPECT_EQ(strict.handshake_timeout_ms, 3000u);
  const Settings &plain = policy.rules[1].settings;
  EXPECT_EQ(plain.min_tls_version, TlsVersion::v1_2);
  EXPECT_EQ(plain.groups, (std::vector<std::string>{"X25519"}));
  EXPECT_EQ(plain.peer_names, (std::vector<std::string>{"a.example"}));
  EXPECT_EQ(plain.handshake_timeout_ms, 3000u);
  EXPECT_EQ(policy.defaults.min_tls_version, TlsVersion::v1_2);  // defaults untouched
}

TEST(PolicyLoader, RulesInheritDefaultsWrittenAfterThem) {
  // TOML does not order tables; [defaults] after the rules still applies to them.
  const Policy policy = parse_ok(R"(
version = 1
[[rule]]
name = "r"
[defaults]
handshake_timeout_ms = 1234
)");
  ASSERT_EQ(policy.rules.size(), 1u);
  EXPECT_EQ(policy.rules[0].settings.handshake_timeout_ms, 1234u);
}

TEST(PolicyLoader, DenyInDefaultsCanBeLiftedByARule) {
  const Policy policy = parse_ok(R"(
version = 1
[defaults]
deny = true
[[rule]]
name = "https-out"
direction = "outbound"
port = 443
deny = false
)");
  EXPECT_TRUE(policy.defaults.deny);
  ASSERT_EQ(policy.rules.size(), 1u);
  EXPECT_FALSE(policy.rules[0].settings.deny);
}

TEST(PolicyLoader, ResolvesRelativeTrustBundleAgainstPolicyDirectoryButNotSystem) {
  // The file does not exist, so the check fails; its message shows the resolved path.
  Result<Policy> policy = parse_policy("version = 1\n[defaults]\ntrust_bundle = \"certs/ca.pem\"\n",
                                       "/nonexistent-ssx/p.toml");
  ASSERT_FALSE(policy.has_value());
  EXPECT_EQ(policy.error().message,
            "/nonexistent-ssx/p.toml:3:16: cannot read trust bundle "
            "\"/nonexistent-ssx/certs/ca.pem\": No such file or directory");
}

// --- Syntax and structure ----------------------------------------------------------------------

TEST(PolicyLoader, ReportsTomlSyntaxErrorWithPosition) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\nprotocol = \"tls\nx = 1\n"),
            "p.toml:3:16: invalid TOML: error while parsing string: unescaped control characters "
            "other than TAB (U+0009) are explicitly prohibited");
}

TEST(PolicyLoader, ReportsDuplicateKeyAsTomlError) {
  EXPECT_EQ(error_of("version = 1\nversion = 1\n"),
            "p.toml:2:11: invalid TOML: error while parsing key-value pair: cannot redefine "
            "existing integer 'version'");
}

TEST(PolicyLoader, RejectsMissingVersion) {
  EXPECT_EQ(error_of("[defaults]\nprotocol = \"tls\"\n"),
            "p.toml:1:1: missing \"version = 1\" (the policy format version) at the top level");
  EXPECT_EQ(error_of(""),
            "p.toml:1:1: missing \"version = 1\" (the policy format version) at the top level");
}

TEST(PolicyLoader, RejectsUnsupportedVersion) {
  EXPECT_EQ(error_of("version = 2\n"),
            "p.toml:1:11: unsupported policy version 2 (this ssx reads version 1)");
}

TEST(PolicyLoader, RejectsVersionOfWrongType) {
  EXPECT_EQ(error_of("version = \"1\"\n"), "p.toml:1:11: version must be an integer, not a string");
}

TEST(PolicyLoader, RejectsUnknownKeyWithLineNumber) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\nprotocol = \"tls\"\nmin_tls = \"1.3\"\n"),
            "p.toml:4:1: unknown key \"min_tls\" in [defaults]; did you mean \"min_tls_version\"?");
}

TEST(PolicyLoader, RejectsMisspelledKeyInRuleWithSuggestion) {
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\n  adress = \"10.0.0.0/8\"\n"),
            "p.toml:4:3: unknown key \"adress\" in [[rule]]; did you mean \"address\"?");
}

TEST(PolicyLoader, RejectsUnknownKeyWithoutCloseMatch) {
  EXPECT_EQ(
      error_of("version = 1\n[[identity]]\npeer = \"x\"\nuser = \"u\"\nshell = \"/bin/sh\"\n"),
      "p.toml:5:1: unknown key \"shell\" in [[identity]]");
}

TEST(PolicyLoader, RejectsUnknownTopLevelKey) {
  EXPECT_EQ(error_of("version = 1\n[defaultz]\n"),
            "p.toml:2:2: unknown key \"defaultz\" at the top level; did you mean \"defaults\"?");
}

TEST(PolicyLoader, SaysWhereAMisplacedKeyBelongs) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\nport = 443\n"),
            "p.toml:3:1: key \"port\" is not allowed in [defaults] (only in [[rule]])");
  EXPECT_EQ(error_of("version = 1\nprotocol = \"tls\"\n"),
            "p.toml:2:1: key \"protocol\" is not allowed at the top level (only in [defaults] and "
            "[[rule]])");
  EXPECT_EQ(error_of("version = 1\n[[identity]]\npeer = \"x\"\nuser = \"u\"\ndeny = true\n"),
            "p.toml:5:1: key \"deny\" is not allowed in [[identity]] (only in [defaults] and "
            "[[rule]])");
}

TEST(PolicyLoader, RejectsRuleWrittenAsSingleTable) {
  EXPECT_EQ(error_of("version = 1\n[rule]\nname = \"a\"\n"),
            "p.toml:2:1: rule must be an array of tables ([[rule]] for each one), not a table");
}

TEST(PolicyLoader, RejectsDefaultsOfWrongType) {
  EXPECT_EQ(error_of("version = 1\ndefaults = 3\n"),
            "p.toml:2:12: defaults must be a table ([defaults]), not an integer");
}

// --- Types and values --------------------------------------------------------------------------

TEST(PolicyLoader, RejectsWrongTypeWithExpectedType) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\nhandshake_timeout_ms = \"5s\"\n"),
            "p.toml:3:24: handshake_timeout_ms must be an integer, not a string");
  EXPECT_EQ(error_of("version = 1\n[defaults]\nallow_insecure = \"yes\"\n"),
            "p.toml:3:18: allow_insecure must be a boolean (true or false), not a string");
}

TEST(PolicyLoader, RejectsTlsVersionWrittenAsNumber) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\nmin_tls_version = 1.2\n"),
            "p.toml:3:19: min_tls_version must be a string (\"1.2\" or \"1.3\"), not a "
            "floating-point number");
}

TEST(PolicyLoader, RejectsUnknownTlsVersion) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\nmin_tls_version = \"1.1\"\n"),
            "p.toml:3:19: min_tls_version must be \"1.2\" or \"1.3\", not \"1.1\"");
}

TEST(PolicyLoader, RejectsProtocolsNotBuiltYet) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\nprotocol = \"local\"\n"),
            "p.toml:3:12: protocol \"local\" is not supported yet (only \"tls\" and \"dtls\" are)");
  EXPECT_EQ(error_of("version = 1\n[defaults]\nprotocol = \"ipsec\"\n"),
            "p.toml:3:12: protocol must be \"tls\" or \"dtls\", not \"ipsec\"");
}

TEST(PolicyLoader, DatagramKeys) {
  auto p = parse_ok(
      "version = 1\n[defaults]\ndtls_mtu = 1400\nmax_peers = 8\n"
      "peer_idle_timeout_ms = 5000\nmin_dtls_version = \"1.2\"\n"
      "[[rule]]\nname = \"u\"\ntransport = \"udp\"\nprotocol = \"dtls\"\n"
      "[[rule]]\nname = \"t\"\ntransport = \"tcp\"\n");
  ASSERT_EQ(p.defaults.dtls_mtu, 1400u);
  EXPECT_EQ(p.defaults.max_peers, 8u);
  EXPECT_EQ(p.defaults.peer_idle_timeout_ms, 5000u);
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].settings.protocol, Protocol::dtls);
  EXPECT_EQ(p.rules[0].match.transport, Transport::udp);
  EXPECT_EQ(p.rules[1].match.transport, Transport::tcp);
  EXPECT_EQ(p.rules[0].settings.dtls_mtu, 1400u) << "rules inherit [defaults]";
  MatchQuery udp;
  udp.transport = Transport::udp;
  EXPECT_EQ(p.match(udp).rule_name, "u");
  MatchQuery tcp;
  EXPECT_EQ(p.match(tcp).rule_name, "t");
}

TEST(PolicyLoader, RejectsBadDatagramKeys) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ndtls_mtu = 100\n"),
            "p.toml:3:12: dtls_mtu must be between 512 and 65507, not 100");
  EXPECT_EQ(error_of("version = 1\n[defaults]\nmax_peers = 0\n"),
            "p.toml:3:13: max_peers must be between 1 and 1000000, not 0");
  EXPECT_EQ(error_of("version = 1\n[defaults]\npeer_idle_timeout_ms = 0\n"),
            "p.toml:3:24: peer_idle_timeout_ms must be between 1 and 86400000, not 0");
  EXPECT_EQ(error_of("version = 1\n[defaults]\nmin_dtls_version = \"1.0\"\n"),
            "p.toml:3:20: min_dtls_version \"1.0\" is refused: DTLS 1.0 is obsolete (RFC 8996)");
  EXPECT_EQ(error_of("version = 1\n[defaults]\nmin_dtls_version = \"1.3\"\n"),
            "p.toml:3:20: min_dtls_version \"1.3\": the OpenSSL in use does not provide DTLS 1.3 "
            "(OpenSSL 3.0 has DTLS 1.2 only)");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"u\"\ntransport = \"sctp\"\n"),
            "p.toml:4:13: transport must be \"tcp\" or \"udp\", not \"sctp\"");
}

TEST(PolicyLoader, RejectsUnknownPeerAuthentication) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\npeer_authentication = \"always\"\n"),
            "p.toml:3:23: peer_authentication must be \"required\", \"optional\" or \"none\", not "
            "\"always\"");
}

TEST(PolicyLoader, RejectsHandshakeTimeoutOutOfRange) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\nhandshake_timeout_ms = 0\n"),
            "p.toml:3:24: handshake_timeout_ms must be between 1 and 600000, not 0");
  EXPECT_EQ(error_of("version = 1\n[defaults]\nhandshake_timeout_ms = 600001\n"),
            "p.toml:3:24: handshake_timeout_ms must be between 1 and 600000, not 600001");
  EXPECT_EQ(error_of("version = 1\n[defaults]\nhandshake_timeout_ms = 600000\n"), "");
}

TEST(PolicyLoader, ClientHelloAndIdleTimeoutsHaveDefaultsAndRanges) {
  const Policy builtin = parse_ok("version = 1\n");
  EXPECT_EQ(builtin.defaults.client_hello_timeout_ms, 2000u);
  EXPECT_FALSE(builtin.defaults.idle_timeout_ms.has_value());
  const Policy set = parse_ok(
      "version = 1\n[defaults]\nclient_hello_timeout_ms = 500\nidle_timeout_ms = 0\n"
      "[[rule]]\nname = \"r\"\nport = 1\nidle_timeout_ms = 60000\n");
  EXPECT_EQ(set.defaults.client_hello_timeout_ms, 500u);
  ASSERT_TRUE(set.defaults.idle_timeout_ms.has_value());
  EXPECT_EQ(*set.defaults.idle_timeout_ms, 0u);
  ASSERT_EQ(set.rules.size(), 1u);
  EXPECT_EQ(set.rules[0].settings.idle_timeout_ms.value_or(1), 60000u);
  EXPECT_EQ(error_of("version = 1\n[defaults]\nclient_hello_timeout_ms = 0\n"),
            "p.toml:3:27: client_hello_timeout_ms must be between 1 and 600000, not 0");
  EXPECT_EQ(error_of("version = 1\n[defaults]\nidle_timeout_ms = -1\n"),
            "p.toml:3:19: idle_timeout_ms must be between 0 (no limit) and 604800000, not -1");
  EXPECT_NE(error_of("version = 1\n[defaults]\nidle_timeout_ms = \"10\"\n"), "");
}

TEST(PolicyLoader, RejectsUnknownTls13CipherSuite) {
  const std::string message = error_of(
      "version = 1\n[defaults]\ncipher_suites = [\"TLS_AES_128_GCM_SHA256\", \"TLS_AES_512\"]\n");
  EXPECT_EQ(message.substr(0, message.find(" (known: ")),
            "p.toml:3:44: unknown TLS 1.3 cipher suite \"TLS_AES_512\"");
  EXPECT_NE(message.find("TLS_AES_256_GCM_SHA384"), std::string::npos) << message;
}

TEST(PolicyLoader, RejectsTls12NameInTls13CipherSuites) {
  // OpenSSL would accept this IANA name into its TLS 1.3 list and then silently ignore it.
  const std::string message = error_of(
      "version = 1\n[defaults]\ncipher_suites = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n");
  EXPECT_EQ(message.substr(0, message.find(" (known: ")),
            "p.toml:3:18: unknown TLS 1.3 cipher suite \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"");
}

TEST(PolicyLoader, RejectsCipherSuiteElementOfWrongType) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ncipher_suites = [\"TLS_AES_128_GCM_SHA256\", 7]\n"),
            "p.toml:3:44: each element of cipher_suites must be a string, not an integer");
  EXPECT_EQ(error_of("version = 1\n[defaults]\ncipher_suites = \"TLS_AES_128_GCM_SHA256\"\n"),
            "p.toml:3:17: cipher_suites must be an array of strings, not a string");
}

TEST(PolicyLoader, RejectsUnknownGroup) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ngroups = [\"X25519\", \"P-255\"]\n"),
            "p.toml:3:21: unknown group \"P-255\"");
  // One element must not name a list.
  EXPECT_EQ(error_of("version = 1\n[defaults]\ngroups = [\"X25519:P-256\"]\n"),
            "p.toml:3:11: unknown group \"X25519:P-256\"");
}

TEST(PolicyLoader, RejectsTls12CipherListThatSelectsNothing) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ntls12_ciphers = \"NO-SUCH-CIPHER\"\n"),
            "p.toml:3:17: tls12_ciphers \"NO-SUCH-CIPHER\" selects no TLS 1.2 cipher suite");
}

TEST(PolicyLoader, RejectsTls12AllowedWithCiphersThatLeaveNothingUsable) {
  // eNULL selects suites (so the list itself is valid) that no safe handshake may use; only with
  // TLS 1.2 allowed does that leave the policy without a TLS 1.2 suite.
  const std::string message =
      error_of("version = 1\n[defaults]\nmin_tls_version = \"1.2\"\ntls12_ciphers = \"eNULL\"\n");
  const std::string prefix = "p.toml:4:17: tls12_ciphers \"eNULL\" ";
  EXPECT_EQ(message.substr(0, prefix.size()), prefix) << message;
  const bool nothing = message.find(
                           "leaves no TLS 1.2 cipher suite usable at OpenSSL security "
                           "level") != std::string::npos;
  const bool no_encryption = message.find("which does not encrypt") != std::string::npos;
  EXPECT_TRUE(nothing || no_encryption) << message;
  EXPECT_EQ(
      error_of("version = 1\n[defaults]\nmin_tls_version = \"1.3\"\ntls12_ciphers = \"eNULL\"\n"),
      "");
}

TEST(PolicyLoader, ReportsUnusableTls12CiphersAtTheRuleKeyThatAllowsTls12) {
  // [defaults] is fine (TLS 1.3 only); the rule that allows TLS 1.2 is what breaks, so the error
  // points at its min_tls_version, not at the inherited tls12_ciphers.
  const std::string message = error_of(R"(version = 1
[defaults]
tls12_ciphers = "aNULL"
[[rule]]
name = "legacy"
min_tls_version = "1.2"
)");
  const std::string prefix = "p.toml:6:19: tls12_ciphers \"aNULL\" ";
  EXPECT_EQ(message.substr(0, prefix.size()), prefix) << message;
}

TEST(PolicyLoader, RejectsNulInsideString) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ncertificate = \"a.pem\\u0000.txt\"\n"),
            "p.toml:3:15: certificate must not contain a NUL character");
}

TEST(PolicyLoader, RejectsEmptyTrustBundle) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ntrust_bundle = \"\"\n"),
            "p.toml:3:16: trust_bundle must not be empty");
}

TEST(PolicyLoader, RejectsBadPeerNames) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\npeer_names = [\"sha256:abcd\"]\n"),
            "p.toml:3:15: key pin \"sha256:abcd\" must be \"sha256:\" followed by 64 hex digits");
  EXPECT_EQ(
      error_of("version = 1\n[defaults]\npeer_names = [\"ok.example\", \"bad_name.example\"]\n"),
      "p.toml:3:29: peer name \"bad_name.example\" is not a DNS name, IP address, URI or "
      "sha256: key pin (DNS labels may hold only letters, digits and '-')");
  EXPECT_EQ(error_of("version = 1\n[defaults]\npeer_names = [\"spiffe://Example.org/x\"]\n"),
            "p.toml:3:15: peer name \"spiffe://Example.org/x\" is not a valid SPIFFE ID (the trust "
            "domain may hold only lower-case letters, digits, '.', '-' and '_')");
  EXPECT_EQ(error_of("version = 1\n[defaults]\npeer_names = [\"10.0.0.256\"]\n"),
            "p.toml:3:15: peer name \"10.0.0.256\" is neither an IP address nor a DNS name "
            "(all-numeric last label)");
}

// --- [[rule]] match keys -----------------------------------------------------------------------

TEST(PolicyLoader, RejectsRuleWithoutName) {
  EXPECT_EQ(error_of("version = 1\n\n[[rule]]\nport = 443\n"),
            "p.toml:3:1: [[rule]] has no name (add name = \"...\"; names appear in logs)");
}

TEST(PolicyLoader, RejectsDuplicateRuleName) {
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"web\"\n[[rule]]\nname = \"web\"\n"),
            "p.toml:5:8: duplicate rule name \"web\" (first used on line 3)");
}

TEST(PolicyLoader, RejectsReservedRuleName) {
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"defaults\"\n"),
            "p.toml:3:8: rule name \"defaults\" is reserved (it names the [defaults] table)");
}

TEST(PolicyLoader, RejectsUnknownDirection) {
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\ndirection = \"in\"\n"),
            "p.toml:4:13: direction must be \"inbound\" or \"outbound\", not \"in\"");
}

TEST(PolicyLoader, RejectsPortOutOfRange) {
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\nport = 70000\n"),
            "p.toml:4:8: port 70000 is out of range (1-65535)");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\nport = 0\n"),
            "p.toml:4:8: port 0 is out of range (1-65535)");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\nports = [443, 65536]\n"),
            "p.toml:4:15: port 65536 is out of range (1-65535)");
}

TEST(PolicyLoader, RejectsBadPortRanges) {
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\nports = [\"200-100\"]\n"),
            "p.toml:4:10: port range \"200-100\" is reversed (200 > 100)");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\nports = [\"1-70000\"]\n"),
            "p.toml:4:10: port range \"1-70000\": 70000 is out of range (1-65535)");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\nports = [\"80..90\"]\n"),
            "p.toml:4:10: port range \"80..90\" must look like \"8000-8100\"");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\nports = [true]\n"),
            "p.toml:4:10: each element of ports must be an integer or a \"LOW-HIGH\" string, not a "
            "boolean");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\nports = []\n"),
            "p.toml:4:9: ports is empty; remove it to match any port");
}

TEST(PolicyLoader, RejectsBadCidr) {
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\naddress = \"10.0.0.0/33\"\n"),
            "p.toml:4:11: address \"10.0.0.0/33\" has a prefix length above 32");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\naddress = \"::1/129\"\n"),
            "p.toml:4:11: address \"::1/129\" has a prefix length above 128");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\naddress = \"10.0.0.1/8\"\n"),
            "p.toml:4:11: address \"10.0.0.1/8\" has bits set beyond the /8 prefix; did you mean "
            "\"10.0.0.0/8\"?");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\naddress = \"example.com\"\n"),
            "p.toml:4:11: address \"example.com\" is not an IPv4 or IPv6 address or network");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\naddress = \"10.0.0.0/\"\n"),
            "p.toml:4:11: address \"10.0.0.0/\" has an invalid prefix length");
}

TEST(PolicyLoader, BareAddressIsAHostNetwork) {
  const Policy policy = parse_ok(
      "version = 1\n[[rule]]\nname = \"a\"\naddress = \"192.0.2.1\"\n"
      "[[rule]]\nname = \"b\"\naddress = \"2001:db8::1\"\n");
  ASSERT_EQ(policy.rules.size(), 2u);
  EXPECT_EQ(policy.rules[0].match.address->prefix_len, 32);
  EXPECT_EQ(policy.rules[1].match.address->prefix_len, 128);
}

TEST(PolicyLoader, RejectsRelativeProgram) {
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\"\nprogram = \"bin/curl\"\n"),
            "p.toml:4:11: program must be an absolute path, not \"bin/curl\"");
}

TEST(PolicyLoader, ResolvesSymbolicLinksInProgram) {
  // /proc/self/exe names the resolved file, so the rule must hold the resolved path too.
  char resolved[PATH_MAX];
  ASSERT_NE(::realpath("/proc/self/exe", resolved), nullptr);
  const Policy policy =
      parse_ok("version = 1\n[[rule]]\nname = \"self\"\nprogram = \"/proc/self/exe\"\n");
  ASSERT_EQ(policy.rules.size(), 1u);
  EXPECT_EQ(policy.rules[0].match.program, std::string(resolved));
}

// --- [[identity]] ------------------------------------------------------------------------------

TEST(PolicyLoader, RejectsIdentityWithoutUserOrUid) {
  EXPECT_EQ(error_of("version = 1\n[[identity]]\npeer = \"spiffe://td/x\"\ngid = 5\n"),
            "p.toml:2:1: [[identity]] for peer \"spiffe://td/x\" needs user or uid");
}

TEST(PolicyLoader, RejectsIdentityWithoutPeer) {
  EXPECT_EQ(error_of("version = 1\n[[identity]]\nuser = \"alice\"\n"),
            "p.toml:2:1: [[identity]] has no peer");
}

TEST(PolicyLoader, RejectsIdentityMatchingEveryPeer) {
  EXPECT_EQ(error_of("version = 1\n[[identity]]\npeer = \"*\"\nuser = \"nobody\"\n"),
            "p.toml:3:8: peer must name a principal or a prefix ending in '*'; a lone \"*\" would "
            "map every peer");
  EXPECT_EQ(error_of("version = 1\n[[identity]]\npeer = \"spiffe://*/x\"\nuser = \"nobody\"\n"),
            "p.toml:3:8: peer \"spiffe://*/x\" may contain '*' only at the end");
}

TEST(PolicyLoader, RejectsBadAccountNamesAndIds) {
  EXPECT_EQ(error_of("version = 1\n[[identity]]\npeer = \"p\"\nuser = \"al ice\"\n"),
            "p.toml:4:8: user \"al ice\" is not a valid account name (1-32 letters, digits, '.', "
            "'_', '-')");
  EXPECT_EQ(error_of("version = 1\n[[identity]]\npeer = \"p\"\nuser = \"1000\"\n"),
            "p.toml:4:8: user \"1000\" is all digits; put numeric ids in uid or gid");
  EXPECT_EQ(error_of("version = 1\n[[identity]]\npeer = \"p\"\nuid = -1\n"),
            "p.toml:4:7: uid must be between 0 and 4294967294, not -1");
  EXPECT_EQ(
      error_of("version = 1\n[[identity]]\npeer = \"p\"\nuid = 1\ngroups = [\"wheel\", \"\"]\n"),
      "p.toml:5:20: group \"\" is not a valid account name (1-32 letters, digits, '.', '_', "
      "'-')");
}

TEST(PolicyLoader, RejectsDuplicateIdentityPeer) {
  EXPECT_EQ(error_of("version = 1\n[[identity]]\npeer = \"p\"\nuid = 1\n"
                     "[[identity]]\npeer = \"p\"\nuid = 2\n"),
            "p.toml:6:8: duplicate identity for peer \"p\" (first mapped on line 3)");
}

// --- Which error comes first -------------------------------------------------------------------

// Negative: tcp_nodelay is a boolean like the other switches.
TEST(PolicyLoader, TcpNodelayMustBeABoolean) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ntcp_nodelay = \"no\"\n"),
            "p.toml:3:15: tcp_nodelay must be a boolean (true or false), not a string");
}

TEST(PolicyLoader, ReportsFirstErrorInReadingOrder) {
  // Both keys are wrong; toml::table sorts keys, but the one earlier in the file is reported.
  EXPECT_EQ(error_of("version = 1\n[defaults]\nsession_tickets = 1\nallow_insecure = 1\n"),
            "p.toml:3:19: session_tickets must be a boolean (true or false), not an integer");
}

TEST(PolicyLoader, EscapesControlCharactersInMessages) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\nprotocol = \"tls\\nx\"\n"),
            "p.toml:3:12: protocol must be \"tls\" or \"dtls\", not \"tls\\nx\"");
}

}  // namespace
}  // namespace ssx::policy
