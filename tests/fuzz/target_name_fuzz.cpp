// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes into identity::parse_target_name must never crash, hang or
// trip a sanitizer. A name it accepts must be within the documented bounds and parse again to the
// same value (the canonical form is stable); a refusal is EINVAL with a bounded message.
//
// Run: make fuzz-smoke (all targets briefly) or make fuzz-long FUZZ_SECONDS=N.

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "identity/target_name.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char *>(data), size);
  auto parsed = ssx::identity::parse_target_name(text);
  if (!parsed) {
    if (parsed.error().code != EINVAL) std::abort();
    // The message quotes a bounded prefix only (200 bytes, escaped up to 4 bytes each).
    if (parsed.error().message.size() > 1200) std::abort();
    return 0;
  }
  if (text.size() > ssx::identity::kMaxTargetName) std::abort();
  if (parsed->kind == ssx::identity::TargetName::Kind::dns &&
      parsed->value.size() > ssx::identity::kMaxDnsName) {
    std::abort();
  }
  auto again = ssx::identity::parse_target_name(parsed->text());
  if (!again || !(*again == *parsed)) std::abort();
  return 0;
}
