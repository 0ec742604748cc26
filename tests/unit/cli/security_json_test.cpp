// SPDX-License-Identifier: Apache-2.0
// Tests of tools/ssx/common/security_json.hpp: the JSON object `ssx connect --json` and
// `ssx listen --json` print. Its keys are a stable interface (docs/cli.md).

#include "common/security_json.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ssx::cli {
namespace {

std::vector<std::string> keys_of(const nlohmann::ordered_json &j) {
  std::vector<std::string> keys;
  for (const auto &item : j.items()) keys.push_back(item.key());
  return keys;
}

SecurityInfo mapped_tls_info() {
  SecurityInfo info;
  info.protocol = SSX_PROTOCOL_TLS;
  info.flags = SSX_INFO_SECURED | SSX_INFO_ENCRYPTED | SSX_INFO_PEER_AUTHENTICATED |
               SSX_INFO_IMPERSONATION_AVAILABLE;
  info.version = "TLSv1.3";
  info.cipher = "TLS_AES_128_GCM_SHA256";
  info.group = "x25519";
  info.peer_principal = "spiffe://example.org/backup";
  info.peer_names = {"spiffe://example.org/backup", "backup agent"};
  info.peer_spki_sha256 = std::string(64, 'a');
  info.policy_rule = "inbound-backup";
  info.handshake_time = std::chrono::microseconds(1234);
  info.peer_account = PeerAccount{"backup", 34, 34, {34, 100}};
  return info;
}

TEST(SecurityJson, HasTheDocumentedKeysInOrder) {
  auto j = security_json(mapped_tls_info());
  EXPECT_EQ(keys_of(j), (std::vector<std::string>{"protocol", "version", "cipher", "group",
                                                  "secured", "encrypted", "peer_authenticated",
                                                  "peer_name_verified", "resumed", "kernel_offload",
                                                  "policy_rule", "handshake_ms", "peer"}));
  EXPECT_EQ(keys_of(j["peer"]), (std::vector<std::string>{"principal", "names", "spki_sha256",
                                                          "user", "uid", "gid", "groups"}));
}

TEST(SecurityJson, MappedTlsPeer) {
  auto j = security_json(mapped_tls_info());
  EXPECT_EQ(j["protocol"], "tls");
  EXPECT_EQ(j["version"], "TLSv1.3");
  EXPECT_EQ(j["cipher"], "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(j["group"], "x25519");
  EXPECT_EQ(j["secured"], true);
  EXPECT_EQ(j["encrypted"], true);
  EXPECT_EQ(j["peer_authenticated"], true);
  EXPECT_EQ(j["peer_name_verified"], false);
  EXPECT_EQ(j["resumed"], false);
  EXPECT_EQ(j["kernel_offload"], false);
  EXPECT_EQ(j["policy_rule"], "inbound-backup");
  EXPECT_DOUBLE_EQ(j["handshake_ms"].get<double>(), 1.234);
  const auto &peer = j["peer"];
  EXPECT_EQ(peer["principal"], "spiffe://example.org/backup");
  EXPECT_EQ(peer["names"],
            nlohmann::ordered_json::array({"spiffe://example.org/backup", "backup agent"}));
  EXPECT_EQ(peer["spki_sha256"], std::string(64, 'a'));
  EXPECT_EQ(peer["user"], "backup");
  EXPECT_EQ(peer["uid"], 34);
  EXPECT_EQ(peer["gid"], 34);
  EXPECT_EQ(peer["groups"], nlohmann::ordered_json::array({34, 100}));
}

TEST(SecurityJson, CleartextHasNullsAndAnEmptyNameList) {
  SecurityInfo info;  // SSX_PROTOCOL_NONE, no flags, no peer
  info.policy_rule = "defaults";
  auto j = security_json(info);
  EXPECT_EQ(j["protocol"], "none");
  EXPECT_TRUE(j["version"].is_null());
  EXPECT_TRUE(j["cipher"].is_null());
  EXPECT_TRUE(j["group"].is_null());
  EXPECT_EQ(j["secured"], false);
  EXPECT_EQ(j["encrypted"], false);
  EXPECT_EQ(j["policy_rule"], "defaults");
  EXPECT_TRUE(j["peer"]["principal"].is_null());
  EXPECT_TRUE(j["peer"]["names"].is_array());
  EXPECT_TRUE(j["peer"]["names"].empty());
  EXPECT_TRUE(j["peer"]["spki_sha256"].is_null());
  for (const char *key : {"user", "uid", "gid", "groups"}) {
    EXPECT_TRUE(j["peer"][key].is_null()) << key;
  }
}

TEST(SecurityJson, MappedUidWithoutANameHasANullUser) {
  SecurityInfo info = mapped_tls_info();
  info.peer_account->user.clear();
  auto j = security_json(info);
  EXPECT_TRUE(j["peer"]["user"].is_null());
  EXPECT_EQ(j["peer"]["uid"], 34);
}

// Found by tests/fuzz/security_json_fuzz.cpp: a certificate's names may hold bytes that are not
// UTF-8, and nlohmann-json's dump() threw on them, which ended `ssx connect --json`.
TEST(SecurityJson, InvalidUtf8IsReplacedNotThrown) {
  SecurityInfo info;
  info.flags = SSX_INFO_SECURED;
  info.version = std::string("TLS\x00\xff", 5);
  info.peer_principal = "caf\xc3\xa9";  // valid: kept
  info.peer_names = {
      "a\xff"
      "b",
      "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3"};
  std::string text;
  ASSERT_NO_THROW(text = security_json(info).dump());
  const auto back = nlohmann::json::parse(text);
  EXPECT_EQ(back["peer"]["principal"], "caf\xc3\xa9");
  EXPECT_EQ(back["version"], std::string("TLS\x00\xef\xbf\xbd", 7));
  EXPECT_EQ(back["peer"]["names"][0],
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(back["peer"]["names"][1], "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // overlong
  EXPECT_EQ(back["peer"]["names"][2], "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(back["peer"]["names"][4], "\xef\xbf\xbd");                          // truncated
}

TEST(FlagWords, NamesEveryFlag) {
  EXPECT_EQ(flag_words(0), std::vector<std::string>{});
  EXPECT_EQ(
      flag_words(SSX_INFO_SECURED | SSX_INFO_PEER_NAME_VERIFIED | SSX_INFO_RESUMED |
                 SSX_INFO_KERNEL_OFFLOAD),
      (std::vector<std::string>{"secured", "peer name verified", "resumed", "kernel offload"}));
  EXPECT_EQ(protocol_name(SSX_PROTOCOL_LOCAL), std::string("local"));
}

}  // namespace
}  // namespace ssx::cli
