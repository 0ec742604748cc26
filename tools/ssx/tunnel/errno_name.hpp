// tools/ssx/tunnel/errno_name.hpp — "ECONNRESET" for ECONNRESET: metric labels and log fields.

#ifndef SSX_TOOLS_SSX_TUNNEL_ERRNO_NAME_HPP
#define SSX_TOOLS_SSX_TUNNEL_ERRNO_NAME_HPP

#include <string.h>

#include <string>

namespace ssx::cli::tunnel {

inline std::string errno_name(int code) {
  const char *name = ::strerrorname_np(code);
  return name != nullptr ? std::string(name) : "E" + std::to_string(code);
}

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_ERRNO_NAME_HPP
