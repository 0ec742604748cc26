// SPDX-License-Identifier: Apache-2.0
#include "tunnel_fixture.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "ssx/ssx.h"

namespace ssx::test {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> shell_argv(const std::vector<std::string> &args,
                                    const std::string &log_path) {
  // exec keeps the pid: ChildProcess's pid is the tunnel's own.
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>>'" + log_path + "'",
                                   ssx_cli_binary(), "tunnel"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::uint16_t port_after(const std::string &line, const std::string &marker) {
  size_t at = line.find(marker);
  if (at == std::string::npos) return 0;
  size_t colon = line.find(':', at + marker.size());
  if (colon == std::string::npos) return 0;
  return static_cast<std::uint16_t>(std::atoi(line.c_str() + colon + 1));
}

}  // namespace

std::string ssx_cli_binary() {
  const char *bin_dir = std::getenv("SSX_TEST_BIN_DIR");
  if (bin_dir != nullptr && *bin_dir != '\0') return std::string(bin_dir) + "/tools/ssx/ssx";
  char self[4096] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string exe(self, n > 0 ? static_cast<size_t>(n) : 0);
  return exe.substr(0, exe.rfind('/')) + "/../tools/ssx/ssx";
}

TunnelProcess::TunnelProcess(const std::vector<std::string> &args, const std::string &log_path)
    : log_path_(log_path), child_(shell_argv(args, log_path)) {
  std::string line = child_.wait_for_line("ssx tunnel: listening on ", 15s);
  port_ = port_after(line, "listening on ");
  if (std::find(args.begin(), args.end(), "--metrics") != args.end()) {
    std::string metrics = child_.wait_for_line("ssx tunnel: metrics on ", 5s);
    metrics_port_ = port_after(metrics, "http://127.0.0.1");
  }
  // A tunnel listening on unix:PATH has no port.
  const bool unix_listener = line.find("listening on unix:") != std::string::npos;
  if ((port_ == 0 && !unix_listener) || !child_.wait_for_line("ssx tunnel: policy ", 5s).size()) {
    child_.stop();
    throw std::runtime_error("ssx tunnel did not start:\n" + child_.output() + "\nstderr:\n" +
                             log());
  }
}

std::string TunnelProcess::wait_for_line(const std::string &text,
                                         std::chrono::milliseconds timeout) {
  return child_.wait_for_line(text, timeout);
}

std::string TunnelProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string lines_without(const std::string &text, const std::string &needle, size_t max) {
  std::istringstream lines(text);
  std::string line, out;
  for (size_t n = 0; n < max && std::getline(lines, line);) {
    if (line.find(needle) != std::string::npos) continue;
    out += line + "\n";
    ++n;
  }
  return out;
}

size_t count_occurrences(const std::string &haystack, const std::string &needle) {
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

bool TunnelProcess::wait_for_log(const std::string &text, std::chrono::milliseconds timeout,
                                 size_t count) const {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (count_occurrences(log(), text) >= count) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);  // poll interval: a log file has no event to wait on
  }
}

long TunnelProcess::rss_kib() const {
  std::ifstream in("/proc/" + std::to_string(pid()) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

double TunnelProcess::cpu_seconds() const {
  std::ifstream in("/proc/" + std::to_string(pid()) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

void TunnelProcess::signal(int sig) const {
  ::kill(pid(), sig);
}

bool TunnelProcess::wait_exited(std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    std::ifstream in("/proc/" + std::to_string(pid()) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = stat.rfind(')');
    if (stat.empty() || (paren != std::string::npos && paren + 2 < stat.size() &&
                         (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X'))) {
      return true;
    }
    std::this_thread::sleep_for(20ms);  // poll interval of a bounded wait for the exit
  }
  return false;
}

void set_io_timeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Fd plain_connect(std::uint16_t port, std::chrono::milliseconds timeout) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  set_io_timeout(fd.get(), timeout);
  sockaddr_in a = loopback_address(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    throw std::runtime_error("connect to port " + std::to_string(port) + ": " +
                             std::strerror(errno));
  }
  return fd;
}

bool send_all(int fd, const void *data, size_t size) {
  const char *p = static_cast<const char *>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::send(fd, p + done, size - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string recv_until_eof(int fd, int *error) {
  std::string out;
  char buf[16384];
  *error = 0;
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = errno;
      return out;
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string recv_exactly(int fd, size_t size) {
  std::string out(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::recv(fd, out.data() + got, size - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

int accept_one(int listener, std::chrono::milliseconds timeout) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
  int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) set_io_timeout(fd, 20s);
  return fd;
}

void abort_close(Fd &fd) {
  linger hard{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  ::close(fd.release());
}

std::string http_get(std::uint16_t port, const std::string &path) {
  Fd fd = plain_connect(port, 5s);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (!send_all(fd.get(), request)) return {};
  int error = 0;
  return recv_until_eof(fd.get(), &error);
}

long long metric(const std::string &scrape, const std::string &name) {
  std::istringstream lines(scrape);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ' ') {
      return std::atoll(line.c_str() + name.size() + 1);
    }
  }
  return -1;
}

EchoServer::EchoServer() : listener_(plain_listener(4096)) {
  port_ = local_port(listener_.get());
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { run(); });
}

EchoServer::~EchoServer() {
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  thread_.join();
  ::close(wake_fd_);
}

void EchoServer::run() {
  struct Conn {
    int fd;
    std::string pending;
    bool eof = false;
  };
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  ::fcntl(listener_.get(), F_SETFL, O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener_.get();
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listener_.get(), &ev);
  ev.data.fd = wake_fd_;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd_, &ev);
  std::unordered_map<int, Conn> conns;
  auto finish = [&](int fd) {
    ::close(fd);
    conns.erase(fd);
  };
  auto flush = [&](Conn &c) {
    while (!c.pending.empty()) {
      ssize_t n = ::send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
      if (n <= 0) return n < 0 && errno == EAGAIN;
      c.pending.erase(0, static_cast<size_t>(n));
    }
    if (c.eof) ::shutdown(c.fd, SHUT_WR);
    return true;
  };
  bool running = true;
  epoll_event events[256];
  while (running) {
    int n = ::epoll_wait(ep, events, 256, 1000);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        running = false;
        continue;
      }
      if (fd == listener_.get()) {
        while (true) {
          int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          ++accepted_;
          conns[c] = Conn{c, {}, false};
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLOUT | EPOLLET;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn &c = it->second;
      bool ok = true;
      char buf[16384];
      while (!c.eof && c.pending.size() < (1u << 20)) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
          c.pending.append(buf, static_cast<size_t>(r));
          if (!flush(c)) ok = false;
          continue;
        }
        if (r == 0) c.eof = true;
        if (r < 0 && errno != EAGAIN) ok = false;
        break;
      }
      if (ok) ok = flush(c);
      // Done: echoed everything after the client's EOF, or failed. A client that closes
      // after reading its echo leaves us with EOF; the connection ends there.
      if (!ok || (c.eof && c.pending.empty())) finish(fd);
    }
  }
  for (auto &[fd, c] : conns) ::close(fd);
  ::close(ep);
}

TunnelTest::TunnelTest() : server_creds_(pki_.server()), client_creds_(pki_.client()) {
  server_policy_ =
      write_policy("server-tunnel", server_creds_, "peer_authentication = \"required\"\n");
  client_policy_ = write_policy("client-tunnel", client_creds_);
}

std::string TunnelTest::write_policy(const std::string &name, const CredentialFiles &creds,
                                     const std::string &extra) {
  std::string path = dir_.file(name + ".toml");
  write_text(path, "version = 1\n[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) +
                       "\ncertificate = " + toml_quote(creds.cert) +
                       "\nprivate_key = " + toml_quote(creds.key) + "\n" + extra);
  return path;
}

std::unique_ptr<TunnelProcess> TunnelTest::start_server(std::uint16_t to_port,
                                                        std::vector<std::string> extra) {
  std::vector<std::string> args = {"--policy", server_policy_,
                                   "--mode",   "server",
                                   "--listen", "127.0.0.1:0",
                                   "--to",     "127.0.0.1:" + std::to_string(to_port),
                                   "--name",   "spiffe://ssx.test/client"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<TunnelProcess>(args, dir_.file("server-tunnel.log"));
}

std::unique_ptr<TunnelProcess> TunnelTest::start_client(std::uint16_t to_port,
                                                        std::vector<std::string> extra) {
  std::vector<std::string> args = {
      "--policy", client_policy_, "--mode", "client",
      "--listen", "127.0.0.1:0",  "--to",   "127.0.0.1:" + std::to_string(to_port)};
  // --name localhost unless the test names the server itself.
  if (std::find(extra.begin(), extra.end(), "--name") == extra.end()) {
    extra.insert(extra.end(), {"--name", "localhost"});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<TunnelProcess>(args, dir_.file("client-tunnel.log"));
}

void TunnelTest::start_pair(std::uint16_t backend_port, std::vector<std::string> server_extra,
                            std::vector<std::string> client_extra) {
  server_ = start_server(backend_port, std::move(server_extra));
  client_ = start_client(server_->port(), std::move(client_extra));
}

void TunnelTest::use_test_process_policy() {
  std::string toml = "[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) + "\n";
  toml += "[[rule]]\nname = \"as-server\"\ndirection = \"inbound\"\ncertificate = " +
          toml_quote(server_creds_.cert) + "\nprivate_key = " + toml_quote(server_creds_.key) +
          "\n";
  toml += "[[rule]]\nname = \"as-client\"\ndirection = \"outbound\"\ncertificate = " +
          toml_quote(client_creds_.cert) + "\nprivate_key = " + toml_quote(client_creds_.key) +
          "\n";
  install_policy(dir_, toml);
}

}  // namespace ssx::test
