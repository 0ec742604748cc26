// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/handshake_budget.hpp — which unfinished handshakes a server keeps when
// clients open connections faster than they finish them (slowloris, SYN-then-silence floods).
//
// A fixed number of handshake slots lets idle connections lock everyone out: whoever holds the
// slots decides who is served. Instead a server accepts everything and keeps a budget of |total|
// unfinished handshakes (derived from the descriptor limit, see derive_budget). When a new
// connection finds the budget full, one unfinished handshake is shed for it: the oldest from
// the newcomer's own source when that source already holds |per_source| or more (so one address
// cannot push others out), else the oldest overall (an attacker's idle connections age out
// while a real client, which finishes its handshake within milliseconds, is never the oldest).
// Below the budget nothing is shed: a legitimate burst from one address (a client-side tunnel,
// a NAT) is served in full when there is room. Together with the library's client_hello_timeout_ms
// (a silent connection is dropped after 2 s) this bounds what idle connections can hold.
//
// One thread (a worker or `ssx listen`'s loop) owns a budget; not thread-safe. O(1) per call.

#ifndef SSX_TOOLS_SSX_COMMON_HANDSHAKE_BUDGET_HPP
#define SSX_TOOLS_SSX_COMMON_HANDSHAKE_BUDGET_HPP

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <list>
#include <unordered_map>
#include <vector>

namespace ssx::cli {

class HandshakeBudget {
 public:
  struct Limits {
    size_t total = 1;       // unfinished handshakes at once
    size_t per_source = 1;  // a source's share once full (IPv4 address, or IPv6 /64)
  };
  // A handshake is named by its owner's pointer; the budget never dereferences it.
  using Token = const void *;

  explicit HandshakeBudget(Limits limits);

  // admit registers the new unfinished handshake |token| from |source| and returns the ones to
  // shed (oldest first) to stay within the limits; they are already forgotten here, and the
  // caller must end them. Never returns |token| itself.
  std::vector<Token> admit(Token token, const sockaddr_storage &source);
  // finished forgets |token|: its handshake is done, or the connection ended. Unknown: no-op.
  void finished(Token token);

  // oldest is the longest-waiting unfinished handshake, nullptr when there is none.
  Token oldest() const { return order_.empty() ? nullptr : order_.front().token; }
  size_t size() const { return order_.size(); }
  const Limits &limits() const { return limits_; }

 private:
  using SourceKey = std::array<unsigned char, 9>;  // family byte + IPv4 address or IPv6 /64
  struct SourceKeyHash {
    size_t operator()(const SourceKey &k) const;
  };
  struct Entry {
    Token token;
    SourceKey source;
    std::list<Token>::iterator in_source;
  };
  void forget(std::list<Entry>::iterator it);

  Limits limits_;
  std::list<Entry> order_;  // oldest first
  std::unordered_map<Token, std::list<Entry>::iterator> index_;
  std::unordered_map<SourceKey, std::list<Token>, SourceKeyHash> sources_;  // oldest first
};

// derive_budget returns the default unfinished-handshake budget for one event loop among
// |loops|: the descriptors the process may open (RLIMIT_NOFILE's soft limit) less a reserve of
// 64, halved because a connection that gets through its handshake needs a second descriptor,
// and capped at 16384 per process to bound memory (about 40 KiB per handshake in OpenSSL:
// 16384 x 40 KiB = 640 MiB at worst). |nofile| receives the limit it used.
size_t derive_budget(unsigned loops, size_t *nofile = nullptr);

// raise_nofile_limit raises RLIMIT_NOFILE's soft limit to its hard limit (a server that accepts
// everything should use every descriptor it is allowed). Returns the soft limit now in force.
size_t raise_nofile_limit();

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_HANDSHAKE_BUDGET_HPP
