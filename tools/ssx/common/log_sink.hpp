// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/log_sink.hpp — writing log lines to standard error without ever blocking.
//
// A log nobody reads (a stuck collector, `| less` left alone) must not stop a server: a write(2)
// to a full pipe would block the thread that makes it, and with it connections, signals and
// shutdown. A LogSink writes a line only when that cannot block, and otherwise reports
// would_block so that the caller drops (and counts) the line or retries later.
//
// How "cannot block" is known without making the descriptor non-blocking (standard error is
// shared with whoever started us; O_NONBLOCK would change it for them too):
//   - a socket (journald's stream, a collector): send(2) with MSG_DONTWAIT;
//   - a pipe, FIFO or terminal: poll(2) for POLLOUT with no wait, then one write(2) of at most
//     PIPE_BUF bytes, which the kernel then takes whole (a pipe reports POLLOUT only when it has
//     a free page);
//   - a regular file or anything else: write(2) (the disk may be slow, but it does not wait for
//     a reader).
// Lines longer than PIPE_BUF are cut (ending in "...") so that every write is one atomic line.
//
// Thread safety: try_write may be called from any thread; concurrent lines may interleave only
// as whole lines.

#ifndef SSX_TOOLS_SSX_COMMON_LOG_SINK_HPP
#define SSX_TOOLS_SSX_COMMON_LOG_SINK_HPP

#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>

namespace ssx::cli {

class LogSink {
 public:
  enum class Outcome { written, would_block, failed };

  explicit LogSink(int fd = STDERR_FILENO);

  // try_write writes |line| (which should end in '\n') now if that cannot block.
  Outcome try_write(std::string_view line) const;

  // wait_writable waits at most |timeout| for the descriptor to accept a write; true when it may.
  bool wait_writable(std::chrono::milliseconds timeout) const;

  int fd() const { return fd_; }

 private:
  enum class Kind { socket, pipe_like, file };
  int fd_;
  Kind kind_;
};

// rfc3339_now returns the current UTC time as RFC 3339 with milliseconds,
// "2026-12-03T19:55:01.123Z".
std::string rfc3339_now();

// StderrLog is `ssx listen`'s log: one line at a time, on the calling thread, never blocking.
// A line that cannot be written now is dropped and counted; the next line that can be written is
// preceded by "ssx: N log lines dropped: standard error is not being read".
class StderrLog {
 public:
  // line writes "ssx: " + |text| + "\n".
  void line(const std::string &text);
  // raw writes |text| as it is (one JSON object and its newline, say).
  void raw(const std::string &text);
  unsigned long long dropped() const { return dropped_total_; }

 private:
  void emit(const std::string &whole);
  LogSink sink_;
  unsigned long long dropped_unreported_ = 0;
  unsigned long long dropped_total_ = 0;
};

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_LOG_SINK_HPP
