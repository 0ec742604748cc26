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

}  // namespace
}  // namespace ssx::identity
