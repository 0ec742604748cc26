// SPDX-License-Identifier: Apache-2.0
// The fuzzer's seed corpus (tests/fuzz/corpus/policy) must hold valid policies, or the fuzzer
// starts from inputs that stop at the first error and explores little past it.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "policy/policy.hpp"

namespace ssx::policy {
namespace {

TEST(PolicyFuzzCorpus, SeedsAreValidPolicies) {
  const std::filesystem::path dir =
      std::filesystem::path(__FILE__).parent_path() / "../../fuzz/corpus/policy";
  int seeds = 0;
  for (const auto &entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    Result<Policy> policy = parse_policy(text.str(), entry.path().filename().string());
    EXPECT_TRUE(policy.has_value()) << policy.error().message;
    ++seeds;
  }
  EXPECT_GE(seeds, 5);
}

}  // namespace
}  // namespace ssx::policy
