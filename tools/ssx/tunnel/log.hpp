// tools/ssx/tunnel/log.hpp — log lines to stderr without ever blocking a worker.
//
// Workers hand complete lines to a bounded queue; one thread writes them to stderr. When stderr
// does not keep up (a stalled pipe) the queue fills and further lines are dropped and counted,
// rather than stalling every connection behind a write(2).

#ifndef SSX_TOOLS_SSX_TUNNEL_LOG_HPP
#define SSX_TOOLS_SSX_TUNNEL_LOG_HPP

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ssx::cli::tunnel {

class Logger {
 public:
  // |dropped| counts lines that did not fit (it is also a metric).
  explicit Logger(std::atomic<std::uint64_t> &dropped, size_t max_pending = 16384);
  ~Logger();  // writes what is queued, then stops
  Logger(const Logger &) = delete;
  Logger &operator=(const Logger &) = delete;

  // line queues "ssx tunnel: " + |text| + "\n". Thread-safe, never blocks on I/O.
  void line(const std::string &text);

 private:
  void run();

  std::atomic<std::uint64_t> &dropped_;
  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pending_;
  std::uint64_t dropped_unreported_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

// quote renders untrusted text (a certificate subject, an error message) as a double-quoted log
// value: quotes, backslashes and control characters are escaped, so a peer cannot forge lines.
std::string quote(const std::string &text);

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_LOG_HPP
