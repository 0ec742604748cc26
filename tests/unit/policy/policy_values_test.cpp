// SPDX-License-Identifier: Apache-2.0
// The single-value parsers behind the loader: peer names, port ranges, CIDRs, key suggestions,
// path resolution.

#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <string>

#include "base/text.hpp"
#include "policy/values.hpp"

namespace ssx::policy {
namespace {

TEST(PolicyValues, AcceptsEveryKindOfPeerName) {
  for (const char *name :
       {"db.example.com", "localhost", "xn--bcher-kva.example", "a-b.c-d", "192.0.2.1", "::1",
        "2001:db8::42", "spiffe://example.org", "spiffe://example.org/ns/prod/sa/db",
        "https://service.example/api", "urn-ish+x://anything/at/all?q=1"}) {
    Result<std::string> checked = check_peer_name(name);
    ASSERT_TRUE(checked.has_value()) << name << ": " << checked.error().message;
    EXPECT_EQ(*checked, name);
  }
}

TEST(PolicyValues, LowercasesKeyPins) {
  const std::string upper = "sha256:" + std::string(64, 'A');
  Result<std::string> checked = check_peer_name(upper);
  ASSERT_TRUE(checked.has_value()) << checked.error().message;
  EXPECT_EQ(*checked, "sha256:" + std::string(64, 'a'));
}

TEST(PolicyValues, RejectsMalformedPeerNames) {
  for (const char *name :
       {"",
        "*.example.com",
        "example.com.",
        "a..b",
        "-a.example",
        "a-.example",
        "exa mple.com",
        "1.2.3",
        "10.0.0.256",
        "fe80::1%eth0",
        "[::1]",
        "::g",
        "spiffe://",
        "spiffe://td/",
        "spiffe://td//x",
        "spiffe://td/./x",
        "spiffe://td/../x",
        "spiffe://td:8080/x",
        "spiffe://user@td/x",
        "SPIFFE://td/x",
        "spiffe://td/x?y",
        "1http://x",
        "https://",
        "https://a b",
        "sha256:",
        "sha256:0123",
        "sha256:zz00000000000000000000000000000000000000000000000000000000000000"}) {
    EXPECT_FALSE(check_peer_name(name).has_value()) << "accepted " << name;
  }
  EXPECT_FALSE(check_peer_name(std::string(64, 'a') + ".example").has_value());  // 64-char label
  std::string long_name = std::string(250, 'a');  // insert() on a temporary: GCC 12 -O3 false
  long_name.insert(60, ".");                      // -Wrestrict (GCC bug 105329)
  long_name.insert(120, ".");
  long_name.insert(180, ".");
  long_name += ".com";
  EXPECT_FALSE(check_peer_name(long_name).has_value());  // over 253 characters
}

TEST(PolicyValues, ParsesPortRanges) {
  Result<PortRange> range = parse_port_range("1-65535");
  ASSERT_TRUE(range.has_value()) << range.error().message;
  EXPECT_EQ(range->lo, 1);
  EXPECT_EQ(range->hi, 65535);
  range = parse_port_range("8080");
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->lo, 8080);
  EXPECT_EQ(range->hi, 8080);
  for (const char *bad :
       {"", "-", "1-", "-2", "+1-2", " 1-2", "1 - 2", "0-10", "10-5", "1-2-3", "99999999999-1"}) {
    EXPECT_FALSE(parse_port_range(bad).has_value()) << "accepted " << bad;
  }
}

TEST(PolicyValues, ParsesAndFormatsCidrs) {
  Result<Cidr> cidr = parse_cidr("2001:db8::/32");
  ASSERT_TRUE(cidr.has_value()) << cidr.error().message;
  EXPECT_EQ(format_cidr(*cidr), "2001:db8::/32");
  cidr = parse_cidr("10.0.0.0/08");
  ASSERT_TRUE(cidr.has_value());
  EXPECT_EQ(format_cidr(*cidr), "10.0.0.0/8");
  for (const char *bad : {"", "/8", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8", "10.0.0.0 /8",
                          "10.0.0/8", "2001:db8::1/32"}) {
    EXPECT_FALSE(parse_cidr(bad).has_value()) << "accepted " << bad;
  }
}

TEST(PolicyValues, SuggestsClosestKeyOnlyWhenClose) {
  constexpr std::string_view kKeys[] = {"protocol", "min_tls_version", "cipher_suites", "groups"};
  EXPECT_EQ(closest_name("protocl", kKeys), "protocol");
  EXPECT_EQ(closest_name("min_tls", kKeys), "min_tls_version");
  EXPECT_EQ(closest_name("ciphersuites", kKeys), "cipher_suites");
  EXPECT_EQ(closest_name("shell", kKeys), "");
}

TEST(PolicyValues, ResolvesRelativePathsAgainstThePolicyDirectory) {
  EXPECT_EQ(base_directory("/etc/ssx/policy.toml"), "/etc/ssx");
  EXPECT_EQ(base_directory("/policy.toml"), "/");
  char cwd[PATH_MAX];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_EQ(base_directory("policy.toml"), std::string(cwd));
  EXPECT_EQ(base_directory("conf/policy.toml"), resolve_path(cwd, "conf"));
  EXPECT_EQ(resolve_path("/etc/ssx", "certs/a.pem"), "/etc/ssx/certs/a.pem");
  EXPECT_EQ(resolve_path("/", "a.pem"), "/a.pem");
  EXPECT_EQ(resolve_path("/etc/ssx", "/srv/a.pem"), "/srv/a.pem");
}

TEST(BaseText, QuoteEscapesAndTruncates) {
  EXPECT_EQ(base::quote("plain"), "\"plain\"");
  EXPECT_EQ(base::quote("a\"b\\c\nd\te\x01"), "\"a\\\"b\\\\c\\nd\\te\\x01\"");
  EXPECT_EQ(base::quote("abcdef", 3), "\"abc...\"");
  // "é" is two bytes; a cut inside it backs off to the character boundary.
  EXPECT_EQ(base::quote("a\xc3\xa9z", 2), "\"a...\"");
}

TEST(BaseText, FileModeSpellsPermissionBitsInOctal) {
  EXPECT_EQ(base::file_mode(0100644), "0644");
  EXPECT_EQ(base::file_mode(0600), "0600");
  EXPECT_EQ(base::file_mode(04755), "4755");
}

}  // namespace
}  // namespace ssx::policy
