// SPDX-License-Identifier: Apache-2.0
// interop.hpp — ssx against TLS peers we did not write: `openssl s_server` / `s_client`,
// `gnutls-serv` / `gnutls-cli` and `curl`, run as child processes on 127.0.0.1.
//
// Every child is a ChildProcess (killed with its process group on every path out of a test).
// Every wait is bounded: children by explicit timeouts, ssx handshakes by the policy's
// handshake_timeout_ms, ssx data calls and ssx_accept by SO_RCVTIMEO / SO_SNDTIMEO.

#ifndef SSX_TESTS_INTEROP_INTEROP_HPP
#define SSX_TESTS_INTEROP_INTEROP_HPP

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "integration/tls_fixture.hpp"
#include "testlib/run_command.hpp"

namespace ssx::test {

using namespace std::chrono_literals;

// How long a foreign program may take to start, to print something we wait for, or to finish.
constexpr std::chrono::milliseconds kPeerTimeout = 10s;
// SO_RCVTIMEO / SO_SNDTIMEO on ssx sockets (and SO_RCVTIMEO on listeners, bounding ssx_accept).
constexpr std::chrono::milliseconds kIoTimeout = 10s;

// Info and query() come from integration/tls_fixture.hpp.

// peer_names_of lists info.peer_names.
std::vector<std::string> peer_names_of(const ssx_security_info &info);

// set_io_timeouts puts SO_RCVTIMEO and SO_SNDTIMEO of |timeout| on |fd|.
void set_io_timeouts(int fd, std::chrono::milliseconds timeout = kIoTimeout);

// free_port returns a TCP port on 127.0.0.1 that was free a moment ago (for programs that cannot
// be told to pick their own and report it).
std::uint16_t free_port();

// recv_until reads from the ssx socket |fd| until the data received holds |needle| (then
// *error = 0 and *eof = false), the stream ends cleanly (*eof = true, *error = 0) or ssx_recv
// fails (*error = errno). Returns everything received.
std::string recv_until(int fd, const std::string &needle, int *error, bool *eof);

// spki_pin_of computes "sha256:<hex>" for the first certificate in |cert_file| with the openssl
// command line (x509 -pubkey | pkey -pubin -outform DER | dgst -sha256), independently of ssx.
std::string spki_pin_of(const std::string &cert_file);

// expect_refused checks that an ssx client to 127.0.0.1:|port| naming |names| fails with
// |expected| and the enum ssx_reason |reason|, and a message containing |fragment|: on connect or,
// when TLS 1.3 lets the client finish first, on the first receive (a server's verdict on the
// client's certificate comes after the client's Finished). Then that the dead socket sends nothing.
// Returns the reason.
std::string expect_refused(std::uint16_t port, const std::vector<std::string> &names, int expected,
                           int reason, const std::string &fragment);

// What line_server sends first.
constexpr const char *kGreeting = "hello from the ssx server\n";

// ServerOutcome is what an ssx server thread saw.
struct ServerOutcome {
  int accept_errno = 0;        // ssx_accept's errno, 0 when it succeeded
  std::string accept_reason;   // ssx_last_error() after a failed ssx_accept
  int accept_reason_code = 0;  // ssx_last_error_reason() after a failed ssx_accept
  Info info;                   // the query of the accepted connection
  std::string received;        // the client's line
  bool clean_end = false;      // the client ended with close_notify (ssx_recv returned 0)
  int end_errno = 0;           // else the errno that ended it
};

// line_server runs an ssx server for one connection on |listener| in a thread: it greets with
// kGreeting, echoes the client's first line back as "echo: <line>" and reads until the client
// ends the stream. |out| must outlive the thread (destroy the returned object first).
std::unique_ptr<BackgroundThread> line_server(int listener, ServerOutcome &out);

// s_client_argv is `openssl s_client` to 127.0.0.1:|port|, verifying the server's chain against
// |ca_file| and its name against "localhost" (failing on any verification error), then |extra|.
// Its interactive commands (a line "Q", "R", "k", "K") are off unless |commands|.
std::vector<std::string> s_client_argv(std::uint16_t port, const std::string &ca_file,
                                       const std::vector<std::string> &extra,
                                       bool commands = false);

// Prompt is a line typed into an interactive client and what it prints once it has acted on it
// (it must be read on its own: s_client, for one, takes a whole read(2) as one command).
struct Prompt {
  std::string input;
  std::string acknowledgement;
};

// talk_to_line_server runs the interactive TLS client |argv| (s_client, gnutls-cli: it sends
// its stdin and prints what it receives) against a line_server on |listener|: waits for
// kGreeting, types each of |before|, writes |line|, waits for "echo: <line>", then closes the
// client's stdin (both send close_notify and exit) and waits for it to exit.
CommandResult talk_to_line_server(int listener, const std::vector<std::string> &argv,
                                  const std::string &line, ServerOutcome &outcome,
                                  const std::vector<Prompt> &before = {});

// ForeignServer is a TLS server program we did not write, listening on 127.0.0.1:port.
struct ForeignServer {
  std::unique_ptr<ChildProcess> process;
  std::uint16_t port = 0;
  explicit operator bool() const { return process != nullptr && port != 0; }
};

// start_openssl_server runs `openssl s_server` for one connection on 127.0.0.1 (a port the
// kernel picks, learnt from its "ACCEPT" line) with |creds| and the |extra| options. Its stdin is
// a pipe: what the test writes there goes to the client. Null (with a test failure) when it did
// not come up.
ForeignServer start_openssl_server(const CredentialFiles &creds,
                                   const std::vector<std::string> &extra = {});

// What exchange sends each way.
constexpr const char *kFromClient = "ping from the ssx client\n";
constexpr const char *kFromServer = "pong from s_server\n";

// exchange sends kFromClient over the ssx socket |fd|, waits until the s_server |server| prints
// it, has it send kFromServer and checks that ssx receives exactly that.
void exchange(int fd, ForeignServer &server);

// start_gnutls_server runs `gnutls-serv --echo` with |creds| and |extra|: it echoes each line the
// client sends. gnutls-serv cannot pick its own port or bind one address only (it listens on every
// address; clients here use 127.0.0.1 only), so a free port is chosen and retried if taken.
ForeignServer start_gnutls_server(const CredentialFiles &creds,
                                  const std::vector<std::string> &extra = {});

// InteropTest is TlsTest with every handshake bounded at 5 s (a broken peer fails the test
// instead of hanging it) and listeners whose ssx_accept gives up after kIoTimeout.
class InteropTest : public TlsTest {
 protected:
  // interop_policy is use_policy with handshake_timeout_ms = 5000 in [defaults] before
  // |defaults_extra| (a rule may still override it).
  void interop_policy(const std::string &defaults_extra = "", const std::string &server_extra = "",
                      const std::string &client_extra = "", bool client_certificate = true) {
    use_policy("handshake_timeout_ms = 5000\n" + defaults_extra, server_extra, client_extra,
               client_certificate);
  }

  // bounded_listener is an ssx listener on 127.0.0.1 whose ssx_accept fails with EAGAIN after
  // kIoTimeout when no client comes.
  static Fd bounded_listener() {
    Fd listener = ssx_listener();
    set_io_timeouts(listener.get());
    return listener;
  }

  // connect_to connects an ssx client to 127.0.0.1:|port| requiring |names|, with bounded I/O.
  // Returns the fd, or -1 with errno and ssx_last_error(); |out| always receives the socket.
  static int connect_to(std::uint16_t port, const std::vector<std::string> &names, Fd *out) {
    int rc = ssx_client_connect(port, names, SSX_GUARANTEE_ENCRYPTION, out);
    int saved = errno;
    if (out->get() >= 0) set_io_timeouts(out->get());
    errno = saved;
    return rc;
  }
};

}  // namespace ssx::test

#endif  // SSX_TESTS_INTEROP_INTEROP_HPP
