// SPDX-License-Identifier: Apache-2.0
#include "testlib/loopback.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ssx::test {

std::string last_error_text() {
  return std::string(std::strerror(errno)) + " — " + ssx_last_error();
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ssx_close(fd_);
  fd_ = fd;
}

sockaddr_in loopback_address(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

std::uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0) {
    throw std::runtime_error("getsockname failed");
  }
  return ntohs(a.sin_port);
}

namespace {
Fd bind_listen(int fd, int backlog) {
  Fd owned(fd);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback_address(0);
  if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0) {
    throw std::runtime_error(std::string("bind/listen: ") + std::strerror(errno));
  }
  return owned;
}
}  // namespace

Fd plain_listener(int backlog) {
  return bind_listen(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), backlog);
}

Fd ssx_listener(std::uint32_t flags, int backlog) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ssx_security_settings s{SSX_PROTOCOL_DEFAULT, flags};
  if (ssx_set_socket_security(fd, &s, sizeof s) != 0) {
    throw std::runtime_error("ssx_set_socket_security: " + last_error_text());
  }
  return bind_listen(fd, backlog);
}

int ssx_client_connect(std::uint16_t port, const std::vector<std::string> &names,
                       std::uint32_t flags, Fd *out_fd, int type) {
  Fd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  ssx_security_settings s{SSX_PROTOCOL_DEFAULT, flags};
  if (ssx_set_socket_security(fd.get(), &s, sizeof s) != 0) return -1;
  for (const auto &n : names) {
    if (ssx_set_socket_peer_target_name(fd.get(), n.c_str(), nullptr, 0) != 0) return -1;
  }
  sockaddr_in a = loopback_address(port);
  int rc = ssx_connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a);
  int saved = errno;
  int raw = fd.get();
  if (out_fd != nullptr) *out_fd = std::move(fd);
  errno = saved;
  if (rc != 0) return -1;
  return out_fd != nullptr ? raw : fd.release();
}

std::string toml_quote(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string install_policy(const TempDir &dir, const std::string &toml) {
  static int counter = 0;
  std::string path = dir.file("policy-" + std::to_string(++counter) + ".toml");
  write_text(path, "version = 1\n" + toml);
  if (ssx_load_policy(path.c_str()) != 0) {
    throw std::runtime_error("ssx_load_policy(" + path + "): " + last_error_text());
  }
  return path;
}

bool ssx_send_all(int fd, const std::string &data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ssx_send(fd, data.data() + done, data.size() - done, 0);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string ssx_recv_until_eof(int fd, int *error) {
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ssx_recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      *error = 0;
      return out;
    }
    if (n < 0) {
      *error = errno;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace ssx::test
