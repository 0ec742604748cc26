// SPDX-License-Identifier: Apache-2.0
// bench/ssx_bench.cpp — ssx through its public APIs (W2–W6): `--api c` (default) uses ssx/ssx.h,
// `--api cpp` the RAII classes of ssx/ssx.hpp. The policy file in --dir pins the same parameters
// as the raw OpenSSL baseline: TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, the server's ECDSA P-256
// leaf under a CA, the client verifying the chain and the target name "localhost".
//
// Resumption (W4) needs nothing from the application: ssx keeps the tickets a connection received
// and offers one on the next connection to the same address and name. The check that it happened
// is SSX_INFO_RESUMED from ssx_query_socket_security.

#include <unistd.h>

#include <span>

#include "ssx/ssx.h"
#include "ssx/ssx.hpp"
#include "workloads.hpp"

namespace {

[[noreturn]] void die_ssx(const std::string &what) {
  bench::die(what + ": " + std::strerror(errno) + " — " + ssx_last_error());
}

constexpr ssx_security_settings kSettings = {SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};

// load_policy loads DIR/policy.toml, or for W6 (memory) and W3's exchange variant
// (--request-size) DIR/policy-memory.toml, which also turns ssx's automatic client-side
// resumption off: raw OpenSSL's clients there do not resume either, so every connection is a full
// handshake however soon the server's tickets arrive.
void load_policy(const std::string &dir, const std::string &workload) {
  const std::string file = workload == "memory" || workload == "handshake-exchange"
                               ? "/policy-memory.toml"
                               : "/policy.toml";
  if (ssx_load_policy((dir + file).c_str()) != 0) die_ssx("ssx_load_policy");
}

// query returns the security info of |fd|; the caller frees it.
ssx_security_info *query(int fd) {
  ssx_security_info *info = nullptr;
  if (ssx_query_socket_security(fd, nullptr, 0, &info) != 0) die_ssx("ssx_query_socket_security");
  return info;
}

struct SsxC {
  struct Conn {
    int fd = -1;
  };
  static constexpr bool kTls = true;
  static const char *name() { return "ssx_c"; }
  static bool valid(const Conn &c) { return c.fd >= 0; }
  static int fd(const Conn &c) { return c.fd; }

  SsxC(const std::string &dir, const std::string &workload) { load_policy(dir, workload); }

  int listen() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) bench::die_errno("socket");
    if (ssx_set_socket_security(fd, &kSettings, sizeof kSettings) != 0)
      die_ssx("ssx_set_socket_security");
    bench::bind_listen(fd);
    return fd;
  }
  Conn accept(int listener) { return Conn{ssx_accept(listener, nullptr, nullptr)}; }
  Conn connect(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) bench::die_errno("socket");
    if (ssx_set_socket_security(fd, &kSettings, sizeof kSettings) != 0)
      die_ssx("ssx_set_socket_security");
    if (ssx_set_socket_peer_target_name(fd, "localhost", nullptr, 0) != 0) die_ssx("target name");
    sockaddr_in a = bench::loopback(port);
    if (ssx_connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) die_ssx("ssx_connect");
    return Conn{fd};
  }
  void write_all(Conn &c, const void *data, std::size_t n) {
    // A blocking ssx_send sends everything or fails.
    if (ssx_send(c.fd, data, n, 0) != static_cast<ssize_t>(n)) die_ssx("ssx_send");
  }
  std::size_t read_some(Conn &c, void *buf, std::size_t n) {
    ssize_t r = ssx_recv(c.fd, buf, n, 0);
    if (r < 0) die_ssx("ssx_recv");
    return static_cast<std::size_t>(r);
  }
  void wait_idle(Conn &c) {
    char byte = 0;
    if (ssx_recv(c.fd, &byte, 1, MSG_DONTWAIT) >= 0 || errno != EAGAIN) die_ssx("idle: not idle");
  }
  void finish(Conn &c) {
    if (ssx_shutdown(c.fd, SHUT_WR) != 0) die_ssx("ssx_shutdown");
  }
  void close(Conn &c) {
    if (c.fd >= 0) ssx_close(c.fd);
    c.fd = -1;
  }
  void close_listener(int fd) { ssx_close(fd); }
  bool resumed(Conn &c) {
    ssx_security_info *info = query(c.fd);
    bool r = (info->flags & SSX_INFO_RESUMED) != 0;
    ssx_free_security_info(info);
    return r;
  }
  void after_read(Conn &) {}
  std::pair<std::string, std::string> negotiated(Conn &c) {
    ssx_security_info *info = query(c.fd);
    std::pair<std::string, std::string> out{info->cipher ? info->cipher : "?",
                                            info->group ? info->group : "?"};
    ssx_free_security_info(info);
    return out;
  }
};

struct SsxCpp {
  using Conn = ssx::Socket;
  static constexpr bool kTls = true;
  static const char *name() { return "ssx_cpp"; }
  static bool valid(const Conn &c) { return c.is_open(); }
  static int fd(const Conn &c) { return c.native_handle(); }

  SsxCpp(const std::string &dir, const std::string &workload) {
    load_policy(dir, workload);
    settings.guarantee_encryption = true;
    settings.target_names = {"localhost"};
  }

  int listen() {
    sockaddr_in a = bench::loopback(0);
    ssx::SecuritySettings server;
    server.guarantee_encryption = true;
    auto l = ssx::Listener::bind(reinterpret_cast<sockaddr *>(&a), sizeof a, server);
    if (!l) bench::die("Listener::bind: " + l.error().message);
    listener = std::move(*l);
    return listener.native_handle();
  }
  Conn accept(int) {
    auto s = listener.accept();
    return s ? std::move(*s) : Conn();
  }
  Conn connect(std::uint16_t port) {
    sockaddr_in a = bench::loopback(port);
    auto s = ssx::Socket::connect(reinterpret_cast<sockaddr *>(&a), sizeof a, settings);
    if (!s) bench::die("Socket::connect: " + s.error().message);
    return std::move(*s);
  }
  void write_all(Conn &c, const void *data, std::size_t n) {
    auto r = c.send(std::span(static_cast<const std::byte *>(data), n));
    if (!r || *r != n) bench::die("Socket::send failed");
  }
  std::size_t read_some(Conn &c, void *buf, std::size_t n) {
    auto r = c.recv(std::span(static_cast<std::byte *>(buf), n));
    if (!r) bench::die("Socket::recv: " + r.error().message);
    return *r;
  }
  void wait_idle(Conn &c) {
    std::byte byte{};
    auto r = c.recv(std::span(&byte, 1), MSG_DONTWAIT);
    if (r || r.error().code != EAGAIN) {
      bench::die("idle: not idle");
    }
  }
  void finish(Conn &c) {
    if (!c.shutdown(SHUT_WR)) bench::die("Socket::shutdown failed");
  }
  void close(Conn &c) { c.close(); }
  void close_listener(int) { listener = ssx::Listener(); }
  bool resumed(Conn &c) { return c.query_security().value().resumed(); }
  void after_read(Conn &) {}
  std::pair<std::string, std::string> negotiated(Conn &c) {
    auto info = c.query_security().value();
    return {info.cipher, info.group};
  }

  ssx::SecuritySettings settings;
  ssx::Listener listener;
};

}  // namespace

int main(int argc, char **argv) {
  bench::Options options(argc, argv);
  const std::string dir = options.str("dir", ".");
  const std::string api = options.str("api", "c");
  // The policy for W3's exchange variant differs (no client-side resumption).
  const std::string policy_for =
      options.workload() == "handshake" && options.count("request-size", 0) > 0
          ? "handshake-exchange"
          : options.workload();
  if (api == "c") {
    SsxC impl(dir, policy_for);
    return bench::run(impl, options);
  }
  if (api == "cpp") {
    SsxCpp impl(dir, policy_for);
    return bench::run(impl, options);
  }
  bench::die("--api must be c or cpp");
}
