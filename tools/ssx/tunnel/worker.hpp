// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/worker.hpp — one event-loop thread: its own epoll, its own listening
// descriptor and the connections it accepted.
//
// Every worker accepts its own connections and keeps all their state thread-local (no locks, no
// hand-off between threads). The listening descriptors come from listener.hpp: by default one
// socket the workers share (dup), so the port is the tunnel's alone and a busy worker simply
// accepts less; with --reuseport one SO_REUSEPORT socket each, spread by the kernel's hash.
// Connections still queued on a listener when it closes are reset, so on SIGTERM each worker
// first accepts what is queued.

#ifndef SSX_TOOLS_SSX_TUNNEL_WORKER_HPP
#define SSX_TOOLS_SSX_TUNNEL_WORKER_HPP

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <string>
#include <vector>

#include "common/handshake_budget.hpp"
#include "connection.hpp"

namespace ssx::cli::tunnel {

// Shared is what every worker reads; main() owns it.
struct Shared {
  const Options &options;
  Metrics &metrics;
  Logger &log;
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<bool> stopping{false};   // SIGTERM: stop accepting, drain
  std::atomic<bool> stop_now{false};   // second SIGTERM or grace over: close everything
  Clock::time_point drain_deadline{};  // set before |stopping|
};

class Worker final : public ConnectionHost {
 public:
  // Takes ownership of |listen_fd|.
  Worker(Shared &shared, unsigned index, int listen_fd);
  ~Worker() override;
  Worker(const Worker &) = delete;
  Worker &operator=(const Worker &) = delete;

  // run is the thread body; returns once stopped and every connection is gone.
  void run();
  // wake makes run() look at Shared's flags now (any thread).
  void wake();

  // ConnectionHost
  const Options &options() const override { return shared_.options; }
  BufferPool &pool() override { return pool_; }
  WorkerCounters &counters() override { return counters_; }
  Logger &log() override { return shared_.log; }
  bool watch(Endpoint &e) override;
  void requeue(Connection *c) override;
  void retire(Connection *c) override;
  void setup_finished(Connection *c) override;
  void close_after_alert(int fd) override;

 private:
  // Closing: a secured descriptor closed in order after a fatal alert (close_after_alert).
  struct Closing : Handle {
    Closing() : Handle(Kind::closing) {}
    int fd = -1;
    Clock::time_point deadline;
    size_t discarded = 0;
  };

  // accept_pending accepts what is queued, up to a batch.
  void accept_pending();
  // shed_for ends the unfinished handshakes |budget_| gave up for a newer one.
  void shed_for(const std::vector<HandshakeBudget::Token> &tokens, const char *why);
  void drain(Closing &c);
  void finish_closing(Closing &c);
  void accepted(int fd, const sockaddr_storage &client);
  void accept_failed(int err, const std::string &message, const sockaddr_storage &client);
  void close_listener();
  void tick(Clock::time_point now);
  void reap();
  void unlink(Connection *c);

  Shared &shared_;
  WorkerCounters &counters_;
  BufferPool pool_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int listen_fd_ = -1;
  Handle listener_handle_{Handle::Kind::listener};
  Handle wake_handle_{Handle::Kind::wake};
  bool accept_more_ = false;  // the listener may have more: accept next turn
  HandshakeBudget budget_;    // unfinished handshakes; sheds the oldest past its limits
  std::list<Closing> closing_;
  Clock::time_point accept_paused_until_{};  // after EMFILE and the like
  Connection *live_ = nullptr;               // doubly linked list of open connections
  size_t live_count_ = 0;
  std::vector<Connection *> runnable_;  // requeued: pump again next turn
  std::vector<Connection *> turn_;      // the runnable_ being pumped this turn
  std::vector<Connection *> retired_;   // closed: free once nothing refers to them
};

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_WORKER_HPP
