// SPDX-License-Identifier: Apache-2.0
// The policy's bounds on hostile input (policy/prescan.hpp and the loader's string limits): size,
// nesting that would make toml++ recurse, strings that would flood messages and logs, and the
// proof that the whole loader runs on a 64 KiB stack with the deepest inputs the limits allow.

#include <gtest/gtest.h>
#include <pthread.h>

#include <cerrno>
#include <climits>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "policy/prescan.hpp"
#include "policy_test_support.hpp"

namespace ssx::policy {
namespace {

constexpr int kLimit = kMaxPolicyNesting;

std::string repeat(const std::string &piece, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += piece;
  return out;
}

// dotted returns "a.a.a" with |segments| segments.
std::string dotted(int segments) {
  std::string out = "a";
  for (int i = 1; i < segments; ++i) out += ".a";
  return out;
}

// scan runs the pre-scan on |text| as "p.toml" and returns its message ("" when it passed).
std::string scan(const std::string &text) {
  Result<void> r = prescan_policy(text, "p.toml");
  if (r) return "";
  EXPECT_EQ(r.error().code, EINVAL) << r.error().message;
  return r.error().message;
}

bool too_deep(const std::string &message) {
  return message.find("nesting deeper than 16 levels") != std::string::npos;
}

// --- Each construct, at the limit and one past it ---------------------------------------------

TEST(PolicyPrescan, TableHeaderSegmentsAreBounded) {
  EXPECT_EQ(scan("[" + dotted(kLimit) + "]\n"), "");
  EXPECT_EQ(scan("[[" + dotted(kLimit) + "]]\n"), "");
  // The 17th segment starts at the 16th dot: column 2 + 2 * 15 + 1.
  EXPECT_EQ(scan("version = 1\n[" + dotted(kLimit + 1) + "]\n"),
            "p.toml:2:33: nesting deeper than 16 levels (table header segments, dotted key "
            "segments, arrays and inline tables together); a policy needs at most 4");
  EXPECT_TRUE(too_deep(scan("[[" + dotted(kLimit + 1) + "]]\n")));
}

TEST(PolicyPrescan, DottedKeySegmentsCountOnTopOfTheHeader) {
  EXPECT_EQ(scan(dotted(kLimit) + " = 1\n"), "");
  EXPECT_TRUE(too_deep(scan(dotted(kLimit + 1) + " = 1\n")));
  // Under a two-segment header, a key may have 14 segments.
  EXPECT_EQ(scan("[x.y]\n" + dotted(kLimit - 2) + " = 1\n"), "");
  EXPECT_TRUE(too_deep(scan("[x.y]\n" + dotted(kLimit - 1) + " = 1\n")));
  // Quoted segments count like bare ones, and whitespace around dots changes nothing.
  EXPECT_TRUE(too_deep(scan(repeat("\"a\" . ", kLimit) + "'b' = 1\n")));
}

TEST(PolicyPrescan, ArraysAndInlineTablesCountTogether) {
  // "a" is level 1, so 15 arrays reach 16.
  EXPECT_EQ(scan("a = " + repeat("[", kLimit - 1) + repeat("]", kLimit - 1) + "\n"), "");
  EXPECT_TRUE(too_deep(scan("a = " + repeat("[", kLimit) + repeat("]", kLimit) + "\n")));
  EXPECT_EQ(
      scan("a = " + repeat("{b = ", (kLimit - 1) / 2) + "1" + repeat("}", (kLimit - 1) / 2) + "\n"),
      "");
  EXPECT_TRUE(
      too_deep(scan("a = " + repeat("{b = ", kLimit / 2) + "1" + repeat("}", kLimit / 2) + "\n")));
  // Mixed: a header, a dotted key, an array of inline tables with dotted keys.
  EXPECT_TRUE(too_deep(scan("[[rule]]\nx.y = [{ " + dotted(kLimit - 4) + " = 1 }]\n")));
  EXPECT_EQ(scan("[[rule]]\nx.y = [{ " + dotted(kLimit - 5) + " = 1 }]\n"), "");
}

TEST(PolicyPrescan, ClosedContainersGiveTheirLevelsBack) {
  // Many shallow arrays in a row, and siblings after a deep one, are fine.
  std::string text = "a = [";
  for (int i = 0; i < 1000; ++i) text += "[[1]], ";
  text += "]\n";
  for (int i = 0; i < 100; ++i) text += "k" + std::to_string(i) + " = {x = [1, 2], y = {z = 3}}\n";
  EXPECT_EQ(scan(text), "");
}

// --- Strings and comments never fool the scanner ----------------------------------------------

TEST(PolicyPrescan, BracketsAndDotsInStringsAndCommentsDoNotCount) {
  const std::string deep = repeat("[", 1000) + repeat("{", 1000) + dotted(1000);
  EXPECT_EQ(scan("a = \"" + deep + "\"\n"), "");
  EXPECT_EQ(scan("a = '" + deep + "'\n"), "");
  EXPECT_EQ(scan("a = \"\"\"\n" + deep + "\n\"\" \\\"\"\" " + deep + "\n\"\"\"\n"), "");
  EXPECT_EQ(scan("a = '''\n" + deep + "\n'' " + deep + "\n'''\n"), "");
  EXPECT_EQ(scan("# " + deep + "\na = 1 # " + deep + "\n"), "");
  EXPECT_EQ(scan("\"" + deep + "\" = 1\n[\"" + deep + "\"]\n['" + deep + "']\n"), "");
  EXPECT_EQ(scan("a = \"\\\"" + deep + "\"\n"), "");  // an escaped quote does not end it
}

TEST(PolicyPrescan, StructureAfterAStringIsCounted) {
  const std::string deep = repeat("[", kLimit);
  // "\\" is a complete string: what follows is structure.
  EXPECT_TRUE(too_deep(scan("a = [\"\\\\\", " + deep + "\n")));
  // A literal string has no escapes: '\' is complete.
  EXPECT_TRUE(too_deep(scan("a = ['\\', " + deep + "\n")));
  // Up to two quotes after the closing three belong to a multi-line string, no more.
  EXPECT_TRUE(too_deep(scan("a = [\"\"\"x\"\"\"\"\", " + deep + "\n")));
  EXPECT_TRUE(too_deep(scan("a = ['''x''''', " + deep + "\n")));
  // "" in a key is an empty key segment; it ends where the second quote is.
  EXPECT_TRUE(too_deep(scan("\"\"" + repeat(".a", kLimit) + " = 1\n")));
  EXPECT_TRUE(too_deep(scan("''" + repeat(".a", kLimit) + " = 1\n")));
  // A comment ends at the end of its line.
  EXPECT_TRUE(too_deep(scan("# x\n[" + dotted(kLimit + 1) + "]\n")));
  // A single-line string ends at a newline (an error), not at the next quote.
  EXPECT_TRUE(too_deep(scan("a = \"x\n[" + dotted(kLimit + 1) + "]\n\"\n")));
}

TEST(PolicyPrescan, ColumnsCountCharactersNotBytes) {
  // "é" is two bytes and one column, as toml++ counts: the 16th bracket, which opens level 17,
  // is in column 25 (it would be 26 in bytes).
  EXPECT_EQ(scan("a = \"é\", " + repeat("[", kLimit)).substr(0, 12), "p.toml:1:25:");
}

// --- Size -------------------------------------------------------------------------------------

TEST(PolicyPrescan, TextLargerThanOneMebibyteIsRefused) {
  std::string text = "version = 1\n# ";
  text.resize(kMaxPolicyBytes, 'x');
  EXPECT_EQ(scan(text), "");
  text.push_back('x');
  Result<void> r = prescan_policy(text, "p.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EFBIG);
  EXPECT_EQ(r.error().message, "p.toml: policy is larger than 1 MiB (1048577 bytes)");
}

TEST(PolicyLoaderLimits, FileLargerThanOneMebibyteIsRefusedBeforeParsing) {
  testing::TempDir dir;
  std::string text = "version = 1\n# ";
  text.resize(kMaxPolicyBytes + 1, 'x');
  const std::string path = dir.write("big.toml", text);
  Result<Policy> policy = load_policy_file(path);
  ASSERT_FALSE(policy);
  EXPECT_EQ(policy.error().code, EFBIG);
  EXPECT_EQ(policy.error().message, path + ": policy file is larger than 1 MiB (1048577 bytes)");
  text.resize(kMaxPolicyBytes);
  const std::string ok = dir.write("ok.toml", text);
  EXPECT_TRUE(load_policy_file(ok).has_value());
}

// --- The reported failure: 40,000 dotted segments ----------------------------------------------

TEST(PolicyLoaderLimits, FortyThousandSegmentHeaderIsAnErrorWithPosition) {
  testing::TempDir dir;
  const std::string path = dir.write("deep.toml", "version = 1\n[" + dotted(40000) + "]\nx = 1\n");
  Result<Policy> policy = load_policy_file(path);
  ASSERT_FALSE(policy);
  EXPECT_EQ(policy.error().code, EINVAL);
  EXPECT_EQ(policy.error().message.substr(0, path.size() + 7), path + ":2:33: ");
}

// --- String lengths ---------------------------------------------------------------------------

std::string error_of(const std::string &text) {
  Result<Policy> policy = parse_policy(text, "p.toml");
  if (policy) return "";
  EXPECT_EQ(policy.error().code, EINVAL);
  return policy.error().message;
}

TEST(PolicyLoaderLimits, RuleNamesAreBoundedAndHaveNoControlCharacters) {
  const std::string ok(128, 'r');
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"" + ok + "\"\n"), "");
  const std::string message = error_of("version = 1\n[[rule]]\nname = \"" + ok + "r\"\n");
  EXPECT_EQ(message,
            "p.toml:3:8: rule name is longer than 128 bytes: \"" + std::string(64, 'r') + "...\"");
  EXPECT_EQ(error_of("version = 1\n[[rule]]\nname = \"a\\u001b[31mb\"\n"),
            "p.toml:3:8: rule name \"a\\x1b[31mb\" must not contain control characters");
}

TEST(PolicyLoaderLimits, ThreeMegabyteRuleNameIsRefusedWithABoundedMessage) {
  const std::string text = "version = 1\n[[rule]]\nname = \"" + std::string(3000000, 'r') + "\"\n";
  Result<Policy> policy = parse_policy(text, "p.toml");
  ASSERT_FALSE(policy);
  EXPECT_EQ(policy.error().code, EFBIG);
  EXPECT_LT(policy.error().message.size(), 100u) << policy.error().message.substr(0, 200);
}

TEST(PolicyLoaderLimits, EveryStringIsBoundedByPathMax) {
  const std::string path = "/" + std::string(PATH_MAX - 1, 'p');
  const std::string message = error_of("version = 1\n[defaults]\ncertificate = \"" + path + "\"\n");
  EXPECT_EQ(message.rfind("p.toml:3:15: certificate is longer than 4095 bytes: \"/ppp", 0), 0u)
      << message;
  EXPECT_LT(message.size(), 150u);
  const std::string tls12 =
      error_of("version = 1\n[defaults]\ntls12_ciphers = \"" + std::string(PATH_MAX, 'C') + "\"\n");
  EXPECT_LT(tls12.size(), 150u);
  EXPECT_NE(tls12.find("tls12_ciphers is longer than 4095 bytes"), std::string::npos) << tls12;
}

TEST(PolicyLoaderLimits, PeerNamesAndIdentityPeersAreBounded) {
  const std::string uri = "spiffe://example.org/" + std::string(100000, 'u');
  // 100 KB: over every string's bound; 3,000 bytes: over the target names' bound.
  const std::string huge = error_of("version = 1\n[defaults]\npeer_names = [\"" + uri + "\"]\n");
  EXPECT_NE(huge.find("is longer than 4095 bytes"), std::string::npos) << huge.substr(0, 300);
  EXPECT_LT(huge.size(), 200u);
  const std::string names =
      error_of("version = 1\n[defaults]\npeer_names = [\"" + uri.substr(0, 3000) + "\"]\n");
  EXPECT_NE(names.find("is longer than 2048 bytes"), std::string::npos) << names.substr(0, 300);
  EXPECT_LT(names.size(), 400u);
  const std::string peer = error_of("version = 1\n[[identity]]\npeer = \"" + uri.substr(0, 3000) +
                                    "\"\nuser = \"nobody\"\n");
  EXPECT_EQ(peer.substr(0, 48), "p.toml:3:8: peer is longer than 2048 bytes: \"spi");
  EXPECT_LT(peer.size(), 150u);
  // At the bound, both are accepted.
  const std::string at_bound = "spiffe://example.org/" + std::string(2048 - 21, 'u');
  EXPECT_EQ(error_of("version = 1\n[defaults]\npeer_names = [\"" + at_bound + "\"]\n"), "");
  EXPECT_EQ(error_of("version = 1\n[[identity]]\npeer = \"" + at_bound + "\"\nuser = \"nobody\"\n"),
            "");
}

TEST(PolicyLoaderLimits, LongUnknownKeyGetsNoGuessAndABoundedMessage) {
  const std::string key(100000, 'k');
  const std::string message = error_of("version = 1\n[defaults]\n" + key + " = 1\n");
  EXPECT_EQ(message, "p.toml:3:1: unknown key \"" + std::string(200, 'k') + "...\" in [defaults]");
}

// --- The whole loader on a 64 KiB stack ---------------------------------------------------------

// Sanitizers put redzones around every frame; their builds get a larger stack for the same code.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kStack = 512 * 1024;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::size_t kStack = 512 * 1024;
#else
constexpr std::size_t kStack = 64 * 1024;
#endif
#else
constexpr std::size_t kStack = 64 * 1024;
#endif

struct StackJob {
  const std::string *text = nullptr;
  std::string message;
  bool parsed = false;
};

void *parse_on_thread(void *arg) {
  auto *job = static_cast<StackJob *>(arg);
  Result<Policy> policy = parse_policy(*job->text, "p.toml");
  job->parsed = policy.has_value();
  job->message = policy ? "" : policy.error().message;
  return nullptr;
}

// parse_with_small_stack parses |text| on a thread with a kStack-byte stack (a stack overflow
// kills the test binary, which is the failure this test exists to catch).
StackJob parse_with_small_stack(const std::string &text) {
  StackJob job;
  job.text = &text;
  pthread_attr_t attr;
  EXPECT_EQ(pthread_attr_init(&attr), 0);
  EXPECT_EQ(pthread_attr_setstacksize(&attr, kStack), 0);
  pthread_t thread;
  EXPECT_EQ(pthread_create(&thread, &attr, parse_on_thread, &job), 0);
  EXPECT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attr);
  return job;
}

TEST(PolicyLoaderLimits, DeepestAllowedInputsLoadOnA64KiBStack) {
  // The deepest inputs the limits allow, in every construct toml++ recurses on (each is then an
  // error of the loader's, not of the pre-scan), and the reported 40,000-segment header.
  struct Case {
    std::string text;
    bool too_deep;
  };
  const std::vector<Case> cases = {
      {"version = 1\n[" + dotted(kLimit) + "]\n", false},
      {"version = 1\n[[" + dotted(kLimit) + "]]\n", false},
      {"version = 1\n[" + dotted(kLimit - 1) + "]\nx = 1\n", false},
      {"version = 1\n" + dotted(kLimit) + " = 1\n", false},
      {"version = 1\na = " + repeat("[", kLimit - 1) + repeat("]", kLimit - 1) + "\n", false},
      {"version = 1\na = " + repeat("[{b = ", (kLimit - 1) / 3) + "1" +
           repeat("}]", (kLimit - 1) / 3) + "\n",
       false},
      {"version = 1\na = " + repeat("{b = ", (kLimit - 1) / 2) + "1" +
           repeat("}", (kLimit - 1) / 2) + "\n",
       false},
      {"version = 1\na = " + repeat("[", kLimit - 1) + "\n", false},  // unterminated
      {"version = 1\n[" + dotted(40000) + "]\n", true},
      {"version = 1\na = " + repeat("[", 40000) + "\n", true},
  };
  for (const Case &c : cases) {
    const StackJob job = parse_with_small_stack(c.text);
    EXPECT_FALSE(job.parsed) << c.text.substr(0, 80);
    EXPECT_EQ(too_deep(job.message), c.too_deep) << job.message.substr(0, 300);
  }
  // And a realistic policy of many rules, near the size bound.
  std::string big = "version = 1\n";
  for (int i = 0; big.size() < kMaxPolicyBytes - 200; ++i) {
    big += "[[rule]]\nname = \"r" + std::to_string(i) +
           "\"\nports = [443, \"8000-8080\"]\npeer_names = [\"a.example\", \"spiffe://x/y\"]\n";
  }
  const StackJob job = parse_with_small_stack(big);
  EXPECT_TRUE(job.parsed) << job.message;
}

}  // namespace
}  // namespace ssx::policy
