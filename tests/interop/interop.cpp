// SPDX-License-Identifier: Apache-2.0
// Helpers for the interop tests: see interop.hpp.

#include "interop.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ssx::test {

std::vector<std::string> peer_names_of(const ssx_security_info &info) {
  std::vector<std::string> out;
  for (const char *const *n = info.peer_names; n != nullptr && *n != nullptr; ++n) {
    out.emplace_back(*n);
  }
  return out;
}

void set_io_timeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  EXPECT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0) << std::strerror(errno);
  EXPECT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0) << std::strerror(errno);
}

std::uint16_t free_port() {
  Fd probe = plain_listener(1);
  return local_port(probe.get());
}

std::string recv_until(int fd, const std::string &needle, int *error, bool *eof) {
  std::string out;
  *error = 0;
  *eof = false;
  char buf[4096];
  while (out.find(needle) == std::string::npos) {
    ssize_t n = ssx_recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      *eof = true;
      break;
    }
    if (n < 0) {
      *error = errno;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string spki_pin_of(const std::string &cert_file) {
  const std::vector<std::string> argv = {
      "sh", "-c",
      "openssl x509 -in \"$0\" -pubkey -noout | openssl pkey -pubin -outform DER | "
      "openssl dgst -sha256",
      cert_file};
  CommandResult r = run_command(argv, kPeerTimeout);
  EXPECT_EQ(r.exit_code, 0) << describe(argv, r);
  // "SHA2-256(stdin)= 5c0f…"
  auto at = r.output.rfind("= ");
  if (at == std::string::npos) return "";
  std::string hex = r.output.substr(at + 2);
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
  EXPECT_EQ(hex.size(), 64u) << r.output;
  return "sha256:" + hex;
}

std::string expect_refused(std::uint16_t port, const std::vector<std::string> &names, int expected,
                           int expected_reason, const std::string &fragment) {
  Fd client;
  int rc = ssx_client_connect(port, names, SSX_GUARANTEE_ENCRYPTION, &client);
  int error = errno;
  int code = ssx_last_error_reason();
  std::string reason = ssx_last_error();
  if (rc >= 0) {
    set_io_timeouts(client.get());
    char buf[64];
    ssize_t n = ssx_recv(client.get(), buf, sizeof buf, 0);
    error = errno;
    code = ssx_last_error_reason();
    reason = ssx_last_error();
    EXPECT_EQ(n, -1) << "connect succeeded and so did recv";
  }
  EXPECT_EQ(error, expected) << std::strerror(error) << " — " << reason;
  EXPECT_STREQ(ssx_reason_name(code), ssx_reason_name(expected_reason)) << reason;
  EXPECT_NE(reason.find(fragment), std::string::npos) << reason;
  // Whatever failed, the socket is dead and sends nothing.
  EXPECT_EQ(ssx_send(client.get(), "x", 1, 0), -1);
  return reason;
}

std::unique_ptr<BackgroundThread> line_server(int listener, ServerOutcome &out) {
  return std::make_unique<BackgroundThread>([listener, &out] {
    int fd = ssx_accept(listener, nullptr, nullptr);
    if (fd < 0) {
      out.accept_errno = errno;
      out.accept_reason = ssx_last_error();
      out.accept_reason_code = ssx_last_error_reason();
      return;
    }
    Fd owned(fd);
    set_io_timeouts(fd);
    out.info = query(fd);
    if (!ssx_send_all(fd, kGreeting)) {
      ADD_FAILURE() << "greeting: " << last_error_text();
      return;
    }
    int error = 0;
    bool eof = false;
    out.received = recv_until(fd, "\n", &error, &eof);
    if (!ssx_send_all(fd, "echo: " + out.received)) {
      ADD_FAILURE() << "echo: " << last_error_text();
      return;
    }
    recv_until(fd, "never sent", &out.end_errno, &out.clean_end);
  });
}

std::vector<std::string> s_client_argv(std::uint16_t port, const std::string &ca_file,
                                       const std::vector<std::string> &extra, bool commands) {
  std::vector<std::string> argv = {"openssl",
                                   "s_client",
                                   "-connect",
                                   "127.0.0.1:" + std::to_string(port),
                                   "-servername",
                                   "localhost",
                                   "-CAfile",
                                   ca_file,
                                   "-verify_return_error",
                                   "-verify_hostname",
                                   "localhost"};
  if (!commands) argv.push_back("-nocommands");
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

CommandResult talk_to_line_server(int listener, const std::vector<std::string> &argv,
                                  const std::string &line, ServerOutcome &outcome,
                                  const std::vector<Prompt> &before) {
  auto server = line_server(listener, outcome);
  ChildProcess client(argv, ChildProcess::Stdin::pipe);
  EXPECT_TRUE(client.wait_for_output(kGreeting, kPeerTimeout)) << client.output();
  for (const auto &prompt : before) {
    EXPECT_TRUE(client.write_input(prompt.input));
    EXPECT_TRUE(client.wait_for_output(prompt.acknowledgement, kPeerTimeout)) << client.output();
  }
  EXPECT_TRUE(client.write_input(line));
  EXPECT_TRUE(client.wait_for_output("echo: " + line, kPeerTimeout)) << client.output();
  client.close_input();
  CommandResult result = client.wait_for_exit(kPeerTimeout);
  server.reset();
  return result;
}

void exchange(int fd, ForeignServer &server) {
  ASSERT_TRUE(ssx_send_all(fd, kFromClient)) << last_error_text();
  EXPECT_TRUE(server.process->wait_for_output(kFromClient, kPeerTimeout))
      << server.process->output();
  ASSERT_TRUE(server.process->write_input(kFromServer));
  int error = 0;
  bool eof = false;
  EXPECT_EQ(recv_until(fd, "\n", &error, &eof), kFromServer)
      << std::strerror(error) << " — " << ssx_last_error();
  EXPECT_EQ(error, 0);
  EXPECT_FALSE(eof);
}

ForeignServer start_openssl_server(const CredentialFiles &creds,
                                   const std::vector<std::string> &extra) {
  std::vector<std::string> argv = {"openssl",  "s_server", "-accept", "127.0.0.1:0", "-cert",
                                   creds.cert, "-key",     creds.key, "-naccept",    "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ForeignServer server;
  server.process = std::make_unique<ChildProcess>(argv, ChildProcess::Stdin::pipe);
  // "ACCEPT 127.0.0.1:43073"
  std::string line = server.process->wait_for_line("ACCEPT 127.0.0.1:", kPeerTimeout);
  if (line.empty()) {
    ADD_FAILURE() << "openssl s_server did not come up:\n" << server.process->output();
    return {};
  }
  server.port = static_cast<std::uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  return server;
}

ForeignServer start_gnutls_server(const CredentialFiles &creds,
                                  const std::vector<std::string> &extra) {
  std::string failures;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const std::uint16_t port = free_port();
    std::vector<std::string> argv = {"gnutls-serv",        "--echo",         "-p",
                                     std::to_string(port), "--x509certfile", creds.cert,
                                     "--x509keyfile",      creds.key};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ForeignServer server;
    server.process = std::make_unique<ChildProcess>(argv);
    const std::string ready = "listening on IPv4 0.0.0.0 port " + std::to_string(port) + "...done";
    if (server.process->wait_for_output(ready, kPeerTimeout)) {
      server.port = port;
      return server;
    }
    server.process->stop();
    failures += server.process->output() + "\n";  // e.g. the port was taken meanwhile
  }
  ADD_FAILURE() << "gnutls-serv did not come up:\n" << failures;
  return {};
}

}  // namespace ssx::test
