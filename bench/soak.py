#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/soak.py — the soak test (`make soak`, docs/soak.md): many handshakes for a long time,
watching memory and descriptors.

    python3 bench/soak.py --build build --seconds 600          # `make soak`
    python3 bench/soak.py --build build --seconds 20 --smoke   # `make soak-smoke`

Two loads run side by side for --seconds, each until its targets (--full and --resumed
handshakes, 100,000 each by default) are reached or the time is up:

  library   ssx_bench_ssx soak: the ssx C API, client and two servers in one process, full and
            resumed handshakes alternating; every connection checked on both ends (data, clean
            close, SSX_INFO_RESUMED). See run_soak in bench/workloads.hpp.
  tunnel    ssx_bench_tunnel_load connections (plain TCP clients) -> ssx tunnel --mode client
            -> ssx tunnel --mode server -> ssx_bench_tunnel_load serve (the backend), in chunks
            of --chunk seconds. Chunks alternate between full and resumed handshakes: the server
            tunnel's policy is rewritten (session_tickets false / true) and reloaded with SIGHUP
            before each. A resumed chunk runs one client at a time, so each connection finds the
            ticket of the one before. Whether each handshake resumed is what the tunnels counted
            from ssx_query_socket_security (ssx_tunnel_handshakes_total{resumed}); a full chunk
            must have no resumed handshake, a resumed chunk at most one full one (its first).

Every --interval seconds (10) a progress line: handshakes done, rates, RSS and open descriptors of
the library process and of both tunnel processes (/proc/PID/status, /proc/PID/fd).

The verdict. After a warm-up (--warmup, default a tenth of the run, 5-60 s) each process is
measured at a quiescent point (no connection open anywhere: the library process waits for its
servers; the tunnels' ssx_tunnel_connections_open is 0) and again at the end. The run fails if
  - any handshake or connection failed, any byte was damaged, or a handshake that had to resume
    did not (or one that must be full resumed);
  - a process has more descriptors open at the end than after the warm-up;
  - a process's RSS grew by more than --rss-bound-mib (8 MiB) from the warm-up to the end;
  - the library process's heap in use (mallinfo2) grew by more than --heap-bound-kib (1 MiB).
When the time runs out before the targets, the run says so and is still judged on the above: the
counts are targets, not requirements. Exit 0 when it passes, 1 when it fails, 2 on a harness error.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the benchmark driver's helpers: ports, proxies, policy files)

MIB = 1024 * 1024


def log(msg):
    print(msg, flush=True)


def proc_rss(pid):
    """Resident set size of |pid| in bytes (VmRSS), or None when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def scrape(port):
    """The tunnel's metrics as {name: value}. The endpoint closes each connection after its
    answer, so no descriptor of ours stays open in the tunnel once this returns."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = int(float(value))
    return out


def failures_in(metrics):
    return sum(v for k, v in metrics.items()
               if k.startswith("ssx_tunnel_handshake_failures_total")
               or k.startswith("ssx_tunnel_connect_failures_total"))


FULL_KEY = 'ssx_tunnel_handshakes_total{resumed="false"}'
RESUMED_KEY = 'ssx_tunnel_handshakes_total{resumed="true"}'


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# The library load: one process, progress lines on its stdout.


class LibrarySoak:
    def __init__(self, bindir, certdir, args, warmup):
        cmd = [os.path.join(bindir, "ssx_bench_ssx"), "soak", "--dir", certdir,
               "--seconds", str(args.seconds), "--full", str(args.full),
               "--resumed", str(args.resumed), "--warmup-seconds", str(warmup),
               "--progress-seconds", "1"]
        if args.inject_leak:
            cmd += ["--leak-fd-every", "100", "--leak-bytes", "16384"]
        self.cmd = cmd
        self.progress = {"full": 0, "resumed": 0}
        self.baseline = self.final = self.end = None
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     preexec_fn=bench.die_with_parent)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            if not line.startswith("{"):
                continue
            j = json.loads(line)
            event = j.get("event")
            if event in ("progress", "baseline", "final"):
                self.progress = j
            if event == "baseline":
                self.baseline = j
            elif event == "final":
                self.final = j
            elif event == "end":
                self.end = j

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        self.proc.wait(timeout=timeout)
        self.thread.join(timeout=10)
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()


# ---------------------------------------------------------------------------------------------
# The tunnel load: a backend, two tunnels, chunks of plain TCP clients.


def server_policy(certdir, tickets):
    return "\n".join([
        "version = 1",
        "",
        "[defaults]",
        "trust_bundle = %s" % bench.toml_string(os.path.join(certdir, "ca.crt")),
        "session_tickets = %s" % ("true" if tickets else "false"),
        "",
        "[[rule]]",
        'name = "soak-server"',
        'direction = "inbound"',
        'peer_authentication = "none"',
        "certificate = %s" % bench.toml_string(os.path.join(certdir, "server.crt")),
        "private_key = %s" % bench.toml_string(os.path.join(certdir, "server.key")),
        "",
    ])


def client_policy(certdir):
    return "\n".join([
        "version = 1",
        "",
        "[defaults]",
        "trust_bundle = %s" % bench.toml_string(os.path.join(certdir, "ca.crt")),
        "session_tickets = true",
        "",
    ])


class TunnelSoak:
    def __init__(self, build, bindir, certdir, args, warmup):
        self.args, self.bindir, self.certdir, self.warmup = args, bindir, certdir, warmup
        self.ssx = os.path.join(os.path.abspath(build), "tools", "ssx", "ssx")
        self.load = os.path.join(bindir, "ssx_bench_tunnel_load")
        self.dir = os.path.join(certdir, "tunnel")
        os.makedirs(self.dir, mode=0o700)
        self.server_policy = os.path.join(self.dir, "server.toml")
        self.client_policy = os.path.join(self.dir, "client.toml")
        bench.write_file(self.server_policy, server_policy(certdir, False))
        bench.write_file(self.client_policy, client_policy(certdir))
        self.tickets = False
        self.full = self.resumed = self.connections = self.chunks = self.reloads = 0
        self.baseline = self.final = None
        self.error = None
        self.done = False
        self.backend = self.server = self.client = None
        self.lock = threading.Lock()  # no progress scrape while the tunnels are measured

    def start(self):
        self.backend_log = open(os.path.join(self.dir, "backend.log"), "wb")
        self.backend = subprocess.Popen(
            [self.load, "serve", "--lifetime", str(int(self.args.seconds + 600))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.backend_log, text=True,
            preexec_fn=bench.die_with_parent)
        line = self.backend.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError("tunnel: the backend did not start")
        backend_port = json.loads(line)["port"]
        sport, cport, smetrics, cmetrics = bench.free_ports(4)
        self.smetrics, self.cmetrics = smetrics, cmetrics
        # --log-level warning: a line for every failed connection, none for the good ones.
        common = ["--workers", "2", "--grace", "1", "--log-level", "warning"]
        server_cmd = [self.ssx, "tunnel", "--mode", "server", "--policy", self.server_policy,
                      "--listen", "127.0.0.1:%d" % sport, "--to", "127.0.0.1:%d" % backend_port,
                      "--metrics", "127.0.0.1:%d" % smetrics] + common
        client_cmd = [self.ssx, "tunnel", "--mode", "client", "--policy", self.client_policy,
                      "--listen", "127.0.0.1:%d" % cport, "--to", "127.0.0.1:%d" % sport,
                      "--name", bench.TUNNEL_NAME, "--metrics", "127.0.0.1:%d" % cmetrics] + common
        self.server = bench.Proxy("server tunnel", server_cmd, sport,
                                  os.path.join(self.dir, "server.log"))
        if not self.server.wait_listening():
            raise RuntimeError("tunnel: the server tunnel did not start:\n%s" % self.server.tail())
        self.client = bench.Proxy("client tunnel", client_cmd, cport,
                                  os.path.join(self.dir, "client.log"))
        if not self.client.wait_listening():
            raise RuntimeError("tunnel: the client tunnel did not start:\n%s" % self.client.tail())

    def pids(self):
        return {"tunnel_server": self.server.proc.pid, "tunnel_client": self.client.proc.pid}

    def set_tickets(self, tickets):
        """Rewrites the server tunnel's policy and reloads it (SIGHUP); waits for the reload."""
        if tickets == self.tickets:
            return
        before = scrape(self.smetrics).get('ssx_tunnel_policy_reloads_total{result="ok"}', 0)
        tmp = self.server_policy + ".new"
        bench.write_file(tmp, server_policy(self.certdir, tickets))
        os.replace(tmp, self.server_policy)
        self.server.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 15
        while time.time() < deadline:
            m = scrape(self.smetrics)
            if m.get('ssx_tunnel_policy_reloads_total{result="error"}', 0):
                raise Failure("tunnel: the server tunnel failed to reload its policy:\n%s"
                              % self.server.tail())
            if m.get('ssx_tunnel_policy_reloads_total{result="ok"}', 0) > before:
                self.tickets = tickets
                self.reloads += 1
                return
            time.sleep(0.05)
        raise Failure("tunnel: the server tunnel did not reload its policy within 15 s")

    def quiesce(self):
        """Waits (bounded) until neither tunnel has a connection open; returns both scrapes."""
        deadline = time.time() + 30
        while True:
            s, c = scrape(self.smetrics), scrape(self.cmetrics)
            if s["ssx_tunnel_connections_open"] == 0 and c["ssx_tunnel_connections_open"] == 0:
                return s, c
            if time.time() > deadline:
                raise Failure("tunnel: connections still open 30 s after the load stopped "
                              "(server %d, client %d)" % (s["ssx_tunnel_connections_open"],
                                                          c["ssx_tunnel_connections_open"]))
            time.sleep(0.05)

    def measure(self, seconds):
        """RSS and descriptors of both tunnels at a quiescent point. A metrics request that has
        just been answered may hold a descriptor in the tunnel for a moment longer, so the count
        is the least of a few readings 20 ms apart; a leaked descriptor is in all of them."""
        out = {"seconds": round(seconds, 1), "handshakes": self.full + self.resumed}
        with self.lock:
            for name, pid in self.pids().items():
                fds = []
                for _ in range(10):
                    fds.append(proc_fds(pid))
                    time.sleep(0.02)
                out[name] = {"rss": proc_rss(pid), "fds": min(fds)}
        return out

    def live_counts(self):
        """The server tunnel's handshake counters now (for progress lines only)."""
        with self.lock:
            m = scrape(self.smetrics)
        return m.get(FULL_KEY, 0), m.get(RESUMED_KEY, 0)

    def run(self, started, deadline):
        try:
            self._run(started, deadline)
        except Failure as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001  (reported, and the run fails)
            self.error = "tunnel: harness error: %s: %s" % (type(e).__name__, e)
        finally:
            self.done = True

    def _run(self, started, deadline):
        a = self.args
        last = scrape(self.smetrics)
        resumed_next = False
        while self.full < a.full or self.resumed < a.resumed:
            left = deadline - time.time()
            if left < 1:
                break
            resume = resumed_next if (self.full < a.full and self.resumed < a.resumed) else (
                self.resumed < a.resumed)
            resumed_next = not resume
            self.set_tickets(resume)
            want = (a.resumed - self.resumed + 1) if resume else (a.full - self.full)
            j = bench.run_json([self.load, "connections", "--port", str(self.client.port),
                                "--seconds", "%.1f" % min(a.chunk, left),
                                "--concurrency", "1" if resume else "2",
                                "--max-connections", str(want)],
                               timeout=a.chunk * 2 + 120)
            s, c = self.quiesce()
            self.chunks += 1
            self.connections += j["connections"]
            if j["failures"]:
                raise Failure("tunnel: %d connections failed in chunk %d (first: %s)" % (
                    j["failures"], self.chunks, j["first_error"]))
            if failures_in(s) or failures_in(c):
                raise Failure("tunnel: the tunnels counted failed handshakes or connects:\n"
                              "  server: %s\n  client: %s" % (
                                  {k: v for k, v in s.items() if "failures" in k and v},
                                  {k: v for k, v in c.items() if "failures" in k and v}))
            full = s.get(FULL_KEY, 0) - last.get(FULL_KEY, 0)
            resumed = s.get(RESUMED_KEY, 0) - last.get(RESUMED_KEY, 0)
            last = s
            if full + resumed != j["connections"]:
                raise Failure("tunnel: chunk %d: %d connections but the server tunnel completed "
                              "%d handshakes" % (self.chunks, j["connections"], full + resumed))
            if not resume and resumed:
                raise Failure("tunnel: chunk %d (session tickets off): %d handshakes resumed" % (
                    self.chunks, resumed))
            if resume and full > 1:
                raise Failure("tunnel: chunk %d (session tickets on, one client at a time): %d "
                              "of %d handshakes were full, expected only the first" % (
                                  self.chunks, full, full + resumed))
            self.full += full
            self.resumed += resumed
            now = time.time()
            if self.baseline is None and self.chunks >= 2 and now - started >= self.warmup:
                self.baseline = self.measure(now - started)
        s, c = self.quiesce()
        for key in (FULL_KEY, RESUMED_KEY):
            if s.get(key, 0) != c.get(key, 0):
                raise Failure("tunnel: the two tunnels disagree on %s: server %d, client %d" % (
                    key, s.get(key, 0), c.get(key, 0)))
        self.final = self.measure(time.time() - started)

    def stop(self):
        for p in (self.client, self.server):
            if p is not None:
                p.stop()
        totals = None
        if self.backend is not None:
            try:
                out, _ = self.backend.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.backend.kill()
                out, _ = self.backend.communicate()
            self.backend_log.close()
            lines = [l for l in out.splitlines() if l.startswith("{")]
            totals = json.loads(lines[-1]) if lines else None
        return totals


# ---------------------------------------------------------------------------------------------


def mib(x):
    return "%.1f" % (x / MIB) if x is not None else "?"


def judge(name, baseline, final, bound, handshakes_after):
    """Checks one process; returns (ok, one-line verdict, record)."""
    if baseline is None or final is None:
        return False, "%s: no %s measurement" % (
            name, "post-warm-up" if baseline is None else "final"), {}
    growth = final["rss"] - baseline["rss"]
    rec = {"rss_after_warmup": baseline["rss"], "rss_end": final["rss"], "rss_growth": growth,
           "fds_after_warmup": baseline["fds"], "fds_end": final["fds"],
           "handshakes_after_warmup": handshakes_after}
    problems = []
    if final["fds"] > baseline["fds"]:
        problems.append("%d descriptors leaked" % (final["fds"] - baseline["fds"]))
    if growth > bound:
        problems.append("RSS grew by %s MiB, more than %s MiB" % (mib(growth), mib(bound)))
    per = (" (%+.1f bytes per handshake)" % (growth / handshakes_after)) if handshakes_after else ""
    line = "%s: RSS %s -> %s MiB (%+.2f MiB%s), fds %d -> %d: %s" % (
        name, mib(baseline["rss"]), mib(final["rss"]), growth / MIB, per, baseline["fds"],
        final["fds"], "; ".join(problems) if problems else "ok")
    return not problems, line, rec


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(bench.ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=600, help="time bound of the run (600)")
    ap.add_argument("--full", type=int, default=100000, help="full handshakes, per load")
    ap.add_argument("--resumed", type=int, default=100000, help="resumed handshakes, per load")
    ap.add_argument("--warmup", type=float, help="warm-up seconds (default: a tenth, 5-60)")
    ap.add_argument("--interval", type=float, default=10, help="seconds between progress lines")
    ap.add_argument("--chunk", type=float, help="seconds per tunnel chunk (default 10)")
    ap.add_argument("--rss-bound-mib", type=float, default=8.0,
                    help="largest RSS growth allowed per process after the warm-up (8 MiB)")
    ap.add_argument("--heap-bound-kib", type=float, default=1024,
                    help="largest growth of the library process's heap in use after the warm-up "
                         "(1024 KiB)")
    ap.add_argument("--out", help="results JSON (default BUILD/soak/soak.json)")
    ap.add_argument("--inject-leak", action="store_true",
                    help="check the harness: the library process holds one more descriptor every "
                         "100 handshake pairs and 16 KiB more per pair; passes only if the run "
                         "then fails for exactly those two reasons")
    ap.add_argument("--smoke", action="store_true",
                    help="a short run that checks the harness: 3 s chunks, 5 s progress")
    args = ap.parse_args()
    if args.seconds < 10:
        sys.exit("soak: --seconds must be at least 10")
    warmup = args.warmup if args.warmup is not None else min(60.0, max(5.0, args.seconds / 10))
    if args.chunk is None:
        args.chunk = 3.0 if args.smoke else 10.0
    if args.smoke and args.interval == 10:
        args.interval = 5.0
    bound = int(args.rss_bound_mib * MIB)
    heap_bound = int(args.heap_bound_kib * 1024)

    bindir = os.path.join(os.path.abspath(args.build), "bench")
    ssx = os.path.join(os.path.abspath(args.build), "tools", "ssx", "ssx")
    for prog in [os.path.join(bindir, p) for p in
                 ("ssx_bench_pki", "ssx_bench_ssx", "ssx_bench_tunnel_load")] + [ssx]:
        if not os.access(prog, os.X_OK):
            sys.exit("soak: %s is missing: build the ssx_bench target (`make soak` does)" % prog)
    out_path = args.out or os.path.join(os.path.abspath(args.build), "soak", "soak.json")

    log("soak: %g s (warm-up %g s), targets %d full + %d resumed handshakes through the library "
        "and through the tunnel pair; after the warm-up RSS may grow by %s MiB per process, the "
        "library's heap by %d KiB; %d CPUs, load %s" % (
            args.seconds, warmup, args.full, args.resumed, mib(bound), heap_bound // 1024,
            os.cpu_count(), " ".join("%.1f" % x for x in bench.loadavg())))
    certdir = tempfile.mkdtemp(prefix="ssx-soak-")  # 0700: the keys never leave it
    lib = tunnel = None
    samples = []
    verdicts = []
    ok = True
    record = {}
    try:
        subprocess.run([os.path.join(bindir, "ssx_bench_pki"), certdir], check=True, timeout=60)
        tunnel = TunnelSoak(args.build, bindir, certdir, args, warmup)
        tunnel.start()
        started = time.time()
        deadline = started + args.seconds
        lib = LibrarySoak(bindir, certdir, args, warmup)
        tthread = threading.Thread(target=tunnel.run, args=(started, deadline), daemon=True)
        tthread.start()
        prev = (started, 0, 0)
        next_tick = started + args.interval
        while lib.running() or not tunnel.done:
            time.sleep(max(0.0, min(0.5, next_tick - time.time())))
            if time.time() < next_tick:
                continue
            now = time.time()
            next_tick += args.interval
            lp = lib.progress
            lib_n = lp["full"] + lp["resumed"]
            # The tunnel's counts are checked chunk by chunk; between checks the progress line
            # shows the server tunnel's own counters, which run ahead of them.
            tun_full, tun_resumed = tunnel.full, tunnel.resumed
            if not tunnel.done:
                try:
                    tun_full, tun_resumed = tunnel.live_counts()
                except OSError:
                    pass
            tun_n = tun_full + tun_resumed
            dt = now - prev[0]
            sample = {"seconds": round(now - started, 1),
                      "library": {"full": lp["full"], "resumed": lp["resumed"],
                                  "rss": proc_rss(lib.proc.pid), "fds": proc_fds(lib.proc.pid)},
                      "tunnel": {"full": tun_full, "resumed": tun_resumed}}
            for name, pid in tunnel.pids().items():
                sample[name] = {"rss": proc_rss(pid), "fds": proc_fds(pid)}
            samples.append(sample)
            log("soak: %4.0f s  library %6d full %6d resumed (%4.0f/s) RSS %s MiB fds %s | "
                "tunnel %6d full %6d resumed (%4.0f/s) server RSS %s MiB fds %s, client RSS %s "
                "MiB fds %s" % (
                    now - started, lp["full"], lp["resumed"], (lib_n - prev[1]) / dt,
                    mib(sample["library"]["rss"]), sample["library"]["fds"], tun_full,
                    tun_resumed, (tun_n - prev[2]) / dt, mib(sample["tunnel_server"]["rss"]),
                    sample["tunnel_server"]["fds"], mib(sample["tunnel_client"]["rss"]),
                    sample["tunnel_client"]["fds"]))
            prev = (now, lib_n, tun_n)
            if now > deadline + 300:
                raise RuntimeError("the loads outlived the time bound by 300 s")
        stderr = lib.wait(timeout=60)
        tthread.join(timeout=60)
        wall = time.time() - started

        # The library.
        end = lib.end
        if lib.proc.returncode != 0 or end is None:
            ok = False
            verdicts.append("library: the soak process failed (exit %s): %s" % (
                lib.proc.returncode, stderr or "no output"))
        elif end["failures"]:
            ok = False
            verdicts.append("library: %d failures, the first: %s" % (end["failures"],
                                                                     end["first_failure"]))
        if end is not None:
            base = lib.baseline
            after = (end["full"] + end["resumed"] - base["full"] - base["resumed"]) if base else 0
            good, line, rec = judge("library", base, lib.final, bound, after)
            rec["heap_after_warmup"] = base["heap"] if base else None
            rec["heap_end"] = lib.final["heap"] if lib.final else None
            if good:
                # The heap in use (mallinfo2), taken by the process itself at the same quiescent
                # points: free of the allocator's caching, so held to a far tighter bound.
                growth = rec["heap_end"] - rec["heap_after_warmup"]
                line += "; heap in use %+d bytes" % growth
                if growth > heap_bound:
                    good = False
                    line += ": grew by more than %d KiB" % (heap_bound // 1024)
            ok = ok and good
            verdicts.append(line)
            record["library"] = dict(rec, full=end["full"], resumed=end["resumed"],
                                     seconds=end["seconds"])
        # The tunnels.
        if tunnel.error:
            ok = False
            verdicts.append(tunnel.error)
        for name in ("tunnel_server", "tunnel_client"):
            good, line, rec = judge(
                name.replace("_", " "), tunnel.baseline and tunnel.baseline[name],
                tunnel.final and tunnel.final[name], bound,
                tunnel.full + tunnel.resumed - (tunnel.baseline or {}).get("handshakes", 0))
            ok = ok and good
            verdicts.append(line)
            record[name] = rec
        record["tunnel"] = {"full": tunnel.full, "resumed": tunnel.resumed,
                            "connections": tunnel.connections, "chunks": tunnel.chunks,
                            "reloads": tunnel.reloads,
                            "warmup_seconds": tunnel.baseline and tunnel.baseline["seconds"]}
    finally:
        if lib is not None and lib.running():
            lib.proc.kill()
        totals = tunnel.stop() if tunnel is not None else None
        shutil.rmtree(certdir, ignore_errors=True)
    if totals is None or totals.get("bad_bytes", 1) != 0:
        ok = False
        verdicts.append("backend: damaged bytes or no totals: %s" % totals)

    short = []
    lib_rec = record.get("library", {})
    for what, got in [("library", lib_rec), ("tunnel", record["tunnel"])]:
        if got.get("full", 0) < args.full or got.get("resumed", 0) < args.resumed:
            short.append("%s %d/%d full, %d/%d resumed" % (what, got.get("full", 0), args.full,
                                                           got.get("resumed", 0), args.resumed))
    log("soak: done in %.0f s: library %d full + %d resumed, tunnel %d full + %d resumed "
        "handshakes (every resumed one verified; %d policy reloads)" % (
            wall, lib_rec.get("full", 0), lib_rec.get("resumed", 0), record["tunnel"]["full"],
            record["tunnel"]["resumed"], record["tunnel"]["reloads"]))
    if short:
        log("soak: the time ran out before the targets (%s); RSS and descriptors are judged all "
            "the same" % "; ".join(short))
    for v in verdicts:
        log("soak: " + v)
    doc = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": args.seconds, "wall_seconds": round(wall, 1), "warmup_seconds": warmup,
        "targets": {"full": args.full, "resumed": args.resumed},
        "targets_reached": not short, "rss_bound": bound, "heap_bound": heap_bound, "passed": ok, "verdicts": verdicts,
        "results": record, "samples": samples, "loadavg_after": bench.loadavg(),
        "machine": {"cpus": os.cpu_count(), "commit": bench.capture(
            ["git", "-C", bench.ROOT, "rev-parse", "--short", "HEAD"])},
    }
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    log("soak: %s (results in %s)" % ("PASSED" if ok else "FAILED", out_path))
    if args.inject_leak:
        lib_line = [v for v in verdicts if v.startswith("library: RSS")]
        others_ok = all(v.endswith(": ok") for v in verdicts if not v.startswith("library"))
        caught = (not ok and others_ok and len(lib_line) == 1
                  and "descriptors leaked" in lib_line[0] and "RSS grew" in lib_line[0])
        log("soak: self-test %s: %s" % (
            "PASSED" if caught else "FAILED",
            "the injected descriptor and memory leaks were both caught, nothing else failed"
            if caught else "the injected leaks were not caught as expected"))
        sys.exit(0 if caught else 1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        sys.exit("soak: error: %s" % e)
