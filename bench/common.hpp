// SPDX-License-Identifier: Apache-2.0
// bench/common.hpp — what every benchmark program shares: options, clocks, JSON output, loopback
// sockets, percentiles and process memory. Nothing here knows about TLS, so the plaintext, raw
// OpenSSL and ssx programs differ only in how they move bytes.
//
// Each program runs one workload per invocation and prints exactly one JSON object on one line to
// stdout (the driver, bench/run.py, collects them). Failures print "error: ..." to stderr and exit
// non-zero. Every loop is bounded in count and in time, and a watchdog (alarm(2)) ends a program
// that hangs anyway.

#ifndef SSX_BENCH_COMMON_HPP
#define SSX_BENCH_COMMON_HPP

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace bench {

[[noreturn]] inline void die(const std::string &what) {
  std::fprintf(stderr, "error: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(2);
}

[[noreturn]] inline void die_errno(const std::string &what) {
  die(what + ": " + std::strerror(errno));
}

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// cpu_ns is the CPU time (user + system) this process has used so far, all threads included.
inline std::uint64_t cpu_ns() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval &tv) {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1000000000ull +
           static_cast<std::uint64_t>(tv.tv_usec) * 1000ull;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

// Options are `--key value` pairs after the workload name: `prog bulk --seconds 5`.
class Options {
 public:
  Options(int argc, char **argv) {
    if (argc < 2) die(std::string("usage: ") + argv[0] + " WORKLOAD [--key value]...");
    workload_ = argv[1];
    for (int i = 2; i < argc; i += 2) {
      std::string key = argv[i];
      if (key.rfind("--", 0) != 0 || i + 1 >= argc) die("bad option " + key);
      values_[key.substr(2)] = argv[i + 1];
    }
  }
  const std::string &workload() const { return workload_; }
  std::string str(const std::string &key, const std::string &fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  double num(const std::string &key, double fallback) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    char *end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end != '\0' || !(v >= 0)) die("bad value for --" + key);
    return v;
  }
  std::size_t count(const std::string &key, std::size_t fallback) const {
    return static_cast<std::size_t>(num(key, static_cast<double>(fallback)));
  }

 private:
  std::string workload_;
  std::map<std::string, std::string> values_;
};

// Json builds one flat JSON object. Keys are ours (no escaping needed); strings are escaped.
class Json {
 public:
  Json &add(const std::string &key, const std::string &value) {
    std::string esc;
    for (char c : value) {
      if (c == '"' || c == '\\') {
        esc += '\\';
        esc += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        esc += buf;
      } else {
        esc += c;
      }
    }
    return raw(key, "\"" + esc + "\"");
  }
  Json &add(const std::string &key, const char *value) { return add(key, std::string(value)); }
  Json &add(const std::string &key, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", std::isfinite(value) ? value : 0.0);
    return raw(key, buf);
  }
  Json &add(const std::string &key, std::uint64_t value) { return raw(key, std::to_string(value)); }
  Json &add(const std::string &key, std::int64_t value) { return raw(key, std::to_string(value)); }
  Json &add(const std::string &key, int value) { return raw(key, std::to_string(value)); }
  Json &add(const std::string &key, bool value) { return raw(key, value ? "true" : "false"); }
  void print() const {
    std::printf("{%s}\n", body_.c_str());
    std::fflush(stdout);
  }

 private:
  Json &raw(const std::string &key, const std::string &value) {
    if (!body_.empty()) body_ += ",";
    body_ += "\"" + key + "\":" + value;
    return *this;
  }
  std::string body_;
};

// watchdog ends the process (SIGALRM's default action) if it runs longer than |seconds|.
inline void watchdog(double seconds) {
  ::signal(SIGALRM, SIG_DFL);
  ::alarm(static_cast<unsigned>(std::ceil(seconds)));
}

// ignore_sigpipe: OpenSSL's socket BIO writes with write(2), so a peer that has already closed
// would kill a raw-OpenSSL program with SIGPIPE. Every competent OpenSSL program ignores it.
inline void ignore_sigpipe() {
  ::signal(SIGPIPE, SIG_IGN);
}

inline sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

inline std::uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0) die_errno("getsockname");
  return ntohs(a.sin_port);
}

// bind_listen binds |fd| to 127.0.0.1 on a port the kernel picks and listens.
inline void bind_listen(int fd, int backlog = 1024) {
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(0);
  if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) die_errno("bind");
  if (::listen(fd, backlog) != 0) die_errno("listen");
}

inline int plain_listener(int backlog = 1024) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die_errno("socket");
  bind_listen(fd, backlog);
  return fd;
}

inline int plain_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die_errno("socket");
  sockaddr_in a = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) die_errno("connect");
  return fd;
}

// no_delay turns Nagle off, as request/response protocols that know about it do (W3 and W5 with
// --app-nodelay 1, every implementation).
inline void no_delay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// raise_nofile lifts the soft descriptor limit to |want| (or the hard limit, if lower).
inline std::uint64_t raise_nofile(std::uint64_t want) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) die_errno("getrlimit");
  rlim_t target = std::min<rlim_t>(want, rl.rlim_max);
  if (rl.rlim_cur < target) {
    rl.rlim_cur = target;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) die_errno("setrlimit");
  }
  return rl.rlim_cur;
}

// rss_bytes is the resident set size from /proc/self/statm.
inline std::uint64_t rss_bytes() {
  FILE *f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) die_errno("/proc/self/statm");
  unsigned long long size = 0, resident = 0;
  if (std::fscanf(f, "%llu %llu", &size, &resident) != 2) die("cannot parse /proc/self/statm");
  std::fclose(f);
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// heap_bytes is what malloc has handed out and not taken back, over all arenas.
inline std::uint64_t heap_bytes() {
  struct mallinfo2 mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// percentile of sorted |v| by nearest rank.
inline double percentile(const std::vector<std::uint64_t> &sorted, double p) {
  if (sorted.empty()) return 0;
  std::size_t rank =
      static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return static_cast<double>(sorted[std::min(rank, sorted.size()) - 1]);
}

// Pattern fills a buffer with bytes that are not all zero (no compression anywhere, but honest).
inline std::vector<unsigned char> pattern(std::size_t n) {
  std::vector<unsigned char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>(i * 131 + 7);
  return v;
}

// Bulk results (W2): |bytes| counted by the receiver between the sender's first write and the
// receiver's end of stream.
struct BulkResult {
  std::uint64_t bytes = 0;
  std::uint64_t ns = 0;
  std::uint64_t cpu_ns = 0;  // both ends: this process runs sender and receiver
  double mbps() const {
    return ns ? static_cast<double>(bytes) / (static_cast<double>(ns) / 1e9) / 1e6 : 0;
  }
};

inline void print_bulk(const std::string &impl, const BulkResult &r, std::size_t write_size,
                       const std::string &cipher, const std::string &group) {
  Json()
      .add("workload", "bulk")
      .add("impl", impl)
      .add("bytes", r.bytes)
      .add("seconds", static_cast<double>(r.ns) / 1e9)
      .add("mbps", r.mbps())
      .add("cpu_seconds", static_cast<double>(r.cpu_ns) / 1e9)
      .add("cpu_ns_per_kib",
           r.bytes ? static_cast<double>(r.cpu_ns) * 1024.0 / static_cast<double>(r.bytes) : 0.0)
      .add("write_size", static_cast<std::uint64_t>(write_size))
      .add("cipher", cipher)
      .add("group", group)
      .print();
}

// Latency results (W5): one sample per round trip, in nanoseconds.
inline void print_latency(const std::string &impl, std::vector<std::uint64_t> samples,
                          std::size_t message_size, std::uint64_t cpu, const std::string &cipher,
                          const std::string &group) {
  std::sort(samples.begin(), samples.end());
  double sum = 0;
  for (auto s : samples) sum += static_cast<double>(s);
  Json()
      .add("workload", "latency")
      .add("impl", impl)
      .add("round_trips", static_cast<std::uint64_t>(samples.size()))
      .add("message_size", static_cast<std::uint64_t>(message_size))
      .add("p50_us", percentile(samples, 50) / 1e3)
      .add("p90_us", percentile(samples, 90) / 1e3)
      .add("p99_us", percentile(samples, 99) / 1e3)
      .add("mean_us", samples.empty() ? 0.0 : sum / static_cast<double>(samples.size()) / 1e3)
      .add("max_us", samples.empty() ? 0.0 : static_cast<double>(samples.back()) / 1e3)
      .add("cpu_us_per_round_trip",
           samples.empty() ? 0.0
                           : static_cast<double>(cpu) / 1e3 / static_cast<double>(samples.size()))
      .add("cipher", cipher)
      .add("group", group)
      .print();
}

// Handshake results (W3/W4): |count| handshakes completed in |ns| by the client.
inline void print_handshakes(const std::string &workload, const std::string &impl,
                             std::uint64_t count, std::uint64_t ns, std::uint64_t resumed,
                             std::uint64_t excluded_ns, std::uint64_t cpu,
                             const std::string &cipher, const std::string &group) {
  Json()
      .add("workload", workload)
      .add("impl", impl)
      .add("handshakes", count)
      .add("resumed", resumed)
      .add("seconds", static_cast<double>(ns) / 1e9)
      .add("per_second", ns ? static_cast<double>(count) / (static_cast<double>(ns) / 1e9) : 0.0)
      .add("excluded_check_seconds", static_cast<double>(excluded_ns) / 1e9)
      .add("cpu_us_per_handshake",
           count ? static_cast<double>(cpu) / 1e3 / static_cast<double>(count) : 0.0)
      .add("cipher", cipher)
      .add("group", group)
      .print();
}

// MemorySide is one process's view in W6: RSS and heap before the connections, with them all
// established and idle, and again after each carried one 16 KiB record (client to server).
struct MemorySide {
  std::uint64_t rss_before = 0, rss_after = 0, heap_before = 0, heap_after = 0;
  std::uint64_t rss_traffic = 0, heap_traffic = 0;
  std::uint64_t connections = 0;
  std::uint64_t resumed = 0;  // client: connections that resumed a session (tickets can
                              // arrive before the next connect; ssx resumes by itself)
  double per_conn(std::uint64_t after, std::uint64_t before) const {
    return connections ? (static_cast<double>(after) - static_cast<double>(before)) /
                             static_cast<double>(connections)
                       : 0;
  }
  double rss_per_conn() const { return per_conn(rss_after, rss_before); }
  double heap_per_conn() const { return per_conn(heap_after, heap_before); }
  double rss_traffic_per_conn() const { return per_conn(rss_traffic, rss_before); }
  double heap_traffic_per_conn() const { return per_conn(heap_traffic, heap_before); }
};

inline void print_memory(const std::string &impl, const MemorySide &server,
                         const MemorySide &client, const std::string &cipher,
                         const std::string &group) {
  Json()
      .add("workload", "memory")
      .add("impl", impl)
      .add("connections", client.connections)
      .add("client_resumed", client.resumed)
      .add("server_rss_per_conn", server.rss_per_conn())
      .add("client_rss_per_conn", client.rss_per_conn())
      .add("rss_per_conn", server.rss_per_conn() + client.rss_per_conn())
      .add("server_heap_per_conn", server.heap_per_conn())
      .add("client_heap_per_conn", client.heap_per_conn())
      .add("heap_per_conn", server.heap_per_conn() + client.heap_per_conn())
      .add("server_rss_after_traffic_per_conn", server.rss_traffic_per_conn())
      .add("client_rss_after_traffic_per_conn", client.rss_traffic_per_conn())
      .add("rss_after_traffic_per_conn",
           server.rss_traffic_per_conn() + client.rss_traffic_per_conn())
      .add("heap_after_traffic_per_conn",
           server.heap_traffic_per_conn() + client.heap_traffic_per_conn())
      .add("server_rss_before", server.rss_before)
      .add("client_rss_before", client.rss_before)
      .add("cipher", cipher)
      .add("group", group)
      .print();
}

// Pipe helpers for W6, where the client end lives in a forked child.
inline void write_full(int fd, const void *data, std::size_t n) {
  const auto *p = static_cast<const unsigned char *>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die_errno("pipe write");
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

inline bool read_full(int fd, void *data, std::size_t n) {
  auto *p = static_cast<unsigned char *>(data);
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Common defaults, shared so that every implementation runs the same workload.
struct Params {
  double seconds;
  std::size_t write_size;
  std::size_t message_size;
  std::size_t max_round_trips;
  std::size_t warmup;
  std::size_t max_handshakes;
  std::size_t connections;
  // W3/W5: whether the application sets TCP_NODELAY itself (--app-nodelay 0 is the program that
  // does not; ssx sets it by default, raw OpenSSL leaves Nagle on). W3 with --request-size N:
  // each connection also carries one N-byte request and an N-byte reply.
  bool app_nodelay;
  std::size_t request_size;
  std::string dir;

  explicit Params(const Options &o)
      : seconds(o.num("seconds", 5)),
        write_size(o.count("write-size", 16384)),
        message_size(o.count("message-size", 64)),
        max_round_trips(o.count("round-trips", 20000)),
        warmup(o.count("warmup", 200)),
        max_handshakes(o.count("max-handshakes", 1000000)),
        connections(o.count("connections", 5000)),
        app_nodelay(o.count("app-nodelay", 1) != 0),
        request_size(o.count("request-size", 0)),
        dir(o.str("dir", ".")) {
    if (write_size == 0 || write_size > (1u << 20)) die("--write-size out of range");
    if (message_size == 0 || message_size > 16384) die("--message-size out of range");
    if (request_size > 16384) die("--request-size out of range");
    // The watchdog leaves room for setup and for W6's thousands of handshakes.
    watchdog(seconds * 3 + 120 + static_cast<double>(connections) / 50.0);
  }
};

}  // namespace bench

#endif  // SSX_BENCH_COMMON_HPP
