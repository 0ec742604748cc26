// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/errno_name.hpp — "ECONNRESET" for ECONNRESET: metric labels and log fields.

#ifndef SSX_TOOLS_SSX_TUNNEL_ERRNO_NAME_HPP
#define SSX_TOOLS_SSX_TUNNEL_ERRNO_NAME_HPP

#include <string.h>

#include <string>

namespace ssx::cli::tunnel {

inline std::string errno_name(int code) {
  const char *name = ::strerrorname_np(code);
  if (name != nullptr) return name;
  std::string text =
      "E";  // appended: GCC 12 -O3 false -Wrestrict on "E" + std::string (bug 105329)
  text += std::to_string(code);
  return text;
}

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_ERRNO_NAME_HPP
