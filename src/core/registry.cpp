// SPDX-License-Identifier: Apache-2.0
#include "core/registry.hpp"

#include <sys/stat.h>

#include <shared_mutex>
#include <vector>

namespace ssx::core {
namespace {

// Indexed by fd number: lookups on the data path are a shared lock and an array index.
struct Table {
  std::shared_mutex mu;
  std::vector<std::shared_ptr<SecureSocket>> by_fd;
};

Table &table() {
  static Table t;
  return t;
}

bool same_socket(int fd, const SecureSocket &socket) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_ino == socket.identity() && st.st_dev == socket.device();
}

}  // namespace

std::shared_ptr<SecureSocket> find_socket(int fd) {
  if (fd < 0) return nullptr;
  Table &t = table();
  std::shared_ptr<SecureSocket> found;
  {
    std::shared_lock lock(t.mu);
    if (static_cast<size_t>(fd) >= t.by_fd.size()) return nullptr;
    found = t.by_fd[static_cast<size_t>(fd)];
  }
  if (!found || same_socket(fd, *found)) return found;
  std::unique_lock lock(t.mu);
  if (t.by_fd[static_cast<size_t>(fd)] == found) t.by_fd[static_cast<size_t>(fd)].reset();
  return nullptr;
}

void register_socket(std::shared_ptr<SecureSocket> socket) {
  Table &t = table();
  const auto index = static_cast<size_t>(socket->fd());
  std::unique_lock lock(t.mu);
  if (index >= t.by_fd.size()) t.by_fd.resize(std::max(index + 1, t.by_fd.size() * 2));
  t.by_fd[index] = std::move(socket);
}

std::shared_ptr<SecureSocket> unregister_socket(int fd) {
  if (fd < 0) return nullptr;
  Table &t = table();
  std::unique_lock lock(t.mu);
  if (static_cast<size_t>(fd) >= t.by_fd.size()) return nullptr;
  return std::move(t.by_fd[static_cast<size_t>(fd)]);
}

std::vector<std::shared_ptr<SecureSocket>> lock_registry_for_fork() {
  Table &t = table();
  t.mu.lock_shared();
  std::vector<std::shared_ptr<SecureSocket>> all;
  try {
    for (const auto &s : t.by_fd) {
      if (s) all.push_back(s);
    }
  } catch (...) {  // out of memory in a fork handler, which must not throw: what fitted
  }
  return all;
}

void unlock_registry_after_fork() {
  table().mu.unlock_shared();
}

}  // namespace ssx::core
