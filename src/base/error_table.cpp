// SPDX-License-Identifier: Apache-2.0
#include "base/error_table.hpp"

#include <cerrno>

#include "ssx/ssx.h"

namespace ssx::base {

std::string errors_markdown() {
  std::string out = "| errno | when |\n| --- | --- |\n";
#define SSX_ERROR_ROW(name, meaning) out += std::string("| `") + #name + "` | " + meaning + " |\n";
  SSX_ERRORS(SSX_ERROR_ROW)
#undef SSX_ERROR_ROW
  return out;
}

std::string reasons_markdown() {
  std::string out =
      "| value | `SSX_REASON_…` | usual errno | meaning |\n| --- | --- | --- | --- |\n";
#define SSX_REASON_ROW(name, value, err, meaning)                                                  \
  out += "| " + std::to_string(value) + " | `" #name "` | " + std::string(err) + " | " + meaning + \
         " |\n";
  SSX_REASON_TABLE(SSX_REASON_ROW)
#undef SSX_REASON_ROW
  return out;
}

const char *reason_name(int reason) noexcept {
  switch (reason) {
#define SSX_REASON_NAME_CASE(name, value, err, meaning) \
  case value:                                           \
    return #name;
    SSX_REASON_TABLE(SSX_REASON_NAME_CASE)
#undef SSX_REASON_NAME_CASE
    default:
      return "UNKNOWN";
  }
}

const char *reason_meaning(int reason) noexcept {
  switch (reason) {
#define SSX_REASON_MEANING_CASE(name, value, err, meaning) \
  case value:                                              \
    return meaning;
    SSX_REASON_TABLE(SSX_REASON_MEANING_CASE)
#undef SSX_REASON_MEANING_CASE
    default:
      return reason_meaning(SSX_REASON_OTHER);
  }
}

int reason_for_errno(int code) noexcept {
  switch (code) {
    case EINVAL:
    case EFAULT:
      return SSX_REASON_INVALID_ARGUMENT;
    case ENOTCONN:
    case EISCONN:
    case EALREADY:
    case ESHUTDOWN:
      return SSX_REASON_WRONG_STATE;
    case EPERM:
      return SSX_REASON_NOT_SSX_SOCKET;
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
    case EOPNOTSUPP:
    case ENOTSOCK:
    case EBADF:
      return SSX_REASON_UNSUPPORTED;
    case EAGAIN:
      return SSX_REASON_WOULD_BLOCK;
    case EINPROGRESS:
      return SSX_REASON_IN_PROGRESS;
    case ENOMEM:
      return SSX_REASON_OUT_OF_MEMORY;
    case EIO:
      return SSX_REASON_INTERNAL;
    case EACCES:
      return SSX_REASON_POLICY_DENIED;
    case EBUSY:
      return SSX_REASON_ALREADY_IMPERSONATING;
    case ECONNRESET:
      return SSX_REASON_CONNECTION_RESET;
    case EPIPE:
      return SSX_REASON_PEER_GONE;
    case ETIMEDOUT:
      return SSX_REASON_HANDSHAKE_TIMEOUT;
    case EKEYREJECTED:
    case EKEYEXPIRED:
    case EKEYREVOKED:
    case EPROTO:
      return SSX_REASON_OTHER;  // every site that raises these names its reason
    default:
      return SSX_REASON_SYSTEM;  // ECONNREFUSED, ENETUNREACH, EMFILE, ...: as the kernel said
  }
}

}  // namespace ssx::base
