// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes into parse_policy must never crash, hang, leak or trip a
// sanitizer; they must only ever yield a Policy or an EINVAL message.
//
// CI runs it briefly (make fuzz-smoke, inputs up to 1 MiB); make fuzz-long runs it for longer.
// By hand:
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSSX_FUZZ=ON -DSSX_BUILD_BENCH=OFF
//   cmake --build build-fuzz -j2 --target policy_fuzz
//   mkdir -p build-fuzz/policy-corpus
//   build-fuzz/tests/fuzz/policy_fuzz build-fuzz/policy-corpus tests/fuzz/corpus/policy \
//       -dict=tests/fuzz/policy.dict -max_len=1048576 -max_total_time=300
// New inputs go into build-fuzz/policy-corpus (the first directory); the seeds stay untouched.
//
// Inputs may name files (certificate = "/etc/passwd"): the loader opens them read-only to check
// them, which is harmless, but run the fuzzer as an unprivileged user all the same.

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char *>(data), size);
  ssx::Result<ssx::policy::Policy> policy = ssx::policy::parse_policy(text, "fuzz.toml");
  if (!policy) {
    // Every failure is an invalid (or, above 1 MiB, too large) policy reported against the
    // source's name.
    if (policy.error().code != EINVAL && policy.error().code != EFBIG) std::abort();
    if (policy.error().message.rfind("fuzz.toml:", 0) != 0) std::abort();
    return 0;
  }
  // A policy that loaded must be usable: matching walks every rule.
  ssx::policy::MatchQuery query;
  query.program = "/usr/bin/true";
  const ssx::policy::Effective effective = policy->match(query);
  if (effective.settings == nullptr) std::abort();
  return 0;
}
