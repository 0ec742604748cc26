// SPDX-License-Identifier: Apache-2.0
// Foreign peers that do not speak TLS at all: ssx fails closed with EPROTO on both sides, and no
// application byte crosses in cleartext.

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "interop.hpp"

namespace ssx::test {
namespace {

class PlaintextTest : public InteropTest {};

// curl speaking plain HTTP to an ssx server.
TEST_F(PlaintextTest, PlainHttpClientIsRefusedByOurServer) {
  interop_policy();
  Fd listener = bounded_listener();
  ServerOutcome outcome;
  auto server = line_server(listener.get(), outcome);
  const std::vector<std::string> argv = {
      "curl",         "--silent",
      "--show-error", "--max-time",
      "10",           "http://127.0.0.1:" + std::to_string(local_port(listener.get())) + "/"};
  CommandResult r = run_command(argv, kPeerTimeout);
  server.reset();
  EXPECT_EQ(outcome.accept_errno, EPROTO) << outcome.accept_reason;
  EXPECT_STREQ(ssx_reason_name(outcome.accept_reason_code), "NOT_TLS") << outcome.accept_reason;
  EXPECT_NE(outcome.accept_reason.find("does not speak TLS"), std::string::npos)
      << outcome.accept_reason;
  EXPECT_NE(r.exit_code, 0) << describe(argv, r);
  EXPECT_EQ(r.output.find("hello from the ssx server"), std::string::npos) << r.output;
}

// A plaintext server that talks first, as SMTP, FTP or POP3 servers do (a few lines of Python).
TEST_F(PlaintextTest, ServerThatAnswersInCleartextIsRefused) {
  interop_policy();
  const std::string script =
      "import socket, sys, time\n"
      "s = socket.socket()\n"
      "s.bind(('127.0.0.1', 0))\n"
      "s.listen(1)\n"
      "print('PORT', s.getsockname()[1], flush=True)\n"
      "c, _ = s.accept()\n"
      "c.sendall(b'220 interop.example ESMTP ready\\r\\n')\n"
      "data = c.recv(65536)\n"
      "print('GOT', len(data), 'BYTES FIRST', data[:1].hex(), flush=True)\n"
      "time.sleep(30)\n";  // keeps the connection open while the test runs; it is killed after
  ChildProcess server({"python3", "-c", script});
  std::string line = server.wait_for_line("PORT ", kPeerTimeout);
  ASSERT_FALSE(line.empty()) << server.output();
  const auto port = static_cast<std::uint16_t>(std::stoi(line.substr(5)));
  Fd client;
  // Even an application that would accept cleartext does not get it: the policy says no.
  int rc = ssx_client_connect(port, {"localhost"}, SSX_ALLOW_INSECURE, &client);
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(errno, EPROTO) << last_error_text();
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_NOT_TLS) << last_error_text();
  EXPECT_NE(std::string(ssx_last_error()).find("does not speak TLS"), std::string::npos)
      << ssx_last_error();
  // What the server got was a TLS handshake record (0x16), nothing else.
  EXPECT_TRUE(server.wait_for_output("FIRST 16", kPeerTimeout)) << server.output();
  EXPECT_EQ(ssx_send(client.get(), "secret", 6, 0), -1);
}

}  // namespace
}  // namespace ssx::test
