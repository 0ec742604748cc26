// SPDX-License-Identifier: Apache-2.0
#include "base/error_table.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>

#include "base/last_error.hpp"
#include "ssx/ssx.h"

namespace ssx::base {
namespace {

TEST(ErrorTable, DocsMatchTheTable) {
  std::ifstream in(std::string(SSX_SOURCE_DIR) + "/docs/errors.md");
  ASSERT_TRUE(in) << "docs/errors.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::string begin = "<!-- errors table: generated from src/base/error_table.hpp -->\n";
  const std::string end = "<!-- end of errors table -->";
  auto b = doc.find(begin);
  auto e = doc.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), errors_markdown())
      << "paste this into docs/errors.md:\n"
      << errors_markdown();
}

TEST(ReasonTable, DocsMatchTheTable) {
  std::ifstream in(std::string(SSX_SOURCE_DIR) + "/docs/errors.md");
  ASSERT_TRUE(in) << "docs/errors.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::string begin = "<!-- reasons table: generated from include/ssx/reasons.h -->\n";
  const std::string end = "<!-- end of reasons table -->";
  auto b = doc.find(begin);
  auto e = doc.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), reasons_markdown())
      << "paste this into docs/errors.md:\n"
      << reasons_markdown();
}

// The values are ABI: distinct, and the names ssx_reason_name gives are the enumerators'.
TEST(ReasonTable, ValuesAreDistinctAndNamed) {
  std::set<int> values;
#define SSX_CHECK_REASON(name, value, err, meaning)                        \
  EXPECT_TRUE(values.insert(value).second) << #name " reuses " << (value); \
  EXPECT_STREQ(ssx_reason_name(SSX_REASON_##name), #name);                 \
  EXPECT_STRNE(reason_meaning(value), "");
  SSX_REASON_TABLE(SSX_CHECK_REASON)
#undef SSX_CHECK_REASON
  EXPECT_STREQ(ssx_reason_name(-1), "UNKNOWN");
  EXPECT_STREQ(ssx_reason_name(9999), "UNKNOWN");
  // A few values programs may already have compiled in.
  EXPECT_EQ(SSX_REASON_NONE, 0);
  EXPECT_EQ(SSX_REASON_UNTRUSTED_ISSUER, 40);
  EXPECT_EQ(SSX_REASON_NAME_MISMATCH, 41);
  EXPECT_EQ(SSX_REASON_TRUNCATED, 102);
}

// The EAGAIN path records a static message: the reason's text, no allocation.
TEST(ReasonTable, FailuresWithoutMessageUseTheStaticText) {
  record_failure(fail(EAGAIN, SSX_REASON_WOULD_BLOCK));
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_WOULD_BLOCK);
  EXPECT_EQ(ssx_last_error(), reason_meaning(SSX_REASON_WOULD_BLOCK));  // the same pointer
  record_failure(fail(EKEYREJECTED, SSX_REASON_NAME_MISMATCH, "no match"));
  EXPECT_STREQ(ssx_last_error(), "no match");
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_NAME_MISMATCH);
  record_failure(fail(ECONNREFUSED, "connect: refused"));  // no reason: derived from errno
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_SYSTEM);
  record_failure(fail(EINVAL, "bad"));
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace ssx::base
