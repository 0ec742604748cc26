// SPDX-License-Identifier: Apache-2.0
#include "security_json.hpp"

#include <chrono>

namespace ssx::cli {
namespace {

// valid_utf8 returns |s| with every byte that does not start a well-formed UTF-8 sequence
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) replaced by U+FFFD.
// Names come from the peer's certificate, which may hold any bytes, and nlohmann-json's dump()
// throws on invalid UTF-8: found by tests/fuzz/security_json_fuzz.cpp.
std::string valid_utf8(const std::string &s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xBF;
    if (b < 0x80) {
      out.push_back(s[i++]);
      continue;
    }
    if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
    }
    bool ok = n > 0 && i + n < s.size();
    for (std::size_t k = 1; ok && k <= n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      const unsigned min = k == 1 ? lo : 0x80;
      const unsigned max = k == 1 ? hi : 0xBF;
      ok = c >= min && c <= max;
    }
    if (ok) {
      out.append(s, i, n + 1);
      i += n + 1;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  return out;
}

nlohmann::ordered_json string_or_null(const std::string &s) {
  if (s.empty()) return nullptr;
  return valid_utf8(s);
}

}  // namespace

const char *protocol_name(ssx_protocol protocol) {
  switch (protocol) {
    case SSX_PROTOCOL_TLS:
      return "tls";
    case SSX_PROTOCOL_LOCAL:
      return "local";
    case SSX_PROTOCOL_DTLS:
      return "dtls";
    case SSX_PROTOCOL_NONE:
      return "none";
    case SSX_PROTOCOL_DEFAULT:
      break;
  }
  return "default";
}

std::vector<std::string> flag_words(std::uint32_t flags) {
  static constexpr struct {
    std::uint32_t bit;
    const char *word;
  } kWords[] = {
      {SSX_INFO_SECURED, "secured"},
      {SSX_INFO_ENCRYPTED, "encrypted"},
      {SSX_INFO_PEER_AUTHENTICATED, "peer authenticated"},
      {SSX_INFO_PEER_NAME_VERIFIED, "peer name verified"},
      {SSX_INFO_RESUMED, "resumed"},
      {SSX_INFO_KERNEL_OFFLOAD, "kernel offload"},
      {SSX_INFO_IMPERSONATION_AVAILABLE, "impersonation available"},
  };
  std::vector<std::string> out;
  for (const auto &w : kWords) {
    if ((flags & w.bit) != 0) out.emplace_back(w.word);
  }
  return out;
}

double handshake_ms(const SecurityInfo &info) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(info.handshake_time);
  return static_cast<double>(us.count()) / 1000.0;
}

nlohmann::ordered_json security_json(const SecurityInfo &info) {
  nlohmann::ordered_json j;
  j["protocol"] = protocol_name(info.protocol);
  j["version"] = string_or_null(info.version);
  j["cipher"] = string_or_null(info.cipher);
  j["group"] = string_or_null(info.group);
  j["secured"] = info.secured();
  j["encrypted"] = info.encrypted();
  j["peer_authenticated"] = info.peer_authenticated();
  j["peer_name_verified"] = info.peer_name_verified();
  j["resumed"] = info.resumed();
  j["kernel_offload"] = (info.flags & SSX_INFO_KERNEL_OFFLOAD) != 0;
  j["policy_rule"] = string_or_null(info.policy_rule);
  j["handshake_ms"] = handshake_ms(info);

  nlohmann::ordered_json peer;
  peer["principal"] = string_or_null(info.peer_principal);
  nlohmann::ordered_json names = nlohmann::ordered_json::array();
  for (const std::string &name : info.peer_names) names.push_back(valid_utf8(name));
  peer["names"] = std::move(names);
  peer["spki_sha256"] = string_or_null(info.peer_spki_sha256);
  if (info.peer_account) {
    peer["user"] = string_or_null(info.peer_account->user);
    peer["uid"] = info.peer_account->uid;
    peer["gid"] = info.peer_account->gid;
    peer["groups"] = info.peer_account->groups;
  } else {
    peer["user"] = nullptr;
    peer["uid"] = nullptr;
    peer["gid"] = nullptr;
    peer["groups"] = nullptr;
  }
  j["peer"] = std::move(peer);
  return j;
}

}  // namespace ssx::cli
