// SPDX-License-Identifier: Apache-2.0
// tunnel_fixture.hpp — `ssx tunnel` under test: the real binary run as a child process, pairs of
// tunnels (client mode -> server mode) on loopback, and the cleartext programs at both ends.
//
// A tunnel's stdout (its "listening on" lines) is read through ChildProcess; its stderr (one log
// line per connection, possibly thousands) is appended to a file, so that a test that does not
// read it can never stall the tunnel on a full pipe. Every wait is bounded; every child is killed
// (process group, SIGKILL) when its object dies, on every path out of a test.

#ifndef SSX_TESTS_INTEGRATION_TUNNEL_FIXTURE_HPP
#define SSX_TESTS_INTEGRATION_TUNNEL_FIXTURE_HPP

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "testlib/loopback.hpp"
#include "testlib/run_command.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {

using namespace std::chrono_literals;

// ssx_cli_binary is the built `ssx` (see cli_pki_test.cpp for how it is found).
std::string ssx_cli_binary();

// TunnelProcess runs `ssx tunnel ARGS` and waits until it listens.
class TunnelProcess {
 public:
  // Throws std::runtime_error (with the tunnel's output) when it does not start in time.
  TunnelProcess(const std::vector<std::string> &args, const std::string &log_path);

  // port is the (first) listening port; 0 for a tunnel listening on unix:PATH.
  std::uint16_t port() const { return port_; }
  std::uint16_t metrics_port() const { return metrics_port_; }
  pid_t pid() const { return child_.pid(); }
  const std::string &log_path() const { return log_path_; }

  // wait_for_line returns the first line of the tunnel's stdout containing |text| ("" when none
  // came within |timeout|): e.g. the second "listening on" line of a --config tunnel.
  std::string wait_for_line(const std::string &text, std::chrono::milliseconds timeout);
  // log returns the tunnel's stderr so far.
  std::string log() const;
  // wait_for_log waits until the log contains |text| |count| times.
  bool wait_for_log(const std::string &text, std::chrono::milliseconds timeout,
                    size_t count = 1) const;
  // rss_kib is VmRSS from /proc/PID/status, -1 when unreadable.
  long rss_kib() const;
  // cpu_seconds is the CPU time (user + system) the tunnel has used so far.
  double cpu_seconds() const;
  void signal(int sig) const;
  // wait_exited waits until the process has exited (a zombie: ChildProcess reaps it).
  bool wait_exited(std::chrono::milliseconds timeout) const;
  // stop kills it now (SIGKILL).
  void stop() { child_.stop(); }

 private:
  std::string log_path_;
  ChildProcess child_;
  std::uint16_t port_ = 0;
  std::uint16_t metrics_port_ = 0;
};

// lines_without returns the lines of |text| that do not contain |needle| (at most |max|).
std::string lines_without(const std::string &text, const std::string &needle, size_t max = 20);

// count_occurrences counts |needle| in |haystack|.
size_t count_occurrences(const std::string &haystack, const std::string &needle);

// Plain TCP helpers. Every socket gets SO_RCVTIMEO/SO_SNDTIMEO of |timeout| so no test blocks
// for ever.
Fd plain_connect(std::uint16_t port, std::chrono::milliseconds timeout = 20s);
void set_io_timeout(int fd, std::chrono::milliseconds timeout);
bool send_all(int fd, const void *data, size_t size);
inline bool send_all(int fd, const std::string &data) {
  return send_all(fd, data.data(), data.size());
}
// recv_until_eof reads until EOF (|*error| = 0) or an error (|*error| = errno).
std::string recv_until_eof(int fd, int *error);
// recv_exactly reads |n| bytes or fewer on EOF/error.
std::string recv_exactly(int fd, size_t n);
// accept_one accepts on a blocking plain listener with a bounded wait; -1 on timeout.
int accept_one(int listener, std::chrono::milliseconds timeout = 20s);
// abort_close closes |fd| with a TCP reset (SO_LINGER 0).
void abort_close(Fd &fd);

// http_get fetches |path| from 127.0.0.1:|port| with a raw socket; returns the whole response.
std::string http_get(std::uint16_t port, const std::string &path);
// metric returns the value of sample |name| (with labels, exactly as printed) or -1.
long long metric(const std::string &scrape, const std::string &name);

// EchoServer echoes every connection on 127.0.0.1 from an epoll thread; at a client's EOF it
// shuts its write side once everything is echoed. Handles thousands of connections.
class EchoServer {
 public:
  EchoServer();
  ~EchoServer();
  EchoServer(const EchoServer &) = delete;
  EchoServer &operator=(const EchoServer &) = delete;
  // port is the (first) listening port; 0 for a tunnel listening on unix:PATH.
  std::uint16_t port() const { return port_; }
  size_t accepted() const { return accepted_.load(); }

 private:
  void run();
  Fd listener_;
  int wake_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<size_t> accepted_{0};
  std::thread thread_;
};

// TunnelTest: a test PKI, policies for both tunnels and for the test process itself, and
// helpers to start tunnels.
//
//   server tunnel (server mode): server certificate (DNS:localhost, IP:127.0.0.1), requires a
//     client certificate; --name spiffe://ssx.test/client.
//   client tunnel (client mode): client certificate (URI spiffe://ssx.test/client), --name
//     localhost.
//   this process: trusts the test CA; inbound sockets present the server certificate, outbound
//     ones the client certificate (a stand-in for either tunnel's peer).
class TunnelTest : public ::testing::Test {
 protected:
  TunnelTest();

  // write_policy writes a tunnel policy (certificate |creds|, extra TOML) and returns its path.
  std::string write_policy(const std::string &name, const CredentialFiles &creds,
                           const std::string &extra = "");
  std::unique_ptr<TunnelProcess> start_server(std::uint16_t to_port,
                                              std::vector<std::string> extra = {});
  // start_client passes --name localhost unless |extra| has a --name of its own.
  std::unique_ptr<TunnelProcess> start_client(std::uint16_t to_port,
                                              std::vector<std::string> extra = {});
  // start_pair starts server_ (to 127.0.0.1:|backend_port|) and client_ (to server_).
  void start_pair(std::uint16_t backend_port, std::vector<std::string> server_extra = {},
                  std::vector<std::string> client_extra = {});
  // use_test_process_policy loads the policy of this process (see above).
  void use_test_process_policy();

  TestPki pki_;
  TempDir dir_;
  CredentialFiles server_creds_;
  CredentialFiles client_creds_;
  std::string server_policy_;
  std::string client_policy_;
  std::unique_ptr<TunnelProcess> server_;
  std::unique_ptr<TunnelProcess> client_;
};

}  // namespace ssx::test

#endif  // SSX_TESTS_INTEGRATION_TUNNEL_FIXTURE_HPP
