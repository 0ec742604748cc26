// SPDX-License-Identifier: Apache-2.0
// core/registry.hpp — which file descriptors are ssx sockets.
//
// The C API names sockets by fd number, and the kernel reuses numbers: a program that close(2)s a
// secured socket instead of calling ssx_close gets the same number for its next socket. Each entry
// therefore remembers the socket's identity (device and inode), and a lookup whose identity no
// longer matches drops the stale entry rather than apply a dead connection's state to a new
// socket.
//
// Thread safety: all functions may be called concurrently.

#ifndef SSX_CORE_REGISTRY_HPP
#define SSX_CORE_REGISTRY_HPP

#include <memory>
#include <vector>

#include "core/secure_socket.hpp"

namespace ssx::core {

// find returns the socket registered for |fd|, or null when there is none (or it was stale).
std::shared_ptr<SecureSocket> find_socket(int fd);

// register_socket makes |socket| the entry for its fd, replacing any stale one.
void register_socket(std::shared_ptr<SecureSocket> socket);

// unregister_socket removes and returns the entry for |fd| (null if none).
std::shared_ptr<SecureSocket> unregister_socket(int fd);

// Fork support (core/handoff.cpp). lock_registry_for_fork holds the table (shared) until
// unlock_registry_after_fork, so that no socket is added or removed across fork(2), and returns
// every registered socket. Called by the pthread_atfork handlers only.
std::vector<std::shared_ptr<SecureSocket>> lock_registry_for_fork();
void unlock_registry_after_fork();

}  // namespace ssx::core

#endif  // SSX_CORE_REGISTRY_HPP
