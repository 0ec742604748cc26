// SPDX-License-Identifier: Apache-2.0
#include "base/error_table.hpp"

namespace ssx::base {

std::string errors_markdown() {
  std::string out = "| errno | when |\n| --- | --- |\n";
#define SSX_ERROR_ROW(name, meaning) out += std::string("| `") + #name + "` | " + meaning + " |\n";
  SSX_ERRORS(SSX_ERROR_ROW)
#undef SSX_ERROR_ROW
  return out;
}

}  // namespace ssx::base
