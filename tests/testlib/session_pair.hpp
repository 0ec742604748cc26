// SPDX-License-Identifier: Apache-2.0
// testlib/session_pair.hpp — a client and a server tls::Session stepped in one thread.
//
// The two sessions sit on the two ends of one connection (a socketpair, or a TCP connection on
// loopback when a test needs TCP's FIN and RST), both non-blocking. The test's own thread steps
// one end, then the other, until both are done, one fails and the other can make no progress, or
// a step budget runs out. No thread, no sleep and no timing decides what a test sees: what each
// end has sent is in the other end's socket buffer before the other end is stepped, and a stall
// (every unfinished end waits for something its socket cannot give) is detected, not timed out.
//
// This is the pattern of s2n's s2n_negotiate_test_server_and_client and BoringSSL's
// CreateClientAndServer/CompleteHandshakes, for ssx's tls::Session (src/protocol/tls), below
// core::SecureSocket: it tests what a Session reports (errno, message, want), not the socket
// layer's waiting and locking.

#ifndef SSX_TESTLIB_SESSION_PAIR_HPP
#define SSX_TESTLIB_SESSION_PAIR_HPP

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "policy/policy.hpp"
#include "protocol/tls/context.hpp"
#include "protocol/tls/session.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {

enum class Side { client, server };

constexpr Side other(Side s) {
  return s == Side::client ? Side::server : Side::client;
}
const char *side_name(Side s);

enum class Transport {
  unix_stream,   // socketpair(AF_UNIX, SOCK_STREAM): the peer's close reads as EOF
  tcp_loopback,  // 127.0.0.1: FIN, RST (SO_LINGER 0) and TCP's errno on a reset connection
};

// kDefaultSteps bounds every driving loop: far more rounds than any handshake or transfer in the
// tests needs (a TLS 1.3 handshake takes three or four rounds).
inline constexpr int kDefaultSteps = 10000;

struct PairOptions {
  policy::Settings client;  // the client's policy settings: trust, certificate, versions, ...
  policy::Settings server;  // the server's
  tls::PeerRequirements client_requires;  // names the client requires of the server
  tls::PeerRequirements server_requires;  // names (or a certificate) the server requires
  std::string server_name = "localhost";  // SNI the client sends; "" = none
  std::string cache_key;                  // the client's session-cache key; "" = no resumption
  Transport transport = Transport::unix_stream;
  // Reuse these contexts instead of building them from |client|/|server| (resumption tests
  // need the same client context twice).
  std::shared_ptr<tls::Context> client_context;
  std::shared_ptr<tls::Context> server_context;
};

// EndState is where one end stands after a driving call.
struct EndState {
  bool done = false;                    // handshake complete
  std::optional<Failure> failure;       // failed (the Session's own Failure, errno in |code|)
  tls::Want want = tls::Want::nothing;  // what it waits for, when neither done nor failed
};

struct HandshakeOutcome {
  EndState client, server;
  int rounds = 0;        // rounds stepped (each steps every unfinished end once)
  bool stalled = false;  // stopped because no unfinished end could make progress
  bool ok() const { return client.done && server.done; }
  const EndState &of(Side s) const { return s == Side::client ? client : server; }
  // describe is a one-line account for assertion messages.
  std::string describe() const;
};

// ReadOutcome is what draining one end found.
struct ReadOutcome {
  std::string data;                // application data read
  bool end_of_stream = false;      // the peer's close_notify arrived
  std::optional<Failure> failure;  // the read failed after |data|
};

class SessionPair {
 public:
  // Builds the contexts (unless given), connects the two sockets and creates both sessions.
  // Throws std::runtime_error when the test's own setup fails (bad credentials, no sockets); a
  // Session's Failure is never thrown.
  explicit SessionPair(PairOptions options);
  ~SessionPair();
  SessionPair(const SessionPair &) = delete;
  SessionPair &operator=(const SessionPair &) = delete;

  // handshake steps both ends alternately, client first, until both are done, or every end that
  // is neither done nor failed waits for an event its socket does not have (stalled), or
  // |max_rounds| rounds have run. A failed end is not stepped again.
  HandshakeOutcome handshake(int max_rounds = kDefaultSteps);

  // write_all has |from| write |data| (several records when it is long); whenever |from|'s
  // socket is full, the other end reads (the data is kept for the next read()). Returns |from|'s
  // failure, if any.
  Result<void> write_all(Side from, std::string_view data, int max_rounds = kDefaultSteps);

  // read drains |side| until its socket has nothing more: data, the end of the stream, or a
  // failure. Data an earlier write_all made |side| read comes first.
  ReadOutcome read(Side side, int max_rounds = kDefaultSteps);

  // close_notify has |side| send its close_notify.
  Result<void> close_notify(Side side, int max_rounds = kDefaultSteps);

  // shutdown_socket calls shutdown(2) on |side|'s socket: SHUT_WR sends a FIN (or the AF_UNIX
  // end of stream) without a close_notify, a truncation as the peer sees it.
  void shutdown_socket(Side side, int how);

  // reset ends |side|'s connection abruptly: its Session is destroyed without a close_notify
  // and its socket closed, over TCP with SO_LINGER 0 (an RST). The end cannot be used afterwards.
  void reset(Side side);

  // wait_for_event waits (bounded by |timeout_ms|, a condition and not an ordering delay)
  // until |side|'s socket reports one of |events| (poll(2) revents); returns the revents, 0 on
  // timeout. Over TCP the kernel may take a moment to deliver a FIN or RST sent on loopback.
  short wait_for_event(Side side, short events, int timeout_ms = 10000);

  tls::Session &session(Side side);
  int fd(Side side) const { return side == Side::client ? client_fd_ : server_fd_; }
  tls::Context &context(Side side) { return side == Side::client ? *client_ctx_ : *server_ctx_; }
  std::shared_ptr<tls::Context> shared_context(Side side) {
    return side == Side::client ? client_ctx_ : server_ctx_;
  }

 private:
  // stuck reports whether |side|, waiting for |want|, can make no progress now: its socket has
  // no event of that kind (poll with a zero timeout).
  bool stuck(Side side, tls::Want want) const;
  Result<void> pump_reads(Side side);  // one non-blocking read pass into inbox_

  Transport transport_;
  std::shared_ptr<tls::Context> client_ctx_, server_ctx_;
  int client_fd_ = -1, server_fd_ = -1;
  std::unique_ptr<tls::Session> client_, server_;
  std::string client_inbox_, server_inbox_;  // read by write_all on the reader's behalf
  bool client_eos_ = false, server_eos_ = false;
  std::optional<Failure> client_read_failure_, server_read_failure_;
};

// settings_for returns policy settings that trust |ca_cert| and present |identity| (none when
// null), otherwise the defaults (TLS 1.3 only).
policy::Settings settings_for(const CredentialFiles *identity, const std::string &ca_cert);

// target_name parses |name| as an application's target name would be; throws when it is not one.
identity::TargetName target_name(const std::string &name);

}  // namespace ssx::test

#endif  // SSX_TESTLIB_SESSION_PAIR_HPP
