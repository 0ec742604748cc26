// SPDX-License-Identifier: Apache-2.0
#include "base/text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ssx::base {
namespace {

TEST(Quote, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(quote("plain"), "\"plain\"");
  EXPECT_EQ(quote("a\"b\\c\nd\te"), "\"a\\\"b\\\\c\\nd\\te\"");
  EXPECT_EQ(quote(std::string("\x01\x7f", 2)), "\"\\x01\\x7f\"");
  EXPECT_EQ(quote(std::string("a\0b", 3)), "\"a\\x00b\"");
}

TEST(Quote, TextThatFitsExactlyIsNotCut) {
  EXPECT_EQ(quote(std::string(10, 'x'), 10), "\"" + std::string(10, 'x') + "\"");
  EXPECT_EQ(quote(std::string(11, 'x'), 10), "\"" + std::string(10, 'x') + "...\"");
}

// The fuzz target cli_input found a message of 1,530 bytes: 200 NUL bytes quoted as 800. The
// bound counts what the message gets, escapes included.
TEST(Quote, TheBoundCountsEscapes) {
  const std::string zeros(1000, '\0');
  const std::string q = quote(zeros, 200);
  EXPECT_LE(q.size(), 200u + 5u);
  EXPECT_EQ(q.substr(0, 5), "\"\\x00");
  EXPECT_EQ(q.substr(q.size() - 4), "...\"");
  // An escape that does not fit whole is left out whole.
  EXPECT_EQ(quote("ab\ncd", 3), "\"ab...\"");
}

TEST(Quote, NeverSplitsAUtf8Character) {
  const std::string euros = "\xe2\x82\xac\xe2\x82\xac";  // two 3-byte characters
  EXPECT_EQ(quote(euros, 6), "\"" + euros + "\"");
  EXPECT_EQ(quote(euros, 5), "\"\xe2\x82\xac...\"");
  EXPECT_EQ(quote(euros, 4), "\"\xe2\x82\xac...\"");
  EXPECT_EQ(quote(euros, 2), "\"...\"");
}

TEST(Quote, EveryResultIsBoundedWhateverTheBytes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t max : {0U, 1U, 3U, 64U, 200U}) {
    EXPECT_LE(quote(all + all + all, max).size(), max + 5) << max;
  }
}

}  // namespace
}  // namespace ssx::base
