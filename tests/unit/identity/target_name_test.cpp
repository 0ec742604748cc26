// SPDX-License-Identifier: Apache-2.0
#include "identity/target_name.hpp"

#include <gtest/gtest.h>

namespace ssx::identity {
namespace {

using Kind = TargetName::Kind;

TEST(TargetName, ClassifiesEachKindOfName) {
  struct Case {
    const char *text;
    Kind kind;
    const char *value;
  };
  const Case cases[] = {
      {"db.example", Kind::dns, "db.example"},
      {"DB.Example", Kind::dns, "db.example"},
      {"unix:uid=1000", Kind::local_uid, "unix:uid=1000"},
      {"localhost", Kind::dns, "localhost"},
      {"192.0.2.7", Kind::ip, "192.0.2.7"},
      {"2001:db8::7", Kind::ip, "2001:db8::7"},
      {"::1", Kind::ip, "::1"},
      {"spiffe://trust.domain/path/svc", Kind::uri, "spiffe://trust.domain/path/svc"},
      {"https://example.org/", Kind::uri, "https://example.org/"},
      {"sha256:ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789", Kind::spki_pin,
       "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"},
  };
  for (const auto &c : cases) {
    auto parsed = parse_target_name(c.text);
    ASSERT_TRUE(parsed.has_value()) << c.text << ": " << parsed.error().message;
    EXPECT_EQ(parsed->kind, c.kind) << c.text;
    EXPECT_EQ(parsed->value, c.value) << c.text;
  }
}

TEST(TargetName, PinTextKeepsItsPrefix) {
  auto pin = parse_target_name("sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(pin.has_value());
  EXPECT_EQ(pin->text(), "sha256:" + std::string(64, 'a'));
}

TEST(TargetName, RejectsMalformedNamesWithAReason) {
  struct Case {
    std::string text;
    const char *reason;
  };
  const Case cases[] = {
      {"", "is empty"},
      {"*.example", "wildcards belong in certificates"},
      {"a..b", "empty label"},
      {"example.com.", "must not end with '.'"},
      {std::string(64, 'a') + ".example", "longer than 63 characters"},
      {"-bad.example", "starts or ends with '-'"},
      {"bad host", "DNS labels may hold only letters, digits and '-'"},
      {"10.0.0.256", "all-numeric last label"},
      {"sha256:abc", "64 hex digits"},
      {"sha256:" + std::string(63, 'a') + "g", "64 hex digits"},
      {"1::2::3", "not a valid IP address"},
      {"spiffe://", "nothing after"},
      {"spiffe:///x", "no trust domain"},
      {"spiffe://td/../x", "path segment"},
      {"sp ace://x", "bad scheme"},
      {"https://with space", "space"},
      {"unix:uid=-1", "unix:uid=N"},
      {std::string("nul\0byte", 8), "NUL byte"},
  };
  for (const auto &c : cases) {
    auto parsed = parse_target_name(c.text);
    ASSERT_FALSE(parsed.has_value()) << c.text;
    EXPECT_EQ(parsed.error().code, EINVAL);
    EXPECT_NE(parsed.error().message.find(c.reason), std::string::npos)
        << c.text << " -> " << parsed.error().message;
  }
}

TEST(TargetName, LengthsAreBoundedAndMessagesQuoteABoundedPrefix) {
  // RFC 1035: 253 characters for a DNS name.
  std::string dns;
  while (dns.size() < 253) dns += dns.empty() ? "a" : ".a";
  ASSERT_EQ(dns.size(), 253u);
  EXPECT_TRUE(parse_target_name(dns).has_value());
  EXPECT_FALSE(parse_target_name(dns + "a").has_value());
  // URIs (and every other kind): 2048 bytes, the SPIFFE ID bound.
  const std::string uri = "spiffe://example.org/" + std::string(2048 - 21, 'u');
  EXPECT_TRUE(parse_target_name(uri).has_value());
  const auto over = parse_target_name(uri + "u");
  ASSERT_FALSE(over.has_value());
  EXPECT_NE(over.error().message.find("is longer than 2048 bytes (2049 bytes)"), std::string::npos)
      << over.error().message;

  // 100 KB names of each kind: refused, and the message holds a bounded, escaped prefix only.
  const std::string huge[] = {
      "https://example.org/" + std::string(100000, 'u'),
      std::string(100000, 'a'),
      "sha256:" + std::string(100000, 'a'),
      "unix:uid=" + std::string(100000, '1'),
      std::string(100000, '\x1b'),
  };
  for (const std::string &name : huge) {
    const auto parsed = parse_target_name(name);
    ASSERT_FALSE(parsed.has_value());
    EXPECT_EQ(parsed.error().code, EINVAL);
    EXPECT_LT(parsed.error().message.size(), 1000u) << parsed.error().message.substr(0, 100);
    EXPECT_EQ(parsed.error().message.find('\x1b'), std::string::npos);
  }
  // A rejected name of normal length is quoted whole (and escaped).
  const auto bad = parse_target_name("bad\"host");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message.rfind("peer name \"bad\\\"host\" ", 0), 0u) << bad.error().message;
}

}  // namespace
}  // namespace ssx::identity
