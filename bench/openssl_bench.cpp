// SPDX-License-Identifier: Apache-2.0
// bench/openssl_bench.cpp — the raw OpenSSL baseline (W2–W6): OpenSSL used directly, the way a
// competent programmer would. One SSL_CTX per role, built once and reused; SSL_set_fd (OpenSSL's
// own socket BIO) on blocking sockets; OpenSSL's default modes and buffers. The pinned
// parameters are the same as ssx's policy: TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, the server
// sends its ECDSA P-256 leaf and the CA; the client verifies the chain against the CA and the
// name "localhost" (SNI + host name check). No client certificate on either side.
//
// Session resumption (W4) is what the OpenSSL documentation suggests for a client: after the
// first read, SSL_get1_session() holds the newest ticket, and the next connection offers it
// with SSL_set_session().

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include "workloads.hpp"

namespace {

[[noreturn]] void die_ssl(const std::string &what) {
  char buf[256] = "";
  unsigned long e = ERR_get_error();
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  bench::die(what + (e != 0 ? std::string(": ") + buf : std::string()));
}

// make_ctx builds one role's context. |release_buffers| is for the W6 side experiment only
// (`--release-buffers 1`): the baseline itself keeps OpenSSL's default modes.
SSL_CTX *make_ctx(bool server, const std::string &dir, bool release_buffers) {
  SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) die_ssl("SSL_CTX_new");
  if (release_buffers) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) die_ssl("ciphersuites");
  if (SSL_CTX_set1_groups_list(ctx, "X25519") != 1) die_ssl("groups");
  if (server) {
    if (SSL_CTX_use_certificate_chain_file(ctx, (dir + "/server.crt").c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, (dir + "/server.key").c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      die_ssl("server credentials");
    }
  } else {
    if (SSL_CTX_load_verify_locations(ctx, (dir + "/ca.crt").c_str(), nullptr) != 1) {
      die_ssl("trust");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

struct OpenSsl {
  struct Conn {
    int fd = -1;
    SSL *ssl = nullptr;
  };
  static constexpr bool kTls = true;
  static const char *name() { return release ? "openssl_release_buffers" : "openssl"; }
  static bool valid(const Conn &c) { return c.ssl != nullptr; }
  static int fd(const Conn &c) { return c.fd; }

  OpenSsl(const std::string &dir, bool release_buffers)
      : server_ctx(make_ctx(true, dir, release_buffers)),
        client_ctx(make_ctx(false, dir, release_buffers)) {
    release = release_buffers;
  }

  int listen() { return bench::plain_listener(); }

  Conn accept(int listener) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return {};
    SSL *ssl = SSL_new(server_ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      ERR_clear_error();
      SSL_free(ssl);
      ::close(fd);
      return {};
    }
    return {fd, ssl};
  }

  Conn connect(std::uint16_t port) {
    int fd = bench::plain_connect(port);
    SSL *ssl = SSL_new(client_ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (session != nullptr) SSL_set_session(ssl, session);
    if (SSL_connect(ssl) != 1) die_ssl("SSL_connect");
    return {fd, ssl};
  }

  void write_all(Conn &c, const void *data, std::size_t n) {
    std::size_t written = 0;
    if (SSL_write_ex(c.ssl, data, n, &written) != 1 || written != n) die_ssl("SSL_write_ex");
  }
  std::size_t read_some(Conn &c, void *buf, std::size_t n) {
    std::size_t got = 0;
    if (SSL_read_ex(c.ssl, buf, n, &got) == 1) return got;
    if (SSL_get_error(c.ssl, 0) == SSL_ERROR_ZERO_RETURN) return 0;
    die_ssl("SSL_read_ex");
  }
  // wait_idle: what an event loop does with an idle connection (read until it would block).
  // The socket is blocking for the other workloads, so O_NONBLOCK is set around the read.
  void wait_idle(Conn &c) {
    const int flags = ::fcntl(c.fd, F_GETFL);
    ::fcntl(c.fd, F_SETFL, flags | O_NONBLOCK);
    char byte = 0;
    std::size_t got = 0;
    const int r = SSL_read_ex(c.ssl, &byte, 1, &got);
    if (r == 1 || SSL_get_error(c.ssl, r) != SSL_ERROR_WANT_READ) die_ssl("idle: not idle");
    ::fcntl(c.fd, F_SETFL, flags);
  }
  void finish(Conn &c) {
    SSL_shutdown(c.ssl);
    ::shutdown(c.fd, SHUT_WR);
  }
  void close(Conn &c) {
    if (c.ssl != nullptr) {
      if ((SSL_get_shutdown(c.ssl) & SSL_SENT_SHUTDOWN) == 0) SSL_shutdown(c.ssl);
      ERR_clear_error();
      SSL_free(c.ssl);
    }
    if (c.fd >= 0) ::close(c.fd);
    c = {};
  }
  void close_listener(int fd) { ::close(fd); }
  bool resumed(Conn &c) { return SSL_session_reused(c.ssl) == 1; }
  void after_read(Conn &c) {
    // TLS 1.3 tickets are single use: keep the newest for the next connection.
    if (SSL_SESSION *s = SSL_get1_session(c.ssl)) {
      if (session != nullptr) SSL_SESSION_free(session);
      session = s;
    }
  }
  std::pair<std::string, std::string> negotiated(Conn &c) {
    const SSL_CIPHER *cipher = SSL_get_current_cipher(c.ssl);
    const char *group = SSL_group_to_name(c.ssl, SSL_get_negotiated_group(c.ssl));
    return {cipher ? SSL_CIPHER_standard_name(cipher) : "?", group ? group : "?"};
  }

  SSL_CTX *server_ctx;
  SSL_CTX *client_ctx;
  SSL_SESSION *session = nullptr;
  static inline bool release = false;
};

}  // namespace

int main(int argc, char **argv) {
  bench::Options options(argc, argv);
  bench::ignore_sigpipe();
  OpenSsl impl(options.str("dir", "."), options.num("release-buffers", 0) != 0);
  return bench::run(impl, options);
}
