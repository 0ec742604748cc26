// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/next_wait.hpp — turning ssx_wants() into what a poll/epoll loop waits for.
//
// ssx_wants() may include SSX_POLLPENDING: input ssx already holds (for example application data
// that arrived with the handshake's last flight and was read with it). poll(2) and epoll(7) never
// report that bit, so a loop that waits for it waits for nothing: the connection stalls until
// some unrelated event. Every loop in the CLI asks here instead.

#ifndef SSX_TOOLS_SSX_COMMON_NEXT_WAIT_HPP
#define SSX_TOOLS_SSX_COMMON_NEXT_WAIT_HPP

#include <poll.h>

#include "ssx/ssx.h"

namespace ssx::cli {

struct NextWait {
  short events = 0;  // POLLIN and/or POLLOUT: the events to wait for
  bool now = false;  // ssx holds input: call ssx again at once instead of waiting
};

// next_wait returns what to wait for before calling ssx again on |fd|. |fallback| is used when
// ssx names no event (it never should after EAGAIN; waiting for nothing would spin or stall).
inline NextWait next_wait(int fd, short fallback) {
  const short wants = ssx_wants(fd);
  NextWait w;
  w.now = (wants & SSX_POLLPENDING) != 0;
  w.events = static_cast<short>(wants & (POLLIN | POLLOUT));
  if (w.events == 0) w.events = fallback;
  return w;
}

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_NEXT_WAIT_HPP
