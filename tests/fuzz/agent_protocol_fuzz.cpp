// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the `ssx agent` wire format (src/agent/protocol.hpp), which the agent parses
// from any local user and the library from whatever listens on the agent's path.
//
// The first input byte picks the parser (even: request, odd: response); the rest is a body.
// Beyond "no crash, leak or sanitizer report":
//   - a refusal is EINVAL with a short message;
//   - an accepted message encodes back to exactly the same body (the format has one spelling);
//   - every accepted field is within its documented bound.
// Run: make fuzz-smoke (all targets briefly) or make fuzz-long FUZZ_SECONDS=N.

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "agent/protocol.hpp"

namespace {

using namespace ssx::agent;

void same(const std::vector<std::uint8_t> &frame, std::span<const std::uint8_t> body) {
  if (frame.size() != body.size() + kFrameHeader) std::abort();
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (frame[kFrameHeader + i] != body[i]) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> body(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    auto r = decode_request(body);
    if (!r) {
      if (r.error().code != EINVAL || r.error().message.size() > 200) std::abort();
      return 0;
    }
    if (r->type == Type::status_request) {
      same(encode_status_request(), body);
    } else if (r->type == Type::chain_request) {
      if (!valid_key_name(r->chain.key) || r->chain.rule.size() > kMaxRuleName) std::abort();
      same(*encode(r->chain), body);
    } else {
      if (r->sign.digest.size() != digest_size(r->sign.hash)) std::abort();
      same(*encode(r->sign), body);
    }
    return 0;
  }
  auto r = decode_response(body);
  if (!r) {
    if (r.error().code != EINVAL || r.error().message.size() > 200) std::abort();
    return 0;
  }
  switch (r->type) {
    case Type::chain_response:
      if (r->chain.chain_pem.empty() || r->chain.chain_pem.size() > kMaxChain) std::abort();
      same(*encode(r->chain), body);
      break;
    case Type::sign_response:
      if (r->sign.signature.empty() || r->sign.signature.size() > kMaxSignature) std::abort();
      same(*encode(r->sign), body);
      break;
    case Type::status_response:
      if (r->status.size() > kMaxStatus) std::abort();
      same(encode_status_response(r->status), body);
      break;
    default:
      if (r->error.message.size() > kMaxMessage) std::abort();
      same(encode(r->error), body);
      break;
  }
  return 0;
}
