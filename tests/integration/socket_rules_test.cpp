// SPDX-License-Identifier: Apache-2.0
// The C API's contract on socket states, argument checks and descriptor reuse.

#include <gtest/gtest.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

int tcp_socket() {
  return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

TEST(SocketRules, SecuritySetTwiceIsEalready) {
  Fd fd(tcp_socket());
  ASSERT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0) << last_error_text();
  EXPECT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), -1);
  EXPECT_EQ(errno, EALREADY);
}

TEST(SocketRules, RejectsUnsupportedFamiliesTypesAndSettings) {
  Fd netlink(::socket(AF_NETLINK, SOCK_RAW, 0));
  ASSERT_GE(netlink.get(), 0);
  EXPECT_EQ(ssx_set_socket_security(netlink.get(), nullptr, 0), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  EXPECT_NE(std::string(ssx_last_error()).find("AF_UNIX"), std::string::npos);

  // UDP sockets are secured with DTLS (tests/integration/datagram_test.cpp); AF_UNIX datagram
  // sockets are not secured at all.
  Fd unix_dgram(::socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_EQ(ssx_set_socket_security(unix_dgram.get(), nullptr, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(std::string(ssx_last_error()).find("AF_UNIX datagram"), std::string::npos);

  Fd fd(tcp_socket());
  ssx_security_settings bad_flags{SSX_PROTOCOL_DEFAULT, 0x80};
  EXPECT_EQ(ssx_set_socket_security(fd.get(), &bad_flags, sizeof bad_flags), -1);
  EXPECT_EQ(errno, EINVAL);
  ssx_security_settings local{SSX_PROTOCOL_LOCAL, 0};
  EXPECT_EQ(ssx_set_socket_security(fd.get(), &local, sizeof local), -1)
      << "LOCAL is for AF_UNIX only";
  EXPECT_EQ(errno, EPROTONOSUPPORT);
  ssx_security_settings dtls{SSX_PROTOCOL_DTLS, 0};
  EXPECT_EQ(ssx_set_socket_security(fd.get(), &dtls, sizeof dtls), -1)
      << "DTLS is for UDP sockets only";
  EXPECT_EQ(errno, EPROTONOSUPPORT);
  ssx_security_settings bogus{SSX_PROTOCOL_DEFAULT, 0};
  const int not_a_protocol = 99;  // what a C caller could pass; memcpy avoids a UB enum cast here
  std::memcpy(&bogus.protocol, &not_a_protocol, sizeof not_a_protocol);
  EXPECT_EQ(ssx_set_socket_security(fd.get(), &bogus, sizeof bogus), -1);
  EXPECT_EQ(errno, EINVAL);

  EXPECT_EQ(ssx_set_socket_security(-1, nullptr, 0), -1);
  EXPECT_EQ(errno, EBADF);
}

// The settings length lets struct ssx_security_settings grow (ssx.h): an older caller's shorter
// struct gets defaults for the rest, a newer caller's longer one must be zero beyond what this
// library knows, and impossible lengths are refused.
TEST(SocketRules, SettingsLengthLetsTheStructGrow) {
  {  // NULL with 0: the defaults.
    Fd fd(tcp_socket());
    EXPECT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0) << last_error_text();
  }
  {  // NULL with a length is a mistake, not the defaults.
    Fd fd(tcp_socket());
    EXPECT_EQ(ssx_set_socket_security(fd.get(), nullptr, sizeof(ssx_security_settings)), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_NE(std::string(ssx_last_error()).find("settings is NULL"), std::string::npos);
  }
  {  // Shorter than the first version: refused, the fields would be cut in half.
    Fd fd(tcp_socket());
    ssx_security_settings s{SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
    for (size_t len :
         {size_t{0}, size_t{1}, size_t{4}, size_t{SSX_SECURITY_SETTINGS_SIZE_V1 - 1}}) {
      EXPECT_EQ(ssx_set_socket_security(fd.get(), &s, len), -1) << len;
      EXPECT_EQ(errno, EINVAL) << len;
    }
    EXPECT_NE(std::string(ssx_last_error()).find("smaller than the first version"),
              std::string::npos)
        << ssx_last_error();
    // Nothing was registered by the failures: the socket can still be secured.
    EXPECT_EQ(ssx_set_socket_security(fd.get(), &s, SSX_SECURITY_SETTINGS_SIZE_V1), 0)
        << last_error_text();
  }
  {  // A newer caller: a longer struct whose unknown tail is zero is accepted...
    Fd fd(tcp_socket());
    struct Newer {
      ssx_security_settings known;
      std::uint64_t future_field;
      unsigned char future_bytes[20];
    } newer{};
    newer.known = {SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
    EXPECT_EQ(ssx_set_socket_security(fd.get(), &newer.known, sizeof newer), 0)
        << last_error_text();
  }
  {  // ...and one that sets a field this library does not know is refused, naming the offset.
    Fd fd(tcp_socket());
    struct Newer {
      ssx_security_settings known;
      std::uint32_t future_field;
    } newer{};
    newer.future_field = 1;
    EXPECT_EQ(ssx_set_socket_security(fd.get(), &newer.known, sizeof newer), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_NE(std::string(ssx_last_error()).find("non-zero byte at offset"), std::string::npos)
        << ssx_last_error();
    newer.future_field = 0;
    EXPECT_EQ(ssx_set_socket_security(fd.get(), &newer.known, sizeof newer), 0)
        << last_error_text();
  }
  {  // An implausible length is refused before anything is read.
    Fd fd(tcp_socket());
    ssx_security_settings s{};
    EXPECT_EQ(ssx_set_socket_security(fd.get(), &s, SSX_SECURITY_SETTINGS_MAX_SIZE + 1), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(ssx_set_socket_security(fd.get(), &s, SIZE_MAX), -1);
    EXPECT_EQ(errno, EINVAL);
  }
  {  // The fields a short length covers are honoured: flags are read from the first 8 bytes.
    Fd fd(tcp_socket());
    ssx_security_settings s{SSX_PROTOCOL_DEFAULT, 0x80};
    EXPECT_EQ(ssx_set_socket_security(fd.get(), &s, SSX_SECURITY_SETTINGS_SIZE_V1), -1);
    EXPECT_EQ(errno, EINVAL);
  }
}

TEST(SocketRules, SecurityAfterConnectIsEisconnButAListenerMayBeSecured) {
  Fd listener = plain_listener();
  // A listener handed over ready-made (systemd socket activation) can only be secured now.
  EXPECT_EQ(ssx_set_socket_security(listener.get(), nullptr, 0), 0) << ssx_last_error();
  Fd fd(tcp_socket());
  sockaddr_in a = loopback_address(local_port(listener.get()));
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  EXPECT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), -1);
  EXPECT_EQ(errno, EISCONN);
}

TEST(SocketRules, TargetNamesNeedSecurityFirstAndAWellFormedName) {
  Fd fd(tcp_socket());
  EXPECT_EQ(ssx_set_socket_peer_target_name(fd.get(), "db.example", nullptr, 0), -1);
  EXPECT_EQ(errno, EPERM);
  ASSERT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0);
  EXPECT_EQ(ssx_set_socket_peer_target_name(fd.get(), nullptr, nullptr, 0), -1);
  EXPECT_EQ(errno, EFAULT);
  EXPECT_EQ(ssx_set_socket_peer_target_name(fd.get(), "*.example", nullptr, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(std::string(ssx_last_error()).find("wildcards"), std::string::npos);
  sockaddr_in peer = loopback_address(1);
  EXPECT_EQ(ssx_set_socket_peer_target_name(fd.get(), "db.example",
                                            reinterpret_cast<sockaddr *>(&peer), sizeof peer),
            -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(ssx_set_socket_peer_target_name(fd.get(), "db.example", nullptr, 0), 0);
  EXPECT_EQ(ssx_delete_socket_peer_target_name(fd.get(), nullptr, 0), 0);
}

TEST(SocketRules, DataCallsOnPlainSocketsNeverSendCleartext) {
  Fd listener = plain_listener();
  Fd fd(tcp_socket());
  sockaddr_in a = loopback_address(local_port(listener.get()));
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  EXPECT_EQ(ssx_send(fd.get(), "secret", 6, 0), -1);
  EXPECT_EQ(errno, EPERM);
  int peer = ::accept(listener.get(), nullptr, nullptr);
  ASSERT_GE(peer, 0);
  char buf[8];
  EXPECT_EQ(::recv(peer, buf, sizeof buf, MSG_DONTWAIT), -1) << "nothing reached the peer";
  ::close(peer);
}

TEST(SocketRules, QueryAndDataBeforeConnectAreEnotconn) {
  Fd fd(tcp_socket());
  ASSERT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0);
  ssx_security_info *info = nullptr;
  EXPECT_EQ(ssx_query_socket_security(fd.get(), nullptr, 0, &info), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(info, nullptr);
  EXPECT_EQ(ssx_query_socket_security(fd.get(), nullptr, 0, nullptr), -1);
  EXPECT_EQ(errno, EFAULT);
  char buf[4];
  EXPECT_EQ(ssx_recv(fd.get(), buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(ssx_shutdown(fd.get(), SHUT_WR), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(ssx_send(fd.get(), buf, 1, MSG_OOB), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
}

TEST(SocketRules, ReusedDescriptorNumberNeverInheritsOldState) {
  int first = tcp_socket();
  ASSERT_EQ(ssx_set_socket_security(first, nullptr, 0), 0);
  ASSERT_EQ(::close(first), 0);  // the program forgot ssx_close
  int second = tcp_socket();
  ASSERT_EQ(second, first) << "the kernel hands out the lowest free number";
  Fd owner(second);
  // Not EALREADY: the new socket is a different socket.
  EXPECT_EQ(ssx_set_socket_security(second, nullptr, 0), 0) << last_error_text();

  int third_num = tcp_socket();
  ASSERT_EQ(ssx_set_socket_security(third_num, nullptr, 0), 0);
  ::close(third_num);
  Fd fourth(tcp_socket());
  ASSERT_EQ(fourth.get(), third_num);
  EXPECT_EQ(ssx_send(fourth.get(), "x", 1, 0), -1);
  EXPECT_EQ(errno, EPERM) << "a stale entry must not make a plain socket look secured";
}

TEST(SocketRules, BrokenPolicyFailsClosedWithTheLoaderMessage) {
  TempDir dir;
  std::string path = dir.file("broken.toml");
  write_text(path, "version = 1\n[defaults]\nmin_tls_version = \"1.0\"\n");
  EXPECT_EQ(ssx_load_policy(path.c_str()), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_NE(std::string(ssx_last_error()).find(path + ":3:"), std::string::npos)
      << ssx_last_error();
  EXPECT_EQ(ssx_load_policy(dir.file("missing.toml").c_str()), -1);
  EXPECT_EQ(errno, ENOENT);
}

}  // namespace
}  // namespace ssx::test
