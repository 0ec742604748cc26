// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the JSON the CLI prints for a query (tools/ssx/common/security_json.*), from
// a SecurityInfo whose strings are arbitrary bytes (what a peer's certificate or an OpenSSL
// build may put there). Printing must never throw or crash, and what it prints must parse back
// with nlohmann-json to the same object.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/security_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  ssx::SecurityInfo info;
  info.protocol = static_cast<ssx_protocol>(in.ConsumeIntegralInRange<int>(0, 4));
  info.flags = in.ConsumeIntegral<std::uint32_t>();
  info.version = in.ConsumeRandomLengthString(64);
  info.cipher = in.ConsumeRandomLengthString(64);
  info.group = in.ConsumeRandomLengthString(64);
  info.peer_principal = in.ConsumeRandomLengthString(256);
  const int names = in.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < names; ++i) info.peer_names.push_back(in.ConsumeRandomLengthString(256));
  info.peer_spki_sha256 = in.ConsumeRandomLengthString(64);
  info.policy_rule = in.ConsumeRandomLengthString(128);
  info.handshake_time = std::chrono::nanoseconds(in.ConsumeIntegral<std::int64_t>());
  if (in.ConsumeBool()) {
    ssx::PeerAccount account;
    account.user = in.ConsumeRandomLengthString(32);
    account.uid = in.ConsumeIntegral<uid_t>();
    account.gid = in.ConsumeIntegral<gid_t>();
    const int groups = in.ConsumeIntegralInRange<int>(0, 8);
    for (int i = 0; i < groups; ++i) account.groups.push_back(in.ConsumeIntegral<gid_t>());
    info.peer_account = account;
  }
  const nlohmann::ordered_json json = ssx::cli::security_json(info);
  const std::string text = json.dump();  // as cmd_connect and cmd_listen print it
  const nlohmann::ordered_json back = nlohmann::ordered_json::parse(text);
  if (back.dump() != text) std::abort();
  return 0;
}
