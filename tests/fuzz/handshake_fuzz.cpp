// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: a hostile peer on the other end of a tls::Session, over a socketpair, in one
// thread. It fuzzes ssx's own handling of what OpenSSL reports (alerts, errors, truncation,
// close_notify, KeyUpdate and ticket floods, garbage after the handshake), not only OpenSSL's
// parsers.
//
// The first input byte picks the scenario; the rest drives it:
//   0 (mod 4)  ssx is the server; the rest of the input is the client's bytes, verbatim
//              (ClientHello parsing, record layer, alerts, cleartext detection);
//   1          ssx is the client; the rest is the server's bytes, verbatim;
//   2          ssx is the server, an OpenSSL client in this process completes the handshake, then
//              the rest is a script of peer actions (below);
//   3          the same with ssx as the client and an OpenSSL server as the peer.
// Script: one opcode byte (mod 8) each, some with an argument byte:
//   0 N   peer writes N+1 bytes of application data      4     peer sends close_notify
//   1     peer sends KeyUpdate (update_requested)          5 N   ssx writes N*64+1 bytes
//   2     peer sends KeyUpdate (update_not_requested)      6 N   N raw bytes follow, written
//   3     peer half-closes TCP (truncation)                      straight to the stream
//   7     ssx sends close_notify
// After each action ssx reads what it can and the peer reads what it can.
//
// What must hold besides "no crash, leak, hang or sanitizer report":
//   - every failure carries an errno from docs/errors.md's connection errors, never EAGAIN as an
//     error or EINVAL/EFAULT (a bug in our use of OpenSSL), and a message of bounded size;
//   - what ssx delivers is always a prefix of what the peer wrote, in order (no forged or
//     reordered byte is ever returned);
//   - when the peer only wrote data and closed with close_notify, ssx delivers all of it and then
//     end of stream (unless a flood limit ended the session first, with EPROTO);
//   - what the peer reads is a prefix of what ssx wrote.
//
// Run: make fuzz-smoke (all targets briefly) or make fuzz-long FUZZ_SECONDS=N.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "ossl/ossl.hpp"
#include "protocol/tls/context.hpp"
#include "protocol/tls/session.hpp"
#include "testlib/test_pki.hpp"

namespace {

using ssx::tls::Context;
using ssx::tls::Role;
using ssx::tls::Session;
using ssx::tls::Want;

constexpr int kMaxSteps = 64;  // handshake and drain loops: bounded whatever the input

struct Fixture {
  ssx::test::TestPki pki;
  std::shared_ptr<Context> server, client;
  ssx::ossl::UniquePtr<SSL_CTX> peer_client, peer_server;
  ssx::identity::TargetName localhost;

  Fixture() {
    const ssx::test::CredentialFiles server_files = pki.server();
    ssx::policy::Settings s;
    s.trust_bundle = pki.ca_cert();
    s.certificate = server_files.cert;
    s.private_key = server_files.key;
    s.groups = {"X25519"};  // one key share: no HelloRetryRequest in the common case
    server = Context::build(s, Role::server).value();
    ssx::policy::Settings c;
    c.trust_bundle = pki.ca_cert();
    c.groups = {"X25519"};
    client = Context::build(c, Role::client).value();
    localhost = ssx::identity::parse_target_name("localhost").value();

    peer_client.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(peer_client.get(), TLS1_3_VERSION);
    SSL_CTX_load_verify_locations(peer_client.get(), pki.ca_cert().c_str(), nullptr);
    SSL_CTX_set_verify(peer_client.get(), SSL_VERIFY_PEER, nullptr);
    peer_server.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_set_min_proto_version(peer_server.get(), TLS1_3_VERSION);
    SSL_CTX_use_certificate_chain_file(peer_server.get(), server_files.cert.c_str());
    SSL_CTX_use_PrivateKey_file(peer_server.get(), server_files.key.c_str(), SSL_FILETYPE_PEM);
    // Tickets are part of what a TLS 1.3 server sends after the handshake: keep them.
  }
};

Fixture &fixture() {
  static Fixture *f = new Fixture();  // never destroyed: its temporary directory stays
  return *f;
}

struct Pair {
  int ssx_fd = -1, peer_fd = -1;
  Pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
      std::abort();
    ssx_fd = fds[0];
    peer_fd = fds[1];
  }
  ~Pair() {
    ::close(ssx_fd);
    ::close(peer_fd);
  }
  Pair(const Pair &) = delete;
  Pair &operator=(const Pair &) = delete;
};

void check_failure(const ssx::Failure &f) {
  switch (f.code) {
    case EPROTO:
    case ECONNRESET:
    case EPIPE:
    case EKEYREJECTED:
    case EKEYEXPIRED:
    case EACCES:
      break;
    default:
      std::abort();  // EAGAIN, EINVAL, EFAULT, ENOMEM …: not a peer's doing
  }
  if (f.message.empty() || f.message.size() > 4096) std::abort();
}

std::unique_ptr<Session> make_session(Role role, int fd) {
  Fixture &f = fixture();
  ssx::tls::PeerRequirements req;
  if (role == Role::client) req.app_names = {f.localhost};
  auto s = Session::create(role == Role::server ? f.server : f.client, fd, std::move(req),
                           role == Role::client ? "localhost" : "", "");
  if (!s) std::abort();
  return std::move(*s);
}

void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the buffer is full or ssx went away: the rest is simply not sent
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Scenario 0/1: the peer's side of the stream is the input, verbatim.
void raw_peer(Role role, std::string_view bytes) {
  Pair pair;
  auto session = make_session(role, pair.ssx_fd);
  write_all(pair.peer_fd, bytes);
  ::shutdown(pair.peer_fd, SHUT_WR);
  for (int step = 0; step < kMaxSteps; ++step) {
    auto r = session->handshake();
    if (!r) {
      check_failure(r.error());
      return;
    }
    if (*r == Want::nothing) break;
    char drain[4096];
    while (::recv(pair.peer_fd, drain, sizeof drain, 0) > 0) {
    }
  }
  // Established on fuzzed bytes would mean a forged handshake: impossible without the keys.
  if (session->established()) std::abort();
}

class Script {
 public:
  Script(Role ssx_role, std::string_view ops) : ops_(ops) {
    Fixture &f = fixture();
    session_ = make_session(ssx_role, pair_.ssx_fd);
    peer_.reset(SSL_new(ssx_role == Role::server ? f.peer_client.get() : f.peer_server.get()));
    if (!peer_) std::abort();
    SSL_set_fd(peer_.get(), pair_.peer_fd);
    if (ssx_role == Role::server) {
      SSL_set_connect_state(peer_.get());
      SSL_set_tlsext_host_name(peer_.get(), "localhost");
    } else {
      SSL_set_accept_state(peer_.get());
    }
  }

  void run() {
    if (!handshake()) return;
    while (!ops_.empty() && alive_) {
      const int op = static_cast<unsigned char>(ops_.front()) % 8;
      ops_.remove_prefix(1);
      act(op);
      ssx_read();
      peer_read();
    }
    if (alive_ && stream_clean_ && peer_closed_) {
      // Nothing but data and close_notify: everything arrives, then end of stream.
      ssx_read();
      if (alive_ && (received_ != sent_ || !end_of_stream_)) std::abort();
    }
    if (std::getenv("SSX_FUZZ_TRACE") != nullptr) {  // to see what a given input did
      std::fprintf(stderr, "peer sent %zu, ssx got %zu%s; ssx wrote %zu, peer got %zu; %s\n",
                   sent_.size(), received_.size(), end_of_stream_ ? " + end of stream" : "",
                   written_.size(), peer_received_.size(), alive_ ? "alive" : "failed");
    }
  }

 private:
  bool handshake() {
    for (int step = 0; step < kMaxSteps; ++step) {
      if (!session_->established()) {
        auto r = session_->handshake();
        if (!r) std::abort();  // an honest peer: the handshake must succeed
      }
      ERR_clear_error();
      const int rc = SSL_do_handshake(peer_.get());
      if (rc != 1) {
        const int err = SSL_get_error(peer_.get(), rc);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) std::abort();
      }
      if (rc == 1 && session_->established()) return true;
    }
    std::abort();  // two honest ends that never finish
  }

  std::size_t arg() {
    if (ops_.empty()) return 0;
    const auto v = static_cast<unsigned char>(ops_.front());
    ops_.remove_prefix(1);
    return v;
  }

  void act(int op) {
    switch (op) {
      case 0: {
        const std::string data(arg() + 1, static_cast<char>('a' + (sent_.size() % 26)));
        peer_write(data);
        break;
      }
      case 1:
      case 2:
        if (peer_closed_) break;
        SSL_key_update(peer_.get(),
                       op == 1 ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED);
        SSL_do_handshake(peer_.get());  // sends it
        ERR_clear_error();
        break;
      case 3:
        ::shutdown(pair_.peer_fd, SHUT_WR);
        stream_clean_ = false;  // truncation unless close_notify went first
        peer_closed_ = true;
        break;
      case 4:
        if (!peer_closed_) SSL_shutdown(peer_.get());
        ERR_clear_error();
        peer_closed_ = true;
        break;
      case 5: {
        const std::string data(arg() * 64 + 1, 'z');
        auto r = session_->write(data.data(), data.size());
        if (!r) {
          check_failure(r.error());
          alive_ = false;
        } else {
          written_.append(data, 0, r->bytes);
        }
        break;
      }
      case 6: {
        const std::size_t n = std::min(arg(), ops_.size());
        write_all(pair_.peer_fd, ops_.substr(0, n));
        ops_.remove_prefix(n);
        stream_clean_ = false;
        break;
      }
      case 7: {
        auto r = session_->send_close_notify();
        if (!r) {
          check_failure(r.error());
          alive_ = false;
        }
        break;
      }
      default:
        break;
    }
  }

  void peer_write(const std::string &data) {
    if (peer_closed_) return;
    ERR_clear_error();
    const int n = SSL_write(peer_.get(), data.data(), static_cast<int>(data.size()));
    if (n > 0) sent_.append(data, 0, static_cast<std::size_t>(n));
    ERR_clear_error();
  }

  void ssx_read() {
    char buf[4096];
    for (int step = 0; step < kMaxSteps && alive_ && !end_of_stream_; ++step) {
      auto r = session_->read(buf, sizeof buf, false);
      if (!r) {
        check_failure(r.error());
        alive_ = false;
        break;
      }
      if (r->end_of_stream) {
        end_of_stream_ = true;
        break;
      }
      if (r->bytes == 0) break;  // wants more
      received_.append(buf, r->bytes);
      if (received_.size() > sent_.size() || sent_.compare(0, received_.size(), received_) != 0)
        std::abort();  // a byte the peer never sent, or out of order
    }
  }

  void peer_read() {
    char buf[4096];
    for (int step = 0; step < kMaxSteps; ++step) {
      ERR_clear_error();
      const int n = SSL_read(peer_.get(), buf, sizeof buf);
      if (n <= 0) break;
      peer_received_.append(buf, static_cast<std::size_t>(n));
      if (peer_received_.size() > written_.size() ||
          written_.compare(0, peer_received_.size(), peer_received_) != 0)
        std::abort();
    }
    ERR_clear_error();
  }

  Pair pair_;
  std::string_view ops_;
  std::unique_ptr<Session> session_;
  ssx::ossl::UniquePtr<SSL> peer_;
  std::string sent_, received_, written_, peer_received_;
  bool alive_ = true;
  bool end_of_stream_ = false;
  bool stream_clean_ = true;
  bool peer_closed_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      raw_peer(Role::server, rest);
      break;
    case 1:
      raw_peer(Role::client, rest);
      break;
    case 2:
      Script(Role::server, rest).run();
      break;
    default:
      Script(Role::client, rest).run();
      break;
  }
  ERR_clear_error();
  return 0;
}
