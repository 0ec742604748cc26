// SPDX-License-Identifier: Apache-2.0
#include "base/last_error.hpp"

#include <cerrno>

#include "base/error_table.hpp"

namespace ssx::base {
namespace {
thread_local std::string tls_last_error;
// tls_static_error, when set, is the last error instead of tls_last_error: a failure without a
// message of its own (the EAGAIN path) records the reason's static description, no allocation.
thread_local const char *tls_static_error = nullptr;
thread_local int tls_last_reason = 0;
}  // namespace

void record_failure(const Failure &failure) {
  const int reason = failure.reason != 0 ? failure.reason : reason_for_errno(failure.code);
  tls_last_reason = reason;
  if (failure.message.empty()) {
    tls_static_error = reason_meaning(reason);
  } else {
    tls_last_error = failure.message;
    tls_static_error = nullptr;
  }
  errno = failure.code;
}

const char *last_error() {
  return tls_static_error != nullptr ? tls_static_error : tls_last_error.c_str();
}

int last_reason() {
  return tls_last_reason;
}

}  // namespace ssx::base
