// SPDX-License-Identifier: Apache-2.0
// Scenario tests of `ssx policy check` and `ssx policy explain`: run the built ssx binary on
// policy files written here and compare what it prints and how it exits.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "testlib/loopback.hpp"
#include "testlib/run_command.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {
namespace {

using std::chrono::seconds;

CommandResult ssx(std::vector<std::string> args) {
  args.insert(args.begin(), ssx_binary());
  return run_command(args, seconds(60));
}

int line_count(const std::string &text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

class CliPolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(ssx_binary().c_str(), X_OK), 0)
        << ssx_binary() << " is missing: build the ssx_cli target first";
    server_ = pki_.server();
    client_ = pki_.client();
  }

  // write writes a policy file named |name| and returns its path.
  std::string write(const std::string &name, const std::string &text) {
    const std::string path = dir_.file(name);
    write_text(path, text);
    return path;
  }

  // example is a policy shaped like the one in docs/policy.md, with the test PKI's files.
  std::string example() {
    return "version = 1\n"
           "[defaults]\n"
           "trust_bundle = " +
           toml_quote(pki_.ca_cert()) +
           "\n"
           "certificate = " +
           toml_quote(server_.cert) +
           "\n"
           "private_key = " +
           toml_quote(server_.key) +
           "\n"
           "handshake_timeout_ms = 5000\n"
           "\n"
           "[[rule]]\n"
           "name = \"public-https\"\n"
           "direction = \"outbound\"\n"
           "port = 443\n"
           "trust_bundle = \"system\"\n"
           "certificate = \"\"\n"
           "private_key = \"\"\n"
           "\n"
           "[[rule]]\n"
           "name = \"postgres\"\n"
           "direction = \"outbound\"\n"
           "address = \"10.20.0.0/16\"\n"
           "port = 5432\n"
           "peer_names = [\"spiffe://example.org/ns/prod/sa/postgres\"]\n"
           "\n"
           "[[rule]]\n"
           "name = \"legacy-agent\"\n"
           "program = \"/opt/agent/bin/agent\"\n"
           "min_tls_version = \"1.2\"\n"
           "tls12_ciphers = \"ECDHE+AESGCM:ECDHE+CHACHA20\"\n"
           "\n"
           "[[rule]]\n"
           "name = \"metrics-loopback\"\n"
           "direction = \"inbound\"\n"
           "address = \"127.0.0.0/8\"\n"
           "ports = [9100, \"9200-9299\"]\n"
           "allow_insecure = true\n"
           "\n"
           "[[rule]]\n"
           "name = \"no-legacy-admin\"\n"
           "direction = \"inbound\"\n"
           "ports = [\"8000-8099\"]\n"
           "deny = true\n"
           "\n"
           "[[identity]]\n"
           "peer = \"spiffe://example.org/ns/prod/sa/backup\"\n"
           "user = \"backup\"\n";
  }

  CommandResult explain(const std::string &policy, std::vector<std::string> args) {
    args.insert(args.begin(), {"policy", "explain", "--policy", policy});
    return ssx(args);
  }

  TestPki pki_;
  TempDir dir_;
  CredentialFiles server_, client_;
};

TEST_F(CliPolicy, CheckValidPolicyExitsZeroWithOneLineSummary) {
  const std::string path = write("policy.toml", example());
  auto r = ssx({"policy", "check", path});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, path + ": valid: 5 rules (1 deny), 1 identity, 3 files checked\n");

  const std::string empty = write("empty.toml", "version = 1\n");
  r = ssx({"policy", "check", empty});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, empty + ": valid: 0 rules, 0 identities, 0 files checked\n");
}

// deep_header returns "a.a.….a" with |segments| segments.
std::string deep_header(int segments) {
  std::string out = "a";
  for (int i = 1; i < segments; ++i) out += ".a";
  return out;
}

TEST_F(CliPolicy, CheckMalformedPolicyExitsTwoWithFileLineColumn) {
  struct Case {
    const char *label;
    std::string text;
    std::string expected;  // after "PATH:"
  };
  const std::vector<Case> cases = {
      {"unknown key", "version = 1\n[defaults]\nmin_tls = \"1.3\"\n",
       "3:1: unknown key \"min_tls\" in [defaults]; did you mean \"min_tls_version\"?"},
      {"no version", "[defaults]\n",
       "1:1: missing \"version = 1\" (the policy format version) at the top level"},
      {"wrong type", "version = 1\n[defaults]\nhandshake_timeout_ms = \"10\"\n",
       "3:24: handshake_timeout_ms must be an integer, not a string"},
      {"out of range", "version = 1\n[[rule]]\nname = \"a\"\nport = 70000\n",
       "4:8: port 70000 is out of range (1-65535)"},
      {"duplicate rule", "version = 1\n[[rule]]\nname = \"web\"\n[[rule]]\nname = \"web\"\n",
       "5:8: duplicate rule name \"web\" (first used on line 3)"},
      // The reported crash: 40,000 dotted segments overflowed the stack inside toml++.
      {"40,000-segment header", "version = 1\n[" + deep_header(40000) + "]\nx = 1\n",
       "2:33: nesting deeper than 16 levels (table header segments, dotted key segments, arrays "
       "and inline tables together); a policy needs at most 4"},
      {"long rule name", "version = 1\n[[rule]]\nname = \"" + std::string(3000, 'r') + "\"\n",
       "3:8: rule name is longer than 128 bytes: \"" + std::string(64, 'r') + "...\""},
      {"key of another certificate",
       "version = 1\n[defaults]\ncertificate = " + toml_quote(server_.cert) +
           "\nprivate_key = " + toml_quote(client_.key) + "\n",
       "4:15: private key \"" + client_.key + "\" does not match certificate \"" + server_.cert +
           "\""},
  };
  for (const auto &c : cases) {
    const std::string path = write("bad.toml", c.text);
    auto r = ssx({"policy", "check", path});
    EXPECT_EQ(r.exit_code, 2) << c.label << "\n" << r.output;
    EXPECT_EQ(r.output, path + ":" + c.expected + "\nssx: " + path + " is not a valid policy\n")
        << c.label;
  }

  // Syntax errors are worded by toml++; the position and the prefix are ours.
  const std::string path = write("syntax.toml", "version = 1\n[defaults\n");
  auto r = ssx({"policy", "check", path});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(r.output, path +
                          ":2:10: invalid TOML: error while parsing table header: expected ']', "
                          "saw '\\n'\nssx: " +
                          path + " is not a valid policy\n");
}

TEST_F(CliPolicy, CheckFileProblemsAreOneLine) {
  const std::string missing = dir_.file("missing.toml");
  auto r = ssx({"policy", "check", missing});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output, "ssx: " + missing + ": cannot open policy file: No such file or directory\n");

  const std::string open = write("open.toml", "version = 1\n");
  ASSERT_EQ(chmod(open.c_str(), 0666), 0);
  r = ssx({"policy", "check", open});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(r.output, "ssx: " + open +
                          ": policy file is writable by others (mode 0666); run: "
                          "chmod o-w \"" +
                          open + "\"\n");

  r = ssx({"policy", "check"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(line_count(r.output), 1) << r.output;

  // Above 1 MiB, before parsing: a 3 MB rule name never reaches the parser.
  const std::string big =
      write("big.toml", "version = 1\n[[rule]]\nname = \"" + std::string(3000000, 'r') + "\"\n");
  r = ssx({"policy", "check", big});
  EXPECT_EQ(r.exit_code, 2) << r.output.substr(0, 300);
  EXPECT_EQ(r.output, "ssx: " + big + ": policy file is larger than 1 MiB (3000031 bytes)\n");
}

TEST_F(CliPolicy, ExplainNamesTheRuleThatMatches) {
  const std::string path = write("policy.toml", example());
  struct Case {
    std::vector<std::string> args;
    std::string rule_line;
  };
  const std::vector<Case> cases = {
      {{"--connect", "10.20.1.5:5432"}, "rule     \"postgres\" (rule 2 of 5)"},
      {{"--connect", "192.0.2.1:443"}, "rule     \"public-https\" (rule 1 of 5)"},
      {{"--connect", "192.0.2.1:80", "--program", "/opt/agent/bin/agent"},
       "rule     \"legacy-agent\" (rule 3 of 5)"},
      {{"--connect", "192.0.2.1:80"}, "rule     defaults (no [[rule]] of 5 matched)"},
      {{"--connect", "[2001:db8::1]:5432"}, "rule     defaults (no [[rule]] of 5 matched)"},
      {{"--accept", "127.0.0.1:9250"}, "rule     \"metrics-loopback\" (rule 4 of 5)"},
      {{"--accept", "8050"}, "rule     \"no-legacy-admin\" (rule 5 of 5)"},
      {{"--accept", "9100"}, "rule     defaults (no [[rule]] of 5 matched)"},
  };
  for (const auto &c : cases) {
    auto r = explain(path, c.args);
    EXPECT_EQ(r.exit_code, 0) << c.args[1] << "\n" << r.output;
    EXPECT_NE(r.output.find("\n" + c.rule_line + "\n"), std::string::npos) << c.args[1] << "\n"
                                                                           << r.output;
  }

  // Every setting is listed, with the layer it comes from.
  auto r = explain(path, {"--connect", "192.0.2.1:80", "--program", "/opt/agent/bin/agent"});
  for (const char *key :
       {"protocol", "min_tls_version", "cipher_suites", "tls12_ciphers", "groups", "certificate",
        "private_key", "trust_bundle", "crl", "peer_authentication", "require_peer_target_name",
        "allow_insecure", "handshake_timeout_ms", "client_hello_timeout_ms", "idle_timeout_ms",
        "session_tickets", "tcp_nodelay", "peer_names", "deny"}) {
    std::string line = std::string(1, '\n') + key;  // not "\n" + std::string: GCC 12 -O3 false
    line += " = ";                                  // -Wrestrict (GCC bug 105329)
    EXPECT_NE(r.output.find(line), std::string::npos) << key << "\n" << r.output;
  }
  EXPECT_NE(r.output.find("min_tls_version = \"1.2\""), std::string::npos) << r.output;
  auto layer_of = [&](const std::string &key) {
    const std::size_t at = r.output.find("\n" + key + " = ");
    if (at == std::string::npos) return std::string("?");
    const std::size_t end = r.output.find('\n', at + 1);
    const std::string line = r.output.substr(at + 1, end - at - 1);
    return line.substr(line.find("  # ") + 4);
  };
  EXPECT_EQ(layer_of("min_tls_version"), "rule");
  EXPECT_EQ(layer_of("handshake_timeout_ms"), "[defaults]");
  EXPECT_EQ(layer_of("session_tickets"), "built-in");
  EXPECT_NE(r.output.find("verdict  secured as below"), std::string::npos) << r.output;

  // A deny rule says the socket is refused.
  r = explain(path, {"--accept", "8050"});
  EXPECT_NE(r.output.find("verdict  refused (deny = true)"), std::string::npos) << r.output;
}

TEST_F(CliPolicy, ExplainWarnsWhenAnInputTheRulesNeedIsMissing) {
  const std::string path = write("policy.toml", example());
  auto r = explain(path, {"--connect", "192.0.2.1:80"});
  EXPECT_NE(r.output.find("ssx: warning: rule \"legacy-agent\" matches on program; without "
                          "--program it does not match\n"),
            std::string::npos)
      << r.output;
  r = explain(path, {"--accept", "9100"});
  EXPECT_NE(r.output.find("ssx: warning: rule \"metrics-loopback\" matches on the local address"),
            std::string::npos)
      << r.output;
  // With the inputs given there is nothing to warn about.
  r = explain(path, {"--accept", "127.0.0.1:9100", "--program", "/opt/agent/bin/agent"});
  EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"legacy-agent\" (rule 3 of 5)"), std::string::npos) << r.output;
}

TEST_F(CliPolicy, ExplainJson) {
  const std::string path = write("policy.toml", example());
  auto r = explain(path, {"--connect", "10.20.1.5:5432", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["policy"], path);
  EXPECT_EQ(j["direction"], "outbound");
  EXPECT_EQ(j["remote"], "10.20.1.5:5432");
  EXPECT_TRUE(j["program"].is_null());
  EXPECT_EQ(j["rule"], "postgres");
  EXPECT_EQ(j["rule_number"], 2);
  EXPECT_EQ(j["settings"].size(), 23u);
  EXPECT_EQ(j["transport"], "tcp");
  EXPECT_EQ(j["settings"]["dtls_mtu"], 1200);
  EXPECT_EQ(j["settings"]["max_peers"], 1024);
  EXPECT_EQ(j["settings"]["client_hello_timeout_ms"], 2000);
  EXPECT_TRUE(j["settings"]["idle_timeout_ms"].is_null());  // unset: the application's choice
  EXPECT_EQ(j["settings"]["peer_names"],
            nlohmann::json::array({"spiffe://example.org/ns/prod/sa/postgres"}));
  EXPECT_EQ(j["settings"]["handshake_timeout_ms"], 5000);
  EXPECT_EQ(j["settings"]["certificate"], server_.cert);
  EXPECT_EQ(j["from"]["peer_names"], "rule");
  EXPECT_EQ(j["from"]["certificate"], "defaults");
  EXPECT_EQ(j["from"]["deny"], "built-in");
}

TEST_F(CliPolicy, ExplainUsesTheProcessPolicyAndReportsUsageErrors) {
  const std::string path = write("policy.toml", example());
  ASSERT_EQ(setenv("SSX_POLICY", path.c_str(), 1), 0);
  auto r = ssx({"policy", "explain", "--connect", "10.20.1.5:5432"});
  unsetenv("SSX_POLICY");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("policy   " + path + "\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"postgres\""), std::string::npos) << r.output;

  const std::vector<std::vector<std::string>> bad = {
      {},
      {"--connect", "10.0.0.1:1", "--accept", "80"},
      {"--connect", "10.0.0.1"},
      {"--connect", "10.0.0.1:70000"},
      {"--connect", "2001:db8::1:443"},
      {"--accept", "db.example:80"},
      {"--connect", "10.0.0.1:1", "--program", "bin/agent"},
  };
  for (const auto &args : bad) {
    r = explain(path, args);
    std::string label;
    for (const auto &a : args) label += a + " ";
    EXPECT_EQ(r.exit_code, 2) << label << "\n" << r.output;
    EXPECT_EQ(r.output.rfind("ssx: ", 0), 0u) << label << "\n" << r.output;
    EXPECT_EQ(line_count(r.output), 1) << label << "\n" << r.output;
  }

  // An invalid policy is reported as check reports it, on one line.
  const std::string broken = write("broken.toml", "version = 2\n");
  r = explain(broken, {"--accept", "80"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(r.output,
            "ssx: " + broken + ":1:11: unsupported policy version 2 (this ssx reads version 1)\n");
}

// --- check: certificates fit for their use, accounts that exist --------------------------------

// rule_with writes a policy with one [[rule]] of |direction| whose certificate is |creds|.
std::string rule_with(const TestPki &pki, const std::string &direction,
                      const CredentialFiles &creds, const std::string &tail = "") {
  return "version = 1\n[defaults]\ntrust_bundle = " + toml_quote(pki.ca_cert()) +
         "\n[[rule]]\nname = \"r\"\ndirection = \"" + direction +
         "\"\ncertificate = " + toml_quote(creds.cert) +
         "\nprivate_key = " + toml_quote(creds.key) + "\n" + tail;
}

TEST_F(CliPolicy, CheckRefusesCertificatesUnfitForTheirUse) {
  // Fit: a server certificate for inbound sockets, a client certificate for outbound ones.
  for (const auto &[direction, creds] :
       {std::pair{"inbound", server_}, std::pair{"outbound", client_}}) {
    const std::string path = write("fit.toml", rule_with(pki_, direction, creds));
    auto r = ssx({"policy", "check", path});
    EXPECT_EQ(r.exit_code, 0) << direction << "\n" << r.output;
  }
  struct Case {
    const char *label;
    std::string direction;
    CredentialFiles creds;
    std::string expected;
  };
  CredentialFiles ca;
  ca.cert = dir_.file("ca-as-leaf.crt");
  ca.key = dir_.file("ca-as-leaf.key");
  write_text(ca.cert, pki_.authority().cert_pem());
  write_text(ca.key, pki_.authority().key_pem(), 0600);
  pki::LeafRequest old = TestPki::server_request();
  old.validity = {-2 * 86400, -86400};
  const std::vector<Case> cases = {
      {"client certificate on inbound sockets", "inbound", client_,
       "rule \"r\": certificate \"" + client_.cert +
           "\" is used by inbound sockets (a server certificate) but its extendedKeyUsage has no "
           "serverAuth: clients will refuse it"},
      {"server certificate on outbound sockets", "outbound", server_,
       "rule \"r\": certificate \"" + server_.cert +
           "\" is used by outbound sockets (a client certificate) but its extendedKeyUsage has no "
           "clientAuth: servers will refuse it"},
      {"CA certificate as a leaf", "inbound", ca,
       "rule \"r\": certificate \"" + ca.cert + "\" is a CA certificate (basicConstraints " +
           "CA:TRUE), not a leaf"},
      {"expired", "inbound", pki_.issue("expired", old), "rule \"r\": certificate \""},
  };
  for (const auto &c : cases) {
    const std::string path = write("unfit.toml", rule_with(pki_, c.direction, c.creds));
    auto r = ssx({"policy", "check", path});
    EXPECT_EQ(r.exit_code, 2) << c.label << "\n" << r.output;
    EXPECT_NE(r.output.find(path + ": " + c.expected), std::string::npos) << c.label << "\n"
                                                                          << r.output;
    EXPECT_NE(r.output.find("ssx: " + path + " is not a valid policy\n"), std::string::npos)
        << c.label << "\n"
        << r.output;
  }
  const std::string path = write("expired.toml", rule_with(pki_, "inbound", pki_.issue("e2", old)));
  EXPECT_NE(ssx({"policy", "check", path}).output.find(" expired on "), std::string::npos);
}

TEST_F(CliPolicy, CheckWarnsAboutACertificateThatExpiresWithin30Days) {
  pki::LeafRequest soon = TestPki::server_request();
  soon.validity = {-3600, 10 * 86400 - 60};
  const std::string path = write("soon.toml", rule_with(pki_, "inbound", pki_.issue("soon", soon)));
  auto r = ssx({"policy", "check", path});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ssx: warning: " + path + ": rule \"r\": certificate \""),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("expires in 9 days, on "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(path + ": valid: 1 rule"), std::string::npos) << r.output;

  // 60 days left: no warning.
  pki::LeafRequest later = TestPki::server_request();
  later.validity = {-3600, 60 * 86400};
  const std::string fine =
      write("later.toml", rule_with(pki_, "inbound", pki_.issue("later", later)));
  r = ssx({"policy", "check", fine});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;
}

TEST_F(CliPolicy, CheckRefusesIdentitiesWhoseUserOrGroupsDoNotExist) {
  const std::string base = "version = 1\n[[identity]]\npeer = \"spiffe://ssx.test/client\"\n";
  const std::string good = write("good.toml", base + "user = \"root\"\ngroups = [\"root\"]\n");
  auto r = ssx({"policy", "check", good});
  EXPECT_EQ(r.exit_code, 0) << r.output;

  const std::string no_user = write("no-user.toml", base + "user = \"ssx-no-such-user\"\n");
  r = ssx({"policy", "check", no_user});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(no_user + ": [[identity]] 1 (peer \"spiffe://ssx.test/client\"): user "
                                    "\"ssx-no-such-user\" does not exist on this host"),
            std::string::npos)
      << r.output;

  const std::string no_group =
      write("no-group.toml", base + "user = \"root\"\ngroups = [\"ssx-no-such-group\"]\n");
  r = ssx({"policy", "check", no_group});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("group \"ssx-no-such-group\" does not exist on this host"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ssx::test
