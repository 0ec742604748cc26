// SPDX-License-Identifier: Apache-2.0
// Reloading the policy without a restart: explicit (ssx_reload_policy) and automatic (the check
// on the path that secures new sockets). New connections see the new policy; established ones
// keep theirs; a policy or credential caught half-written never fails a connection or weakens
// one; and a certificate rotated under load is picked up with zero failed connections.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/policy_state.hpp"
#include "ossl/ossl.hpp"
#include "ssx/ssx.hpp"
#include "testlib/loopback.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// wait_until polls |condition| every 10 ms until it holds (true) or |limit| passes (false).
template <class F>
bool wait_until(F &&condition, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);  // poll interval of a bounded condition wait
  }
  return condition();
}

// spki_of returns the SPKI hash of the first certificate in |pem|.
std::string spki_of(const std::string &pem) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) throw std::runtime_error("spki_of: no certificate");
  return ossl::spki_sha256_hex(cert.get());
}

// write_in_place rewrites |path| without replacing it (O_TRUNC, then |text|), the way a careless
// tool does; the file's mode is kept.
void write_in_place(const std::string &path, const std::string &text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("write " + path);
}

// append_in_place adds |text| to the end of |path|.
void append_in_place(const std::string &path, const std::string &text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("write " + path);
}

// StderrCapture sends this process's stderr to a file until it is destroyed.
class StderrCapture {
 public:
  explicit StderrCapture(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (saved_ < 0 || fd < 0) throw std::runtime_error("StderrCapture: " + path_);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
  }
  StderrCapture(const StderrCapture &) = delete;
  StderrCapture &operator=(const StderrCapture &) = delete;

  std::string text() const {
    std::fflush(stderr);
    return read_text(path_);
  }
  // lines_with counts the lines that contain |fragment|.
  int lines_with(const std::string &fragment) const {
    const std::string all = text();
    int count = 0;
    std::size_t start = 0;
    while (start < all.size()) {
      std::size_t end = all.find('\n', start);
      if (end == std::string::npos) end = all.size();
      if (all.substr(start, end - start).find(fragment) != std::string::npos) ++count;
      start = end + 1;
    }
    return count;
  }

 private:
  std::string path_;
  int saved_ = -1;
};

// Seen is what a client learned about one connection.
struct Seen {
  int error = 0;  // errno when the connection failed
  std::string reason;
  std::string rule;  // the policy rule on the client side
  std::string spki;  // the server's key
  std::uint32_t flags = 0;
  ssx_protocol protocol = SSX_PROTOCOL_NONE;
};

constexpr std::uint32_t kSecure = SSX_INFO_SECURED | SSX_INFO_ENCRYPTED |
                                  SSX_INFO_PEER_AUTHENTICATED | SSX_INFO_PEER_NAME_VERIFIED;

// query_seen fills a Seen from an established client |fd|.
Seen query_seen(int fd) {
  Seen seen;
  ssx_security_info *info = nullptr;
  if (ssx_query_socket_security(fd, nullptr, 0, &info) != 0) {
    seen.error = errno;
    seen.reason = ssx_last_error();
    return seen;
  }
  seen.rule = info->policy_rule;
  seen.spki = info->peer_spki_sha256;
  seen.flags = info->flags;
  seen.protocol = info->protocol;
  ssx_free_security_info(info);
  return seen;
}

// EchoServer accepts ssx connections on 127.0.0.1 and echoes each one on its own thread until
// the client closes it or the server stops. Every wait is bounded (100 ms receive timeouts).
class EchoServer {
 public:
  EchoServer() : listener_(ssx_listener(SSX_GUARANTEE_ENCRYPTION, 128)) {
    timeval timeout{0, 100000};
    ::setsockopt(listener_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    port_ = local_port(listener_.get());
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~EchoServer() {
    stop_ = true;
    acceptor_.join();
    for (auto &t : connections_) t.join();
  }
  EchoServer(const EchoServer &) = delete;
  EchoServer &operator=(const EchoServer &) = delete;

  std::uint16_t port() const { return port_; }
  int accept_failures() const { return accept_failures_; }

 private:
  void accept_loop() {
    while (!stop_) {
      const int fd = ssx_accept(listener_.get(), nullptr, nullptr);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) ++accept_failures_;
        continue;
      }
      timeval timeout{0, 100000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      connections_.emplace_back([this, fd] { echo(fd); });
    }
  }
  void echo(int fd) {
    char buf[4096];
    while (!stop_) {
      const ssize_t n = ssx_recv(fd, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0 || !ssx_send_all(fd, std::string(buf, static_cast<size_t>(n)))) break;
    }
    ssx_close(fd);
  }

  Fd listener_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accept_failures_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // only the acceptor touches it until the destructor
};

// echo_ok sends |message| on |fd| and checks that it comes back.
bool echo_ok(int fd, const std::string &message) {
  if (!ssx_send_all(fd, message)) return false;
  std::string got;
  char buf[4096];
  while (got.size() < message.size()) {
    const ssize_t n = ssx_recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
  }
  return got == message;
}

class ReloadTest : public ::testing::Test {
 protected:
  ReloadTest() : original_(pki_.server()) {
    // The files the policy names, which the tests replace; the CA's own files stay put.
    cert_ = dir_.file("server.crt");
    key_ = dir_.file("server.key");
    write_text(cert_, read_text(original_.cert));
    write_text(key_, read_text(original_.key), 0600);
    policy_ = dir_.file("policy.toml");
  }
  ~ReloadTest() override { core::set_policy_check_interval(1000ms); }

  // policy_text is a policy whose outbound rule is named |client_rule|.
  std::string policy_text(const std::string &client_rule) const {
    return "version = 1\n"
           "[defaults]\n"
           "trust_bundle = " +
           toml_quote(pki_.ca_cert()) +
           "\n"
           "[[rule]]\n"
           "name = \"server\"\n"
           "direction = \"inbound\"\n"
           "certificate = " +
           toml_quote(cert_) +
           "\n"
           "private_key = " +
           toml_quote(key_) +
           "\n"
           "[[rule]]\n"
           "name = " +
           toml_quote(client_rule) +
           "\n"
           "direction = \"outbound\"\n";
  }
  void write_policy(const std::string &client_rule) {
    write_text(policy_, policy_text(client_rule));
  }
  void load(const std::string &client_rule) {
    write_policy(client_rule);
    ASSERT_EQ(ssx_load_policy(policy_.c_str()), 0) << last_error_text();
  }

  // connect opens a client connection to |server| and reports what it saw; |out| keeps it open.
  Seen connect(const EchoServer &server, Fd *out = nullptr) {
    Fd fd;
    Seen seen;
    if (ssx_client_connect(server.port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &fd) < 0) {
      seen.error = errno;
      seen.reason = ssx_last_error();
      return seen;
    }
    seen = query_seen(fd.get());
    if (seen.error == 0 && !echo_ok(fd.get(), "ping")) {
      seen.error = EIO;
      seen.reason = "echo failed: " + last_error_text();
    }
    if (out != nullptr) *out = std::move(fd);
    return seen;
  }

  // new_server_credential issues a fresh server certificate (same names, new key).
  pki::Credential new_server_credential() const {
    return pki_.authority().issue(TestPki::server_request()).value();
  }

  TestPki pki_;
  TempDir dir_;
  CredentialFiles original_;
  std::string cert_, key_, policy_;
};

TEST_F(ReloadTest, ExplicitReloadAppliesToNewConnectionsOnly) {
  core::set_policy_check_interval(0ms);  // only the explicit call may change the policy
  load("client-v1");
  EchoServer server;
  Fd established;
  Seen before = connect(server, &established);
  ASSERT_EQ(before.error, 0) << before.reason;
  EXPECT_EQ(before.rule, "client-v1");

  write_policy("client-v2");
  EXPECT_EQ(connect(server).rule, "client-v1") << "changed without a reload";
  ASSERT_TRUE(ssx::reload_policy().has_value()) << ssx_last_error();

  Seen after = connect(server);
  ASSERT_EQ(after.error, 0) << after.reason;
  EXPECT_EQ(after.rule, "client-v2");
  // The connection made before the reload keeps its policy and goes on working.
  EXPECT_EQ(query_seen(established.get()).rule, "client-v1");
  EXPECT_TRUE(echo_ok(established.get(), "still here")) << last_error_text();
}

TEST_F(ReloadTest, AutomaticCheckPicksUpAChangedPolicyFile) {
  load("client-v1");
  core::set_policy_check_interval(50ms);
  EchoServer server;
  Fd established;
  ASSERT_EQ(connect(server, &established).rule, "client-v1");
  const auto generation = core::policy_status().generation;

  write_policy("client-v2");
  std::string rule;
  EXPECT_TRUE(wait_until([&] { return (rule = connect(server).rule) == "client-v2"; }, 5000ms))
      << "still " << rule;
  EXPECT_GT(core::policy_status().generation, generation);
  EXPECT_EQ(query_seen(established.get()).rule, "client-v1");
  EXPECT_TRUE(echo_ok(established.get(), "still here")) << last_error_text();
}

TEST_F(ReloadTest, InvalidEditKeepsTheLastGoodPolicyAndReportsIt) {
  core::set_policy_check_interval(0ms);
  load("client-v1");
  EchoServer server;

  // Explicit reload: the error comes back to the caller, the policy in force stays.
  write_text(policy_, policy_text("client-v2") + "adress = \"10.0.0.0/8\"\n");
  errno = 0;
  EXPECT_EQ(ssx_reload_policy(), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(std::string(ssx_last_error()),
            policy_ + ":12:1: unknown key \"adress\" in [[rule]]; did you mean \"address\"?");
  Seen seen = connect(server);
  EXPECT_EQ(seen.error, 0) << seen.reason;
  EXPECT_EQ(seen.rule, "client-v1");

  // Automatic check: one line on stderr however many checks fail, and no failed connection.
  StderrCapture log(dir_.file("stderr.txt"));
  core::set_policy_check_interval(20ms);
  write_text(policy_, "version = 1\n[defaults]\nmin_tls_version = 1.3\n");
  const auto until = Clock::now() + 600ms;
  int connections = 0;
  while (Clock::now() < until) {
    seen = connect(server);
    ASSERT_EQ(seen.error, 0) << seen.reason;
    ASSERT_EQ(seen.rule, "client-v1");
    ++connections;
  }
  EXPECT_GT(connections, 5);
  EXPECT_TRUE(wait_until([&] { return log.lines_with("cannot reload policy") > 0; }, 2000ms))
      << log.text();
  EXPECT_EQ(log.lines_with("cannot reload policy"), 1) << log.text();
  EXPECT_EQ(log.lines_with(policy_ + ":3:19: min_tls_version must be a string"), 1) << log.text();
  EXPECT_NE(core::policy_status().last_failure, "");

  // Fixed: picked up, and the log says the problem is gone.
  write_policy("client-v3");
  std::string rule;
  EXPECT_TRUE(wait_until([&] { return (rule = connect(server).rule) == "client-v3"; }, 5000ms))
      << "still " << rule;
  EXPECT_EQ(log.lines_with("problem reported before is resolved"), 1) << log.text();
  EXPECT_EQ(core::policy_status().last_failure, "");
  EXPECT_EQ(server.accept_failures(), 0);
}

// A policy that once crashed every process that loaded it (40,000 dotted segments overflowed the
// stack inside toml++): explicit and automatic reloads refuse it and keep the last good policy.
TEST_F(ReloadTest, FortyThousandSegmentPolicyKeepsTheLastGoodPolicy) {
  core::set_policy_check_interval(0ms);
  load("client-v1");
  EchoServer server;
  std::string header = "a";
  for (int i = 1; i < 40000; ++i) header += ".a";
  const std::string hostile = "version = 1\n[" + header + "]\nx = 1\n";

  write_text(policy_, hostile);
  errno = 0;
  EXPECT_EQ(ssx_reload_policy(), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(std::string(ssx_last_error()).rfind(policy_ + ":2:33: nesting deeper than 16", 0), 0u)
      << ssx_last_error();
  Seen seen = connect(server);
  EXPECT_EQ(seen.error, 0) << seen.reason;
  EXPECT_EQ(seen.rule, "client-v1");

  StderrCapture log(dir_.file("stderr.txt"));
  write_policy("client-v2");
  ASSERT_EQ(ssx_reload_policy(), 0) << ssx_last_error();
  core::set_policy_check_interval(20ms);
  write_text(policy_, hostile);
  // The check runs on the path that secures new sockets: keep connecting until it has run.
  EXPECT_TRUE(wait_until(
      [&] {
        seen = connect(server);
        EXPECT_EQ(seen.error, 0) << seen.reason;
        EXPECT_EQ(seen.rule, "client-v2");
        return log.lines_with("cannot reload policy") > 0;
      },
      5000ms))
      << log.text();
  EXPECT_EQ(log.lines_with(policy_ + ":2:33: nesting deeper than 16"), 1) << log.text();
  seen = connect(server);
  EXPECT_EQ(seen.error, 0) << seen.reason;
  EXPECT_EQ(seen.rule, "client-v2");
}

TEST_F(ReloadTest, CertificateBeforeItsKeyOrTruncatedKeepsTheLastGoodPair) {
  core::set_policy_check_interval(0ms);
  load("client");
  EchoServer server;
  Fd established;
  Seen first = connect(server, &established);
  ASSERT_EQ(first.error, 0) << first.reason;
  const std::string old_spki = spki_of(read_text(original_.cert));
  ASSERT_EQ(first.spki, old_spki);

  const pki::Credential next = new_server_credential();
  const std::string new_spki = spki_of(next.chain_pem);
  ASSERT_NE(new_spki, old_spki);

  // The certificate is replaced before its key: the pair does not match.
  write_text(cert_, next.chain_pem);
  errno = 0;
  EXPECT_EQ(ssx_reload_policy(), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(std::string(ssx_last_error())
                .find("private key \"" + key_ +
                      "\" does not match "
                      "certificate \"" +
                      cert_ + "\""),
            std::string::npos)
      << ssx_last_error();
  EXPECT_EQ(std::string(ssx_last_error()).find("BEGIN"), std::string::npos);
  Seen seen = connect(server);
  EXPECT_EQ(seen.error, 0) << seen.reason;
  EXPECT_EQ(seen.spki, old_spki);

  // The key arrives truncated.
  write_text(key_, next.key_pem.substr(0, next.key_pem.size() / 2), 0600);
  EXPECT_EQ(ssx_reload_policy(), -1);
  EXPECT_NE(std::string(ssx_last_error()).find("contains no PEM private key"), std::string::npos)
      << ssx_last_error();
  seen = connect(server);
  EXPECT_EQ(seen.error, 0) << seen.reason;
  EXPECT_EQ(seen.spki, old_spki);

  // The whole key: the new pair is used by new connections, the old one by the old connection.
  write_text(key_, next.key_pem, 0600);
  ASSERT_EQ(ssx_reload_policy(), 0) << ssx_last_error();
  seen = connect(server);
  EXPECT_EQ(seen.error, 0) << seen.reason;
  EXPECT_EQ(seen.spki, new_spki);
  EXPECT_EQ(query_seen(established.get()).spki, old_spki);
  EXPECT_TRUE(echo_ok(established.get(), "old pair")) << last_error_text();
}

TEST_F(ReloadTest, ExplicitLoadOfAnotherFileMovesTheWatchToIt) {
  load("client-v1");
  core::set_policy_check_interval(20ms);
  EchoServer server;
  const std::string other = dir_.file("other.toml");
  write_text(other, policy_text("other-v1"));
  ASSERT_EQ(ssx_load_policy(other.c_str()), 0) << ssx_last_error();
  EXPECT_EQ(core::policy_status().path, other);
  EXPECT_EQ(connect(server).rule, "other-v1");

  // The first file no longer matters; the second one does.
  write_policy("client-v2");
  write_text(other, policy_text("other-v2"));
  std::string rule;
  EXPECT_TRUE(wait_until([&] { return (rule = connect(server).rule) == "other-v2"; }, 5000ms))
      << "still " << rule;
}

// A policy that was never valid fails closed, and is picked up once it is fixed. It must be the
// first policy this process loads, from $SSX_POLICY: ctest runs each test in its own process.
TEST_F(ReloadTest, NeverValidPolicyFailsClosedUntilFixed) {
  if (!core::policy_status().path.empty()) {
    GTEST_SKIP()
        << "needs a process that has not loaded a policy yet (run it alone, as ctest does)";
  }
  write_text(policy_, policy_text("client-v1") + "port = 0\n");
  ASSERT_EQ(::setenv("SSX_POLICY", policy_.c_str(), 1), 0);
  core::set_policy_check_interval(20ms);
  StderrCapture log(dir_.file("stderr.txt"));
  Fd listener = ssx_listener();
  Fd client;
  errno = 0;
  EXPECT_EQ(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_NE(std::string(ssx_last_error())
                .find("is unusable, refusing to secure sockets: " + policy_ +
                      ":12:8: port 0 is out of range (1-65535)"),
            std::string::npos)
      << ssx_last_error();
  ::unsetenv("SSX_POLICY");

  // Still broken after several checks: still refused. The policy is checked at most once per
  // check interval, by the clock: letting several intervals pass is what is tested, not an order.
  std::this_thread::sleep_for(100ms);
  errno = 0;
  EXPECT_EQ(ssx_client_connect(local_port(listener.get()), {"localhost"}), -1);
  EXPECT_EQ(errno, EACCES);

  write_policy("client-v1");
  EchoServer server;
  Seen seen;
  EXPECT_TRUE(wait_until([&] { return (seen = connect(server)).error == 0; }, 5000ms))
      << seen.reason;
  EXPECT_EQ(seen.rule, "client-v1");
  EXPECT_EQ(log.lines_with("cannot load policy; sockets that need it are refused"), 1)
      << log.text();
}

// The heart of rotation: a client connects continuously to a server in this process while the
// server's certificate and key are replaced again and again, in every bad order a deployment tool
// might use. No connection may fail, none may be less than fully verified, and each new
// certificate must reach new connections.
TEST_F(ReloadTest, RotationUnderLoadFailsNoConnection) {
  load("client");
  core::set_policy_check_interval(25ms);
  StderrCapture log(dir_.file("stderr.txt"));
  EchoServer server;
  const auto hard_deadline = Clock::now() + 30s;

  std::mutex mu;
  std::string latest_spki;
  std::vector<std::string> failures;
  std::atomic<int> connections{0};
  std::atomic<int> insecure{0};
  std::atomic<bool> stop{false};
  std::thread client([&] {
    while (!stop && connections < 20000 && Clock::now() < hard_deadline) {
      Seen seen = connect(server);
      ++connections;
      std::lock_guard lock(mu);
      if (seen.error != 0) {
        failures.push_back(std::string(std::strerror(seen.error)) + ": " + seen.reason);
        continue;
      }
      if ((seen.flags & kSecure) != kSecure || seen.protocol != SSX_PROTOCOL_TLS) ++insecure;
      latest_spki = seen.spki;
    }
  });
  auto latest = [&] {
    std::lock_guard lock(mu);
    return latest_spki;
  };

  enum class Order { cert_then_key, key_then_cert, truncated_cert_after_key };
  const Order orders[] = {
      Order::cert_then_key, Order::key_then_cert, Order::truncated_cert_after_key,
      Order::cert_then_key, Order::key_then_cert, Order::truncated_cert_after_key};
  int picked_up = 0;
  for (Order order : orders) {
    const pki::Credential next = new_server_credential();
    const std::string spki = spki_of(next.chain_pem);
    // Each pause outlasts several checks, so the checks see every half-done state. The checks
    // are driven by the clock (25 ms interval): the pauses are the half-done states under test;
    // nothing waits on them for an order, and a longer one would only mean more checks.
    switch (order) {
      case Order::cert_then_key:
        write_text(cert_, next.chain_pem);
        std::this_thread::sleep_for(150ms);
        write_text(key_, next.key_pem, 0600);
        break;
      case Order::key_then_cert:
        write_text(key_, next.key_pem, 0600);
        std::this_thread::sleep_for(150ms);
        write_text(cert_, next.chain_pem);
        break;
      case Order::truncated_cert_after_key:
        write_text(key_, next.key_pem, 0600);
        std::this_thread::sleep_for(100ms);
        write_in_place(cert_, next.chain_pem.substr(0, next.chain_pem.size() / 2));
        std::this_thread::sleep_for(150ms);
        append_in_place(cert_, next.chain_pem.substr(next.chain_pem.size() / 2));
        break;
    }
    if (wait_until([&] { return latest() == spki; }, 5000ms)) ++picked_up;
  }
  stop = true;
  client.join();

  EXPECT_EQ(picked_up, 6) << "new certificates reached new connections";
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed connections, first: "
                                << (failures.empty() ? "" : failures.front());
  EXPECT_EQ(insecure, 0);
  EXPECT_EQ(server.accept_failures(), 0);
  EXPECT_GT(connections, 50) << "too little load to prove anything";
  // The half-done states were seen and refused, and the log never shows key material.
  EXPECT_GE(log.lines_with("cannot reload policy"), 1) << log.text();
  EXPECT_EQ(log.text().find("PRIVATE KEY"), std::string::npos) << log.text();
  std::printf("rotation: %d connections, %d rotations picked up\n", connections.load(), picked_up);
}

}  // namespace
}  // namespace ssx::test
