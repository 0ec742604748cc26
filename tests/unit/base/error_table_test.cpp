// SPDX-License-Identifier: Apache-2.0
#include "base/error_table.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

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

}  // namespace
}  // namespace ssx::base
