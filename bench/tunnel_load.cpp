// SPDX-License-Identifier: Apache-2.0
// bench/tunnel_load.cpp — W7 (tunnels): the load generator, the backend service and a TLS probe,
// in one program that knows nothing of the proxies it measures. bench/run.py starts a client-side
// proxy (cleartext in, TLS out) and a server-side proxy (TLS in, cleartext out) — ssx tunnel,
// stunnel or haproxy — and runs this program at both ends of the chain:
//
//   load generator ──▶ client-side proxy ══TLS══▶ server-side proxy ──▶ backend (serve)
//
//   ssx_bench_tunnel_load serve [--lifetime S]
//       The backend: listens on 127.0.0.1, on a port the kernel picks, printed as the first JSON
//       line ({"port":N}). One thread, epoll. Runs until SIGTERM, until its standard input reaches
//       end of file (the driver holds a pipe; by hand, `sleep inf | ...`) or for at most
//       --lifetime seconds, then prints a second JSON line with its totals.
//   ssx_bench_tunnel_load bulk --port P --seconds S [--write-size 16384]
//       One connection to P: --write-size writes for S seconds, then a half-close and the
//       backend's reply. MB/s = payload bytes / (first write → reply received); the reply must
//       count every byte, and every byte must match the pattern.
//   ssx_bench_tunnel_load connections --port P --seconds S [--concurrency C]
//                                     [--max-connections N]
//       C threads, each opening connections one after another for S seconds: connect, a 64-byte
//       request, the backend's 64-byte reply, the end of the stream, close. A connection that
//       fails is counted (with the first error) rather than fatal: the driver decides.
//   ssx_bench_tunnel_load probe --port P --dir D [--ciphersuites LIST] [--groups LIST]
//                               [--tls12 1] [--name N]
//       Raw OpenSSL straight to a server-side proxy, twice, the second time offering the first
//       connection's session: what was negotiated, whether the chain and the name verified
//       against D/ca.crt, whether the second connection resumed. A refused handshake is a result
//       ("handshake":false), not an error, so the driver can check that off-pin offers fail.
//
// The backend protocol. The client sends an 8-byte little-endian length L, then the payload:
// exactly L bytes, or, when L is kUntilEof, bytes until it half-closes. Payload byte i is
// pattern[i mod 16384] (bench::pattern) and the backend checks every byte. When the payload is
// complete the backend sends a 64-byte reply — payload bytes received (u64 LE), bytes that did not
// match (u64 LE), then a fixed tag — and closes. Every loop is bounded in count and in time, and
// each mode has an alarm(2) watchdog.

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common.hpp"

namespace {

using bench::die;
using bench::die_errno;
using bench::now_ns;

constexpr std::size_t kPatternSize = 16384;
constexpr std::uint64_t kUntilEof = ~std::uint64_t{0};
constexpr std::size_t kHeaderSize = 8;
constexpr std::size_t kRequestSize = 64;  // header included
constexpr std::size_t kReplySize = 64;
constexpr char kTag[] = "ssx-bench-tunnel-reply";

// The pattern twice over, so that any run of up to kPatternSize bytes from any offset is one
// contiguous slice.
const std::vector<unsigned char> &pattern2() {
  static const std::vector<unsigned char> p = [] {
    const auto one = bench::pattern(kPatternSize);
    std::vector<unsigned char> two(2 * kPatternSize);
    for (std::size_t i = 0; i < two.size(); ++i) two[i] = one[i % kPatternSize];
    return two;
  }();
  return p;
}

void put_le64(unsigned char *p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

std::uint64_t get_le64(const unsigned char *p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// mismatches counts the bytes of |data| that differ from the pattern at payload offset |offset|.
std::uint64_t mismatches(const unsigned char *data, std::size_t n, std::uint64_t offset) {
  const auto &pat = pattern2();
  std::uint64_t bad = 0;
  while (n > 0) {
    const std::size_t off = static_cast<std::size_t>(offset % kPatternSize);
    const std::size_t len = std::min(n, kPatternSize);
    const unsigned char *want = pat.data() + off;
    if (std::memcmp(data, want, len) != 0) {
      for (std::size_t i = 0; i < len; ++i) bad += data[i] != want[i] ? 1 : 0;
    }
    data += len;
    n -= len;
    offset += len;
  }
  return bad;
}

void make_reply(unsigned char *reply, std::uint64_t received, std::uint64_t bad) {
  std::memset(reply, '.', kReplySize);
  put_le64(reply, received);
  put_le64(reply + 8, bad);
  std::memcpy(reply + 16, kTag, sizeof kTag - 1);
}

// Reply is the backend's answer as the client parsed it.
struct Reply {
  bool well_formed = false;
  std::uint64_t received = 0;
  std::uint64_t bad = 0;
};

Reply parse_reply(const unsigned char *data, std::size_t n) {
  Reply r;
  if (n != kReplySize || std::memcmp(data + 16, kTag, sizeof kTag - 1) != 0) return r;
  r.well_formed = true;
  r.received = get_le64(data);
  r.bad = get_le64(data + 8);
  return r;
}

void set_timeouts(int fd, int seconds) {
  timeval tv{};
  tv.tv_sec = seconds;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// connect_to opens a blocking connection to 127.0.0.1:|port|; -1 with errno on failure.
int connect_to(std::uint16_t port, int timeout_seconds) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_timeouts(fd, timeout_seconds);
  sockaddr_in a = bench::loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// send_all: true when every byte went out.
bool send_all(int fd, const void *data, std::size_t n) {
  const auto *p = static_cast<const unsigned char *>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// read_to_eof reads at most |cap| bytes and then requires the end of the stream. Returns the
// byte count, or -1 with errno (EMSGSIZE: more than |cap| bytes arrived).
ssize_t read_to_eof(int fd, unsigned char *buf, std::size_t cap) {
  std::size_t got = 0;
  for (int i = 0; i < 1000; ++i) {  // bounded: each read returns data, EOF or an error
    unsigned char extra;
    unsigned char *into = got < cap ? buf + got : &extra;
    std::size_t room = got < cap ? cap - got : 1;
    ssize_t r = ::recv(fd, into, room, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return static_cast<ssize_t>(got);
    if (got >= cap) {
      errno = EMSGSIZE;
      return -1;
    }
    got += static_cast<std::size_t>(r);
  }
  errno = EMSGSIZE;
  return -1;
}

std::string errno_text(const std::string &what) {
  return what + ": " + std::strerror(errno);
}

// ---------------------------------------------------------------------------------------------
// serve: the backend.

volatile sig_atomic_t g_stop = 0;

void on_stop(int) {
  g_stop = 1;
}

struct Peer {
  int fd = -1;
  unsigned char header[kHeaderSize] = {};
  std::size_t header_got = 0;
  std::uint64_t expect = 0;
  std::uint64_t got = 0;
  std::uint64_t bad = 0;
  bool replying = false;
  unsigned char reply[kReplySize] = {};
  std::size_t reply_sent = 0;
};

struct ServeTotals {
  std::uint64_t accepted = 0, replied = 0, aborted = 0, payload_bytes = 0, bad_bytes = 0;
};

int serve(const bench::Options &o) {
  const double lifetime = o.num("lifetime", 3600);
  bench::watchdog(lifetime + 5);
  struct sigaction sa {};
  sa.sa_handler = on_stop;  // no SA_RESTART: epoll_wait returns EINTR
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  bench::ignore_sigpipe();

  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) die_errno("socket");
  bench::bind_listen(listener, 4096);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die_errno("epoll_create1");
  auto add = [&](int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die_errno("epoll_ctl");
  };
  add(listener, EPOLLIN);
  add(STDIN_FILENO, EPOLLIN);
  bench::Json().add("port", static_cast<int>(bench::port_of(listener))).print();

  std::unordered_map<int, Peer> peers;
  ServeTotals totals;
  std::vector<unsigned char> buf(256 * 1024);
  const std::uint64_t end = now_ns() + static_cast<std::uint64_t>(lifetime * 1e9);

  auto finish = [&](Peer &p, bool replied) {
    if (replied) {
      ++totals.replied;
    } else {
      ++totals.aborted;
    }
    totals.payload_bytes += p.got;
    totals.bad_bytes += p.bad;
    const int fd = p.fd;
    ::close(fd);  // also removes it from epoll
    peers.erase(fd);
  };
  // send_reply writes what is left of the reply; the peer is gone when it returns true.
  auto send_reply = [&](Peer &p) {
    while (p.reply_sent < kReplySize) {
      ssize_t w = ::send(p.fd, p.reply + p.reply_sent, kReplySize - p.reply_sent, MSG_NOSIGNAL);
      if (w > 0) {
        p.reply_sent += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) return false;  // EPOLLOUT will come
      finish(p, false);
      return true;
    }
    finish(p, true);
    return true;
  };
  auto start_reply = [&](Peer &p) {
    p.replying = true;
    make_reply(p.reply, p.got, p.bad);
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.fd = p.fd;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, p.fd, &ev);
    return send_reply(p);
  };
  // consume takes |n| bytes read from |p|; true when reading stops (replying, or gone).
  auto consume = [&](Peer &p, const unsigned char *data, std::size_t n) {
    while (n > 0 && p.header_got < kHeaderSize) {
      p.header[p.header_got++] = *data++;
      --n;
      if (p.header_got == kHeaderSize) p.expect = get_le64(p.header);
    }
    if (n == 0) return false;
    std::size_t take = n;
    if (p.expect != kUntilEof && p.got + take > p.expect) {
      const std::uint64_t room = p.expect - p.got;
      p.bad += take - room;  // more than announced counts as damage
      take = static_cast<std::size_t>(room);
    }
    p.bad += mismatches(data, take, p.got);
    p.got += take;
    if (p.expect != kUntilEof && p.got == p.expect) {
      start_reply(p);
      return true;
    }
    return false;
  };

  epoll_event events[64];
  while (!g_stop && now_ns() < end) {
    int n = ::epoll_wait(ep, events, 64, 1000);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die_errno("epoll_wait");
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == STDIN_FILENO) {
        char c;
        if (::read(STDIN_FILENO, &c, 1) <= 0) g_stop = 1;
        continue;
      }
      if (fd == listener) {
        for (int k = 0; k < 256; ++k) {
          int c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          ++totals.accepted;
          Peer &p = peers[c];
          p = Peer{};
          p.fd = c;
          add(c, EPOLLIN | EPOLLRDHUP);
        }
        continue;
      }
      auto it = peers.find(fd);
      if (it == peers.end()) continue;
      Peer &p = it->second;
      if (p.replying) {
        send_reply(p);
        continue;
      }
      // Level-triggered: a bounded number of reads per event keeps one busy peer from starving
      // the others; epoll reports it again.
      for (int k = 0; k < 16; ++k) {
        ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        if (r < 0) {
          finish(p, false);
          break;
        }
        if (r == 0) {
          // End of stream: the reply of a bulk transfer, else the client gave up.
          if (p.header_got == kHeaderSize && p.expect == kUntilEof) {
            start_reply(p);
          } else {
            finish(p, false);
          }
          break;
        }
        if (consume(p, buf.data(), static_cast<std::size_t>(r))) break;
      }
    }
  }
  for (auto &[fd, p] : peers) {
    ::close(fd);
    ++totals.aborted;
  }
  bench::Json()
      .add("workload", "tunnel_backend")
      .add("accepted", totals.accepted)
      .add("replied", totals.replied)
      .add("aborted", totals.aborted)
      .add("payload_bytes", totals.payload_bytes)
      .add("bad_bytes", totals.bad_bytes)
      .print();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// bulk: one connection, as many bytes as S seconds allow.

std::uint16_t port_option(const bench::Options &o) {
  const double port = o.num("port", 0);
  if (port < 1 || port > 65535) die("--port is required (1-65535)");
  return static_cast<std::uint16_t>(port);
}

int bulk(const bench::Options &o) {
  const std::uint16_t port = port_option(o);
  const double seconds = o.num("seconds", 5);
  const std::size_t write_size = o.count("write-size", 16384);
  if (write_size == 0 || write_size > kPatternSize) die("--write-size must be 1-16384");
  bench::watchdog(seconds * 2 + 60);
  bench::ignore_sigpipe();

  const auto &pat = pattern2();
  const std::uint64_t cpu_start = bench::cpu_ns();
  int fd = connect_to(port, 30);
  if (fd < 0) die_errno("connect to the client-side proxy");
  unsigned char header[kHeaderSize];
  put_le64(header, kUntilEof);
  const std::uint64_t limit_ns = static_cast<std::uint64_t>(seconds * 1e9);
  const std::uint64_t max_writes = (64ull << 30) / write_size;  // 64 GiB: minutes at any speed
  std::uint64_t sent = 0;
  const std::uint64_t start = now_ns();
  if (!send_all(fd, header, sizeof header)) die_errno("bulk: send");
  for (std::uint64_t i = 0; i < max_writes && now_ns() - start < limit_ns; ++i) {
    const std::size_t off = static_cast<std::size_t>(sent % kPatternSize);
    if (!send_all(fd, pat.data() + off, write_size)) die_errno("bulk: send");
    sent += write_size;
  }
  if (::shutdown(fd, SHUT_WR) != 0) die_errno("bulk: shutdown");
  unsigned char reply[kReplySize];
  std::size_t got = 0;
  while (got < kReplySize) {
    ssize_t r = ::recv(fd, reply + got, kReplySize - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die_errno("bulk: waiting for the backend's reply");
    if (r == 0) die("bulk: the stream ended after " + std::to_string(got) + " reply bytes");
    got += static_cast<std::size_t>(r);
  }
  const std::uint64_t end = now_ns();
  unsigned char rest[16];
  if (read_to_eof(fd, rest, 0) != 0)
    die(errno_text("bulk: no clean end of stream after the reply"));
  ::close(fd);
  const std::uint64_t cpu = bench::cpu_ns() - cpu_start;
  Reply rep = parse_reply(reply, got);
  if (!rep.well_formed) die("bulk: malformed reply");
  if (rep.received != sent || rep.bad != 0) {
    die("bulk: sent " + std::to_string(sent) + " bytes, the backend received " +
        std::to_string(rep.received) + " with " + std::to_string(rep.bad) + " damaged");
  }
  const double secs = static_cast<double>(end - start) / 1e9;
  bench::Json()
      .add("workload", "tunnel_bulk")
      .add("bytes", sent)
      .add("seconds", secs)
      .add("mbps", static_cast<double>(sent) / secs / 1e6)
      .add("write_size", static_cast<std::uint64_t>(write_size))
      .add("backend_received", rep.received)
      .add("backend_damaged", rep.bad)
      .add("load_cpu_seconds", static_cast<double>(cpu) / 1e9)
      .print();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// connections: new connection after new connection, from C threads.

struct ConnStats {
  std::vector<std::uint64_t> latencies;
  std::uint64_t failures = 0;
  std::string first_error;
  std::uint64_t last_end = 0;
};

// one_connection returns "" on success, else what went wrong.
std::string one_connection(std::uint16_t port, const unsigned char *request) {
  int fd = connect_to(port, 10);
  if (fd < 0) return errno_text("connect");
  bench::no_delay(fd);
  std::string error;
  unsigned char reply[kReplySize];
  if (!send_all(fd, request, kRequestSize)) {
    error = errno_text("send");
  } else {
    ssize_t n = read_to_eof(fd, reply, sizeof reply);
    if (n < 0) {
      error = errno_text("reply");
    } else {
      Reply r = parse_reply(reply, static_cast<std::size_t>(n));
      if (!r.well_formed) {
        error = "reply of " + std::to_string(n) + " bytes, not the backend's";
      } else if (r.received != kRequestSize - kHeaderSize || r.bad != 0) {
        error = "backend received " + std::to_string(r.received) + " bytes, " +
                std::to_string(r.bad) + " damaged";
      }
    }
  }
  ::close(fd);
  return error;
}

int connections(const bench::Options &o) {
  const std::uint16_t port = port_option(o);
  const double seconds = o.num("seconds", 5);
  const std::size_t concurrency = o.count("concurrency", 4);
  const std::size_t max_connections = o.count("max-connections", 10000000);
  if (concurrency == 0 || concurrency > 256) die("--concurrency must be 1-256");
  bench::watchdog(seconds * 2 + 60);
  bench::ignore_sigpipe();

  unsigned char request[kRequestSize];
  put_le64(request, kRequestSize - kHeaderSize);
  std::memcpy(request + kHeaderSize, pattern2().data(), kRequestSize - kHeaderSize);

  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> failed{0};
  const std::uint64_t max_failures = 1000;
  std::vector<ConnStats> stats(concurrency);
  const std::uint64_t cpu_start = bench::cpu_ns();
  const std::uint64_t start = now_ns();
  const std::uint64_t deadline = start + static_cast<std::uint64_t>(seconds * 1e9);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      ConnStats &s = stats[t];
      s.latencies.reserve(65536);
      for (;;) {
        const std::uint64_t t0 = now_ns();
        if (t0 >= deadline || failed.load() >= max_failures) break;
        if (started.fetch_add(1) >= max_connections) break;
        std::string error = one_connection(port, request);
        const std::uint64_t t1 = now_ns();
        s.last_end = t1;
        if (error.empty()) {
          s.latencies.push_back(t1 - t0);
        } else {
          ++s.failures;
          failed.fetch_add(1);
          if (s.first_error.empty()) s.first_error = error;
        }
      }
    });
  }
  for (auto &t : threads) t.join();
  const std::uint64_t cpu = bench::cpu_ns() - cpu_start;
  std::vector<std::uint64_t> all;
  std::uint64_t failures = 0, last_end = start;
  std::string first_error;
  for (auto &s : stats) {
    all.insert(all.end(), s.latencies.begin(), s.latencies.end());
    failures += s.failures;
    last_end = std::max(last_end, s.last_end);
    if (first_error.empty()) first_error = s.first_error;
  }
  std::sort(all.begin(), all.end());
  const double secs = static_cast<double>(last_end - start) / 1e9;
  bench::Json()
      .add("workload", "tunnel_connections")
      .add("connections", static_cast<std::uint64_t>(all.size()))
      .add("failures", failures)
      .add("first_error", first_error)
      .add("concurrency", static_cast<std::uint64_t>(concurrency))
      .add("seconds", secs)
      .add("per_second", secs > 0 ? static_cast<double>(all.size()) / secs : 0.0)
      .add("p50_ms", bench::percentile(all, 50) / 1e6)
      .add("p99_ms", bench::percentile(all, 99) / 1e6)
      .add("load_cpu_seconds", static_cast<double>(cpu) / 1e9)
      .print();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// probe: raw OpenSSL straight to a server-side proxy.

std::string ssl_error_text() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return std::strerror(errno);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct ProbeResult {
  bool connected = false;  // TCP connected: a refused handshake is then the proxy's answer
  bool handshake = false;
  std::string error;
  std::string protocol, cipher, group;
  bool verified = false;
  bool reply_ok = false;
  bool clean_close = false;  // the proxy ended the stream with close_notify
  bool resumed = false;
  SSL_SESSION *session = nullptr;  // the newest session after the reply, for the next probe
};

ProbeResult probe_once(SSL_CTX *ctx, std::uint16_t port, const std::string &name,
                       SSL_SESSION *offer) {
  ProbeResult r;
  int fd = connect_to(port, 10);
  if (fd < 0) {
    r.error = errno_text("connect");
    return r;
  }
  r.connected = true;
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, name.c_str());
  SSL_set1_host(ssl, name.c_str());
  if (offer != nullptr) SSL_set_session(ssl, offer);
  if (SSL_connect(ssl) != 1) {
    r.error = ssl_error_text();
  } else {
    r.handshake = true;
    r.protocol = SSL_get_version(ssl);
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    r.cipher = c != nullptr ? SSL_CIPHER_standard_name(c) : "?";
    const char *g = SSL_group_to_name(ssl, SSL_get_negotiated_group(ssl));
    r.group = g != nullptr ? g : "?";
    X509 *peer = SSL_get1_peer_certificate(ssl);
    r.verified = peer != nullptr && SSL_get_verify_result(ssl) == X509_V_OK;
    X509_free(peer);
    r.resumed = SSL_session_reused(ssl) == 1;
    unsigned char request[kRequestSize];
    put_le64(request, kRequestSize - kHeaderSize);
    std::memcpy(request + kHeaderSize, pattern2().data(), kRequestSize - kHeaderSize);
    std::size_t written = 0;
    if (SSL_write_ex(ssl, request, sizeof request, &written) == 1) {
      unsigned char reply[kReplySize];
      std::size_t got = 0;
      for (int i = 0; i < 100; ++i) {  // bounded; the socket has a receive timeout
        std::size_t n = 0;
        unsigned char *into = got < kReplySize ? reply + got : request;
        if (SSL_read_ex(ssl, into, got < kReplySize ? kReplySize - got : 1, &n) == 1) {
          got += n;
          continue;
        }
        r.clean_close = SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN;
        break;
      }
      ERR_clear_error();
      Reply rep = parse_reply(reply, got);
      r.reply_ok = rep.well_formed && rep.received == kRequestSize - kHeaderSize && rep.bad == 0;
    } else {
      r.error = ssl_error_text();
    }
    r.session = SSL_get1_session(ssl);  // after reading: holds the newest ticket, if any
    SSL_shutdown(ssl);
    ERR_clear_error();
  }
  SSL_free(ssl);
  ::close(fd);
  return r;
}

int probe(const bench::Options &o) {
  const std::uint16_t port = port_option(o);
  const std::string dir = o.str("dir", ".");
  const std::string name = o.str("name", "localhost");
  const bool tls12 = o.num("tls12", 0) != 0;
  bench::watchdog(60);
  bench::ignore_sigpipe();

  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) die("SSL_CTX_new: " + ssl_error_text());
  if (tls12) {
    // A TLS 1.2-only client with a suite the pinned certificate could serve: the server must
    // refuse it for the version alone.
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256") != 1) die("cipher list");
  } else {
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_set_ciphersuites(ctx, o.str("ciphersuites", "TLS_AES_128_GCM_SHA256").c_str()) !=
        1) {
      die("--ciphersuites: " + ssl_error_text());
    }
  }
  if (SSL_CTX_set1_groups_list(ctx, o.str("groups", "X25519").c_str()) != 1) {
    die("--groups: " + ssl_error_text());
  }
  if (SSL_CTX_load_verify_locations(ctx, (dir + "/ca.crt").c_str(), nullptr) != 1) {
    die(dir + "/ca.crt: " + ssl_error_text());
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);

  ProbeResult first = probe_once(ctx, port, name, nullptr);
  bench::Json j;
  j.add("workload", "tunnel_probe")
      .add("connected", first.connected)
      .add("handshake", first.handshake)
      .add("error", first.error)
      .add("protocol", first.protocol)
      .add("cipher", first.cipher)
      .add("group", first.group)
      .add("verified", first.verified)
      .add("reply_ok", first.reply_ok)
      .add("clean_close", first.clean_close);
  if (first.handshake) {
    const bool resumable = first.session != nullptr && SSL_SESSION_is_resumable(first.session);
    ProbeResult second = probe_once(ctx, port, name, resumable ? first.session : nullptr);
    j.add("got_ticket", resumable)
        .add("second_handshake", second.handshake)
        .add("second_reply_ok", second.reply_ok)
        .add("resumed", second.resumed);
    SSL_SESSION_free(second.session);
  }
  SSL_SESSION_free(first.session);
  SSL_CTX_free(ctx);
  j.print();
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  bench::Options options(argc, argv);
  const std::string &w = options.workload();
  if (w == "serve") return serve(options);
  if (w == "bulk") return bulk(options);
  if (w == "connections") return connections(options);
  if (w == "probe") return probe(options);
  die("unknown mode \"" + w + "\" (serve, bulk, connections or probe)");
}
