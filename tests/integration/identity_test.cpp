// SPDX-License-Identifier: Apache-2.0
// Peer identity as a local account, and impersonation proven with the kernel's own access checks.
// CI runs as root; these tests create and remove real accounts (testlib/test_users.hpp).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cerrno>
#include <cstring>
#include <thread>

#include "identity/impersonation.hpp"
#include "testlib/test_users.hpp"
#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

#define REQUIRE_ROOT() \
  if (!TestUser::available()) GTEST_SKIP() << "needs root and useradd (CI runs as root)"

std::string make_file(const std::string &path, uid_t owner, gid_t group) {
  write_text(path, "contents of " + path, 0600);
  if (::chown(path.c_str(), owner, group) != 0) throw std::runtime_error("chown " + path);
  return path;
}

int open_errno(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

sockaddr_un abstract_address(const std::string &name, socklen_t *len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());  // abstract: leading NUL
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

// LocalPair is an ssx AF_UNIX connection inside this process: both ends are ssx sockets.
struct LocalPair {
  Fd listener, client, server;
};

LocalPair local_pair() {
  LocalPair p;
  socklen_t len = 0;
  sockaddr_un addr = abstract_address(
      "ssx-test-" + std::to_string(::getpid()) + "-" + std::to_string(::gettid()), &len);
  p.listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(ssx_set_socket_security(p.listener.get(), nullptr, 0), 0) << last_error_text();
  EXPECT_EQ(::bind(p.listener.get(), reinterpret_cast<sockaddr *>(&addr), len), 0);
  EXPECT_EQ(::listen(p.listener.get(), 4), 0);
  p.client.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(ssx_set_socket_security(p.client.get(), nullptr, 0), 0);
  // An AF_UNIX connect completes as soon as the connection is queued on the listener.
  EXPECT_EQ(ssx_connect(p.client.get(), reinterpret_cast<sockaddr *>(&addr), len), 0)
      << last_error_text();
  p.server.reset(ssx_accept(p.listener.get(), nullptr, nullptr));
  EXPECT_GE(p.server.get(), 0) << last_error_text();
  return p;
}

class IdentityTest : public TlsTest {
 protected:
  void SetUp() override {
    if (!TestUser::available()) return;
    // The accounts must be able to reach files in the test directory.
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0711), 0);
  }
};

TEST_F(IdentityTest, ImpersonatingAnMtlsPeerAppliesTheKernelsAccessChecks) {
  REQUIRE_ROOT();
  TestUser user("a");
  use_policy("", "peer_authentication = \"required\"",
             "\n[[identity]]\npeer = \"spiffe://ssx.test/client\"\nuser = " +
                 toml_quote(user.name()) + "\n");
  const std::string root_only = make_file(dir_.file("root-only"), 0, 0);
  const std::string users_file = make_file(dir_.file("users-file"), user.uid(), user.gid());

  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error) << " — " << ssx_last_error();
    Info info = query(fd);
    ASSERT_TRUE(info);
    EXPECT_NE(info->flags & SSX_INFO_IMPERSONATION_AVAILABLE, 0u);
    EXPECT_STREQ(info->peer_user, user.name().c_str());
    EXPECT_EQ(info->peer_uid, user.uid());
    EXPECT_EQ(info->peer_gid, user.gid());
    ASSERT_GE(info->peer_group_count, 1u);
    EXPECT_EQ(info->peer_groups[0], user.gid());

    ASSERT_EQ(ssx_impersonate_socket_peer(fd, nullptr, 0), 0) << last_error_text();
    EXPECT_EQ(open_errno(root_only), EACCES) << "the peer may not read root's file";
    EXPECT_EQ(open_errno(users_file), 0) << "the peer may read its own file";
    EXPECT_EQ(ssx_impersonate_socket_peer(fd, nullptr, 0), -1);
    EXPECT_EQ(errno, EBUSY);
    ASSERT_EQ(ssx_revert_impersonation(), 0) << last_error_text();
    EXPECT_EQ(open_errno(root_only), 0) << "root again after revert";
    EXPECT_EQ(ssx_revert_impersonation(), 0) << "revert without impersonation does nothing";
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
  server.reset();
}

TEST_F(IdentityTest, UnmappedPeerCannotBeImpersonated) {
  use_policy("", "peer_authentication = \"required\"");
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [&](int fd, int) {
    ASSERT_GE(fd, 0);
    Info info = query(fd);
    EXPECT_EQ(info->flags & SSX_INFO_IMPERSONATION_AVAILABLE, 0u);
    EXPECT_EQ(info->peer_user, nullptr);
    EXPECT_EQ(info->peer_uid, static_cast<uid_t>(-1));
    EXPECT_EQ(info->peer_groups, nullptr);
    EXPECT_EQ(ssx_impersonate_socket_peer(fd, nullptr, 0), -1);
    EXPECT_EQ(errno, EACCES);
    EXPECT_NE(std::string(ssx_last_error()).find("\"spiffe://ssx.test/client\""), std::string::npos)
        << ssx_last_error();
  });
  Fd client(ssx_client_connect(local_port(listener.get()), {"localhost"}));
  ASSERT_GE(client.get(), 0) << last_error_text();
}

TEST_F(IdentityTest, AnotherThreadKeepsRootWhileOneImpersonates) {
  REQUIRE_ROOT();
  TestUser user("b");
  install_policy(dir_,
                 "[[identity]]\npeer = \"unix:uid=0\"\nuser = " + toml_quote(user.name()) + "\n");
  const std::string root_only = make_file(dir_.file("root-only"), 0, 0);
  LocalPair pair = local_pair();
  std::atomic<int> stage{0};
  std::string impersonating_ids;
  std::thread impersonator([&] {
    ASSERT_EQ(ssx_impersonate_socket_peer(pair.server.get(), nullptr, 0), 0) << last_error_text();
    impersonating_ids = thread_status_ids();
    EXPECT_EQ(open_errno(root_only), EACCES);
    stage = 1;
    while (stage.load() != 2) std::this_thread::yield();
    EXPECT_EQ(ssx_revert_impersonation(), 0);
  });
  while (stage.load() != 1) std::this_thread::yield();
  EXPECT_EQ(open_errno(root_only), 0) << "this thread is still root";
  EXPECT_NE(thread_status_ids().find("Uid:\t0\t0\t0\t0"), std::string::npos) << thread_status_ids();
  stage = 2;
  impersonator.join();
  const std::string euid = "\t" + std::to_string(user.uid()) + "\t";
  EXPECT_NE(impersonating_ids.find("Uid:\t0" + euid), std::string::npos) << impersonating_ids;
}

TEST_F(IdentityTest, ThirtyTwoThreadsImpersonateDifferentAccountsAtOnce) {
  REQUIRE_ROOT();
  // Accounts need no passwd entry for the kernel: distinct uids are enough to prove isolation.
  constexpr int kThreads = 32;
  constexpr int kRounds = 40;
  ASSERT_EQ(::chmod(dir_.path().c_str(), 01777), 0);  // every account may create files here
  std::barrier sync(kThreads);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      identity::Account a;
      a.uid = static_cast<uid_t>(61000 + t);
      a.gid = static_cast<gid_t>(61000 + t);
      a.groups = {a.gid};
      const std::string path = dir_.file("owned-by-" + std::to_string(t));
      sync.arrive_and_wait();
      for (int round = 0; round < kRounds; ++round) {
        if (!identity::impersonate(a)) {
          wrong++;
          return;
        }
        // The kernel decides the owner of a new file from this thread's credentials alone.
        int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        struct stat st {};
        if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_uid != a.uid || st.st_gid != a.gid ||
            ::geteuid() != a.uid) {
          wrong++;
        }
        if (fd >= 0) ::close(fd);
        ::unlink(path.c_str());
        if (!identity::revert() || ::geteuid() != 0) wrong++;
      }
    });
  }
  for (auto &t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(IdentityTest, RevertRestoresSupplementaryGroupsExactly) {
  REQUIRE_ROOT();
  TestUser user("c", /*extra_group=*/true);
  install_policy(dir_,
                 "[[identity]]\npeer = \"unix:uid=0\"\nuser = " + toml_quote(user.name()) + "\n");
  LocalPair pair = local_pair();
  std::thread worker([&] {
    // An unusual group list of this thread's own, so a sloppy revert would show.
    const std::vector<gid_t> mine = {0, 4, 27, 100, 65534};
    ASSERT_EQ(::syscall(SYS_setgroups, mine.size(), mine.data()), 0);
    Info info = query(pair.server.get());
    ASSERT_EQ(info->peer_group_count, 2u);
    std::vector<gid_t> peer_groups(info->peer_groups, info->peer_groups + info->peer_group_count);
    EXPECT_NE(std::find(peer_groups.begin(), peer_groups.end(), user.extra_gid()),
              peer_groups.end());
    ASSERT_EQ(ssx_impersonate_socket_peer(pair.server.get(), nullptr, 0), 0) << last_error_text();
    std::vector<gid_t> during(64);
    during.resize(static_cast<size_t>(::getgroups(64, during.data())));
    std::sort(during.begin(), during.end());
    std::sort(peer_groups.begin(), peer_groups.end());
    EXPECT_EQ(during, peer_groups);
    ASSERT_EQ(ssx_revert_impersonation(), 0);
    std::vector<gid_t> after(64);
    after.resize(static_cast<size_t>(::getgroups(64, after.data())));
    EXPECT_EQ(after, mine);
  });
  worker.join();
}

TEST_F(IdentityTest, MissingCapabilityIsEpermNamingIt) {
  REQUIRE_ROOT();
  install_policy(dir_, "");
  // In a child process: drop CAP_SETUID from the effective set, then try.
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    LocalPair pair = local_pair();
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    ::syscall(SYS_capget, &header, data);
    data[0].effective &= ~(1U << CAP_SETUID);
    ::syscall(SYS_capset, &header, data);
    int rc = ssx_impersonate_socket_peer(pair.server.get(), nullptr, 0);
    std::string out = std::to_string(rc) + " " + std::to_string(errno) + " " + ssx_last_error();
    (void)!::write(report[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(report[1]);
  char buf[512];
  ssize_t n = ::read(report[0], buf, sizeof buf);
  ::close(report[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_GT(n, 0);
  const std::string got(buf, static_cast<size_t>(n));
  EXPECT_EQ(got.rfind("-1 " + std::to_string(EPERM) + " ", 0), 0u) << got;
  EXPECT_NE(got.find("impersonation needs CAP_SETUID, which this process lacks"), std::string::npos)
      << got;
}

TEST_F(IdentityTest, UnixPeerIsAttestedByTheKernelAndImpersonated) {
  REQUIRE_ROOT();
  TestUser user("d");
  install_policy(dir_, "");  // no [[identity]] rule: a local peer maps to its own uid
  const std::string root_only = make_file(dir_.file("root-only"), 0, 0);
  const std::string users_file = make_file(dir_.file("users-file"), user.uid(), user.gid());
  const std::string path = dir_.file("sock");
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(listener.get(), nullptr, 0), 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0777), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);

  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the client, running as the test user
    if (::setgid(user.gid()) != 0 || ::setuid(user.uid()) != 0) ::_exit(3);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ssx_set_socket_security(fd, nullptr, 0) != 0) ::_exit(4);
    if (ssx_connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) ::_exit(5);
    if (ssx_send(fd, "hi", 2, 0) != 2) ::_exit(6);
    char buf[8];
    ::_exit(ssx_recv(fd, buf, sizeof buf, 0) == 2 ? 0 : 7);
  }
  Fd server(ssx_accept(listener.get(), nullptr, nullptr));
  ASSERT_GE(server.get(), 0) << last_error_text();
  Info info = query(server.get());
  EXPECT_EQ(info->protocol, SSX_PROTOCOL_LOCAL);
  EXPECT_NE(info->flags & SSX_INFO_SECURED, 0u);
  EXPECT_EQ(info->flags & SSX_INFO_ENCRYPTED, 0u) << "the bytes never leave the host";
  EXPECT_NE(info->flags & SSX_INFO_PEER_AUTHENTICATED, 0u);
  EXPECT_EQ(info->peer_principal, "unix:uid=" + std::to_string(user.uid()));
  EXPECT_EQ(info->peer_pid, child);
  EXPECT_EQ(info->peer_uid, user.uid());
  EXPECT_EQ(info->peer_gid, user.gid());
  EXPECT_STREQ(info->peer_user, user.name().c_str());
  ASSERT_EQ(ssx_impersonate_socket_peer(server.get(), nullptr, 0), 0) << last_error_text();
  EXPECT_EQ(open_errno(root_only), EACCES);
  EXPECT_EQ(open_errno(users_file), 0);
  ASSERT_EQ(ssx_revert_impersonation(), 0);
  char buf[8];
  EXPECT_EQ(ssx_recv(server.get(), buf, sizeof buf, 0), 2);
  EXPECT_EQ(ssx_send(server.get(), "ok", 2, 0), 2);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "client exit " << status;
}

TEST_F(IdentityTest, UnixTargetNameMustMatchTheAttestedUid) {
  install_policy(dir_, "");
  socklen_t len = 0;
  sockaddr_un addr = abstract_address("ssx-names-" + std::to_string(::getpid()), &len);
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(listener.get(), nullptr, 0), 0);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr *>(&addr), len), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  for (uid_t expected : {::geteuid(), ::geteuid() + 1}) {
    Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(ssx_set_socket_security(client.get(), nullptr, 0), 0);
    const std::string name = "unix:uid=" + std::to_string(expected);
    ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), name.c_str(), nullptr, 0), 0)
        << last_error_text();
    int rc = ssx_connect(client.get(), reinterpret_cast<sockaddr *>(&addr), len);
    int connect_errno = errno;
    Fd accepted(ssx_accept(listener.get(), nullptr, nullptr));
    if (expected == ::geteuid()) {
      EXPECT_EQ(rc, 0) << last_error_text();
      EXPECT_NE(query(client.get())->flags & SSX_INFO_PEER_NAME_VERIFIED, 0u);
    } else {
      EXPECT_EQ(rc, -1);
      EXPECT_EQ(connect_errno, EKEYREJECTED);
    }
  }
}

}  // namespace
}  // namespace ssx::test

namespace ssx::test {
namespace {

TEST_F(TlsTest, UnixSocketRunsTlsWhenEncryptionIsGuaranteed) {
  use_policy();
  const std::string path = dir_.file("tls.sock");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ssx_security_settings encrypted{SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
  ASSERT_EQ(ssx_set_socket_security(listener.get(), &encrypted, sizeof encrypted), 0);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  std::uint32_t server_protocol = 0;
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << std::strerror(error) << " — " << ssx_last_error();
    server_protocol = query(fd)->protocol;
  });
  Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(client.get(), &encrypted, sizeof encrypted), 0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(client.get(), "localhost", nullptr, 0), 0);
  ASSERT_EQ(ssx_connect(client.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0)
      << last_error_text();
  Info info = query(client.get());
  EXPECT_EQ(info->protocol, SSX_PROTOCOL_TLS);
  EXPECT_NE(info->flags & SSX_INFO_ENCRYPTED, 0u);
  EXPECT_STREQ(info->version, "TLSv1.3");
  EXPECT_STREQ(info->peer_principal, "localhost");
  server.reset();
  EXPECT_EQ(server_protocol, SSX_PROTOCOL_TLS);
}

}  // namespace
}  // namespace ssx::test
