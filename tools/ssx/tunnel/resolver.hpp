// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/resolver.hpp — a --to that names a host, looked up again while the tunnel runs.
//
// A backend behind a DNS name moves (a failover, a new load balancer): new connections must
// follow it without a restart. getaddrinfo blocks for as long as DNS takes, so it never runs on a
// worker: one thread of the tunnel's own looks each name up again every --resolve-interval
// seconds, and workers read the latest address when they dial (a mutex held for a copy).
// A lookup that fails or finds nothing keeps the last good address (logged, rate-limited); a
// changed address is logged. --to given as an IP literal or unix:PATH never uses this.

#ifndef SSX_TOOLS_SSX_TUNNEL_RESOLVER_HPP
#define SSX_TOOLS_SSX_TUNNEL_RESOLVER_HPP

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "address.hpp"

namespace ssx::cli::tunnel {

class Logger;

// ResolvedAddress is the address a name has now. Thread-safe.
class ResolvedAddress {
 public:
  ResolvedAddress(HostPort name, SocketAddress initial)
      : name_(std::move(name)), address_(initial) {}
  SocketAddress get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return address_;
  }
  // set installs |address|; returns whether it differs from the one in force.
  bool set(const SocketAddress &address);
  const HostPort &name() const { return name_; }

 private:
  const HostPort name_;
  mutable std::mutex mu_;
  SocketAddress address_;
};

// Resolver runs the lookups. add() before start(); stop() (or the destructor) joins the thread.
class Resolver {
 public:
  Resolver(Logger &log, std::chrono::milliseconds interval);
  ~Resolver();
  Resolver(const Resolver &) = delete;
  Resolver &operator=(const Resolver &) = delete;

  void add(std::shared_ptr<ResolvedAddress> entry);
  bool empty() const { return entries_.empty(); }
  void start();
  void stop();

 private:
  void run();

  Logger &log_;
  const std::chrono::milliseconds interval_;
  std::vector<std::shared_ptr<ResolvedAddress>> entries_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_RESOLVER_HPP
