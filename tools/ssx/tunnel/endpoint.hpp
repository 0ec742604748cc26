// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/endpoint.hpp — one end of a tunnelled connection: a socket, secured (ssx) or
// cleartext, behind one set of non-blocking I/O calls with uniform results.

#ifndef SSX_TOOLS_SSX_TUNNEL_ENDPOINT_HPP
#define SSX_TOOLS_SSX_TUNNEL_ENDPOINT_HPP

#include <sys/types.h>

#include <span>
#include <string>

namespace ssx::cli::tunnel {

class Connection;

// Handle is what an epoll_event's data.ptr points to; |kind| says what it is.
struct Handle {
  enum class Kind { endpoint, listener, wake, closing };
  explicit Handle(Kind k) : kind(k) {}
  Kind kind;
};

// IoResult: |n| > 0 bytes moved; 0 end of stream (reads only); -1 failure with |error|, and for
// EAGAIN the poll events to wait for in |wants|; |message| says why for other failures.
struct IoResult {
  ssize_t n = -1;
  int error = 0;
  short wants = 0;
  std::string message;
  bool again() const { return n < 0 && error == EAGAIN; }
};

class Endpoint : public Handle {
 public:
  enum class State { none, handshaking, connecting, open, closed };

  Endpoint() : Handle(Kind::endpoint) {}

  Connection *owner = nullptr;
  int fd = -1;
  bool secured = false;
  State state = State::none;
  bool read_eof = false;    // the peer ended its direction (close_notify, or FIN in cleartext)
  bool write_shut = false;  // we ended ours (close_notify + FIN, or FIN)
  // Events to wait for before trying again; 0 means "may try now". Tracked per operation since
  // ssx_wants() reports only the latest call's wish.
  short read_wait = 0;
  short write_wait = 0;
  short setup_wait = 0;

  // ready clears the waits that |events| (epoll) satisfy; errors and hang-ups satisfy all.
  void ready(unsigned events);

  IoResult read(std::span<char> into);
  IoResult write(std::span<const char> from);
  // shutdown_write ends our direction: ssx_shutdown(SHUT_WR) (close_notify) when secured.
  IoResult shutdown_write();
  // close closes in order (ssx_close: close_notify unless already sent).
  void close();
  // abort closes so that the peer sees an error, never a clean end: ssx_abort (no close_notify,
  // a TCP reset).
  void abort();
  // release gives up the descriptor without closing it (the caller closes it); -1 if none.
  int release();
  // reset_on_close arms (true) or disarms SO_LINGER {1, 0} on a cleartext socket. Armed while a
  // stream is in flight, so that if this process dies (SIGKILL, OOM) the kernel's close resets
  // the connection and the application sees ECONNRESET, never a FIN it would take for the end
  // of a complete stream; disarmed only for an orderly close.
  void reset_on_close(bool on) const;
  // keepalive turns TCP keepalive on with the first probe after |idle_s| seconds, then every
  // idle_s/4 (at least 1 s), 4 probes; and TCP_USER_TIMEOUT to the same total, so that a path
  // that stalls with data unacknowledged fails as fast as an idle one. 0: leaves it off.
  void keepalive(unsigned idle_s) const;
};

// failure_of builds an IoResult from errno (and ssx_last_error() when |secured|).
IoResult failure_of(int error, bool secured, int fd, bool for_write);

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_ENDPOINT_HPP
