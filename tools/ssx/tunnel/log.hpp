// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/log.hpp — the tunnel's log on standard error, which never blocks a worker or
// the main thread.
//
// Workers hand complete records to a bounded queue; one thread writes them through a LogSink
// (common/log_sink.hpp), which writes only when that cannot block. When standard error does not
// keep up (a stalled pipe) the queue fills and further lines are dropped and counted (the count
// is a metric, and a line reports it once writing works again), rather than stalling connections
// behind a write(2). On shutdown the thread gets a bounded time to write what is queued, so a
// log nobody reads never keeps SIGTERM from ending the process.
//
// Every line starts with an RFC 3339 UTC timestamp (text) or carries it as "time" (JSON, one
// object per line; docs/cli.md lists the keys).

#ifndef SSX_TOOLS_SSX_TUNNEL_LOG_HPP
#define SSX_TOOLS_SSX_TUNNEL_LOG_HPP

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/log_sink.hpp"

namespace ssx::cli::tunnel {

enum class LogLevel { debug, info, warning, error };
enum class LogFormat { text, json };

// parse_log_level / parse_log_format read "debug"/"info"/"warning"/"error" and "text"/"json";
// false for anything else.
bool parse_log_level(std::string_view text, LogLevel &out);
bool parse_log_format(std::string_view text, LogFormat &out);
const char *log_level_name(LogLevel level);

// ConnectionRecord is what the log says about a connection when it ends.
struct ConnectionRecord {
  std::uint64_t id = 0;
  std::string tunnel;        // the tunnel's name (--config); "" for a lone tunnel
  std::string peer_address;  // who connected to --listen
  std::string principal;     // the secured peer's principal; "" when none
  std::string rule;          // the policy rule; "" when none applied
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  double duration_s = 0;
  const char *close = "";  // close reason (metrics.hpp)
  std::string error;       // errno name; "" when none
  std::string reason;      // ssx's explanation; "" when none
};

class Logger {
 public:
  // |dropped| counts lines that did not fit (it is also a metric). |fd| is where lines go.
  Logger(std::atomic<std::uint64_t> &dropped, LogFormat format = LogFormat::text,
         LogLevel level = LogLevel::info, size_t max_pending = 1024, int fd = STDERR_FILENO);
  ~Logger();  // writes what is queued (for at most about a second), then stops
  Logger(const Logger &) = delete;
  Logger &operator=(const Logger &) = delete;

  bool enabled(LogLevel level) const { return level >= level_; }

  // event logs |message| as event |name| at |level|. Thread-safe, never blocks on I/O.
  void event(LogLevel level, std::string_view name, const std::string &message);
  // line is event(info, "message", text): what the tunnel says about itself.
  void line(const std::string &text) { event(LogLevel::info, "message", text); }
  // repeated is event() for a message that may recur in a burst (EMFILE on every accept): per
  // |key|, at most one line every |interval|; the next one says how many were suppressed.
  void repeated(LogLevel level, const std::string &key, std::string_view name,
                const std::string &message,
                std::chrono::milliseconds interval = std::chrono::seconds(10));
  // connection logs a connection that ended ("connection" event).
  void connection(LogLevel level, const ConnectionRecord &record);

 private:
  void enqueue(std::string line);
  void run();
  std::string stamp(LogLevel level, std::string_view name, const std::string &message) const;

  std::atomic<std::uint64_t> &dropped_;
  const LogFormat format_;
  const LogLevel level_;
  const size_t max_pending_;
  const LogSink sink_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pending_;
  std::uint64_t dropped_unreported_ = 0;
  bool stopping_ = false;
  std::mutex repeat_mu_;
  struct Repeat {
    std::chrono::steady_clock::time_point last{};
    std::uint64_t suppressed = 0;
  };
  std::map<std::string, Repeat> repeats_;
  std::thread thread_;
};

// quote renders untrusted text (a certificate subject, an error message) as a double-quoted log
// value: quotes, backslashes and control characters are escaped, so a peer cannot forge lines.
std::string quote(const std::string &text);

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_LOG_HPP
