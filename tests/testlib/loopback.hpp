// SPDX-License-Identifier: Apache-2.0
// testlib/loopback.hpp — sockets, policies and peers on the loopback interface for tests.
//
// Every listener binds 127.0.0.1 (or ::1) on a port the kernel picks, so tests can run in
// parallel. Every wait is bounded.

#ifndef SSX_TESTLIB_LOOPBACK_HPP
#define SSX_TESTLIB_LOOPBACK_HPP

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "ssx/ssx.h"
#include "testlib/test_pki.hpp"

namespace ssx::test {

// Errno is errno with ssx_last_error(), for assertion messages.
std::string last_error_text();

// Fd closes a descriptor with ssx_close on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd &&other) noexcept : fd_(other.release()) {}
  Fd &operator=(Fd &&other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_;
};

// loopback_address returns 127.0.0.1:|port|.
sockaddr_in loopback_address(std::uint16_t port);

// local_port returns the port |fd| is bound to.
std::uint16_t local_port(int fd);

// plain_listener returns a plain (non-ssx) TCP listener on 127.0.0.1, any port.
Fd plain_listener(int backlog = 16);

// ssx_listener returns an ssx-secured listener on 127.0.0.1 with |flags|, any port.
Fd ssx_listener(std::uint32_t flags = SSX_GUARANTEE_ENCRYPTION, int backlog = 64);

// ssx_client_connect creates a socket, secures it with |flags| and |names| and connects it to
// 127.0.0.1:|port|. Returns the fd (>= 0), or -1 with errno and ssx_last_error() set; |out_fd|
// always receives the socket so that a test can look at it after a failure. |type| SOCK_DGRAM
// makes a UDP client (DTLS).
int ssx_client_connect(std::uint16_t port, const std::vector<std::string> &names,
                       std::uint32_t flags = SSX_GUARANTEE_ENCRYPTION, Fd *out_fd = nullptr,
                       int type = SOCK_STREAM);

// PolicyFile writes a policy into a TempDir and loads it with ssx_load_policy.
// |toml| is appended after `version = 1`.
std::string install_policy(const TempDir &dir, const std::string &toml);

// toml_quote returns |s| as a TOML basic string.
std::string toml_quote(const std::string &s);

// send_all / recv_all move exactly |data.size()| bytes through the ssx socket or fail.
bool ssx_send_all(int fd, const std::string &data);
// ssx_recv_until_eof reads until ssx_recv returns 0 (close_notify) or fails; |error| gets
// errno on failure, 0 on a clean end.
std::string ssx_recv_until_eof(int fd, int *error);

// BackgroundThread runs |body| and joins on destruction.
class BackgroundThread {
 public:
  explicit BackgroundThread(std::function<void()> body) : thread_(std::move(body)) {}
  ~BackgroundThread() {
    if (thread_.joinable()) thread_.join();
  }
  void join() { thread_.join(); }

 private:
  std::thread thread_;
};

}  // namespace ssx::test

#endif  // SSX_TESTLIB_LOOPBACK_HPP
