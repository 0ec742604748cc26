// SPDX-License-Identifier: Apache-2.0
// tools/ssx/common/relay.hpp — copy bytes both ways between an ssx socket and a local stream.
//
// The local side is an input descriptor (its bytes go to the peer) and an output descriptor (the
// peer's bytes go there): standard input and output for `ssx connect` and `ssx listen`, one end
// of a socketpair wired to a child's stdin/stdout for `ssx listen --exec`.
//
// One thread, one poll(2) loop, no blocking call. The ssx socket is made non-blocking and driven
// by what ssx_wants() reports; a Relay only says which descriptors it waits for and reacts to
// poll's answer, so a loop can drive many relays (and other descriptors) at once.
//
// Half-close, both ways:
//   - end of the local input: the pending bytes are sent, then ssx_shutdown(SHUT_WR) sends
//     close_notify; the relay goes on receiving;
//   - the peer's close_notify (ssx_recv returns 0): the pending bytes are written, then a local
//     output that is a socket is shut down for writing (the child reads end of file); the relay
//     goes on sending.
// The relay is done when both directions have ended, or at the first failure: a truncated stream
// (ECONNRESET: the peer's TCP connection ended without close_notify), a protocol error, or a
// local read/write error. Descriptors the relay does not own (standard input and output, shared
// with whoever started us) are never made non-blocking: after poll says one is ready it gets
// exactly one read, or one write of at most PIPE_BUF bytes, neither of which can block.
//
// The relay never closes a descriptor; its owner does.

#ifndef SSX_TOOLS_SSX_COMMON_RELAY_HPP
#define SSX_TOOLS_SSX_COMMON_RELAY_HPP

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ssx::cli {

class Relay {
 public:
  struct Local {
    int in = 0;                // read; its bytes go to the peer
    int out = 1;               // written; the peer's bytes go there (may equal |in|)
    bool nonblocking = false;  // |in|/|out| are ours and O_NONBLOCK (e.g. a socketpair)
    std::string in_name = "standard input";
    std::string out_name = "standard output";
  };

  // What to do when writing the local output fails with EPIPE (nobody reads it any more): fail
  // the relay (standard output) or drop the peer's further bytes (a child that has stopped
  // reading its input; the peer is not told).
  enum class OnOutputClosed { fail, discard };

  // Relay takes the established ssx socket |sock| (it sets O_NONBLOCK on it).
  Relay(int sock, Local local, OnOutputClosed on_output_closed = OnOutputClosed::fail);

  // add_pollfds appends the descriptors the relay waits for to |fds| and remembers where.
  void add_pollfds(std::vector<pollfd> &fds);
  // handle takes poll's answer for the entries add_pollfds added, then moves what it can.
  void handle(const std::vector<pollfd> &fds);
  // pump moves every byte that can move now without blocking. Call it once before the first poll.
  void pump();

  // output_gone says the local output's reader has gone for good (the child exited): the peer's
  // further bytes are dropped, and the relay is done once its own sending side has ended.
  void output_gone();

  // hold_end keeps the end of the local input from becoming close_notify until release_end():
  // `listen --exec` ends the stream in order only once CMD has exited 0 (its output closing is
  // no proof that it finished; a crash closes it too).
  void hold_end() { hold_end_ = true; }
  void release_end() { hold_end_ = false; }

  bool done() const;
  // error is why the relay failed, "" when it did not (yet).
  const std::string &error() const { return error_; }
  // peer_closed: the peer sent close_notify. local_input_ended: the local input reached its end.
  bool peer_closed() const { return peer_eof_; }
  bool local_input_ended() const { return in_eof_; }

  // output_reader_gone: the relay failed because nobody reads the local output any more (EPIPE:
  // `ssx connect ... | head -1`), not because something went wrong with the connection.
  bool output_reader_gone() const { return output_reader_gone_; }

  std::uint64_t bytes_sent() const { return bytes_sent_; }
  std::uint64_t bytes_received() const { return bytes_received_; }

 private:
  struct Buffer {
    std::vector<char> data;
    size_t begin = 0, end = 0;
    bool pending() const { return begin < end; }
    void clear() { begin = end = 0; }
  };

  bool read_input();
  bool send_to_peer();
  bool shut_peer_write();
  bool receive_from_peer();
  bool write_output();
  bool finish_output();
  void fail(const std::string &message);

  int sock_;
  Local local_;
  OnOutputClosed on_output_closed_;
  bool out_is_socket_ = false;

  Buffer up_;    // local input -> peer
  Buffer down_;  // peer -> local output

  bool in_ready_ = false;  // poll said the input is readable (or it is ours and non-blocking)
  bool in_eof_ = false;
  bool out_ready_ = false;
  bool out_closed_ = false;  // the output's reader went away (discard mode)
  bool out_shut_ = false;    // the peer's end of stream was passed on
  bool sock_recv_ready_ = true;
  bool sock_send_ready_ = true;
  short recv_wants_ = POLLIN;
  short send_wants_ = POLLOUT;
  bool peer_eof_ = false;
  bool write_shut_ = false;  // close_notify sent
  bool output_reader_gone_ = false;
  bool hold_end_ = false;  // see hold_end()
  std::string error_;
  std::uint64_t bytes_sent_ = 0, bytes_received_ = 0;

  int in_index_ = -1, out_index_ = -1, sock_index_ = -1;
};

// ensure_standard_descriptors opens /dev/null on any of descriptors 0, 1 and 2 that is closed,
// so that a socket opened later can never land there and be taken for standard input or output.
void ensure_standard_descriptors();

// run_relay drives |relay| alone until it is done (poll without a timeout). Returns its error,
// "" on success.
std::string run_relay(Relay &relay);

}  // namespace ssx::cli

#endif  // SSX_TOOLS_SSX_COMMON_RELAY_HPP
