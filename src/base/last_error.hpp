// SPDX-License-Identifier: Apache-2.0
// base/last_error.hpp — the thread-local reason behind the last failed ssx call.
//
// The C API reports failure as -1 plus errno; the reason in words lives here, read back through
// ssx_last_error(). Kept per thread so that concurrent calls on different sockets never see each
// other's reasons.

#ifndef SSX_BASE_LAST_ERROR_HPP
#define SSX_BASE_LAST_ERROR_HPP

#include <string>

#include "ssx/result.hpp"

namespace ssx::base {

// record_failure stores |failure| as this thread's last error and reason (the errno's generic
// reason when it names none) and sets errno to its code. A failure without a message records
// its reason's static description: nothing is allocated.
void record_failure(const Failure &failure);

// last_error returns this thread's last recorded reason ("" if none). Valid until the next
// record_failure on the same thread.
const char *last_error();

// last_reason returns this thread's last recorded enum ssx_reason (SSX_REASON_NONE if none).
int last_reason();

}  // namespace ssx::base

#endif  // SSX_BASE_LAST_ERROR_HPP
