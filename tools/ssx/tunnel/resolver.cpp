// SPDX-License-Identifier: Apache-2.0
#include "resolver.hpp"

#include <cstring>
#include <utility>

#include "common/address.hpp"
#include "log.hpp"

namespace ssx::cli::tunnel {

bool ResolvedAddress::set(const SocketAddress &address) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool changed = address.length != address_.length ||
                       std::memcmp(&address.storage, &address_.storage, address.length) != 0;
  address_ = address;
  return changed;
}

Resolver::Resolver(Logger &log, std::chrono::milliseconds interval)
    : log_(log), interval_(interval) {}

Resolver::~Resolver() {
  stop();
}

void Resolver::add(std::shared_ptr<ResolvedAddress> entry) {
  entries_.push_back(std::move(entry));
}

void Resolver::start() {
  if (entries_.empty() || interval_.count() <= 0 || thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void Resolver::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  // A lookup in progress is waited for: getaddrinfo cannot be interrupted, and is bounded by
  // the resolver's own timeouts (resolv.conf: timeout x attempts).
  if (thread_.joinable()) thread_.join();
}

void Resolver::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (wake_.wait_for(lock, interval_, [this] { return stopping_; })) return;
    }
    for (const auto &entry : entries_) {
      const HostPort &name = entry->name();
      const std::string where = format_host_port(name.host, name.port);
      auto address = resolve(name, false);
      if (!address) {
        log_.repeated(LogLevel::warning, "resolve:" + where, "resolve_failed",
                      "--to " + where + ": lookup failed, new connections keep using " +
                          format_address(entry->get().get()) + ": " + address.error().message,
                      std::chrono::seconds(60));
        continue;
      }
      const std::string before = format_address(entry->get().get());
      if (entry->set(*address)) {
        std::string message = "--to " + where;
        message += " now resolves to " + format_address(address->get());
        message += " (was " + before;
        message += "); new connections go there";
        log_.event(LogLevel::info, "resolved", message);
      }
    }
  }
}

}  // namespace ssx::cli::tunnel
