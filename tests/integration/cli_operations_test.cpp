// SPDX-License-Identifier: Apache-2.0
// `ssx listen` and `ssx connect` as an operator meets them: a server that will not start without
// a certificate, client certificates required unless the policy decides, a warning for every
// cleartext fallback, `| head` without a complaint, and a log that never blocks the listener.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli_support.hpp"
#include "testlib/loopback.hpp"
#include "testlib/run_command.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {
namespace {

using std::chrono::seconds;
constexpr auto kWait = seconds(20);

class CliOps : public ::testing::Test {
 protected:
  CliOps() : server_(pki_.server()), client_(pki_.client()) {}

  void SetUp() override {
    ASSERT_EQ(access(ssx_binary().c_str(), X_OK), 0) << ssx_binary() << " is missing";
  }

  // server_policy: inbound sockets present the server certificate, then |extra|.
  std::string server_policy(const std::string &extra = "") {
    return write("server-" + std::to_string(++count_) + ".toml",
                 "version = 1\n[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) +
                     "\ncertificate = " + toml_quote(server_.cert) +
                     "\nprivate_key = " + toml_quote(server_.key) + "\n" + extra);
  }
  // client_policy: trusts the test CA; with or without the client certificate; then |extra|.
  std::string client_policy(bool certificate, const std::string &extra = "") {
    std::string toml =
        "version = 1\n[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) + "\n";
    if (certificate) {
      toml += "certificate = " + toml_quote(client_.cert) +
              "\nprivate_key = " + toml_quote(client_.key) + "\n";
    }
    return write("client-" + std::to_string(++count_) + ".toml", toml + extra);
  }
  std::string write(const std::string &name, const std::string &text) {
    const std::string path = dir_.file(name);
    write_text(path, text);
    return path;
  }
  CommandResult connect(std::vector<std::string> args, const std::string &input = "") {
    args.insert(args.begin(), "connect");
    return run_command(ssx_argv(std::move(args)), kWait, input);
  }

  TestPki pki_;
  TempDir dir_;
  CredentialFiles server_, client_;
  int count_ = 0;
};

TEST_F(CliOps, ListenRefusesToStartWithoutACertificate) {
  const std::string policy = client_policy(false);
  auto r = run_command(ssx_argv({"listen", "--policy", policy, "127.0.0.1:0"}), kWait);
  expect_one_line_error(r, 2, "listen without a certificate");
  EXPECT_NE(r.output.find("no server certificate for 127.0.0.1:"), std::string::npos) << r.output;
}

TEST_F(CliOps, ListenRequiresClientCertificatesUnlessThePolicySaysOtherwise) {
  {
    BackgroundListen listen({"--policy", server_policy(), "--once", "127.0.0.1:0"});
    ASSERT_FALSE(listen.port().empty());
    auto r = connect(
        {"--policy", client_policy(false), "--name", "localhost", "127.0.0.1:" + listen.port()},
        "hello\n");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("the server requires a client certificate, and none was sent"),
              std::string::npos)
        << r.output;
    auto status = listen.child().wait_exit(kWait);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 1) << listen.output();
    EXPECT_NE(listen.output().find("client presented no certificate"), std::string::npos)
        << listen.output();
  }
  {
    // The client certificate is what the default asks for.
    BackgroundListen listen({"--policy", server_policy(), "--once", "127.0.0.1:0"});
    auto r = connect(
        {"--policy", client_policy(true), "--name", "localhost", "127.0.0.1:" + listen.port()},
        "hello\n");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(listen.child().wait_for_output("hello\n", kWait)) << listen.output();
  }
  {
    // peer_authentication = "none", said explicitly: clients without a certificate are served,
    // and the listener warns once at start.
    BackgroundListen listen(
        {"--policy", server_policy("peer_authentication = \"none\"\n"), "--once", "127.0.0.1:0"});
    auto r = connect(
        {"--policy", client_policy(false), "--name", "localhost", "127.0.0.1:" + listen.port()},
        "anonymous\n");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(listen.child().wait_for_output("anonymous\n", kWait)) << listen.output();
    EXPECT_NE(listen.output().find("ssx: warning: clients without a certificate are accepted on "
                                   "127.0.0.1:"),
              std::string::npos)
        << listen.output();
  }
}

// A cleartext server (first connection: answers the ClientHello with text and hangs up; second,
// after the client's fallback: greets and echoes nothing).
class CleartextPeer {
 public:
  CleartextPeer() {
    thread_ = std::thread([this] {
      for (int i = 0; i < 2; ++i) {
        int fd = ::accept(listener_.get(), nullptr, nullptr);
        if (fd < 0) return;
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[4096];
        if (i == 0) {
          (void)!::recv(fd, buf, sizeof buf, 0);
          (void)!::send(fd, "HTTP/1.0 400 Bad Request\r\n\r\n", 28, MSG_NOSIGNAL);
        } else {
          (void)!::send(fd, "plain hello\n", 12, MSG_NOSIGNAL);
          while (::recv(fd, buf, sizeof buf, 0) > 0) {
          }
        }
        ::close(fd);
      }
    });
  }
  ~CleartextPeer() {
    ::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::uint16_t port() const { return local_port(listener_.get()); }

 private:
  Fd listener_ = plain_listener();
  std::thread thread_;
};

TEST_F(CliOps, AllowInsecureWarnsWheneverItFallsBackToCleartext) {
  const std::string policy = client_policy(true, "allow_insecure = true\n");
  {
    CleartextPeer plain;
    auto r = connect({"--policy", policy, "--allow-insecure", "--name", "localhost",
                      "127.0.0.1:" + std::to_string(plain.port())});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("plain hello\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("ssx: warning: 127.0.0.1:" + std::to_string(plain.port()) +
                            " does not speak TLS; connected in CLEARTEXT"),
              std::string::npos)
        << r.output;
  }
  // A peer that speaks TLS: no warning, although cleartext was allowed.
  BackgroundListen listen({"--policy", server_policy(), "--once", "127.0.0.1:0"});
  auto r = connect(
      {"--policy", policy, "--allow-insecure", "--name", "localhost", "127.0.0.1:" + listen.port()},
      "secured\n");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;
}

TEST_F(CliOps, ConnectIntoHeadExitsQuietly) {
  BackgroundListen listen(
      {"--policy", server_policy(), "--once", "127.0.0.1:0", "--exec", "yes", "line"});
  ASSERT_FALSE(listen.port().empty());
  const std::string command =
      "\"$0\" connect --policy \"$1\" --name localhost \"$2\" </dev/null "
      "| head -n 1; echo \"connect exited ${PIPESTATUS[0]}\"";
  auto r = run_command(
      {"/bin/bash", "-c", command, ssx_binary(), client_policy(true), "127.0.0.1:" + listen.port()},
      kWait);
  EXPECT_EQ(r.output, "line\nconnect exited 0\n");
}

// The listener's log is standard error; with nobody reading it the listener goes on serving.
TEST_F(CliOps, ListenKeepsServingWhenNobodyReadsItsLog) {
  const std::string policy = server_policy();
  // stderr: a pipe to a process that never reads it (so the port is chosen here, not read from
  // the "listening on" line).
  std::uint16_t chosen = 0;
  {
    Fd probe = plain_listener();
    chosen = local_port(probe.get());
  }
  const std::string port = std::to_string(chosen);
  ChildProcess listen({"/bin/bash", "-c",
                       // stderr goes to a process that never reads it (`sleep`), not a wait
                       "exec \"$0\" listen --policy \"$1\" \"$2\" --exec cat 2> >(exec sleep 600)",
                       ssx_binary(), policy, "127.0.0.1:" + port});
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback_address(chosen);
    up = ::connect(c.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    // Poll interval of a bounded wait for the listener in another process to come up.
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(up) << listen.output();
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  int failures = 0;
  for (; failures < 1000 && std::chrono::steady_clock::now() < deadline; ++failures) {
    // A plain connection that sends garbage: the listener logs one line for it.
    Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback_address(chosen);
    ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    const std::string garbage(64, 'G');
    (void)!::send(c.get(), garbage.data(), garbage.size(), MSG_NOSIGNAL);
    timeval tv{5, 0};
    ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte;
    (void)::recv(c.get(), &byte, 1, 0);
  }
  // Still serving.
  auto r = connect({"--policy", client_policy(true), "--name", "localhost", "127.0.0.1:" + port},
                   "still here\n");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "still here\n");
}

}  // namespace
}  // namespace ssx::test
