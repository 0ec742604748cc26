#include "log.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ssx::cli::tunnel {

Logger::Logger(std::atomic<std::uint64_t> &dropped, size_t max_pending)
    : dropped_(dropped), max_pending_(max_pending), thread_([this] { run(); }) {}

Logger::~Logger() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void Logger::line(const std::string &text) {
  {
    std::lock_guard lock(mu_);
    if (pending_.size() >= max_pending_) {
      ++dropped_unreported_;
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending_.push_back("ssx tunnel: " + text + "\n");
  }
  cv_.notify_one();
}

namespace {

// write_all writes |data| to stderr; gives up on an error other than EINTR (a closed stderr
// must not take the tunnel down).
void write_all(const std::string &data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(STDERR_FILENO, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

void Logger::run() {
  std::vector<std::string> batch;
  std::string chunk;
  for (;;) {
    std::uint64_t dropped = 0;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      batch.swap(pending_);
      dropped = dropped_unreported_;
      dropped_unreported_ = 0;
      stopping = stopping_;
    }
    chunk.clear();
    if (dropped > 0) {
      chunk += "ssx tunnel: " + std::to_string(dropped) +
               " log lines dropped: stderr is not keeping up\n";
    }
    for (auto &l : batch) {
      chunk += l;
      if (chunk.size() >= size_t{64} * 1024) {
        write_all(chunk);
        chunk.clear();
      }
    }
    batch.clear();
    if (!chunk.empty()) write_all(chunk);
    if (stopping) {
      std::lock_guard lock(mu_);
      if (pending_.empty()) return;
    }
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
