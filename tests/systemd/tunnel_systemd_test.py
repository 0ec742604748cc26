#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`ssx tunnel` as systemd runs it: socket activation and sd_notify, without systemd.

The test plays systemd's part: it opens the listening socket, forks, puts the socket on fd 3,
sets LISTEN_FDS=1 and LISTEN_PID=<the child's pid> and execs `ssx tunnel --mode server` (no
--listen); it owns the NOTIFY_SOCKET datagram socket and reads what the tunnel reports. A TLS
client (Python's ssl, verifying the tunnel's certificate) is then served through the inherited
socket by a backend on loopback.

Usage: tunnel_systemd_test.py SSX_BINARY CASE
  serves              socket activation end to end, READY=1, RELOADING=1 + READY=1 on SIGHUP,
                      STOPPING=1 on SIGTERM, exit 0
  not-listening       fd 3 is a socket that does not listen: refused, exit 2
  listen-and-fds      --listen together with LISTEN_FDS: refused, exit 2
  other-pid           LISTEN_PID names another process: the socket is not taken; without
                      --listen that is a usage error, exit 2
Every wait is bounded (TIMEOUT seconds); nothing sleeps to order events.
"""
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

TIMEOUT = 30


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def make_credentials(ssx, directory):
    pki = os.path.join(directory, "pki")
    # The tunnel requires client certificates unless the policy says otherwise, so the test's
    # client has one too.
    for args in (["pki", "init", pki], ["pki", "issue", pki, "localhost", "--ip", "127.0.0.1",
                                        "--server"],
                 ["pki", "issue", pki, "client", "--uri", "spiffe://test/client", "--client"]):
        subprocess.run([ssx] + args, check=True, stdout=subprocess.DEVNULL, timeout=TIMEOUT)
    policy = os.path.join(directory, "server.toml")
    with open(policy, "w") as f:
        f.write('version = 1\n[defaults]\ncertificate = "%s/localhost.crt"\n'
                'private_key = "%s/localhost.key"\ntrust_bundle = "%s/ca.crt"\n' % (pki, pki, pki))
    return policy, os.path.join(pki, "ca.crt"), pki


def start_backend():
    """A loopback service that answers one line with "echo:" + the line, for one connection."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(TIMEOUT)

    def serve():
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(TIMEOUT)
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            conn.sendall(b"echo:" + data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def spawn(ssx, args, listen_sock, notify_path, listen_pid="child"):
    """fork + exec as systemd does: the socket on fd 3, LISTEN_FDS=1, LISTEN_PID=child pid."""
    fd = listen_sock.fileno()

    def as_systemd():
        if fd != 3:
            os.dup2(fd, 3)
        os.set_inheritable(3, True)
        pid = os.getpid() if listen_pid == "child" else listen_pid
        os.putenv("LISTEN_PID", str(pid))
        os.putenv("LISTEN_FDS", "1")
        if notify_path:
            os.putenv("NOTIFY_SOCKET", notify_path)

    return subprocess.Popen([ssx, "tunnel"] + args, preexec_fn=as_systemd, close_fds=False,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def expect_notify(notify, wanted, proc):
    """Reads datagrams until one holds the line |wanted|; fails after TIMEOUT or on exit."""
    seen = []
    while True:
        try:
            message = notify.recv(4096).decode()
        except socket.timeout:
            proc.kill()
            out, err = proc.communicate(timeout=TIMEOUT)
            fail("no %s within %d s; got %r; tunnel stderr: %s" % (wanted, TIMEOUT, seen,
                                                                   err.decode()))
        seen.append(message)
        if wanted in message.split("\n"):
            return message


def case_serves(ssx, directory):
    policy, ca, pki = make_credentials(ssx, directory)
    backend, backend_thread = start_backend()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    notify_path = os.path.join(directory, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(TIMEOUT)
    proc = spawn(ssx, ["--mode", "server", "--policy", policy, "--workers", "2", "--to",
                       "127.0.0.1:%d" % backend.getsockname()[1]], listener, notify_path)
    try:
        expect_notify(notify, "READY=1", proc)
        # The parent's copy stays open as systemd's does; the tunnel must serve through its own.
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(os.path.join(pki, "client.crt"), os.path.join(pki, "client.key"))
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                if tls.version() != "TLSv1.3":
                    fail("expected TLS 1.3, got %s" % tls.version())
                tls.sendall(b"ping\n")
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
        if reply != b"echo:ping\n":
            fail("the backend's reply did not come through the tunnel: %r" % reply)
        backend_thread.join(TIMEOUT)

        proc.send_signal(signal.SIGHUP)
        expect_notify(notify, "RELOADING=1", proc)
        expect_notify(notify, "READY=1", proc)
        proc.send_signal(signal.SIGTERM)
        expect_notify(notify, "STOPPING=1", proc)
        out, err = proc.communicate(timeout=TIMEOUT)
        if proc.returncode != 0:
            fail("tunnel exited %d: %s" % (proc.returncode, err.decode()))
        if ("listening on 127.0.0.1:%d" % port) not in out.decode():
            fail("the tunnel did not report the inherited socket's address: %s" % out.decode())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
    print("ok: served through the LISTEN_FDS socket; READY, RELOADING, READY, STOPPING sent")


def expect_usage_error(proc, needle):
    out, err = proc.communicate(timeout=TIMEOUT)
    if proc.returncode != 2 or needle not in err.decode():
        fail("expected exit 2 and %r, got %d: %s" % (needle, proc.returncode, err.decode()))
    print("ok: refused with exit 2: " + err.decode().strip())


def main():
    ssx, case = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="ssx-systemd-test.") as directory:
        if case == "serves":
            case_serves(ssx, directory)
            return
        args = ["--mode", "server", "--to", "127.0.0.1:9"]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if case == "not-listening":
            proc = spawn(ssx, args, sock, None)
            expect_usage_error(proc, "not a listening stream socket")
        elif case == "listen-and-fds":
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
            proc = spawn(ssx, args + ["--listen", "127.0.0.1:0"], sock, None)
            expect_usage_error(proc, "exclude each other")
        elif case == "other-pid":
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
            proc = spawn(ssx, args, sock, None, listen_pid=1)
            expect_usage_error(proc, "--listen is required")
        else:
            fail("unknown case " + case)


if __name__ == "__main__":
    main()
