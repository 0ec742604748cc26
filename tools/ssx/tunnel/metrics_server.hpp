// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/metrics_server.hpp — GET /metrics, /healthz and /readyz over plain HTTP/1.x
// on a loopback port. /healthz answers 200 while the process runs its loop; /readyz 200 while the
// tunnel accepts connections and 503 once it drains after SIGTERM (take it out of rotation).
//
// Runs on the tunnel's main thread, non-blocking, in the main epoll: a scrape never waits on a
// worker (counters are atomics) and a slow or silent client cannot hold the endpoint (a few
// seconds per request, a bounded number of clients).

#ifndef SSX_TOOLS_SSX_TUNNEL_METRICS_SERVER_HPP
#define SSX_TOOLS_SSX_TUNNEL_METRICS_SERVER_HPP

#include <atomic>
#include <chrono>
#include <list>
#include <string>

#include "metrics.hpp"

namespace ssx::cli::tunnel {

class MetricsServer {
 public:
  // Takes ownership of |listen_fd| (non-blocking, listening) and registers it with |epoll_fd|.
  // |stopping| turns /readyz to 503 once the tunnel drains (SIGTERM).
  MetricsServer(int epoll_fd, int listen_fd, const Metrics &metrics,
                const std::atomic<bool> &stopping);
  ~MetricsServer();
  MetricsServer(const MetricsServer &) = delete;
  MetricsServer &operator=(const MetricsServer &) = delete;

  // handle processes epoll |events| if |tag| (data.ptr) is one of ours; false otherwise.
  bool handle(void *tag, unsigned events);
  // expire drops clients that have taken too long.
  void expire();

 private:
  struct Client {
    int fd = -1;
    std::string request;
    std::string response;
    size_t sent = 0;
    std::chrono::steady_clock::time_point deadline;
  };

  void accept_clients();
  // serve advances |c|; returns false once it is finished (to be closed).
  bool serve(Client &c);
  std::string respond(const std::string &request) const;
  void drop(std::list<Client>::iterator it);

  int epoll_fd_;
  int listen_fd_;
  const Metrics &metrics_;
  const std::atomic<bool> &stopping_;
  char listener_tag_ = 0;
  std::list<Client> clients_;
};

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_METRICS_SERVER_HPP
