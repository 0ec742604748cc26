// SPDX-License-Identifier: Apache-2.0
// bench/plain_bench.cpp — the plaintext TCP baseline (W2, W5): the same loops with read(2) and
// write(2) on blocking sockets, no security at all. The ceiling of what loopback can carry.

#include <unistd.h>

#include "workloads.hpp"

namespace {

struct Plain {
  struct Conn {
    int fd = -1;
  };
  static constexpr bool kTls = false;
  static const char *name() { return "plain"; }
  static bool valid(const Conn &c) { return c.fd >= 0; }
  static int fd(const Conn &c) { return c.fd; }

  int listen() { return bench::plain_listener(); }
  Conn accept(int listener) { return Conn{::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)}; }
  Conn connect(std::uint16_t port) { return Conn{bench::plain_connect(port)}; }

  void write_all(Conn &c, const void *data, std::size_t n) {
    const auto *p = static_cast<const unsigned char *>(data);
    while (n > 0) {
      ssize_t w = ::send(c.fd, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) bench::die_errno("write");
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  std::size_t read_some(Conn &c, void *buf, std::size_t n) {
    for (;;) {
      ssize_t r = ::read(c.fd, buf, n);
      if (r >= 0) return static_cast<std::size_t>(r);
      if (errno != EINTR) bench::die_errno("read");
    }
  }
  void wait_idle(Conn &c) {
    char byte = 0;
    if (::recv(c.fd, &byte, 1, MSG_DONTWAIT) >= 0 || errno != EAGAIN) bench::die("idle: not idle");
  }
  void finish(Conn &c) { ::shutdown(c.fd, SHUT_WR); }
  void close(Conn &c) {
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
  }
  void close_listener(int fd) { ::close(fd); }
  bool resumed(Conn &) { return false; }
  void after_read(Conn &) {}
  std::pair<std::string, std::string> negotiated(Conn &) { return {"none", "none"}; }
};

}  // namespace

int main(int argc, char **argv) {
  bench::Options options(argc, argv);
  Plain impl;
  return bench::run(impl, options);
}
