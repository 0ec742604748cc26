// SPDX-License-Identifier: Apache-2.0
// `ssx agent` (docs/agent.md), proven with the kernel: the applications here run as real
// unprivileged accounts (testlib/test_users.hpp) that cannot open the host key, and still
// complete mTLS as the host identity through the agent; peers are openssl s_client / s_server.
// The PKI is made by the `ssx pki` command in a child process, so this test process never holds
// a private key unless a test loads one on purpose.

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent/protocol.hpp"
#include "cli_support.hpp"
#include "testlib/loopback.hpp"
#include "testlib/run_command.hpp"
#include "testlib/test_pki.hpp"
#include "testlib/test_users.hpp"

namespace ssx::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kWait = seconds(20);

#define REQUIRE_ROOT() \
  if (!TestUser::available()) GTEST_SKIP() << "needs root and useradd (CI runs as root)"

std::string read_file(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// as_user runs |argv| as |user| (its uid and gid, no supplementary groups).
std::vector<std::string> as_user(const TestUser &user, std::vector<std::string> argv) {
  std::vector<std::string> out = {"setpriv", "--reuid=" + std::to_string(user.uid()),
                                  "--regid=" + std::to_string(user.gid()), "--clear-groups", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

// open_errno_as opens |path| for reading as |uid|/|gid| in a child: 0 or the errno.
int open_errno_as(uid_t uid, gid_t gid, const std::string &path) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(255);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    _exit(fd >= 0 ? 0 : errno);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int connect_unix(const std::string &path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT();
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0711), 0);
    pki_ = dir_.file("pki");
    run_ssx({"pki", "init", pki_});
    run_ssx({"pki", "issue", pki_, "localhost", "--ip", "127.0.0.1"});
    run_ssx({"pki", "issue", pki_, "peer", "--dns", "peer.test"});
    ASSERT_EQ(::chmod(pki_.c_str(), 0711), 0);
    ASSERT_EQ(::chmod((pki_ + "/ca.crt").c_str(), 0644), 0);
    socket_ = dir_.file("run") + "/agent.sock";
    audit_ = dir_.file("agent.log");
  }

  void run_ssx(const std::vector<std::string> &args) {
    auto r = run_command(ssx_argv(args), kWait);
    ASSERT_EQ(r.exit_code, 0) << describe(ssx_argv(args), r);
  }

  std::string host_cert() const { return pki_ + "/localhost.crt"; }
  std::string host_key() const { return pki_ + "/localhost.key"; }

  // write_policy writes the policy applications and the agent share: [defaults] use the agent's
  // key "host", which |users| may use from |programs|.
  std::string write_policy(const std::string &users, const std::string &programs = "",
                           const std::string &extra_defaults = "") {
    std::string toml = "version = 1\nagent_socket = " + toml_quote(socket_) +
                       "\n[defaults]\ntrust_bundle = " + toml_quote(pki_ + "/ca.crt") +
                       "\nprivate_key = \"agent:host\"\n" + extra_defaults +
                       "\n[[key]]\nname = \"host\"\ncertificate = " + toml_quote(host_cert()) +
                       "\nprivate_key = " + toml_quote(host_key()) + "\n";
    if (!users.empty()) toml += "users = " + users + "\n";
    if (!programs.empty()) toml += "programs = " + programs + "\n";
    const std::string path = dir_.file("policy.toml");
    write_text(path, toml, 0644);
    return path;
  }

  void start_agent(const std::string &policy, const std::vector<std::string> &extra = {}) {
    std::vector<std::string> args = {"agent", "--policy", policy, "--socket", socket_};
    args.insert(args.end(), extra.begin(), extra.end());
    agent_ = std::make_unique<ChildProcess>(ssx_argv(args));
    ASSERT_TRUE(agent_->wait_for_output("ssx agent: serving", kWait)) << agent_->output();
  }

  // start_peer starts openssl s_server (no client certificate asked) and returns its port.
  std::string start_peer() {
    peer_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"openssl", "s_server", "-accept", "127.0.0.1:0", "-tls1_3",
                                 "-cert", pki_ + "/peer.crt", "-key", pki_ + "/peer.key", "-www"},
        ChildProcess::Stdin::pipe);
    const std::string accept = peer_->wait_for_line("ACCEPT ", kWait);
    EXPECT_FALSE(accept.empty()) << peer_->output();
    return accept.substr(accept.rfind(':') + 1);
  }

  // connect_as runs `ssx connect` to the s_server of start_peer as |user|.
  CommandResult connect_as(const TestUser &user, const std::string &policy,
                           const std::string &port) {
    return run_command(as_user(user, ssx_argv({"connect", "--policy", policy, "--name", "peer.test",
                                               "127.0.0.1:" + port})),
                       kWait, "GET / HTTP/1.0\r\n\r\n");
  }

  // wait_for_audit waits until the agent has logged a line containing |text|.
  std::string wait_for_audit(const std::string &text) { return agent_->wait_for_line(text, kWait); }

  TempDir dir_;
  std::string pki_;
  std::string socket_;
  std::string audit_;
  std::unique_ptr<ChildProcess> agent_;
  std::unique_ptr<ChildProcess> peer_;
};

// The application (`ssx listen`, as an unprivileged user who cannot open the key) serves TLS as
// the host identity; openssl s_client verifies the chain and sends its own certificate (mTLS).
TEST_F(AgentTest, UnprivilegedServerCompletesMtlsThroughTheAgent) {
  TestUser alice("agsrv");
  EXPECT_EQ(open_errno_as(alice.uid(), alice.gid(), host_key()), EACCES);
  const std::string policy = write_policy("[" + toml_quote(alice.name()) + "]");
  start_agent(policy);

  ChildProcess listen(
      as_user(alice, ssx_argv({"listen", "--policy", policy, "--once", "127.0.0.1:0"})),
      ChildProcess::Stdin::pipe);
  const std::string line = listen.wait_for_line("ssx: listening on ", kWait);
  ASSERT_FALSE(line.empty()) << listen.output();
  const std::string port = line.substr(line.rfind(':') + 1);
  ChildProcess s_client(
      {"openssl", "s_client", "-connect", "127.0.0.1:" + port, "-CAfile", pki_ + "/ca.crt",
       "-verify_return_error", "-verify_ip", "127.0.0.1", "-tls1_3", "-quiet", "-cert",
       pki_ + "/peer.crt", "-key", pki_ + "/peer.key"},
      ChildProcess::Stdin::pipe);
  ASSERT_TRUE(s_client.write_input("hello from s_client\n", kWait));
  EXPECT_TRUE(listen.wait_for_output("hello from s_client\n", kWait)) << listen.output();
  ASSERT_TRUE(listen.write_input("hello from alice\n", kWait));
  listen.close_input();
  EXPECT_TRUE(s_client.wait_for_output("hello from alice\n", kWait)) << s_client.output();
  auto client_status = s_client.wait_exit(kWait);
  ASSERT_TRUE(client_status.has_value());
  EXPECT_EQ(*client_status, 0) << s_client.output();
  auto status = listen.wait_exit(kWait);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << listen.output();

  const std::string audit = wait_for_audit("op=sign result=ok");
  EXPECT_NE(audit.find("uid=" + std::to_string(alice.uid())), std::string::npos) << audit;
  EXPECT_NE(audit.find("user=\"" + alice.name() + "\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("key=\"host\""), std::string::npos) << audit;
  char real[PATH_MAX];
  ASSERT_NE(::realpath(ssx_binary().c_str(), real), nullptr);
  EXPECT_NE(audit.find(std::string("program=\"") + real + "\""), std::string::npos) << audit;
}

// The application is the client: openssl s_server requires a client certificate and verifies
// the host identity the agent signs for.
TEST_F(AgentTest, UnprivilegedClientPresentsTheHostIdentityThroughTheAgent) {
  TestUser bob("agcli");
  EXPECT_EQ(open_errno_as(bob.uid(), bob.gid(), host_key()), EACCES);
  const std::string policy = write_policy("[" + std::to_string(bob.uid()) + "]");
  start_agent(policy);

  ChildProcess server({"openssl", "s_server", "-accept", "127.0.0.1:0", "-tls1_3", "-cert",
                       pki_ + "/peer.crt", "-key", pki_ + "/peer.key", "-Verify", "1",
                       "-verify_return_error", "-CAfile", pki_ + "/ca.crt", "-www"},
                      ChildProcess::Stdin::pipe);
  const std::string accept = server.wait_for_line("ACCEPT ", kWait);
  ASSERT_FALSE(accept.empty()) << server.output();
  const std::string port = accept.substr(accept.rfind(':') + 1);
  auto result = run_command(as_user(bob, ssx_argv({"connect", "--policy", policy, "--name",
                                                   "peer.test", "127.0.0.1:" + port})),
                            kWait, "GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(result.exit_code, 0) << result.output << server.output();
  EXPECT_NE(result.output.find("HTTP/1.0 200 ok"), std::string::npos) << result.output;
  // s_server's page shows the client certificate it verified.
  EXPECT_NE(result.output.find("CN=localhost"), std::string::npos) << result.output;
  EXPECT_FALSE(wait_for_audit("op=sign result=ok").empty());
}

TEST_F(AgentTest, UserNotListedIsRefusedWithTheDocumentedMessage) {
  TestUser alice("agok");
  TestUser mallory("agno");
  const std::string policy = write_policy("[" + toml_quote(alice.name()) + "]");
  start_agent(policy);
  auto result = connect_as(mallory, policy, start_peer());
  EXPECT_NE(result.exit_code, 0);
  const std::string expected =
      "uid " + std::to_string(mallory.uid()) + " (" + mallory.name() + ") may not use key \"host\"";
  EXPECT_NE(result.output.find(expected), std::string::npos) << result.output;
  const std::string audit = wait_for_audit("result=refused");
  EXPECT_NE(audit.find("uid=" + std::to_string(mallory.uid())), std::string::npos) << audit;
  EXPECT_NE(audit.find("result=refused reason=\"uid " + std::to_string(mallory.uid()) + " (" +
                       mallory.name() + ") may not use key"),
            std::string::npos)
      << audit;
  EXPECT_NE(audit.find("key=\"host\""), std::string::npos) << audit;
}

TEST_F(AgentTest, ListedUserRunningAProgramNotListedIsRefused) {
  TestUser alice("agprog");
  const std::string policy =
      write_policy("[" + toml_quote(alice.name()) + "]", "[\"/usr/sbin/nginx-not-ssx\"]");
  start_agent(policy);
  auto result = connect_as(alice, policy, start_peer());
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("may not use key \"host\""), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("program \""), std::string::npos) << result.output;
  const std::string audit = wait_for_audit("result=refused");
  EXPECT_NE(audit.find("program="), std::string::npos) << audit;
}

TEST_F(AgentTest, AgentNotRunningIsAClearError) {
  TestUser alice("agdown");
  const std::string policy = write_policy("[" + toml_quote(alice.name()) + "]");
  auto result = connect_as(alice, policy, start_peer());
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("ssx agent at \"" + socket_ + "\" is not available"),
            std::string::npos)
      << result.output;
}

// wait_until waits (bounded) for |done|; false when kWait passed first.
template <class F>
bool wait_until(F done) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// StopAndJoin stops and joins a load thread on every path out of a test.
struct StopAndJoin {
  std::atomic<bool> &stop;
  std::thread &thread;
  ~StopAndJoin() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

// --- in this process: the library uses the agent key -------------------------------------------

// Masked holds a secret XOR-masked, so that searching memory for it never finds the needle itself.
struct Masked {
  static constexpr std::uint8_t kMask = 0xa5;
  std::vector<std::uint8_t> bytes;
  std::size_t size() const { return bytes.size(); }
  std::uint8_t at(std::size_t i) const { return static_cast<std::uint8_t>(bytes[i] ^ kMask); }
};

// private_scalar reads the EC key's private scalar with the openssl command (another process),
// big-endian, masked.
Masked private_scalar(const std::string &key_path) {
  auto r = run_command({"openssl", "pkey", "-in", key_path, "-text", "-noout"}, kWait);
  Masked out;
  const auto priv = r.output.find("priv:");
  const auto pub = r.output.find("pub:");
  if (priv == std::string::npos || pub == std::string::npos) return out;
  std::string hex;
  for (char c : r.output.substr(priv + 5, pub - priv - 5)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex += c;
  }
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.bytes.push_back(
        static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16) ^ Masked::kMask));
  }
  while (out.size() > 32 && out.at(0) == 0) out.bytes.erase(out.bytes.begin());
  return out;
}

// memory_contains searches this process's whole readable memory (/proc/self/maps, read through
// /proc/self/mem) for |secret| in big-endian order or byte-reversed (how a BIGNUM holds it on a
// little-endian machine).
bool memory_contains(const Masked &secret) {
  const std::size_t n = secret.size();
  if (n == 0) return false;
  std::ifstream maps("/proc/self/maps");
  const int mem = ::open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  if (mem < 0) return false;
  std::vector<std::uint8_t> buf(1 << 20);
  std::string line;
  bool found = false;
  while (!found && std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r') continue;
    if (line.find("[vvar]") != std::string::npos || line.find("[vsyscall]") != std::string::npos) {
      continue;
    }
    for (unsigned long at = lo; !found && at < hi;) {
      const std::size_t want = std::min<unsigned long>(buf.size(), hi - at);
      const ssize_t got = ::pread(mem, buf.data(), want, static_cast<off_t>(at));
      if (got <= 0) break;
      const auto len = static_cast<std::size_t>(got);
      for (std::size_t i = 0; !found && i + n <= len; ++i) {
        if (buf[i] == secret.at(0)) {
          std::size_t k = 1;
          while (k < n && buf[i + k] == secret.at(k)) ++k;
          found = k == n;
        }
        if (!found && buf[i] == secret.at(n - 1)) {
          std::size_t k = 1;
          while (k < n && buf[i + k] == secret.at(n - 1 - k)) ++k;
          found = k == n;
        }
      }
      // Overlap the next chunk so a secret across the boundary is seen.
      at += len > n ? len - n + 1 : len;
    }
  }
  ::close(mem);
  return found;
}

// handshake_once connects to |listener| (an ssx listener of this process, served by |accepted|'s
// thread) and reports the server side's outcome: 0, or its errno with the reason in |why|.
struct Outcome {
  int error = 0;
  int reason = 0;
  std::string message;
  std::string peer_chain;  // what the client saw
};

class InProcessServer {
 public:
  InProcessServer() : listener_(ssx_listener(SSX_GUARANTEE_ENCRYPTION, 128)) {
    port_ = local_port(listener_.get());
  }
  // one runs one connection: the client connects from this thread, the server accepts on another.
  Outcome one() {
    Outcome server;
    std::thread accept_thread([&] {
      const int fd = ssx_accept(listener_.get(), nullptr, nullptr);
      if (fd < 0) {
        server.error = errno;
        server.reason = ssx_last_error_reason();
        server.message = last_error_text();
      } else {
        ssx_close(fd);
      }
    });
    Fd client;
    const int fd = ssx_client_connect(port_, {"127.0.0.1"}, SSX_GUARANTEE_ENCRYPTION, &client);
    if (fd >= 0 && server.error == 0) {
      ssx_security_info *info = nullptr;
      if (ssx_query_socket_security(fd, nullptr, 0, &info) == 0) {
        if (info->peer_chain_pem != nullptr) server.peer_chain = info->peer_chain_pem;
        ssx_free_security_info(info);
      }
    }
    client.reset();
    accept_thread.join();
    return server;
  }

 private:
  Fd listener_;
  std::uint16_t port_ = 0;
};

TEST_F(AgentTest, ThePrivateKeyNeverEntersTheApplicationsMemory) {
  const std::string policy = write_policy("");
  start_agent(policy);
  ASSERT_EQ(ssx_load_policy(policy.c_str()), 0) << last_error_text();
  const Masked scalar = private_scalar(host_key());
  ASSERT_EQ(scalar.size(), 32u);

  InProcessServer server;
  for (int i = 0; i < 3; ++i) {
    const Outcome o = server.one();
    ASSERT_EQ(o.error, 0) << o.message;
    EXPECT_NE(o.peer_chain.find("BEGIN CERTIFICATE"), std::string::npos);
  }
  EXPECT_FALSE(wait_for_audit("op=sign result=ok").empty());
  EXPECT_FALSE(memory_contains(scalar)) << "the host's private scalar is in this process";

  // Control: the same search finds the scalar once this process loads the key file itself.
  FILE *f = std::fopen(host_key().c_str(), "r");
  ASSERT_NE(f, nullptr);
  EVP_PKEY *key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(memory_contains(scalar)) << "the search cannot find a key that is loaded";
  EVP_PKEY_free(key);
}

// The agent dies (SIGKILL) while handshakes go on: none of them succeeds without the agent's
// signature, every failure says why, and once a new agent runs the same process handshakes
// again, without a restart.
TEST_F(AgentTest, AgentKilledThenRestartedIsUsedWithoutRestartingTheApplication) {
  const std::string policy = write_policy("");
  start_agent(policy);
  ASSERT_EQ(ssx_load_policy(policy.c_str()), 0) << last_error_text();
  InProcessServer server;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(server.one().error, 0);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, unclear{0};
  std::thread load([&] {
    InProcessServer s;
    while (!stop) {
      const Outcome o = s.one();
      if (o.error == 0) {
        ++ok;
      } else if (o.reason == SSX_REASON_AGENT_UNAVAILABLE || o.reason == SSX_REASON_AGENT_REFUSED) {
        ++failed;
      } else {
        ++unclear;
        ADD_FAILURE() << "unclear failure: " << o.message;
      }
    }
  });
  StopAndJoin guard{stop, load};
  ASSERT_TRUE(wait_until([&] { return ok >= 5; }));
  agent_->stop();  // SIGKILL, and reaped
  const int ok_at_kill = ok;
  ASSERT_TRUE(wait_until([&] { return failed >= 5; }));
  // With the agent dead, every handshake fails: ok never moves past what finished by the kill
  // (at most the one under way when it landed).
  EXPECT_LE(ok - ok_at_kill, 1);
  const Outcome down = server.one();
  EXPECT_EQ(down.error, EACCES) << down.message;
  EXPECT_EQ(down.reason, SSX_REASON_AGENT_UNAVAILABLE) << down.message;
  EXPECT_NE(down.message.find("ssx agent at"), std::string::npos) << down.message;

  start_agent(policy);
  const int ok_at_restart = ok;
  EXPECT_TRUE(wait_until([&] { return ok >= ok_at_restart + 5; }));
  stop = true;
  load.join();
  EXPECT_EQ(unclear, 0);
  EXPECT_EQ(server.one().error, 0);
}

// The host's certificate and key are replaced while handshakes go on: none fails, and new
// handshakes present the new certificate.
TEST_F(AgentTest, RotationUnderLoadHasNoFailedHandshakes) {
  const std::string policy = write_policy("");
  start_agent(policy);
  ASSERT_EQ(ssx_load_policy(policy.c_str()), 0) << last_error_text();
  const std::string old_cert = read_file(host_cert());
  const std::string old_leaf = old_cert.substr(0, old_cert.find("END CERTIFICATE"));

  std::atomic<bool> stop{false}, rotated{false};
  std::atomic<int> ok{0}, ok_new{0};
  std::vector<std::string> failures;
  std::string new_leaf;
  std::mutex mu;
  std::thread load([&] {
    InProcessServer s;
    while (!stop) {
      const Outcome o = s.one();
      if (o.error != 0) {
        std::lock_guard lock(mu);
        failures.push_back(o.message);
        continue;
      }
      ++ok;
      if (rotated && o.peer_chain.find(old_leaf) == std::string::npos) ++ok_new;
    }
  });
  StopAndJoin guard{stop, load};
  ASSERT_TRUE(wait_until([&] { return ok >= 10; }));
  // The new pair is written by `ssx pki issue --force` (files replaced one after the other),
  // then the agent is told.
  run_ssx({"pki", "issue", "--force", pki_, "localhost", "--ip", "127.0.0.1"});
  ASSERT_NE(read_file(host_cert()), old_cert);
  rotated = true;
  ASSERT_EQ(::kill(agent_->pid(), SIGHUP), 0);
  ASSERT_FALSE(wait_for_audit("reloaded after SIGHUP").empty()) << agent_->output();
  (void)wait_until([&] { return ok_new >= 10; });
  stop = true;
  load.join();
  EXPECT_GE(ok_new, 10) << "new handshakes do not present the new certificate";
  std::lock_guard lock(mu);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();
}

// RSA keys through the agent: TLS 1.3 (RSA-PSS) and TLS 1.2 (RSA-PSS and PKCS#1 v1.5), and
// TLS 1.2 with the EC key; openssl s_client verifies each handshake.
TEST_F(AgentTest, RsaPssPkcs1AndTls12SignaturesVerify) {
  run_ssx({"pki", "issue", pki_, "rsahost", "--ip", "127.0.0.1", "--key", "rsa2048"});
  const std::string policy = dir_.file("policy.toml");
  auto write = [&](const std::string &name) {
    write_text(policy,
               "version = 1\nagent_socket = " + toml_quote(socket_) +
                   "\n[defaults]\nmin_tls_version = \"1.2\"\npeer_authentication = \"none\"\n"
                   "trust_bundle = " +
                   toml_quote(pki_ + "/ca.crt") +
                   "\nprivate_key = \"agent:host\"\n[[key]]\nname = \"host\"\ncertificate = " +
                   toml_quote(pki_ + "/" + name + ".crt") +
                   "\nprivate_key = " + toml_quote(pki_ + "/" + name + ".key") + "\n",
               0644);
  };
  struct Case {
    std::string cert;
    std::vector<std::string> client_args;
    std::string signature;  // as s_client -brief reports it
  };
  const std::vector<Case> cases = {
      {"rsahost", {"-tls1_3"}, "RSA-PSS"},
      {"rsahost", {"-tls1_2", "-sigalgs", "RSA-PSS+SHA256"}, "RSA-PSS"},
      {"rsahost", {"-tls1_2", "-sigalgs", "RSA+SHA384"}, "RSA"},
      {"localhost", {"-tls1_2", "-sigalgs", "ECDSA+SHA512"}, "ECDSA"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.cert + " " + c.client_args.back());
    write(c.cert);
    start_agent(policy);
    ChildProcess listen(ssx_argv({"listen", "--policy", policy, "--once", "127.0.0.1:0"}),
                        ChildProcess::Stdin::pipe);
    const std::string line = listen.wait_for_line("ssx: listening on ", kWait);
    ASSERT_FALSE(line.empty()) << listen.output();
    std::vector<std::string> argv = {"openssl",
                                     "s_client",
                                     "-connect",
                                     "127.0.0.1:" + line.substr(line.rfind(':') + 1),
                                     "-CAfile",
                                     pki_ + "/ca.crt",
                                     "-verify_return_error",
                                     "-brief"};
    argv.insert(argv.end(), c.client_args.begin(), c.client_args.end());
    ASSERT_TRUE(listen.write_input("hello\n", kWait));
    listen.close_input();
    auto r = run_command(argv, kWait);
    EXPECT_EQ(r.exit_code, 0) << r.output << listen.output();
    EXPECT_NE(r.output.find("Verification: OK"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Signature type: " + c.signature + "\n"), std::string::npos)
        << r.output;
    EXPECT_FALSE(wait_for_audit("op=sign result=ok").empty());
    agent_->stop();
  }
}

// Two rotations between two handshakes of this process: the agent no longer holds the key of
// the certificate this process presents. That one handshake fails (EACCES, saying so, never a
// wrong signature), and the next one presents the newest certificate and succeeds.
TEST_F(AgentTest, TwoRotationsBetweenHandshakesFailOneThenRecover) {
  const std::string policy = write_policy("");
  start_agent(policy);
  ASSERT_EQ(ssx_load_policy(policy.c_str()), 0) << last_error_text();
  InProcessServer server;
  ASSERT_EQ(server.one().error, 0);
  for (int i = 0; i < 2; ++i) {
    run_ssx({"pki", "issue", "--force", pki_, "localhost", "--ip", "127.0.0.1"});
    ASSERT_EQ(::kill(agent_->pid(), SIGHUP), 0);
    ASSERT_FALSE(wait_for_audit("reloaded after SIGHUP").empty()) << agent_->output();
  }
  const Outcome stale = server.one();
  EXPECT_EQ(stale.error, EACCES) << stale.message;
  EXPECT_EQ(stale.reason, SSX_REASON_AGENT_REFUSED) << stale.message;
  EXPECT_NE(stale.message.find("is not (or no longer) key \"host\"'s"), std::string::npos)
      << stale.message;
  const Outcome fresh = server.one();
  ASSERT_EQ(fresh.error, 0) << fresh.message;
  const std::string newest = read_file(host_cert());
  EXPECT_NE(fresh.peer_chain.find(newest.substr(0, newest.find("END CERTIFICATE"))),
            std::string::npos);
}

// A process on the agent's socket that never answers, or hangs up mid-request: the handshake
// fails within agent_timeout_ms with ETIMEDOUT, or at once with EACCES, each saying why.
TEST_F(AgentTest, SlowOrVanishingAgentFailsTheHandshakeWithinTheBound) {
  const std::string policy = write_policy("", "", "");
  {
    std::string toml = read_file(policy);
    toml.replace(toml.find("[defaults]"), 10, "agent_timeout_ms = 300\n[defaults]");
    write_text(policy, toml, 0644);
  }
  ASSERT_EQ(::mkdir(dir_.file("run").c_str(), 0755), 0);
  Fd fake(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, socket_.data(), socket_.size());
  ASSERT_EQ(::bind(fake.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fake.get(), 16), 0);
  ASSERT_EQ(ssx_load_policy(policy.c_str()), 0) << last_error_text();

  std::atomic<bool> hang_up{false};
  std::vector<int> held;
  // Both ends of the in-process connection use the agent key, so each handshake may ask twice.
  std::thread fake_agent([&] {
    for (;;) {
      const int fd = ::accept4(fake.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      char buf[64];
      (void)::recv(fd, buf, sizeof buf, 0);  // the request's first bytes, then nothing
      if (hang_up) {
        ::close(fd);
      } else {
        held.push_back(fd);
      }
    }
  });
  InProcessServer server;
  const auto start = std::chrono::steady_clock::now();
  const Outcome slow = server.one();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(slow.error, ETIMEDOUT) << slow.message;
  EXPECT_EQ(slow.reason, SSX_REASON_AGENT_UNAVAILABLE);
  EXPECT_NE(slow.message.find("did not answer within 300 ms"), std::string::npos) << slow.message;
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, seconds(3));  // the bound, plus the client's own share of the failure

  hang_up = true;
  const Outcome gone = server.one();
  EXPECT_EQ(gone.error, EACCES) << gone.message;
  EXPECT_EQ(gone.reason, SSX_REASON_AGENT_UNAVAILABLE);
  EXPECT_NE(gone.message.find("closed the connection before answering"), std::string::npos)
      << gone.message;
  ::shutdown(fake.get(), SHUT_RDWR);
  fake_agent.join();
  for (int fd : held) ::close(fd);
}

TEST_F(AgentTest, StatusAndMetricsReportKeysClientsAndCounters) {
  TestUser eve("agstat");
  const std::string policy = write_policy("");
  start_agent(policy, {"--metrics", "127.0.0.1:0"});
  const std::string metrics_line = wait_for_audit("metrics on port ");
  ASSERT_FALSE(metrics_line.empty()) << agent_->output();
  const std::string port = metrics_line.substr(metrics_line.rfind(' ') + 1);
  ASSERT_EQ(ssx_load_policy(policy.c_str()), 0) << last_error_text();
  InProcessServer server;
  ASSERT_EQ(server.one().error, 0);
  ASSERT_FALSE(wait_for_audit("op=sign result=ok").empty());
  const int idle = connect_unix(socket_);  // a connected client the status lists
  ASSERT_GE(idle, 0);

  auto status = run_command(ssx_argv({"agent", "status", "--socket", socket_}), kWait);
  ::close(idle);
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("keys: 1\n"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("  host certificate=sha256:"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("users=root programs=any signatures=1 refusals=0"),
            std::string::npos)
      << status.output;
  EXPECT_NE(status.output.find("uid 0 (root) pid "), std::string::npos) << status.output;

  // Status is for root: another user is refused, and that is audited too.
  auto refused =
      run_command(as_user(eve, ssx_argv({"agent", "status", "--socket", socket_})), kWait);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("may not read the agent's status"), std::string::npos)
      << refused.output;

  auto scrape = run_command({"curl", "-sf", "http://127.0.0.1:" + port + "/metrics"}, kWait);
  ASSERT_EQ(scrape.exit_code, 0) << scrape.output;
  EXPECT_NE(scrape.output.find("ssx_agent_signatures_total{key=\"host\"} 1\n"), std::string::npos)
      << scrape.output;
  EXPECT_NE(scrape.output.find("ssx_agent_keys 1\n"), std::string::npos) << scrape.output;
  EXPECT_NE(scrape.output.find("# TYPE ssx_agent_connections gauge"), std::string::npos);
  auto missing = run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              "http://127.0.0.1:" + port + "/other"},
                             kWait);
  EXPECT_EQ(missing.output, "404");
}

// --- PKCS#11 ----------------------------------------------------------------------------------

constexpr const char *kSoftHsm = "/usr/lib/softhsm/libsofthsm2.so";

// A SoftHSM2 token made by the test, a non-extractable P-256 key generated in it, a certificate
// for that key issued with `ssx pki issue --public-key`, and TLS served with it through the agent
// by an unprivileged user; openssl s_client verifies.
TEST_F(AgentTest, Pkcs11KeyInSoftHsmServesTlsThroughTheAgent) {
  if (::access(kSoftHsm, R_OK) != 0 || run_command({"which", "pkcs11-tool"}).exit_code != 0) {
    GTEST_SKIP() << "needs softhsm2 and opensc (scripts/install-deps)";
  }
  const std::string hsm = dir_.file("hsm");
  ASSERT_EQ(::mkdir(hsm.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((hsm + "/tokens").c_str(), 0700), 0);
  write_text(hsm + "/softhsm2.conf",
             "directories.tokendir = " + hsm + "/tokens\nobjectstore.backend = file\n", 0600);
  write_text(hsm + "/pin", "4321\n", 0600);
  ASSERT_EQ(::setenv("SOFTHSM2_CONF", (hsm + "/softhsm2.conf").c_str(), 1), 0);
  struct Unset {
    ~Unset() { ::unsetenv("SOFTHSM2_CONF"); }
  } unset;
  auto check = [](const std::vector<std::string> &argv) {
    auto r = run_command(argv, kWait);
    EXPECT_EQ(r.exit_code, 0) << describe(argv, r);
    return r.output;
  };
  check({"softhsm2-util", "--init-token", "--free", "--label", "ssx-test", "--pin", "4321",
         "--so-pin", "87654321"});
  check({"pkcs11-tool", "--module", kSoftHsm, "--token-label", "ssx-test", "--login", "--pin",
         "4321", "--keypairgen", "--key-type", "EC:prime256v1", "--label", "tls", "--id", "42"});
  const std::string objects =
      check({"pkcs11-tool", "--module", kSoftHsm, "--token-label", "ssx-test", "--login", "--pin",
             "4321", "--list-objects", "--type", "privkey"});
  EXPECT_NE(objects.find("never extractable"), std::string::npos) << objects;
  check({"pkcs11-tool", "--module", kSoftHsm, "--token-label", "ssx-test", "--read-object",
         "--type", "pubkey", "--label", "tls", "-o", hsm + "/tls.pub"});
  run_ssx(
      {"pki", "issue", pki_, "token-host", "--ip", "127.0.0.1", "--public-key", hsm + "/tls.pub"});
  EXPECT_NE(::access((pki_ + "/token-host.key").c_str(), F_OK), 0);  // no key file written

  TestUser alice("aghsm");
  const std::string policy = dir_.file("policy.toml");
  write_text(policy,
             "version = 1\nagent_socket = " + toml_quote(socket_) +
                 "\n[defaults]\ntrust_bundle = " + toml_quote(pki_ + "/ca.crt") +
                 "\nprivate_key = \"agent:token\"\n[[key]]\nname = \"token\"\ncertificate = " +
                 toml_quote(pki_ + "/token-host.crt") + "\nprivate_key = " +
                 toml_quote("pkcs11:token=ssx-test;object=tls?module-path=" +
                            std::string(kSoftHsm) + "&pin-source=file:" + hsm + "/pin") +
                 "\nusers = [" + toml_quote(alice.name()) + "]\n",
             0644);
  start_agent(policy);

  ChildProcess listen(
      as_user(alice, ssx_argv({"listen", "--policy", policy, "--once", "127.0.0.1:0"})),
      ChildProcess::Stdin::pipe);
  const std::string line = listen.wait_for_line("ssx: listening on ", kWait);
  ASSERT_FALSE(line.empty()) << listen.output();
  const std::string port = line.substr(line.rfind(':') + 1);
  ChildProcess s_client(
      {"openssl", "s_client", "-connect", "127.0.0.1:" + port, "-CAfile", pki_ + "/ca.crt",
       "-verify_return_error", "-verify_ip", "127.0.0.1", "-tls1_3", "-quiet", "-cert",
       pki_ + "/peer.crt", "-key", pki_ + "/peer.key"},
      ChildProcess::Stdin::pipe);
  ASSERT_TRUE(listen.write_input("signed by the token\n", kWait));
  listen.close_input();
  EXPECT_TRUE(s_client.wait_for_output("signed by the token\n", kWait)) << s_client.output();
  auto status = s_client.wait_exit(kWait);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << s_client.output();
  const std::string audit = wait_for_audit("op=sign result=ok");
  EXPECT_NE(audit.find("key=\"token\""), std::string::npos) << audit;
}

// --- hostile clients --------------------------------------------------------------------------

std::string agent_rss_kb(pid_t pid) {
  const std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  const auto at = status.find("VmRSS:");
  if (at == std::string::npos) return "?";
  return status.substr(at + 6, status.find('\n', at) - at - 6);
}

long rss_kb(pid_t pid) {
  try {
    return std::stol(agent_rss_kb(pid));
  } catch (...) {
    return -1;
  }
}

// chain_request_ok asks for the chain over a fresh connection and says whether it came.
bool chain_request_ok(const std::string &socket) {
  const int fd = connect_unix(socket);
  if (fd < 0) return false;
  auto frame = agent::encode(agent::ChainRequest{"host", "test"});
  bool ok = frame && ::send(fd, frame->data(), frame->size(), MSG_NOSIGNAL) ==
                         static_cast<ssize_t>(frame->size());
  std::vector<std::uint8_t> got;
  pollfd p{fd, POLLIN, 0};
  while (ok && ::poll(&p, 1, 5000) == 1) {
    std::uint8_t buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.insert(got.end(), buf, buf + n);
    if (got.size() >= 4) {
      auto len = agent::frame_length(std::span<const std::uint8_t, 4>(got.data(), 4),
                                     agent::kMaxResponseBody);
      if (len && got.size() >= 4 + *len) {
        auto r = agent::decode_response(std::span(got).subspan(4, *len));
        ::close(fd);
        return r && r->type == agent::Type::chain_response;
      }
    }
  }
  ::close(fd);
  return false;
}

TEST_F(AgentTest, HostileClientsDoNotStopTheAgentOrGrowItsMemory) {
  const std::string policy = write_policy("");  // root only: this test runs as root
  start_agent(policy);
  ASSERT_TRUE(chain_request_ok(socket_));
  const long before = rss_kb(agent_->pid());

  // Garbage, a huge length, a truncated frame, a wrong version, trailing bytes: each answered
  // (an error) or closed, never a crash.
  const std::vector<std::vector<std::uint8_t>> hostile = {
      {'G', 'E', 'T', ' ', '/', '\r', '\n', '\r', '\n'},
      {0xff, 0xff, 0xff, 0xff, 1, 1},
      {0, 0, 0, 40, 1, 2, 4, 'h'},
      {0, 0, 0, 4, 9, 1, 0, 0},
      {0, 0, 0, 0},
      {0, 0, 0, 8, 1, 1, 4, 'h', 'o', 's', 't', 0},
  };
  for (const auto &bytes : hostile) {
    const int fd = connect_unix(socket_);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    ::shutdown(fd, SHUT_WR);
    char buf[1024];
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 5000), 1);  // an answer or a close, not silence
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
    ::close(fd);
    ASSERT_TRUE(chain_request_ok(socket_)) << agent_->output();
  }

  // 1,000 idle connections: legitimate clients are still served meanwhile.
  std::vector<int> idle;
  for (int i = 0; i < 1000; ++i) {
    const int fd = connect_unix(socket_);
    if (fd >= 0) idle.push_back(fd);
  }
  EXPECT_EQ(idle.size(), 1000u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(chain_request_ok(socket_)) << agent_->output();
  // 200 connections each sending half a request, then stalling.
  const std::vector<std::uint8_t> half = {0, 0, 0, 100, 1, 1};
  for (int i = 0; i < 200; ++i) {
    const int fd = connect_unix(socket_);
    if (fd < 0) continue;
    (void)::send(fd, half.data(), half.size(), MSG_NOSIGNAL);
    idle.push_back(fd);
  }
  EXPECT_TRUE(chain_request_ok(socket_));
  const long during = rss_kb(agent_->pid());
  for (int fd : idle) ::close(fd);
  // Bounded: a connection costs the agent a few KiB, not what a client claims to send.
  EXPECT_LT(during - before, 32 * 1024) << "RSS " << before << " kB -> " << during << " kB";
  ASSERT_TRUE(chain_request_ok(socket_));
  EXPECT_EQ(::kill(agent_->pid(), 0), 0);
}

}  // namespace
}  // namespace ssx::test
