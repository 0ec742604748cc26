// SPDX-License-Identifier: Apache-2.0
// Scenario tests of `ssx connect` and `ssx listen`, the secure netcat: the built binary against
// `openssl s_client` / `openssl s_server` and against itself, on loopback. Every wait is bounded
// and every background process (ChildProcess) is killed on every path out of a test.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "testlib/loopback.hpp"
#include "testlib/run_command.hpp"
#include "testlib/test_pki.hpp"
#include "testlib/test_users.hpp"

namespace ssx::test {
namespace {

using std::chrono::seconds;
constexpr auto kWait = seconds(20);

std::string current_user_name() {
  passwd *pw = getpwuid(geteuid());
  return pw != nullptr ? pw->pw_name : "";
}

std::string random_bytes(size_t n) {
  std::mt19937 rng(12345);
  std::string out(n, '\0');
  for (char &c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

bool ipv6_loopback_available() {
  Fd probe(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.get() < 0) return false;
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  return ::bind(probe.get(), reinterpret_cast<sockaddr *>(&address), sizeof address) == 0;
}

// json_line returns the first line of |output| that is a JSON object, parsed.
nlohmann::json json_line(const std::string &output) {
  for (size_t start = 0; start < output.size();) {
    size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    if (output.compare(start, 2, "{\"") == 0) {
      return nlohmann::json::parse(output.substr(start, end - start));
    }
    start = end + 1;
  }
  ADD_FAILURE() << "no JSON object in:\n" << output;
  return {};
}

class CliNetcat : public ::testing::Test {
 protected:
  CliNetcat() : server_(pki_.server()), client_(pki_.client()) {}

  void SetUp() override {
    ASSERT_EQ(access(ssx_binary().c_str(), X_OK), 0)
        << ssx_binary() << " is missing: build the ssx_cli target first";
  }

  // write_policy writes a policy file and returns its path: [defaults] trusting the test CA, a
  // rule "server" (inbound: the server certificate, then |server_extra|), a rule "client"
  // (outbound: the client certificate), then |tail| (e.g. [[identity]] tables).
  std::string write_policy(const std::string &server_extra = "", const std::string &tail = "") {
    std::string toml = "version = 1\n[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) +
                       "\n\n[[rule]]\nname = \"server\"\ndirection = \"inbound\"\ncertificate = " +
                       toml_quote(server_.cert) + "\nprivate_key = " + toml_quote(server_.key) +
                       "\n" + server_extra + "\n\n[[rule]]\nname = \"client\"\n" +
                       "direction = \"outbound\"\ncertificate = " + toml_quote(client_.cert) +
                       "\nprivate_key = " + toml_quote(client_.key) + "\n\n" + tail;
    std::string path = dir_.file("policy-" + std::to_string(++policies_) + ".toml");
    write_text(path, toml, 0644);
    return path;
  }

  // identity maps the test client's SPIFFE ID to |user|.
  static std::string identity(const std::string &user) {
    return "[[identity]]\npeer = \"spiffe://ssx.test/client\"\nuser = " + toml_quote(user) + "\n";
  }

  CommandResult connect(std::vector<std::string> args, const std::string &input = "") {
    args.insert(args.begin(), "connect");
    return run_command(ssx_argv(std::move(args)), kWait, input);
  }

  TestPki pki_;
  TempDir dir_;
  CredentialFiles server_;
  CredentialFiles client_;
  int policies_ = 0;
};

// An OpenSSL s_server at 127.0.0.1 on a port the kernel picks. Its stdin is a pipe the test holds
// open: s_server ends the connection when its stdin ends.
class OpensslServer {
 public:
  explicit OpensslServer(std::vector<std::string> extra)
      : child_(argv(std::move(extra)), ChildProcess::Stdin::pipe) {
    std::string line = child_.wait_for_line("ACCEPT ", seconds(10));
    size_t colon = line.rfind(':');
    if (colon != std::string::npos) port_ = line.substr(colon + 1);
    if (port_.empty()) ADD_FAILURE() << "openssl s_server did not start:\n" << child_.output();
  }
  const std::string &port() const { return port_; }
  ChildProcess &child() { return child_; }

 private:
  static std::vector<std::string> argv(std::vector<std::string> extra) {
    std::vector<std::string> args = {"openssl", "s_server", "-accept", "127.0.0.1:0", "-tls1_3"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  ChildProcess child_;
  std::string port_;
};

TEST_F(CliNetcat, OpensslClientAndListenExchangeDataBothWays) {
  const std::string policy = write_policy();
  BackgroundListen listen({"--policy", policy, "--once", "127.0.0.1:0"}, ChildProcess::Stdin::pipe);
  ASSERT_FALSE(listen.port().empty());
  // -quiet implies -ign_eof: s_client stays until the server's close_notify.
  ChildProcess s_client({"openssl", "s_client", "-connect", "127.0.0.1:" + listen.port(), "-CAfile",
                         pki_.ca_cert(), "-verify_return_error", "-verify_hostname", "localhost",
                         "-tls1_3", "-quiet", "-cert", client_.cert, "-key", client_.key},
                        ChildProcess::Stdin::pipe);

  ASSERT_TRUE(s_client.write_input("hello from s_client\n", kWait));
  EXPECT_TRUE(listen.child().wait_for_output("hello from s_client\n", kWait)) << listen.output();
  ASSERT_TRUE(listen.child().write_input("hello from ssx listen\n", kWait));
  listen.child().close_input();  // the listener sends close_notify; s_client then ends
  EXPECT_TRUE(s_client.wait_for_output("hello from ssx listen\n", kWait)) << s_client.output();

  auto s_client_status = s_client.wait_exit(kWait);
  ASSERT_TRUE(s_client_status.has_value()) << s_client.output();
  EXPECT_EQ(*s_client_status, 0) << s_client.output();
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_EQ(*status, 0) << listen.output();
}

TEST_F(CliNetcat, ConnectJsonReportsEveryFieldAgainstOpensslServer) {
  const std::string policy = write_policy();
  // A cipher suite and group other than OpenSSL's first choices, and a required client
  // certificate, so that every reported value is one this test chose.
  OpensslServer server({"-cert", server_.cert, "-key", server_.key, "-www", "-ciphersuites",
                        "TLS_CHACHA20_POLY1305_SHA256", "-groups", "P-256", "-Verify", "1",
                        "-CAfile", pki_.ca_cert()});
  ASSERT_FALSE(server.port().empty());

  auto result =
      connect({"--policy", policy, "--json", "--name", "localhost", "127.0.0.1:" + server.port()},
              "GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("HTTP/1.0 200 ok"), std::string::npos) << result.output;

  // The key the server presented, as openssl computes it.
  auto spki = run_command({"sh", "-c",
                           "openssl x509 -in \"$0\" -pubkey -noout | openssl pkey -pubin "
                           "-outform DER | openssl dgst -sha256 -r | cut -d' ' -f1",
                           server_.cert});
  ASSERT_EQ(spki.exit_code, 0) << spki.output;
  std::string expected_spki = spki.output.substr(0, spki.output.find('\n'));
  ASSERT_EQ(expected_spki.size(), 64u) << spki.output;

  nlohmann::json j = json_line(result.output);
  std::vector<std::string> keys;
  for (const auto &item : j.items()) keys.push_back(item.key());
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"cipher", "encrypted", "group", "handshake_ms",
                                            "kernel_offload", "peer", "peer_authenticated",
                                            "peer_name_verified", "policy_rule", "protocol",
                                            "resumed", "secured", "version"}));
  EXPECT_EQ(j["protocol"], "tls");
  EXPECT_EQ(j["version"], "TLSv1.3");
  EXPECT_EQ(j["cipher"], "TLS_CHACHA20_POLY1305_SHA256");
  EXPECT_EQ(j["group"], "secp256r1");
  EXPECT_EQ(j["secured"], true);
  EXPECT_EQ(j["encrypted"], true);
  EXPECT_EQ(j["peer_authenticated"], true);
  EXPECT_EQ(j["peer_name_verified"], true);
  EXPECT_EQ(j["resumed"], false);
  EXPECT_EQ(j["kernel_offload"], false);
  EXPECT_EQ(j["policy_rule"], "client");
  ASSERT_TRUE(j["handshake_ms"].is_number()) << j.dump();
  EXPECT_GT(j["handshake_ms"].get<double>(), 0.0);
  EXPECT_LT(j["handshake_ms"].get<double>(), 10000.0);

  const nlohmann::json &peer = j["peer"];
  std::vector<std::string> peer_keys;
  for (const auto &item : peer.items()) peer_keys.push_back(item.key());
  std::sort(peer_keys.begin(), peer_keys.end());
  EXPECT_EQ(peer_keys, (std::vector<std::string>{"gid", "groups", "names", "principal",
                                                 "spki_sha256", "uid", "user"}));
  EXPECT_EQ(peer["principal"], "localhost");
  EXPECT_EQ(peer["names"], nlohmann::json::array({"localhost", "127.0.0.1", "::1"}));
  EXPECT_EQ(peer["spki_sha256"], expected_spki);
  EXPECT_TRUE(peer["user"].is_null());
  EXPECT_TRUE(peer["uid"].is_null());
  EXPECT_TRUE(peer["gid"].is_null());
  EXPECT_TRUE(peer["groups"].is_null());
}

TEST_F(CliNetcat, ConnectAndListenRoundTripAFileWithHalfClose) {
  const std::string policy = write_policy();
  BackgroundListen listen({"--policy", policy, "--once", "127.0.0.1:0", "--exec", "cat"});
  ASSERT_FALSE(listen.port().empty());
  // connect sends the file, ends its side with close_notify at the end of its stdin, and must
  // go on receiving until cat's echo has ended too.
  const std::string data = random_bytes(3 << 20);
  auto result = connect({"--policy", policy, "127.0.0.1:" + listen.port()}, data);
  EXPECT_EQ(result.exit_code, 0) << result.output.substr(0, 500);
  EXPECT_EQ(result.output.size(), data.size());
  EXPECT_TRUE(result.output == data) << "the echo differs from what was sent";
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_EQ(*status, 0) << listen.output();
}

TEST_F(CliNetcat, PeersCloseNotifyFirstThenStdinStillReachesThePeer) {
  const std::string policy = write_policy();
  BackgroundListen listen({"--policy", policy, "--once", "127.0.0.1:0"}, ChildProcess::Stdin::pipe);
  ASSERT_FALSE(listen.port().empty());
  ChildProcess client(ssx_argv({"connect", "--policy", policy, "127.0.0.1:" + listen.port()}),
                      ChildProcess::Stdin::pipe);
  // The listener says its piece and ends its sending side...
  ASSERT_TRUE(listen.child().write_input("server speaks first\n", kWait));
  listen.child().close_input();
  EXPECT_TRUE(client.wait_for_output("server speaks first\n", kWait)) << client.output();
  // ...and still receives what the client sends afterwards, until the client ends too.
  EXPECT_FALSE(client.wait_exit(std::chrono::milliseconds(300)).has_value())
      << "connect must not exit while its stdin is open:\n"
      << client.output();
  ASSERT_TRUE(client.write_input("client answers later\n", kWait));
  EXPECT_TRUE(listen.child().wait_for_output("client answers later\n", kWait)) << listen.output();
  client.close_input();
  auto client_status = client.wait_exit(kWait);
  ASSERT_TRUE(client_status.has_value()) << client.output();
  EXPECT_EQ(*client_status, 0) << client.output();
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_EQ(*status, 0) << listen.output();
}

TEST_F(CliNetcat, ExecPutsThePeersIdentityInTheCommandsEnvironment) {
  const std::string user = current_user_name();
  ASSERT_FALSE(user.empty());
  const std::string policy = write_policy("peer_authentication = \"required\"", identity(user));
  // sh is the command under test here; ssx itself runs it with execvp, no shell of its own.
  BackgroundListen listen(
      {"--policy", policy, "--once", "--json", "127.0.0.1:0", "--exec", "sh", "-c",
       "echo \"principal=$SSX_PEER_PRINCIPAL user=$SSX_PEER_USER "
       "protocol=$SSX_PROTOCOL cipher=$SSX_CIPHER address=$SSX_PEER_ADDRESS\""});
  ASSERT_FALSE(listen.port().empty());
  auto result = connect({"--policy", policy, "127.0.0.1:" + listen.port()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("principal=spiffe://ssx.test/client user=" + user +
                               " protocol=tls cipher=TLS_"),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("address=127.0.0.1:"), std::string::npos) << result.output;

  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_EQ(*status, 0) << listen.output();
  // --json on the listener: the server's view of the same connection.
  nlohmann::json j = json_line(listen.output());
  EXPECT_EQ(j["policy_rule"], "server");
  EXPECT_EQ(j["peer_authenticated"], true);
  EXPECT_EQ(j["peer"]["principal"], "spiffe://ssx.test/client");
  EXPECT_EQ(j["peer"]["user"], user);
  EXPECT_EQ(j["peer"]["uid"], geteuid());
}

TEST_F(CliNetcat, ExecRunsTheCommandWithoutAShell) {
  const std::string policy = write_policy();
  BackgroundListen listen(
      {"--policy", policy, "--once", "127.0.0.1:0", "--exec", "echo", "$HOME;", "`id`", "*"});
  ASSERT_FALSE(listen.port().empty());
  auto result = connect({"--policy", policy, "127.0.0.1:" + listen.port()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "$HOME; `id` *\n");
}

TEST_F(CliNetcat, ConnectWithStandardInputClosedStillReceives) {
  const std::string policy = write_policy();
  BackgroundListen listen({"--policy", policy, "--once", "127.0.0.1:0", "--exec", "echo", "hi"});
  ASSERT_FALSE(listen.port().empty());
  // No descriptor 0 at all: the socket must not land there and be read as standard input.
  auto result = run_command({"sh", "-c", "exec \"$0\" connect --policy \"$1\" \"$2\" <&-",
                             ssx_binary(), policy, "127.0.0.1:" + listen.port()},
                            kWait);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "hi\n");
}

TEST_F(CliNetcat, ExecServesConnectionsConcurrentlyAndSurvivesAFailedHandshake) {
  const std::string policy = write_policy();
  BackgroundListen listen({"--policy", policy, "127.0.0.1:0", "--exec", "cat"});
  ASSERT_FALSE(listen.port().empty());
  const std::string address = "127.0.0.1:" + listen.port();

  // A client that holds its connection open...
  ChildProcess held(ssx_argv({"connect", "--policy", policy, address}), ChildProcess::Stdin::pipe);
  ASSERT_TRUE(held.write_input("first\n", kWait));
  EXPECT_TRUE(held.wait_for_output("first\n", kWait)) << held.output();
  // ...a client whose handshake fails (it rejects the server's name)...
  auto rejected = connect({"--policy", policy, "--name", "wrong.example", address});
  EXPECT_EQ(rejected.exit_code, 1) << rejected.output;
  // ...and one more, served while the first is still open.
  auto second = connect({"--policy", policy, address}, "second\n");
  EXPECT_EQ(second.exit_code, 0) << second.output << "\nlistener:\n" << listen.output();
  EXPECT_EQ(second.output, "second\n");

  held.close_input();
  auto held_status = held.wait_exit(kWait);
  ASSERT_TRUE(held_status.has_value()) << held.output();
  EXPECT_EQ(*held_status, 0) << held.output();
  EXPECT_EQ(held.output(), "first\n");
  // The listener logged the failed handshake and went on.
  EXPECT_TRUE(listen.child().wait_for_output("handshake failed", kWait)) << listen.output();
  EXPECT_FALSE(listen.child().wait_exit(std::chrono::milliseconds(100)).has_value())
      << listen.output();
}

TEST_F(CliNetcat, ImpersonateRunsTheCommandAsThePeersMappedAccount) {
  if (!TestUser::available()) GTEST_SKIP() << "needs root and useradd (CI runs as root)";
  TestUser user("nc", /*extra_group=*/true);
  const std::string policy =
      write_policy("peer_authentication = \"required\"", identity(user.name()));
  BackgroundListen listen({"--policy", policy, "--once", "--impersonate", "127.0.0.1:0", "--exec",
                           "sh", "-c", "id -u; id -g; id -G; echo \"$USER\""});
  ASSERT_FALSE(listen.port().empty());
  auto result = connect({"--policy", policy, "127.0.0.1:" + listen.port()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  const std::string groups = std::to_string(user.gid()) + " " + std::to_string(user.extra_gid());
  EXPECT_EQ(result.output, std::to_string(user.uid()) + "\n" + std::to_string(user.gid()) + "\n" +
                               groups + "\n" + user.name() + "\n");
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_EQ(*status, 0) << listen.output();
}

TEST_F(CliNetcat, ImpersonateRefusesAPeerMappedToNoAccount) {
  const std::string policy = write_policy("peer_authentication = \"required\"");
  BackgroundListen listen({"--policy", policy, "--once", "--impersonate", "127.0.0.1:0", "--exec",
                           "echo", "must not run"});
  ASSERT_FALSE(listen.port().empty());
  auto result = connect({"--policy", policy, "127.0.0.1:" + listen.port()});
  EXPECT_EQ(result.output.find("must not run"), std::string::npos) << result.output;
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_EQ(*status, 1) << listen.output();
  EXPECT_NE(listen.output().find("ssx: connection from 127.0.0.1:"), std::string::npos)
      << listen.output();
  EXPECT_NE(listen.output().find("\"spiffe://ssx.test/client\" maps to no local account"),
            std::string::npos)
      << listen.output();
}

TEST_F(CliNetcat, ListenAndConnectOverIpv6UseTheHostAsTheDefaultName) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback here";
  const std::string policy = write_policy();
  BackgroundListen listen({"--policy", policy, "--once", "[::1]:0", "--exec", "cat"});
  ASSERT_FALSE(listen.port().empty());
  EXPECT_NE(listen.output().find("listening on [::1]:"), std::string::npos) << listen.output();
  // No --name: the peer must prove "::1", which the test server certificate has as an IP SAN.
  auto result = connect({"--policy", policy, "--json", "[::1]:" + listen.port()}, "over v6\n");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("over v6\n"), std::string::npos) << result.output;
  EXPECT_EQ(json_line(result.output)["peer_name_verified"], true);
}

TEST_F(CliNetcat, ListenTimesOutASilentClientsHandshake) {
  const std::string policy = write_policy("handshake_timeout_ms = 300");
  BackgroundListen listen({"--policy", policy, "--once", "127.0.0.1:0", "--exec", "cat"});
  ASSERT_FALSE(listen.port().empty());
  // A TCP client that never says a word: the listener's loop must still enforce the timeout.
  Fd silent(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address = loopback_address(static_cast<std::uint16_t>(std::stoi(listen.port())));
  ASSERT_EQ(::connect(silent.get(), reinterpret_cast<sockaddr *>(&address), sizeof address), 0);
  const auto start = std::chrono::steady_clock::now();
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  EXPECT_EQ(*status, 1) << listen.output();
  EXPECT_NE(listen.output().find("within 300 ms"), std::string::npos) << listen.output();
}

// silent_connection opens a TCP connection to the listener that never sends a byte.
Fd silent_connection(const std::string &port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address = loopback_address(static_cast<std::uint16_t>(std::stoi(port)));
  if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&address), sizeof address) != 0) return Fd();
  return fd;
}

// Without --exec a silent client no longer blocks the listener: the next client is served while
// the silent one is still inside its (here long) handshake deadline.
TEST_F(CliNetcat, ListenServesAClientWhileAnotherStaysSilent) {
  const std::string policy =
      write_policy("client_hello_timeout_ms = 30000\nhandshake_timeout_ms = 30000");
  BackgroundListen listen({"--policy", policy, "127.0.0.1:0"});
  ASSERT_FALSE(listen.port().empty());
  Fd silent = silent_connection(listen.port());
  ASSERT_GE(silent.get(), 0);
  const auto start = std::chrono::steady_clock::now();
  auto result = connect({"--policy", policy, "--name", "localhost", "127.0.0.1:" + listen.port()},
                        "served despite the silent one\n");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(listen.child().wait_for_output("served despite the silent one\n", kWait))
      << listen.output();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
}

// With --exec, 300 silent connections (more than the old 256 slots) do not lock anyone out.
TEST_F(CliNetcat, ExecServesAClientPastManySilentConnections) {
  const std::string policy = write_policy("client_hello_timeout_ms = 30000");
  BackgroundListen listen({"--policy", policy, "127.0.0.1:0", "--exec", "cat"});
  ASSERT_FALSE(listen.port().empty());
  std::vector<Fd> silent;
  for (int i = 0; i < 300; ++i) {
    silent.push_back(silent_connection(listen.port()));
    ASSERT_GE(silent.back().get(), 0);
  }
  auto result = connect({"--policy", policy, "--name", "localhost", "127.0.0.1:" + listen.port()},
                        "still served\n");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("still served\n"), std::string::npos) << result.output;
}

// The handshake budget follows the descriptor limit: with a limit of 200 it is 68, and the
// 69th silent connection makes the listener drop the oldest one (a reset) rather than stop
// accepting; a legitimate client still gets through.
TEST_F(CliNetcat, ListenShedsTheOldestSilentConnectionWhenTheBudgetIsFull) {
  const std::string policy = write_policy("client_hello_timeout_ms = 30000");
  std::vector<std::string> argv = {
      "sh",         "-c",          "ulimit -n 200 && exec \"$0\" \"$@\"",
      ssx_binary(), "listen",      "--policy",
      policy,       "127.0.0.1:0", "--exec",
      "cat"};
  ChildProcess listen(argv);
  std::string line = listen.wait_for_line("ssx: listening on ", kWait);
  const std::string port = line.substr(line.rfind(':') + 1);
  ASSERT_FALSE(port.empty()) << listen.output();
  std::vector<Fd> silent;
  for (int i = 0; i < 69; ++i) {
    silent.push_back(silent_connection(port));
    ASSERT_GE(silent.back().get(), 0);
  }
  // The first one is reset; the last one is still waited for.
  pollfd p{silent.front().get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1) << "the oldest silent connection was not dropped";
  char byte;
  EXPECT_EQ(::recv(silent.front().get(), &byte, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  pollfd last{silent.back().get(), POLLIN, 0};
  EXPECT_EQ(::poll(&last, 1, 0), 0);
  auto result = connect({"--policy", policy, "--name", "localhost", "127.0.0.1:" + port},
                        "through a full budget\n");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("through a full budget\n"), std::string::npos) << result.output;
  EXPECT_TRUE(listen.wait_for_output("dropped: oldest unfinished handshake", kWait))
      << listen.output();
}

// A client that sends nothing is dropped at client_hello_timeout_ms.
TEST_F(CliNetcat, ListenDropsASilentClientAtTheClientHelloTimeout) {
  const std::string policy =
      write_policy("client_hello_timeout_ms = 300\nhandshake_timeout_ms = 30000");
  BackgroundListen listen({"--policy", policy, "--once", "127.0.0.1:0", "--exec", "cat"});
  ASSERT_FALSE(listen.port().empty());
  Fd silent = silent_connection(listen.port());
  ASSERT_GE(silent.get(), 0);
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_EQ(*status, 1) << listen.output();
  EXPECT_NE(listen.output().find("within 300 ms (client_hello_timeout_ms)"), std::string::npos)
      << listen.output();
}

// A command killed mid-output: the stream ends with a reset, so `ssx connect` exits 1 instead of
// taking the partial output for the whole answer; the listener logs how the command ended.
TEST_F(CliNetcat, ExecCommandKilledMidOutputMakesConnectExitOne) {
  const std::string policy = write_policy();
  BackgroundListen listen({"--policy", policy, "--once", "127.0.0.1:0", "--exec", "sh", "-c",
                           "head -c 300000 /dev/zero; kill -9 $$"});
  ASSERT_FALSE(listen.port().empty());
  auto result =
      connect({"--policy", policy, "--name", "localhost", "127.0.0.1:" + listen.port()}, "");
  EXPECT_EQ(result.exit_code, 1) << result.output.substr(
      result.output.size() > 300 ? result.output.size() - 300 : 0);
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_NE(listen.output().find("killed by signal 9"), std::string::npos) << listen.output();
}

TEST_F(CliNetcat, ExecCommandExitingNonZeroMakesConnectExitOne) {
  const std::string policy = write_policy();
  BackgroundListen listen(
      {"--policy", policy, "--once", "127.0.0.1:0", "--exec", "sh", "-c", "echo partial; exit 3"});
  ASSERT_FALSE(listen.port().empty());
  auto result =
      connect({"--policy", policy, "--name", "localhost", "127.0.0.1:" + listen.port()}, "");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_NE(listen.output().find("exited with status 3"), std::string::npos) << listen.output();
}

// Negative: a command that exits 0 ends the stream cleanly.
TEST_F(CliNetcat, ExecCommandExitingZeroEndsTheStreamCleanly) {
  const std::string policy = write_policy();
  BackgroundListen listen(
      {"--policy", policy, "--once", "127.0.0.1:0", "--exec", "sh", "-c", "echo complete"});
  ASSERT_FALSE(listen.port().empty());
  auto result =
      connect({"--policy", policy, "--name", "localhost", "127.0.0.1:" + listen.port()}, "");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("complete\n"), std::string::npos) << result.output;
}

// --idle-timeout: a connection that moves nothing is reset, and `ssx connect` exits 1.
TEST_F(CliNetcat, ListenResetsAnIdleConnection) {
  const std::string policy = write_policy();
  BackgroundListen listen(
      {"--policy", policy, "--idle-timeout", "0.5", "--once", "127.0.0.1:0", "--exec", "cat"});
  ASSERT_FALSE(listen.port().empty());
  ChildProcess client(ssx_argv({"connect", "--policy", policy, "--name", "localhost",
                                "127.0.0.1:" + listen.port()}),
                      ChildProcess::Stdin::pipe);
  const auto start = std::chrono::steady_clock::now();
  auto status = client.wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << client.output();
  EXPECT_EQ(*status, 1) << client.output();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
  auto listen_status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(listen_status.has_value()) << listen.output();
  EXPECT_NE(listen.output().find("idle timeout"), std::string::npos) << listen.output();
}

TEST_F(CliNetcat, TruncatedStreamExitsOneWithTheReason) {
  const std::string policy = write_policy();
  OpensslServer server({"-cert", server_.cert, "-key", server_.key});
  ASSERT_FALSE(server.port().empty());
  ChildProcess client(
      ssx_argv({"connect", "--policy", policy, "--json", "127.0.0.1:" + server.port()}),
      ChildProcess::Stdin::pipe);
  ASSERT_TRUE(client.wait_for_output("\"protocol\"", kWait)) << client.output();
  // s_server relays its stdin to the client: some data, then it dies without close_notify.
  ASSERT_TRUE(server.child().write_input("partial data\n", kWait));
  EXPECT_TRUE(client.wait_for_output("partial data\n", kWait)) << client.output();
  server.child().stop();
  auto status = client.wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << client.output();
  EXPECT_EQ(*status, 1) << client.output();
  EXPECT_NE(client.output().find("ssx: 127.0.0.1:" + server.port() + ": "), std::string::npos)
      << client.output();
  EXPECT_NE(client.output().find("without a TLS close_notify"), std::string::npos)
      << client.output();
}

TEST_F(CliNetcat, ConnectionRefusedExitsOneWithTheReason) {
  std::uint16_t port = 0;
  {
    Fd probe = plain_listener();
    port = local_port(probe.get());
  }  // closed: nothing listens there now
  auto result = connect({"--policy", write_policy(), "127.0.0.1:" + std::to_string(port)});
  expect_one_line_error(result, 1, "connection refused");
  EXPECT_NE(result.output.find("Connection refused"), std::string::npos) << result.output;
}

TEST_F(CliNetcat, WrongNameExitsOneWithTheReason) {
  const std::string policy = write_policy();
  BackgroundListen listen({"--policy", policy, "--once", "127.0.0.1:0"});
  ASSERT_FALSE(listen.port().empty());
  auto result =
      connect({"--policy", policy, "--name", "wrong.example", "127.0.0.1:" + listen.port()});
  expect_one_line_error(result, 1, "wrong name");
  EXPECT_NE(result.output.find("\"wrong.example\""), std::string::npos) << result.output;
  // The listener's one connection failed: --once reports it and exits 1.
  auto status = listen.child().wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << listen.output();
  EXPECT_EQ(*status, 1) << listen.output();
  EXPECT_NE(listen.output().find("handshake failed"), std::string::npos) << listen.output();
}

TEST_F(CliNetcat, UsageAndConfigurationErrorsExitTwo) {
  const std::string policy = write_policy();
  const std::string invalid = dir_.file("invalid.toml");
  write_text(invalid, "version = 1\n[defaults]\nmin_tls = \"1.3\"\n", 0644);
  const std::vector<std::vector<std::string>> cases = {
      {"connect"},
      {"connect", "localhost"},
      {"connect", "::1:443"},
      {"connect", "[::1]:99999"},
      {"connect", "--encrypt", "--allow-insecure", "127.0.0.1:1"},
      {"connect", "--bogus", "127.0.0.1:1"},
      {"connect", "--policy", invalid, "127.0.0.1:1"},
      {"connect", "--policy", dir_.file("missing.toml"), "127.0.0.1:1"},
      {"listen"},
      {"listen", "127.0.0.1:0", "cat"},
      {"listen", "--bogus", "127.0.0.1:0", "--exec", "cat"},
      {"listen", "127.0.0.1:0", "--exec"},
      {"listen", "--impersonate", "127.0.0.1:0"},
      {"listen", "--policy", invalid, "127.0.0.1:0"},
      {"listen", "127.0.0.1:port"},
      {"demo", "extra"},
  };
  for (const auto &args : cases) {
    std::string context;
    for (const auto &a : args) context += a + " ";
    SCOPED_TRACE(context);
    auto result = run_command(ssx_argv(args), kWait);
    expect_one_line_error(result, 2, context);
  }
  auto invalid_policy = run_command(ssx_argv({"connect", "--policy", invalid, "127.0.0.1:1"}));
  EXPECT_NE(invalid_policy.output.find(invalid + ":3:1: unknown key \"min_tls\""),
            std::string::npos)
      << invalid_policy.output;
}

TEST_F(CliNetcat, HelpShowsAnExample) {
  for (const char *command : {"connect", "listen", "demo"}) {
    SCOPED_TRACE(command);
    auto result = run_command(ssx_argv({command, "--help"}), kWait);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("Example"), std::string::npos) << result.output;
  }
}

}  // namespace
}  // namespace ssx::test
