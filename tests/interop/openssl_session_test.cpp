// SPDX-License-Identifier: Apache-2.0
// What happens to an established ssx connection when the foreign peer acts on it: TLS 1.3 key
// updates (either side asking), TLS 1.2 renegotiation (which ssx refuses), and bulk data in many
// records both ways.

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "interop.hpp"

namespace ssx::test {
namespace {

// s_server -msg prints each handshake message: "<<<" received, ">>>" sent.
constexpr const char *kKeyUpdateReceived = "<<< TLS 1.3, Handshake [length 0005], KeyUpdate";
constexpr const char *kKeyUpdateSent = ">>> TLS 1.3, Handshake [length 0005], KeyUpdate";

class SessionTest : public InteropTest {};

// s_server sends a KeyUpdate asking for ours ("K" on its stdin): ssx takes the new keys, answers
// with its own KeyUpdate, data keeps flowing both ways under the new keys, and the query reports
// what it did before.
TEST_F(SessionTest, ServerKeyUpdateRequestIsAnsweredAndDataFlows) {
  interop_policy();
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3", "-msg"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  exchange(client.get(), server);
  Info before = query(client.get());
  ASSERT_TRUE(server.process->write_input("K\n"));
  EXPECT_TRUE(server.process->wait_for_output(kKeyUpdateSent, kPeerTimeout))
      << server.process->output();
  // The client reads the KeyUpdate with the next data, and sends its own with its next write.
  exchange(client.get(), server);
  exchange(client.get(), server);
  EXPECT_TRUE(server.process->wait_for_output(kKeyUpdateReceived, kPeerTimeout))
      << "ssx did not answer the KeyUpdate request\n"
      << server.process->output();
  // New keys, same peer: the query's answer (kept from its first call) does not change.
  Info after = query(client.get());
  ASSERT_TRUE(before && after);
  expect_same_info(*before, *after);
}

// s_client sends a KeyUpdate asking for ours ("K" on its stdin, commands enabled) to an ssx
// server.
TEST_F(SessionTest, ClientKeyUpdateRequestIsAnsweredByOurServer) {
  interop_policy();
  Fd listener = bounded_listener();
  ServerOutcome outcome;
  CommandResult r = talk_to_line_server(
      listener.get(),
      s_client_argv(local_port(listener.get()), pki_.ca_cert(), {"-msg"}, /*commands=*/true),
      "after the key update\n", outcome, {{"K\n", kKeyUpdateSent}});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("KEYUPDATE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(kKeyUpdateSent), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(kKeyUpdateReceived), std::string::npos)
      << "the ssx server did not answer the KeyUpdate request\n"
      << r.output;
  EXPECT_EQ(outcome.received, "after the key update\n");
  EXPECT_TRUE(outcome.clean_end) << std::strerror(outcome.end_errno);
}

// TLS 1.2: s_server asks to renegotiate ("R"). ssx refuses renegotiation, so the connection must
// end with an error on the ssx side — never a silent 0, never a hang.
TEST_F(SessionTest, Tls12RenegotiationIsRefused) {
  interop_policy("min_tls_version = \"1.2\"");
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_2", "-msg"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();
  exchange(client.get(), server);
  ASSERT_TRUE(server.process->write_input("R\n"));
  EXPECT_TRUE(server.process->wait_for_output(">>> TLS 1.2, Handshake [length 0004], HelloRequest",
                                              kPeerTimeout))
      << server.process->output();
  char buf[64];
  EXPECT_EQ(ssx_recv(client.get(), buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EPROTO) << last_error_text();
  EXPECT_NE(ssx_last_error_reason(), SSX_REASON_OTHER) << last_error_text();
  // ssx said no (a warning alert); s_server then gave up on the connection.
  EXPECT_TRUE(server.process->wait_for_output(
      "<<< TLS 1.2, Alert [length 0002], warning no_renegotiation", kPeerTimeout))
      << server.process->output();
  const std::string &out = server.process->output();
  EXPECT_EQ(out.find("<<< TLS 1.2, Handshake [length", out.find("HelloRequest")), std::string::npos)
      << "ssx must not start a new handshake\n"
      << out;
}

// 1 MiB each way through s_server, in many records: nothing lost, duplicated or reordered.
TEST_F(SessionTest, BulkDataBothWays) {
  interop_policy();
  ForeignServer server = start_openssl_server(server_creds_, {"-tls1_3"});
  ASSERT_TRUE(server);
  Fd client;
  ASSERT_GE(connect_to(server.port, {"localhost"}, &client), 0) << last_error_text();

  // Digits only: s_server takes a chunk of its stdin that starts with certain letters ("q",
  // "r", "K", ...) as a command, wherever the chunk boundary falls.
  auto payload = [](int seed) {
    std::string out;
    for (int line = seed; out.size() < (1u << 20); line += 7) {
      out += std::to_string(line) + " 0123456789 9876543210 " + std::to_string(line * 31) + "\n";
    }
    return out;
  };
  const std::string up = payload(1) + "--- 1\n";
  const std::string down = payload(2) + "--- 2\n";

  // s_server writes what it receives to its stdout, which the test must keep reading, and reads
  // what it sends from its stdin, which the test must keep writing: the ssx side runs on a thread.
  std::string received;
  int recv_error = 0;
  bool eof = false;
  bool sent = false;
  BackgroundThread ssx_side([&] {
    sent = ssx_send_all(client.get(), up);
    received = recv_until(client.get(), "--- 2\n", &recv_error, &eof);
  });
  EXPECT_TRUE(server.process->wait_for_output("--- 1\n", kPeerTimeout));
  EXPECT_TRUE(server.process->write_input(down, kPeerTimeout));
  ssx_side.join();
  EXPECT_TRUE(sent) << last_error_text();
  EXPECT_NE(server.process->output().find(up), std::string::npos) << "upload corrupted";
  EXPECT_EQ(received.size(), down.size()) << std::strerror(recv_error);
  EXPECT_TRUE(received == down) << "download corrupted";
}

}  // namespace
}  // namespace ssx::test
