// SPDX-License-Identifier: Apache-2.0
#include "log.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace ssx::cli::tunnel {
namespace {

using SteadyClock = std::chrono::steady_clock;

// How long the writer waits for standard error to accept a line before it looks at the queue
// again, and how long it may go on writing after the tunnel has stopped.
constexpr auto kWriteWait = std::chrono::milliseconds(100);
constexpr auto kFinalFlush = std::chrono::seconds(1);

constexpr size_t kMaxRepeatKeys = 256;

// json_text escapes invalid UTF-8 rather than throwing: messages carry peer-controlled text.
std::string json_text(const nlohmann::ordered_json &object) {
  return object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

nlohmann::ordered_json or_null(const std::string &text) {
  return text.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(text);
}

}  // namespace

bool parse_log_level(std::string_view text, LogLevel &out) {
  static constexpr std::pair<std::string_view, LogLevel> kLevels[] = {
      {"debug", LogLevel::debug},
      {"info", LogLevel::info},
      {"warning", LogLevel::warning},
      {"error", LogLevel::error}};
  for (const auto &[name, level] : kLevels) {
    if (text == name) {
      out = level;
      return true;
    }
  }
  return false;
}

bool parse_log_format(std::string_view text, LogFormat &out) {
  if (text == "text") {
    out = LogFormat::text;
  } else if (text == "json") {
    out = LogFormat::json;
  } else {
    return false;
  }
  return true;
}

const char *log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    default:
      return "error";
  }
}

Logger::Logger(std::atomic<std::uint64_t> &dropped, LogFormat format, LogLevel level,
               size_t max_pending, int fd)
    : dropped_(dropped),
      format_(format),
      level_(level),
      max_pending_(max_pending),
      sink_(fd),
      thread_([this] { run(); }) {}

Logger::~Logger() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

std::string Logger::stamp(LogLevel level, std::string_view name, const std::string &message) const {
  if (format_ == LogFormat::json) {
    nlohmann::ordered_json o;
    o["time"] = rfc3339_now();
    o["level"] = log_level_name(level);
    o["event"] = name;
    o["message"] = message;
    return json_text(o);
  }
  std::string out = rfc3339_now() + " ssx tunnel: ";
  if (level >= LogLevel::warning) {
    out += log_level_name(level);
    out += ": ";
  }
  return out + message + "\n";
}

void Logger::event(LogLevel level, std::string_view name, const std::string &message) {
  if (!enabled(level)) return;
  enqueue(stamp(level, name, message));
}

void Logger::repeated(LogLevel level, const std::string &key, std::string_view name,
                      const std::string &message, std::chrono::milliseconds interval) {
  if (!enabled(level)) return;
  std::uint64_t suppressed = 0;
  {
    std::lock_guard lock(repeat_mu_);
    const auto now = SteadyClock::now();
    auto it = repeats_.find(key);
    if (it == repeats_.end()) {
      if (repeats_.size() >= kMaxRepeatKeys) repeats_.clear();  // bounded; forgets old keys
      it = repeats_.emplace(key, Repeat{}).first;
    } else if (now - it->second.last < interval) {
      ++it->second.suppressed;
      return;
    }
    suppressed = it->second.suppressed;
    it->second.suppressed = 0;
    it->second.last = now;
  }
  std::string text = message;
  if (suppressed > 0) {
    text += " (" + std::to_string(suppressed) + " more like this in the last " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(interval).count()) +
            " s not logged)";
  }
  event(level, name, text);
}

void Logger::connection(LogLevel level, const ConnectionRecord &r) {
  if (!enabled(level)) return;
  char duration[32];
  (void)std::snprintf(duration, sizeof duration, "%.3f", r.duration_s);
  if (format_ == LogFormat::json) {
    nlohmann::ordered_json o;
    o["time"] = rfc3339_now();
    o["level"] = log_level_name(level);
    o["event"] = "connection";
    o["conn"] = r.id;
    if (!r.tunnel.empty()) o["tunnel"] = r.tunnel;
    o["peer_address"] = r.peer_address;
    o["principal"] = or_null(r.principal);
    o["rule"] = or_null(r.rule);
    o["bytes_in"] = r.bytes_in;
    o["bytes_out"] = r.bytes_out;
    o["duration_s"] = std::stod(duration);
    o["close"] = r.close;
    o["error"] = or_null(r.error);
    o["reason"] = or_null(r.reason);
    enqueue(json_text(o));
    return;
  }
  std::string text =
      rfc3339_now() + " ssx tunnel: conn=" + std::to_string(r.id) +
      (r.tunnel.empty() ? std::string() : " tunnel=" + r.tunnel) + " client=" + r.peer_address +
      " peer=" + (r.principal.empty() ? "-" : quote(r.principal)) +
      " rule=" + (r.rule.empty() ? "-" : quote(r.rule)) + " in=" + std::to_string(r.bytes_in) +
      " out=" + std::to_string(r.bytes_out) + " duration=" + duration + "s close=" + r.close;
  if (!r.error.empty()) text += " error=" + r.error;
  if (!r.reason.empty()) text += " reason=" + quote(r.reason);
  text += '\n';
  enqueue(std::move(text));
}

void Logger::enqueue(std::string line) {
  {
    std::lock_guard lock(mu_);
    if (pending_.size() >= max_pending_) {
      ++dropped_unreported_;
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending_.push_back(std::move(line));
  }
  cv_.notify_one();
}

void Logger::run() {
  std::vector<std::string> batch;
  size_t next = 0;  // first line of |batch| not yet written
  std::uint64_t dropped_note = 0;
  SteadyClock::time_point give_up{};
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      if (next >= batch.size()) {
        batch.clear();
        next = 0;
        cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
        batch.swap(pending_);
      }
      dropped_note += dropped_unreported_;
      dropped_unreported_ = 0;
      stopping = stopping_;
    }
    if (stopping && give_up == SteadyClock::time_point{})
      give_up = SteadyClock::now() + kFinalFlush;
    bool blocked = false;
    if (dropped_note > 0) {
      const std::string note = stamp(
          LogLevel::warning, "log_lines_dropped",
          std::to_string(dropped_note) + " log lines dropped: standard error is not keeping up");
      const auto outcome = sink_.try_write(note);
      if (outcome == LogSink::Outcome::would_block) {
        blocked = true;
      } else {
        dropped_note = 0;
      }
    }
    while (!blocked && next < batch.size()) {
      const auto outcome = sink_.try_write(batch[next]);
      if (outcome == LogSink::Outcome::would_block) {
        blocked = true;
      } else {
        ++next;  // written, or failed for good (a closed stderr must not stop the tunnel)
      }
    }
    if (!blocked) {
      if (stopping) {
        std::lock_guard lock(mu_);
        if (pending_.empty()) return;
      }
      continue;
    }
    if (stopping && SteadyClock::now() >= give_up) {
      // Nobody reads standard error: what is left is dropped, and the process may exit.
      std::lock_guard lock(mu_);
      dropped_.fetch_add(batch.size() - next + pending_.size(), std::memory_order_relaxed);
      return;
    }
    // Lines keep queueing (up to max_pending_) while this waits for the reader.
    (void)sink_.wait_writable(kWriteWait);
  }
}

std::string quote(const std::string &text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

}  // namespace ssx::cli::tunnel
