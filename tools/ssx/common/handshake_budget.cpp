// SPDX-License-Identifier: Apache-2.0
#include "common/handshake_budget.hpp"

#include <netinet/in.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>

namespace ssx::cli {
namespace {

constexpr size_t kReservedDescriptors = 64;  // listeners, epoll, logs, metrics, the policy files
constexpr size_t kMaxBudget = 16384;         // per process, see derive_budget

}  // namespace

size_t HandshakeBudget::SourceKeyHash::operator()(const SourceKey &k) const {
  size_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char b : k) h = (h ^ b) * 1099511628211ULL;
  return h;
}

HandshakeBudget::HandshakeBudget(Limits limits) : limits_(limits) {
  limits_.total = std::max<size_t>(1, limits_.total);
  limits_.per_source = std::max<size_t>(1, limits_.per_source);
}

void HandshakeBudget::forget(std::list<Entry>::iterator it) {
  auto source = sources_.find(it->source);
  if (source != sources_.end()) {
    source->second.erase(it->in_source);
    if (source->second.empty()) sources_.erase(source);
  }
  index_.erase(it->token);
  order_.erase(it);
}

std::vector<HandshakeBudget::Token> HandshakeBudget::admit(Token token,
                                                           const sockaddr_storage &source) {
  SourceKey key{};
  if (source.ss_family == AF_INET6) {
    const auto &a6 = reinterpret_cast<const sockaddr_in6 &>(source);
    if (IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) {
      key[0] = AF_INET;
      std::memcpy(&key[1], &a6.sin6_addr.s6_addr[12], 4);
    } else {
      // One host usually holds a whole /64: counting single addresses would let it take
      // 2^64 shares.
      key[0] = AF_INET6;
      std::memcpy(&key[1], a6.sin6_addr.s6_addr, 8);
    }
  } else if (source.ss_family == AF_INET) {
    key[0] = AF_INET;
    std::memcpy(&key[1], &reinterpret_cast<const sockaddr_in &>(source).sin_addr, 4);
  } else {
    key[0] = static_cast<unsigned char>(source.ss_family);  // AF_UNIX: one source
  }

  std::vector<Token> shed;
  if (order_.size() >= limits_.total) {
    // Full: a source at or over its share pays with its own oldest; otherwise the oldest overall
    // goes. Below the budget nobody is shed, so a legitimate burst from one address (a client
    // tunnel, a NAT) is served in full when there is room.
    auto from_source = sources_.find(key);
    if (from_source != sources_.end() && from_source->second.size() >= limits_.per_source) {
      auto oldest = index_.find(from_source->second.front());
      shed.push_back(oldest->first);
      forget(oldest->second);
    }
    while (order_.size() >= limits_.total) {
      shed.push_back(order_.front().token);
      forget(order_.begin());
    }
  }
  auto &list = sources_[key];  // forget() may have erased it
  list.push_back(token);
  order_.push_back(Entry{token, key, std::prev(list.end())});
  index_[token] = std::prev(order_.end());
  return shed;
}

void HandshakeBudget::finished(Token token) {
  auto it = index_.find(token);
  if (it != index_.end()) forget(it->second);
}

size_t raise_nofile_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? static_cast<size_t>(1) << 20
                                         : static_cast<size_t>(limit.rlim_cur);
}

size_t derive_budget(unsigned loops, size_t *nofile) {
  rlimit limit{};
  size_t fds = 1024;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    fds = limit.rlim_cur == RLIM_INFINITY ? static_cast<size_t>(1) << 20
                                          : static_cast<size_t>(limit.rlim_cur);
  }
  if (nofile != nullptr) *nofile = fds;
  size_t usable = fds > 2 * kReservedDescriptors ? fds - kReservedDescriptors : fds / 2;
  size_t total = std::min(usable / 2, kMaxBudget);
  return std::max<size_t>(1, total / std::max(1u, loops));
}

}  // namespace ssx::cli
