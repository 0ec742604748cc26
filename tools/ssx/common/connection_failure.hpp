// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/connection_failure.hpp — one wording for a failed outgoing connection, the
// same in `ssx connect` and the tunnel's log: "cannot connect to ADDRESS: REASON".

#ifndef SSX_TOOLS_SSX_COMMON_CONNECTION_FAILURE_HPP
#define SSX_TOOLS_SSX_COMMON_CONNECTION_FAILURE_HPP

#include <string>

namespace ssx::cli {

// connection_failure returns "cannot connect to |where|: |reason|". A |reason| from the library
// that already names the address of a failed connect(2) ("connect to 127.0.0.1:1: Connection
// refused") is shortened to its cause, so the address is not said twice.
inline std::string connection_failure(const std::string &where, const std::string &reason) {
  std::string cause = reason;
  if (cause.rfind("connect to ", 0) == 0) {
    const size_t colon = cause.find(": ");
    if (colon != std::string::npos) cause = cause.substr(colon + 2);
  }
  return "cannot connect to " + where + ": " + cause;
}

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_CONNECTION_FAILURE_HPP
