// SPDX-License-Identifier: Apache-2.0
// core/handoff.hpp — which process may use a connection after fork(2) (docs/handoff.md).
//
// After fork() the parent and the child hold the same TLS session: the same keys and the same
// record sequence numbers. Records sent by both would interleave under one key and the peer would
// reject them or, worse, the process that did not reply would end the other's stream with its
// close_notify. ssx lets one process use a connection at a time:
//
//   * First use after fork wins. The first process to send, receive, handshake or shut down a
//     connection after a fork claims it; any other process that tries afterwards fails with EPERM
//     before anything reaches the socket, and its ssx state for the connection is dropped.
//   * Closing is not a use. ssx_close sends close_notify only in the process that owns the
//     connection: one that used it since its last fork, or one whose children forked since then
//     have all exited or called exec (they can no longer claim it). Otherwise ssx_close acts as
//     ssx_release + close(2), and ssx_abort does not reset the shared TCP connection.
//   * ssx_release forgets a connection without touching it.
//
// Mechanism. A connection that is live when the process forks gets a 64-bit word in a MAP_SHARED
// page (set up by a pthread_atfork handler, so both processes see the same word). It holds the pid
// of the process that last used the connection and that process's fork epoch at the time (how
// many forks it had made). A process may use a connection when the word names itself at its
// current epoch (the fast path: one load), or claim it with a compare-and-swap when the word names
// itself at an earlier epoch, or names its parent at an epoch before the fork that made it (the
// parent has not used it since). Anything else means another process has it. Whether the children
// forked since an epoch are gone is told by a pipe per fork: the child holds the only write end
// (close-on-exec), so the parent's read end hangs up once the child has exited or called exec.
// The fork handlers hold every socket's lock across fork(), so no call is half done in the copy
// the child gets, and a claim is checked under the same lock as the I/O it allows.
//
// Thread safety: Claim is used under its socket's lock; the process state is internally locked.

#ifndef SSX_CORE_HANDOFF_HPP
#define SSX_CORE_HANDOFF_HPP

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "ssx/result.hpp"

namespace ssx::core::handoff {

enum class Standing {
  own,        // this process may use and close the connection
  undecided,  // nobody used it since a fork: this process may claim it, but does not own it yet
  lost,       // another process uses it
};

class Slab;

// Claim is one socket's share of the connection's ownership word.
class Claim {
 public:
  Claim();
  ~Claim();
  Claim(const Claim &) = delete;
  Claim &operator=(const Claim &) = delete;

  // use is called before anything that reads from or writes to the connection. It claims the
  // connection for this process when it may (see above) and fails with EPERM, naming the process
  // that has it, when another process does.
  Result<void> use(int fd);

  // standing says where this process stands without claiming anything, except that with |settle|
  // an undecided connection this process used last is claimed when every child forked since then
  // is gone (ssx_close sends close_notify then).
  Standing standing(bool settle);

 private:
  friend class ForkHandlers;
  std::atomic<std::uint64_t> *slot_ = nullptr;  // in a MAP_SHARED slab; null before any fork
  std::shared_ptr<Slab> slab_;
  pid_t creator_;           // the process that made the connection
  bool lost_ = false;       // this process must not use it any more
  bool untracked_ = false;  // the fork handler could not give it a word (out of memory)
};

// ensure_fork_handlers installs the pthread_atfork handlers (once per process). Every Claim
// calls it; the handlers lock sockets through the registry (core/registry.hpp).
void ensure_fork_handlers();

}  // namespace ssx::core::handoff

#endif  // SSX_CORE_HANDOFF_HPP
