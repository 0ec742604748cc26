// SPDX-License-Identifier: Apache-2.0
#include "relay.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "next_wait.hpp"
#include "ssx/ssx.h"

namespace ssx::cli {
namespace {

// A TLS record carries at most 16 KiB; reading that much at a time keeps records full.
constexpr size_t kBufferSize = 16384;

bool is_socket(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

std::string peer_error(const char *what) {
  return std::string(what) + ": " + ssx_last_error();
}

}  // namespace

Relay::Relay(int sock, Local local, OnOutputClosed on_output_closed)
    : sock_(sock), local_(std::move(local)), on_output_closed_(on_output_closed) {
  int flags = fcntl(sock_, F_GETFL);
  if (flags >= 0) (void)fcntl(sock_, F_SETFL, flags | O_NONBLOCK);
  out_is_socket_ = is_socket(local_.out);
  up_.data.resize(kBufferSize);
  down_.data.resize(kBufferSize);
  in_ready_ = local_.nonblocking;
  out_ready_ = local_.nonblocking;
}

void Relay::fail(const std::string &message) {
  if (error_.empty()) error_ = message;
}

bool Relay::done() const {
  if (!error_.empty()) return true;
  return write_shut_ && (out_shut_ || out_closed_);
}

void Relay::output_gone() {
  out_closed_ = true;
  down_.clear();
}

bool Relay::read_input() {
  if (in_eof_ || up_.pending() || !in_ready_) return false;
  if (!local_.nonblocking) in_ready_ = false;  // one read per readiness: it cannot block
  ssize_t n = read(local_.in, up_.data.data(), up_.data.size());
  if (n > 0) {
    up_.begin = 0;
    up_.end = static_cast<size_t>(n);
    return true;
  }
  if (n == 0) {
    in_eof_ = true;
    return true;
  }
  if (errno == EINTR) {
    in_ready_ = true;
    return true;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    in_ready_ = false;
    return false;
  }
  if (errno == ECONNRESET || errno == EBADF) {  // a child's socket reset; no stdin at all
    in_eof_ = true;
    return true;
  }
  fail("cannot read " + local_.in_name + ": " + std::strerror(errno));
  return false;
}

bool Relay::send_to_peer() {
  if (!up_.pending() || !sock_send_ready_) return false;
  // After EAGAIN the same bytes are offered again, from the same start, as ssx_send requires.
  ssize_t n = ssx_send(sock_, up_.data.data() + up_.begin, up_.end - up_.begin, 0);
  if (n >= 0) {
    up_.begin += static_cast<size_t>(n);
    bytes_sent_ += static_cast<std::uint64_t>(n);
    if (!up_.pending()) up_.clear();
    return n > 0;
  }
  if (errno == EINTR) return true;
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    sock_send_ready_ = false;
    send_wants_ = next_wait(sock_, POLLOUT).events;
    return false;
  }
  fail(peer_error("cannot send to the peer"));
  return false;
}

bool Relay::shut_peer_write() {
  if (!in_eof_ || up_.pending() || write_shut_ || !sock_send_ready_ || hold_end_) return false;
  if (ssx_shutdown(sock_, SHUT_WR) == 0) {
    write_shut_ = true;
    return true;
  }
  if (errno == EINTR) return true;
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    sock_send_ready_ = false;
    send_wants_ = POLLOUT;  // close_notify is a write
    return false;
  }
  if (peer_eof_) {
    // The peer has already ended its side and closed the connection: nothing of ours was left
    // unsent, so there is nobody to tell and nothing lost.
    write_shut_ = true;
    return true;
  }
  fail(peer_error("cannot end the connection (close_notify)"));
  return false;
}

bool Relay::receive_from_peer() {
  if (peer_eof_ || down_.pending() || !sock_recv_ready_) return false;
  ssize_t n = ssx_recv(sock_, down_.data.data(), down_.data.size(), 0);
  if (n > 0) {
    bytes_received_ += static_cast<std::uint64_t>(n);
    if (!out_closed_) {
      down_.begin = 0;
      down_.end = static_cast<size_t>(n);
    }
    return true;
  }
  if (n == 0) {
    peer_eof_ = true;
    return true;
  }
  if (errno == EINTR) return true;
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    sock_recv_ready_ = false;
    // After EAGAIN nothing is held for reading (ssx_recv would have returned it).
    recv_wants_ = next_wait(sock_, POLLIN).events;
    return false;
  }
  fail(peer_error("connection failed"));
  return false;
}

bool Relay::write_output() {
  if (!down_.pending() || !out_ready_ || out_closed_) return false;
  size_t length = down_.end - down_.begin;
  // A pipe that polled writable has room for PIPE_BUF bytes: a larger blocking write might wait.
  if (!local_.nonblocking) {
    length = std::min<size_t>(length, PIPE_BUF);
    out_ready_ = false;
  }
  const char *start = down_.data.data() + down_.begin;
  ssize_t n = out_is_socket_ ? send(local_.out, start, length, MSG_NOSIGNAL)
                             : write(local_.out, start, length);
  if (n >= 0) {
    down_.begin += static_cast<size_t>(n);
    if (!down_.pending()) down_.clear();
    return n > 0;
  }
  if (errno == EINTR) {
    out_ready_ = true;
    return true;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    out_ready_ = false;
    return false;
  }
  if ((errno == EPIPE || errno == ECONNRESET) && on_output_closed_ == OnOutputClosed::discard) {
    output_gone();
    return true;
  }
  if (errno == EPIPE) output_reader_gone_ = true;
  fail("cannot write " + local_.out_name + ": " + std::strerror(errno));
  return false;
}

bool Relay::finish_output() {
  if (!peer_eof_ || down_.pending() || out_shut_) return false;
  out_shut_ = true;
  // A socket output (a child's socketpair) learns of the end at once; a terminal, pipe or file
  // that is standard output is shared with others and stays open until we exit.
  if (out_is_socket_ && !out_closed_) (void)shutdown(local_.out, SHUT_WR);
  return true;
}

void Relay::pump() {
  bool progress = true;
  while (progress && error_.empty()) {
    progress = false;
    progress |= read_input();
    progress |= send_to_peer();
    progress |= shut_peer_write();
    progress |= receive_from_peer();
    progress |= write_output();
    progress |= finish_output();
  }
}

void Relay::add_pollfds(std::vector<pollfd> &fds) {
  in_index_ = out_index_ = sock_index_ = -1;
  if (done()) return;
  auto add = [&fds](int fd, short events) {
    fds.push_back(pollfd{fd, events, 0});
    return static_cast<int>(fds.size() - 1);
  };
  if (!in_eof_ && !up_.pending() && !in_ready_) in_index_ = add(local_.in, POLLIN);
  if (down_.pending() && !out_ready_ && !out_closed_) out_index_ = add(local_.out, POLLOUT);
  short events = 0;
  if (!peer_eof_ && !down_.pending() && !sock_recv_ready_) events |= recv_wants_;
  if (!sock_send_ready_ && (up_.pending() || (in_eof_ && !write_shut_ && !hold_end_))) {
    events |= send_wants_;
  }
  if (events != 0) sock_index_ = add(sock_, events);
}

void Relay::handle(const std::vector<pollfd> &fds) {
  auto ready = [&fds](int index) {
    return index >= 0 && static_cast<size_t>(index) < fds.size() && fds[index].revents != 0;
  };
  if (ready(in_index_)) in_ready_ = true;
  if (ready(out_index_)) out_ready_ = true;
  if (ready(sock_index_)) {
    // Whatever the socket reported, both directions may try again: a call that still cannot
    // proceed just says EAGAIN.
    sock_recv_ready_ = true;
    sock_send_ready_ = true;
  }
  pump();
}

void ensure_standard_descriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    // open returns the lowest free descriptor: this one.
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0 && null_fd != fd) (void)close(null_fd);
  }
}

std::string run_relay(Relay &relay) {
  std::vector<pollfd> fds;
  relay.pump();
  while (!relay.done()) {
    fds.clear();
    relay.add_pollfds(fds);
    if (fds.empty()) return "internal error: the relay waits for nothing";
    int n = poll(fds.data(), fds.size(), -1);
    if (n < 0 && errno != EINTR) return std::string("poll: ") + std::strerror(errno);
    if (n > 0) relay.handle(fds);
  }
  return relay.error();
}

}  // namespace ssx::cli
