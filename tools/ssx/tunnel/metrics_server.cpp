// SPDX-License-Identifier: Apache-2.0
#include "metrics_server.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace ssx::cli::tunnel {
namespace {

constexpr size_t kMaxClients = 32;
constexpr size_t kMaxRequest = 8192;
constexpr auto kClientTime = std::chrono::seconds(5);

std::string http_response(const char *status, const std::string &body) {
  return std::string("HTTP/1.1 ") + status +
         "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

MetricsServer::MetricsServer(int epoll_fd, int listen_fd, const Metrics &metrics,
                             const std::atomic<bool> &stopping)
    : epoll_fd_(epoll_fd), listen_fd_(listen_fd), metrics_(metrics), stopping_(stopping) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &listener_tag_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
}

MetricsServer::~MetricsServer() {
  while (!clients_.empty()) drop(clients_.begin());
  ::close(listen_fd_);
}

void MetricsServer::drop(std::list<Client>::iterator it) {
  ::close(it->fd);  // also leaves the epoll set
  clients_.erase(it);
}

void MetricsServer::accept_clients() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a failure the next readiness retries
    if (clients_.size() >= kMaxClients) {
      ::close(fd);
      continue;
    }
    clients_.push_back(Client{fd, {}, {}, 0, std::chrono::steady_clock::now() + kClientTime});
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &clients_.back();
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0 || !serve(clients_.back())) {
      drop(std::prev(clients_.end()));
    }
  }
}

std::string MetricsServer::respond(const std::string &request) const {
  size_t line_end = request.find("\r\n");
  std::string line = request.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) {
    return http_response("400 Bad Request", "bad request\n");
  }
  std::string method = line.substr(0, sp1);
  std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (method != "GET" && method != "HEAD") {
    return http_response("405 Method Not Allowed", "only GET\n");
  }
  std::string response;
  if (path == "/healthz") {
    response = http_response("200 OK", "ok\n");
  } else if (path == "/readyz") {
    response = stopping_.load(std::memory_order_acquire)
                   ? http_response("503 Service Unavailable", "draining\n")
                   : http_response("200 OK", "ready\n");
  } else if (path == "/metrics" || path == "/") {
    response = http_response("200 OK", metrics_.render());
  } else {
    return http_response("404 Not Found", "try /metrics, /healthz or /readyz\n");
  }
  if (method == "HEAD") response.resize(response.find("\r\n\r\n") + 4);
  return response;
}

bool MetricsServer::serve(Client &c) {
  if (c.response.empty()) {
    char buf[2048];
    for (;;) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.request.append(buf, static_cast<size_t>(n));
        if (c.request.size() > kMaxRequest) return false;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      // End of stream or error: answer what came, if it is a whole request line.
      break;
    }
    if (c.request.find("\r\n\r\n") == std::string::npos &&
        c.request.find("\n\n") == std::string::npos) {
      return true;  // wait for the rest
    }
    c.response = respond(c.request);
  }
  while (c.sent < c.response.size()) {
    ssize_t n = ::send(c.fd, c.response.data() + c.sent, c.response.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  ::shutdown(c.fd, SHUT_WR);
  return false;
}

bool MetricsServer::handle(void *tag, unsigned events) {
  if (tag == &listener_tag_) {
    accept_clients();
    return true;
  }
  for (auto it = clients_.begin(); it != clients_.end(); ++it) {
    if (&*it != tag) continue;
    if ((events & EPOLLERR) != 0 || !serve(*it)) drop(it);
    return true;
  }
  return false;
}

void MetricsServer::expire() {
  auto now = std::chrono::steady_clock::now();
  for (auto it = clients_.begin(); it != clients_.end();) {
    auto next = std::next(it);
    if (now >= it->deadline) drop(it);
    it = next;
  }
}

}  // namespace ssx::cli::tunnel
