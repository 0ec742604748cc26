// SPDX-License-Identifier: Apache-2.0
// bench/workloads.hpp — the workloads, written once and instantiated per implementation.
//
// Every implementation (plaintext TCP, raw OpenSSL, ssx C API, ssx C++ API) is a small struct
// with the same members, so the loops that are timed are literally the same code for all of
// them; only the calls that move bytes differ. An implementation provides:
//
//   using Conn = ...;                       a connected, secured stream (movable)
//   int listen();                           a listening socket on 127.0.0.1, any port
//   Conn accept(int listener);              accept + server handshake; !valid(c) on failure
//   Conn connect(uint16_t port);            connect + client handshake (dies on failure)
//   static bool valid(const Conn &);
//   void write_all(Conn &, const void *, size_t);   every byte, or die
//   size_t read_some(Conn &, void *, size_t);       > 0, or 0 at a clean end of stream
//   void finish(Conn &);                    end our direction (close_notify, then FIN)
//   void close(Conn &);                     close_notify if not sent yet, free, close(2)
//   void close_listener(int);
//   bool resumed(Conn &);                   the handshake resumed a session (W3/W4 check)
//   void after_read(Conn &);                a client hook after its first read (W4: raw
//                                           OpenSSL keeps the session there; ssx does nothing)
//   std::pair<std::string, std::string> negotiated(Conn &);   cipher and group names
//
// The server side runs on its own thread (W2, W3, W4, W5, soak) or in a forked process (W6).

#ifndef SSX_BENCH_WORKLOADS_HPP
#define SSX_BENCH_WORKLOADS_HPP

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "common.hpp"

namespace bench {

// W2: one connection, the client writes |write_size| bytes at a time for |seconds|, the server
// reads and discards. Throughput = bytes the server received / (server's end of stream − client's
// first write). The handshake is not timed.
template <class Impl>
void run_bulk(Impl &impl, const Params &p) {
  int listener = impl.listen();
  const std::uint16_t port = port_of(listener);
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> end_ns{0};
  std::thread server([&] {
    auto c = impl.accept(listener);
    if (!Impl::valid(c)) die("bulk: accept failed");
    std::vector<unsigned char> buf(p.write_size);
    std::uint64_t total = 0;
    for (;;) {
      std::size_t n = impl.read_some(c, buf.data(), buf.size());
      if (n == 0) break;
      total += n;
    }
    end_ns = now_ns();
    received = total;
    impl.close(c);
  });
  auto c = impl.connect(port);
  auto [cipher, group] = impl.negotiated(c);
  const auto data = pattern(p.write_size);
  const std::uint64_t limit_ns = static_cast<std::uint64_t>(p.seconds * 1e9);
  // Bounded by time and by bytes (64 GiB would take minutes even at the crypto ceiling).
  const std::uint64_t max_writes = (64ull << 30) / p.write_size;
  const std::uint64_t cpu_start = cpu_ns();
  const std::uint64_t start = now_ns();
  for (std::uint64_t i = 0; i < max_writes && now_ns() - start < limit_ns; ++i) {
    impl.write_all(c, data.data(), data.size());
  }
  impl.finish(c);
  server.join();
  BulkResult r;
  r.cpu_ns = cpu_ns() - cpu_start;
  impl.close(c);
  impl.close_listener(listener);
  r.bytes = received;
  r.ns = end_ns - start;
  print_bulk(Impl::name(), r, p.write_size, cipher, group);
}

// read_exact reads |n| bytes or dies.
template <class Impl>
void read_exact(Impl &impl, typename Impl::Conn &c, unsigned char *buf, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    std::size_t r = impl.read_some(c, buf + got, n - got);
    if (r == 0) die("unexpected end of stream");
    got += r;
  }
}

// W5: one connection with TCP_NODELAY set by the application on both ends (unless
// --app-nodelay 0: then only what the library does); the client sends |message_size| bytes, the
// server echoes them, and each round trip is one sample. |warmup| round trips are not recorded;
// then up to |max_round_trips| within |seconds|.
template <class Impl>
void run_latency(Impl &impl, const Params &p) {
  int listener = impl.listen();
  const std::uint16_t port = port_of(listener);
  std::thread server([&] {
    auto c = impl.accept(listener);
    if (!Impl::valid(c)) die("latency: accept failed");
    if (p.app_nodelay) no_delay(Impl::fd(c));
    std::vector<unsigned char> buf(p.message_size);
    for (std::size_t i = 0; i < p.warmup + p.max_round_trips + 1; ++i) {
      std::size_t got = 0;
      while (got < buf.size()) {
        std::size_t r = impl.read_some(c, buf.data() + got, buf.size() - got);
        if (r == 0) break;
        got += r;
      }
      if (got < buf.size()) break;  // the client finished
      impl.write_all(c, buf.data(), buf.size());
    }
    impl.close(c);
  });
  auto c = impl.connect(port);
  if (p.app_nodelay) no_delay(Impl::fd(c));
  auto [cipher, group] = impl.negotiated(c);
  auto request = pattern(p.message_size);
  std::vector<unsigned char> reply(p.message_size);
  std::vector<std::uint64_t> samples;
  samples.reserve(p.max_round_trips);
  const std::uint64_t limit_ns = static_cast<std::uint64_t>(p.seconds * 1e9);
  const std::uint64_t start = now_ns();
  std::uint64_t cpu_start = 0;
  for (std::size_t i = 0; i < p.warmup + p.max_round_trips; ++i) {
    if (i == p.warmup) cpu_start = cpu_ns();
    const std::uint64_t t0 = now_ns();
    if (t0 - start > limit_ns) break;
    impl.write_all(c, request.data(), request.size());
    read_exact(impl, c, reply.data(), reply.size());
    const std::uint64_t t1 = now_ns();
    if (i >= p.warmup) samples.push_back(t1 - t0);
  }
  const std::uint64_t cpu = cpu_start ? cpu_ns() - cpu_start : 0;
  if (std::memcmp(reply.data(), request.data(), reply.size()) != 0) die("latency: bad echo");
  impl.finish(c);
  server.join();
  impl.close(c);
  impl.close_listener(listener);
  print_latency(Impl::name(), std::move(samples), p.message_size, cpu, cipher, group);
}

// W3 (resume = false) and W4 (resume = true): new connections one after the other for |seconds|
// (at most |max_handshakes|). Each iteration is TCP connect + TLS handshake + close on both ends.
// In W4 the server sends one byte after its handshake and the client reads it: that is what makes
// the client process the server's NewSessionTicket messages, and so what enables resumption.
// In W3 nobody reads, so no ticket is ever processed and every handshake is a full one.
// W3 with |request_size| (the exchange variant): after the handshake the client sends a
// |request_size|-byte request and waits for as many bytes back, as a small RPC does; with
// --app-nodelay 0 neither end sets TCP_NODELAY itself, which is where a library that leaves Nagle
// on stalls for a delayed ACK at every connection. Its clients keep no session (ssx: an outbound
// rule with session_tickets = false), so every handshake is still a full one.
// Checking whether the handshake resumed (ssx_query_socket_security for ssx, SSL_session_reused for
// OpenSSL) happens on every connection but outside the timed interval.
template <class Impl>
void run_handshakes(Impl &impl, const Params &p, bool resume) {
  int listener = impl.listen();
  const std::uint16_t port = port_of(listener);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> server_failures{0};
  std::thread server([&] {
    for (std::size_t i = 0; i < p.max_handshakes + p.warmup + 2; ++i) {
      auto c = impl.accept(listener);
      if (stop) {
        if (Impl::valid(c)) impl.close(c);
        break;
      }
      if (!Impl::valid(c)) {
        ++server_failures;
        continue;
      }
      if (p.request_size > 0) {
        if (p.app_nodelay) no_delay(Impl::fd(c));
        std::vector<unsigned char> request(p.request_size);
        read_exact(impl, c, request.data(), request.size());
        impl.write_all(c, request.data(), request.size());
      }
      if (resume) {
        const unsigned char byte = 'x';
        impl.write_all(c, &byte, 1);
      }
      impl.close(c);
    }
  });
  std::string cipher, group;
  const auto request = pattern(std::max<std::size_t>(p.request_size, 1));
  std::vector<unsigned char> reply(request.size());
  auto one = [&](std::uint64_t *excluded, std::uint64_t *resumed) {
    auto c = impl.connect(port);
    if (p.request_size > 0) {
      if (p.app_nodelay) no_delay(Impl::fd(c));
      impl.write_all(c, request.data(), p.request_size);
      read_exact(impl, c, reply.data(), p.request_size);
      if (std::memcmp(reply.data(), request.data(), p.request_size) != 0) die("exchange: bad echo");
    }
    if (resume) {
      unsigned char byte = 0;
      if (impl.read_some(c, &byte, 1) != 1) die("handshake: no byte from the server");
      impl.after_read(c);
    }
    const std::uint64_t t0 = now_ns();
    if (impl.resumed(c)) ++*resumed;
    if (cipher.empty()) std::tie(cipher, group) = impl.negotiated(c);
    *excluded += now_ns() - t0;
    impl.close(c);
  };
  std::uint64_t ignored_ns = 0, ignored_resumed = 0;
  // Warm-up: lazily built state (contexts, the first session for W4) is not measured.
  for (std::size_t i = 0; i < std::max<std::size_t>(1, p.warmup / 20); ++i) {
    one(&ignored_ns, &ignored_resumed);
  }
  std::uint64_t count = 0, excluded = 0, resumed = 0;
  const std::uint64_t limit_ns = static_cast<std::uint64_t>(p.seconds * 1e9);
  const std::uint64_t cpu_start = cpu_ns();
  const std::uint64_t start = now_ns();
  while (count < p.max_handshakes && now_ns() - start - excluded < limit_ns) {
    one(&excluded, &resumed);
    ++count;
  }
  const std::uint64_t elapsed = now_ns() - start - excluded;
  // CPU of both ends (the server is a thread of this process), the checks excluded.
  const std::uint64_t cpu_all = cpu_ns() - cpu_start;
  const std::uint64_t cpu = cpu_all - std::min(excluded, cpu_all);
  stop = true;
  ::close(plain_connect(port));  // wakes the server's accept
  server.join();
  impl.close_listener(listener);
  if (server_failures != 0) die("handshake: the server saw failed handshakes");
  print_handshakes(resume ? "resume" : "handshake", Impl::name(), count, elapsed, resumed, excluded,
                   cpu, cipher, group);
}

// W6: the server end lives in this process, the client end in a forked child, so each side's
// memory is measured on its own. Each side makes one warm-up connection (lazily built contexts,
// error strings and so on are then part of the baseline), records RSS and heap in use, then the
// client opens |connections| connections one after the other, each with a complete handshake and
// no application data, and both sides hold them all open and idle while measuring again. Idle
// means what a program does with a connection it has nothing to do on: it waits for the peer.
// Each end reads a connection once without blocking as soon as it is established and finds
// nothing (wait_idle), as an event loop does before it goes back to epoll, or a blocked reader
// before it sleeps; what a library does with its buffers at that point is part of what is
// measured.
// Then the client writes one 16 KiB record on every connection and the server reads it, both
// wait again, and both measure a third time: an idle connection that has carried traffic. (That
// first read may process the server's session tickets. Neither client keeps a session for the
// next connection — ssx's W6 policy turns its automatic resumption off — so every connection is
// a full handshake; the client counts resumed connections and the driver requires 0.)
template <class Impl>
void run_memory(Impl &impl, const Params &p) {
  raise_nofile(p.connections + 256);
  int listener = impl.listen();
  const std::uint16_t port = port_of(listener);
  int to_child[2], to_parent[2];
  if (::pipe(to_child) != 0 || ::pipe(to_parent) != 0) die_errno("pipe");
  pid_t pid = ::fork();
  if (pid < 0) die_errno("fork");
  if (pid == 0) {
    // The client process.
    ::close(listener);
    ::close(to_child[1]);
    ::close(to_parent[0]);
    {
      auto warm = impl.connect(port);
      impl.close(warm);
    }
    char token = 0;
    if (!read_full(to_child[0], &token, 1)) die("memory: server went away");
    std::vector<typename Impl::Conn> conns;
    conns.reserve(p.connections);
    MemorySide side;
    side.rss_before = rss_bytes();
    side.heap_before = heap_bytes();
    for (std::size_t i = 0; i < p.connections; ++i) {
      conns.push_back(impl.connect(port));
      impl.wait_idle(conns.back());
    }
    side.rss_after = rss_bytes();
    side.heap_after = heap_bytes();
    side.connections = conns.size();
    if (!read_full(to_child[0], &token, 1)) die("memory: server went away");
    const auto record = pattern(16384);
    for (auto &c : conns) {
      impl.write_all(c, record.data(), record.size());
      impl.wait_idle(c);
    }
    side.rss_traffic = rss_bytes();
    side.heap_traffic = heap_bytes();
    for (auto &c : conns)
      side.resumed += impl.resumed(c) ? 1 : 0;  // after measuring: queries allocate
    std::string cipher, group;
    std::tie(cipher, group) = impl.negotiated(conns.front());
    write_full(to_parent[1], &side, sizeof side);
    std::uint32_t len = static_cast<std::uint32_t>(cipher.size());
    write_full(to_parent[1], &len, sizeof len);
    write_full(to_parent[1], cipher.data(), len);
    len = static_cast<std::uint32_t>(group.size());
    write_full(to_parent[1], &len, sizeof len);
    write_full(to_parent[1], group.data(), len);
    read_full(to_child[0], &token, 1);  // hold everything until the server has measured
    for (auto &c : conns) impl.close(c);
    std::_Exit(0);
  }
  ::close(to_child[0]);
  ::close(to_parent[1]);
  {
    auto warm = impl.accept(listener);
    if (!Impl::valid(warm)) die("memory: warm-up accept failed");
    impl.close(warm);
  }
  MemorySide server;
  server.rss_before = rss_bytes();
  server.heap_before = heap_bytes();
  const char go = 'g';
  write_full(to_child[1], &go, 1);
  std::vector<typename Impl::Conn> conns;
  conns.reserve(p.connections);
  for (std::size_t i = 0; i < p.connections; ++i) {
    auto c = impl.accept(listener);
    if (!Impl::valid(c)) die("memory: accept failed");
    impl.wait_idle(c);
    conns.push_back(std::move(c));
  }
  server.rss_after = rss_bytes();
  server.heap_after = heap_bytes();
  server.connections = conns.size();
  write_full(to_child[1], &go, 1);  // measured: the client may now send its records
  {
    std::vector<unsigned char> buf(16384);
    for (auto &c : conns) {
      read_exact(impl, c, buf.data(), buf.size());
      impl.wait_idle(c);
    }
  }
  server.rss_traffic = rss_bytes();
  server.heap_traffic = heap_bytes();
  MemorySide client;
  if (!read_full(to_parent[0], &client, sizeof client)) die("memory: the client failed");
  std::string names[2];
  for (auto &s : names) {
    std::uint32_t len = 0;
    if (!read_full(to_parent[0], &len, sizeof len) || len > 256) die("memory: bad client report");
    s.resize(len);
    if (!read_full(to_parent[0], s.data(), len)) die("memory: bad client report");
  }
  write_full(to_child[1], &go, 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  for (auto &c : conns) impl.close(c);
  impl.close_listener(listener);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("memory: client process failed");
  print_memory(Impl::name(), server, client, names[0], names[1]);
}

// Soak (`make soak`, docs/soak.md): full and resumed handshakes, alternating, until
// --full and --resumed are both reached or --seconds run out, whichever comes first. The client
// (this thread) and two servers (a thread per listener) live in this process.
//
//   Full handshakes go to one listener. The client sends a 64-byte request and its close_notify
//   and never reads, so it never processes a session ticket and never has one for that address
//   (as in W3); the server reads the request and then the end of the stream, and closes. Both
//   ends check that the handshake did not resume.
//   Resumed handshakes go to the other listener. The server echoes the request and the client
//   reads the echo, which processes the server's tickets first, so the next connection to that
//   address resumes (as in W4). One unmeasured connection primes the first ticket; from then on
//   both ends check that every handshake resumed (Impl::resumed, i.e. SSX_INFO_RESUMED from
//   ssx_query_socket_security for ssx).
//
// Every connection is checked: request bytes, the echo, a clean end of stream, the resumption
// flag on both ends. Any failure stops the run and is reported ("failures", "first_failure").
//
// Output, one JSON object per line on stdout: {"event":"progress",...} every
// --progress-seconds; {"event":"baseline",...} once --warmup-seconds have passed and
// {"event":"final",...} at the end. Baseline and final are taken at a quiescent point — every
// connection closed on both ends, both servers waiting in accept — so their descriptor counts
// (/proc/self/fd) must be equal and their RSS comparable; the driver (bench/soak.py) judges them.
struct SoakCounts {
  std::atomic<std::uint64_t> served_full{0}, served_resumed{0};  // closed by the servers
  std::atomic<std::uint64_t> failures{0};
  std::mutex mu;
  std::string first_failure;
  void fail(const std::string &what) {
    std::lock_guard lock(mu);
    if (failures.fetch_add(1) == 0) first_failure = what;
  }
};

inline std::uint64_t open_fds() {
  std::uint64_t n = 0;
  DIR *d = ::opendir("/proc/self/fd");
  if (d == nullptr) die_errno("/proc/self/fd");
  while (dirent *e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // opendir's own descriptor
}

template <class Impl>
void run_soak(Impl &impl, const Options &o) {
  const double seconds = o.num("seconds", 600);
  const std::uint64_t want_full = o.count("full", 100000);
  const std::uint64_t want_resumed = o.count("resumed", 100000);
  const double warmup_seconds = o.num("warmup-seconds", 60);
  const double progress_seconds = o.num("progress-seconds", 1);
  // The harness's own check (soak.py --inject-leak): hold one more descriptor every
  // --leak-fd-every handshake pairs and --leak-bytes more heap (touched) per pair, so that the
  // driver can show it catches both.
  const std::uint64_t leak_fd_every = o.count("leak-fd-every", 0);
  const std::size_t leak_bytes = o.count("leak-bytes", 0);
  std::vector<int> leaked_fds;
  std::vector<std::unique_ptr<unsigned char[]>> leaked_blocks;
  watchdog(seconds * 2 + 120);  // Params armed it for its own --seconds default
  constexpr std::size_t kMessage = 64;
  const auto request = pattern(kMessage);

  int lf = impl.listen(), lr = impl.listen();
  const std::uint16_t port_full = port_of(lf), port_resumed = port_of(lr);
  std::atomic<bool> stop{false};
  SoakCounts counts;

  // serve accepts on |listener| until |stop|. |resume|: echo, and require resumption from the
  // second connection on (the first is the priming one).
  auto serve = [&](int listener, bool resume, std::atomic<std::uint64_t> &served) {
    std::vector<unsigned char> buf(kMessage);
    for (std::uint64_t i = 0;; ++i) {
      auto c = impl.accept(listener);
      if (stop) {
        if (Impl::valid(c)) impl.close(c);
        return;
      }
      if (!Impl::valid(c)) {
        // Counted; the client stops at its next check. This server keeps accepting, so that a
        // client already connecting is not left waiting for a handshake that never comes.
        counts.fail(std::string(resume ? "resumed" : "full") + " server: handshake failed");
        continue;
      }
      read_exact(impl, c, buf.data(), buf.size());
      if (std::memcmp(buf.data(), request.data(), kMessage) != 0) {
        counts.fail("server: the request arrived damaged");
      }
      const bool r = impl.resumed(c);
      if (resume && i > 0 && !r) counts.fail("resumed server: handshake did not resume");
      if (!resume && r) counts.fail("full server: handshake resumed");
      if (resume) impl.write_all(c, buf.data(), buf.size());
      unsigned char extra = 0;
      if (impl.read_some(c, &extra, 1) != 0) counts.fail("server: data after the request");
      impl.close(c);
      ++served;
    }
  };
  std::thread server_full([&] { serve(lf, false, counts.served_full); });
  std::thread server_resumed([&] { serve(lr, true, counts.served_resumed); });

  std::uint64_t full = 0, resumed = 0;
  auto one_full = [&] {
    auto c = impl.connect(port_full);
    if (impl.resumed(c)) counts.fail("full client: handshake resumed");
    impl.write_all(c, request.data(), request.size());
    impl.finish(c);
    // The server's tickets are still unread, so closing now would reset the connection (RFC 1122
    // 4.2.2.13) and could destroy the request and close_notify before the server reads them.
    // Wait for the server's end of stream at the TCP level instead, without reading a byte.
    pollfd pfd{Impl::fd(c), POLLRDHUP, 0};
    if (::poll(&pfd, 1, 30000) != 1) counts.fail("full client: the server did not close in 30 s");
    impl.close(c);
  };
  auto one_resumed = [&](bool measured) {
    auto c = impl.connect(port_resumed);
    impl.write_all(c, request.data(), request.size());
    std::vector<unsigned char> echo(kMessage);
    read_exact(impl, c, echo.data(), echo.size());
    impl.after_read(c);
    if (echo != request) counts.fail("resumed client: the echo arrived damaged");
    if (measured && !impl.resumed(c)) counts.fail("resumed client: handshake did not resume");
    impl.close(c);
  };
  // quiesce waits (bounded) until the servers have closed every connection the client made.
  std::uint64_t primed = 0;
  auto quiesce = [&] {
    const std::uint64_t limit = now_ns() + 30'000'000'000ull;
    while (counts.served_full.load() != full || counts.served_resumed.load() != resumed + primed) {
      if (counts.failures.load() != 0 || now_ns() > limit) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  };
  auto report = [&](const char *event, double elapsed) {
    Json()
        .add("event", event)
        .add("seconds", elapsed)
        .add("full", full)
        .add("resumed", resumed)
        .add("failures", counts.failures.load())
        .add("rss", rss_bytes())
        .add("heap", heap_bytes())
        .add("fds", open_fds())
        .print();
  };

  const std::uint64_t start = now_ns();
  const std::uint64_t limit_ns = static_cast<std::uint64_t>(seconds * 1e9);
  const std::uint64_t warmup_ns = static_cast<std::uint64_t>(warmup_seconds * 1e9);
  const std::uint64_t progress_ns = static_cast<std::uint64_t>(progress_seconds * 1e9);
  one_resumed(false);  // primes the first ticket
  primed = 1;
  bool baseline = false;
  std::uint64_t next_progress = start + progress_ns;
  while ((full < want_full || resumed < want_resumed) && counts.failures.load() == 0) {
    const std::uint64_t now = now_ns();
    if (now - start >= limit_ns) break;
    if (!baseline && now - start >= warmup_ns) {
      if (!quiesce()) break;
      report("baseline", static_cast<double>(now_ns() - start) / 1e9);
      baseline = true;
    }
    if (now >= next_progress) {
      report("progress", static_cast<double>(now - start) / 1e9);
      next_progress = now + progress_ns;
    }
    if (full < want_full) {
      one_full();
      ++full;
    }
    if (resumed < want_resumed && counts.failures.load() == 0) {
      one_resumed(true);
      ++resumed;
    }
    if (leak_fd_every != 0 && (full + resumed) % (2 * leak_fd_every) == 0) {
      leaked_fds.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
    if (leak_bytes != 0) {
      leaked_blocks.emplace_back(new unsigned char[leak_bytes]);
      std::memset(leaked_blocks.back().get(), 1, leak_bytes);
    }
  }
  const double elapsed = static_cast<double>(now_ns() - start) / 1e9;
  const bool quiet = quiesce();
  if (counts.failures.load() == 0 && !quiet) counts.fail("servers did not close every connection");
  if (counts.failures.load() == 0) report("final", elapsed);
  stop = true;
  ::close(plain_connect(port_full));  // wakes the servers' accepts
  ::close(plain_connect(port_resumed));
  server_full.join();
  server_resumed.join();
  impl.close_listener(lf);
  impl.close_listener(lr);
  for (int fd : leaked_fds) ::close(fd);
  leaked_blocks.clear();
  Json()
      .add("event", "end")
      .add("workload", "soak")
      .add("impl", Impl::name())
      .add("seconds", elapsed)
      .add("full", full)
      .add("resumed", resumed)
      .add("target_full", want_full)
      .add("target_resumed", want_resumed)
      .add("baseline_taken", baseline)
      .add("failures", counts.failures.load())
      .add("first_failure", counts.first_failure)
      .print();
}

// run dispatches on the workload name; |what| lists those this program supports.
template <class Impl>
int run(Impl &impl, const Options &o) {
  Params p(o);
  const std::string &w = o.workload();
  if (w == "bulk") {
    run_bulk(impl, p);
  } else if (w == "latency") {
    run_latency(impl, p);
  } else if (w == "handshake" && Impl::kTls) {
    run_handshakes(impl, p, false);
  } else if (w == "resume" && Impl::kTls) {
    run_handshakes(impl, p, true);
  } else if (w == "memory" && Impl::kTls) {
    run_memory(impl, p);
  } else if (w == "soak" && Impl::kTls) {
    run_soak(impl, o);
  } else {
    die("unknown workload \"" + w + "\" for " + Impl::name());
  }
  return 0;
}

}  // namespace bench

#endif  // SSX_BENCH_WORKLOADS_HPP
