// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/connection.hpp — one tunnelled connection: the accepted end, the dialled
// end, and a bounded buffer for each direction between them.
//
// Server mode: accepted = secured (handshaking when accepted), dialled = cleartext to --to,
// connected only once the handshake succeeded. Client mode: accepted = cleartext, dialled =
// secured to --to. Everything is non-blocking and driven by the worker's epoll (edge-triggered):
// pump() moves bytes until no call can make progress; every "cannot now" is an EAGAIN whose
// wanted events are remembered per operation, and the next matching edge clears them.

#ifndef SSX_TOOLS_SSX_TUNNEL_CONNECTION_HPP
#define SSX_TOOLS_SSX_TUNNEL_CONNECTION_HPP

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "endpoint.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "ring_buffer.hpp"

namespace ssx::cli::tunnel {

class Logger;
using Clock = std::chrono::steady_clock;

// ConnectionHost is what a connection needs from its worker.
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  virtual const Options &options() const = 0;
  virtual BufferPool &pool() = 0;
  virtual WorkerCounters &counters() = 0;
  virtual Logger &log() = 0;
  // watch registers |e| with the worker's epoll (edge-triggered, in and out).
  virtual bool watch(Endpoint &e) = 0;
  // requeue asks for another pump() soon: the connection used its turn and can go on.
  virtual void requeue(class Connection *c) = 0;
  // retire hands a closed connection back; the worker frees it when no event refers to it.
  virtual void retire(class Connection *c) = 0;
  // setup_finished: |c| is now forwarding, or ended before it got there (the handshake budget
  // counts connections still connecting or handshaking).
  virtual void setup_finished(class Connection *c) = 0;
  // close_after_alert takes the secured descriptor |fd| of a connection that failed with a fatal
  // alert and closes it in order: FIN after the alert, the peer's further bytes read and dropped
  // for a short bounded time, then close. Closing at once with unread bytes would reset the
  // connection, and a reset can overtake the alert at the client (which then sees "connection
  // reset" instead of why it was refused).
  virtual void close_after_alert(int fd) = 0;
};

class Connection {
 public:
  Connection(ConnectionHost &host, std::uint64_t id, const sockaddr_storage &client);
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  // start takes the accepted descriptor: from ssx_accept (server mode, still handshaking) or
  // accept4 (client mode, cleartext), and begins.
  void start(int fd);
  // on_event handles epoll |events| on one of this connection's endpoints.
  void on_event(Endpoint &e, unsigned events);
  // pump moves what can be moved now.
  void pump();
  // tick runs timers: the setup deadline, and nudging handshakes so that ssx enforces the
  // policy's handshake_timeout_ms even when the peer sends nothing.
  void tick(Clock::time_point now);
  // shut_down closes an open connection at the end of the SIGTERM grace period.
  void shut_down();
  // reject records a connection whose handshake failed inside ssx_accept (already closed).
  void reject(int error, const std::string &message);
  // shed ends an unfinished handshake to make room for newer ones (reset, logged).
  void shed(const std::string &why);

  bool closed() const { return closed_; }

  // Owned by the worker: its list of live connections, and its requeue flag.
  Connection *prev = nullptr;
  Connection *next = nullptr;
  bool queued = false;

 private:
  struct Direction {
    Endpoint *src;
    Endpoint *dst;
    RingBuffer buffer;
    std::uint64_t bytes = 0;  // forwarded
    bool finished() const { return src->read_eof && buffer.empty() && dst->write_shut; }
  };

  void advance_setup();
  // queue_proxy_header puts the PROXY v2 header (--proxy-protocol) first in the buffer towards
  // --to. False when it could not be built (the connection has ended).
  bool queue_proxy_header();
  void start_dial();
  // step_handshake advances |e|'s handshake once: open (and established) when done, a setup wait
  // when it needs I/O. False when it failed and the connection has ended.
  bool step_handshake(Endpoint &e);
  void established(Endpoint &e);
  bool forward(Direction &d, std::atomic<std::uint64_t> &counter);
  void io_failed(Endpoint &e, const IoResult &r, bool reading);
  // end closes both ends (|orderly|: normal close; else abort) and logs the line.
  void end(CloseReason reason, bool orderly, int error = 0, const std::string &message = {});

  ConnectionHost &host_;
  const std::uint64_t id_;
  const sockaddr_storage client_;
  const Clock::time_point started_;
  Clock::time_point setup_deadline_;
  Endpoint accepted_;
  Endpoint dialled_;
  Direction in_;                    // accepted -> dialled
  Direction out_;                   // dialled -> accepted
  SocketAddress to_;                // where this connection dials (--to, as resolved now)
  std::uint64_t proxy_header_ = 0;  // bytes of PROXY header in in_.bytes (not the client's)
  std::string peer_principal_;
  std::string rule_;
  std::chrono::milliseconds idle_timeout_{0};  // 0: none (set when established)
  Clock::time_point last_active_{};            // the last tick that saw bytes move
  bool moved_ = false;                         // bytes moved since the last tick
  bool setting_up_ = true;
  bool closed_ = false;
  bool early_close_ = false;  // the cleartext side closed before taking all it was sent
};

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_CONNECTION_HPP
