// SPDX-License-Identifier: Apache-2.0
#include "log_sink.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <ctime>

namespace ssx::cli {
namespace {

// fit cuts |line| to one atomic write (PIPE_BUF), keeping its newline.
std::string_view fit(std::string_view line, std::string &scratch) {
  if (line.size() <= PIPE_BUF) return line;
  scratch.assign(line.substr(0, PIPE_BUF - 4));
  scratch += "...\n";
  return scratch;
}

}  // namespace

LogSink::LogSink(int fd) : fd_(fd), kind_(Kind::file) {
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    if (S_ISSOCK(st.st_mode)) {
      kind_ = Kind::socket;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
      kind_ = Kind::pipe_like;
    }
  }
}

LogSink::Outcome LogSink::try_write(std::string_view line) const {
  std::string scratch;
  line = fit(line, scratch);
  if (kind_ == Kind::pipe_like) {
    pollfd p{fd_, POLLOUT, 0};
    int ready;
    do {
      ready = ::poll(&p, 1, 0);
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) return Outcome::would_block;
    if (ready < 0 || (p.revents & (POLLERR | POLLNVAL)) != 0) return Outcome::failed;
  }
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = kind_ == Kind::socket ? ::send(fd_, line.data() + done, line.size() - done,
                                               MSG_DONTWAIT | MSG_NOSIGNAL)
                                      : ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Only a socket gets here. Part of the line may be out; the rest is dropped with it.
      return done == 0 ? Outcome::would_block : Outcome::failed;
    }
    if (n <= 0) return Outcome::failed;
    done += static_cast<size_t>(n);
  }
  return Outcome::written;
}

bool LogSink::wait_writable(std::chrono::milliseconds timeout) const {
  if (kind_ == Kind::file) return true;
  pollfd p{fd_, POLLOUT, 0};
  int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  return ready > 0 && (p.revents & POLLOUT) != 0;
}

std::string rfc3339_now() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  struct tm utc {};
  ::gmtime_r(&now.tv_sec, &utc);
  char text[96];
  (void)std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                      utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                      static_cast<long>(now.tv_nsec / 1000000) % 1000);
  return text;
}

void StderrLog::line(const std::string &text) {
  emit("ssx: " + text + "\n");
}

void StderrLog::raw(const std::string &text) {
  emit(text);
}

void StderrLog::emit(const std::string &whole) {
  if (dropped_unreported_ > 0) {
    const std::string note = "ssx: " + std::to_string(dropped_unreported_) +
                             " log lines dropped: standard error is not being read\n";
    if (sink_.try_write(note) != LogSink::Outcome::written) {
      ++dropped_unreported_;
      ++dropped_total_;
      return;
    }
    dropped_unreported_ = 0;
  }
  if (sink_.try_write(whole) != LogSink::Outcome::written) {
    ++dropped_unreported_;
    ++dropped_total_;
  }
}

}  // namespace ssx::cli
