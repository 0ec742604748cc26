// SPDX-License-Identifier: Apache-2.0
// bench/probes/openssl_memory_stages.cpp — where raw OpenSSL's per-connection memory goes.
//
// Not part of `make bench`; docs/benchmarks.md quotes it to explain W6. One thread, 500 TLS
// connections over socketpairs, heap in use (mallinfo2) per end at each stage: after SSL_new,
// after the handshake, and per end after freeing it. Same pinned parameters as the suite.
//
//   build/bench/ssx_bench_pki DIR
//   build/bench/ssx_bench_probe_memory DIR DIR/server.crt RELEASE_BUFFERS(0|1)
//
// Pass a certificate file holding only the leaf to see what sending the CA costs the client.

#include <fcntl.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::size_t heap() {
  struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DIR CERTIFICATE_FILE RELEASE_BUFFERS\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const bool release = std::atoi(argv[3]) != 0;
  const int n = 500;
  SSL_CTX *server = SSL_CTX_new(TLS_server_method());
  SSL_CTX *client = SSL_CTX_new(TLS_client_method());
  for (SSL_CTX *ctx : {server, client}) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
    SSL_CTX_set1_groups_list(ctx, "X25519");
    if (release) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  }
  if (SSL_CTX_use_certificate_chain_file(server, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file(server, (dir + "/server.key").c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(client, (dir + "/ca.crt").c_str(), nullptr) != 1) {
    std::fprintf(stderr, "cannot load credentials from %s\n", dir.c_str());
    return 1;
  }
  SSL_CTX_set_verify(client, SSL_VERIFY_PEER, nullptr);

  std::vector<std::pair<SSL *, SSL *>> pairs;
  std::size_t new_client = 0, new_server = 0, handshake = 0;
  auto connect_one = [&] {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) std::exit(1);
    ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
    ::fcntl(sv[1], F_SETFL, O_NONBLOCK);
    std::size_t h0 = heap();
    SSL *c = SSL_new(client);
    SSL_set_fd(c, sv[0]);
    SSL_set_tlsext_host_name(c, "localhost");
    SSL_set1_host(c, "localhost");
    std::size_t h1 = heap();
    SSL *s = SSL_new(server);
    SSL_set_fd(s, sv[1]);
    std::size_t h2 = heap();
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (int i = 0; i < 100; ++i) {
      int rc = SSL_do_handshake(c);
      int rs = SSL_do_handshake(s);
      if (rc == 1 && rs == 1) break;
    }
    new_client += h1 - h0;
    new_server += h2 - h1;
    handshake += heap() - h2;
    pairs.emplace_back(c, s);
  };
  connect_one();  // warm-up: lazily built state belongs to no connection
  new_client = new_server = handshake = 0;
  const std::size_t before = heap();
  for (int i = 0; i < n; ++i) connect_one();
  const double total = static_cast<double>(heap() - before) / 1024.0 / n;
  std::size_t h = heap();
  for (auto &p : pairs) SSL_free(p.second);
  const double server_end = static_cast<double>(h - heap()) / 1024.0 / (n + 1);
  h = heap();
  for (auto &p : pairs) SSL_free(p.first);
  const double client_end = static_cast<double>(h - heap()) / 1024.0 / (n + 1);
  std::printf(
      "{\"release_buffers\":%s,\"certificate_file\":\"%s\",\"kib_per_pair\":%.1f,"
      "\"ssl_new_client_kib\":%.1f,\"ssl_new_server_kib\":%.1f,\"handshake_kib\":%.1f,"
      "\"server_end_kib\":%.1f,\"client_end_kib\":%.1f}\n",
      release ? "true" : "false", argv[2], total, new_client / 1024.0 / n, new_server / 1024.0 / n,
      handshake / 1024.0 / n, server_end, client_end);
  return 0;
}
