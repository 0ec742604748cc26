// SPDX-License-Identifier: Apache-2.0
#include "base/last_error.hpp"

#include <cerrno>

namespace ssx::base {
namespace {
thread_local std::string tls_last_error;
}  // namespace

void record_failure(const Failure &failure) {
  tls_last_error = failure.message;
  errno = failure.code;
}

const char *last_error() {
  return tls_last_error.c_str();
}

}  // namespace ssx::base
