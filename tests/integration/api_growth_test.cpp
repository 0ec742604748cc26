// SPDX-License-Identifier: Apache-2.0
// Issue 13 (items 3, 4, 7 and the fixes found on the way): gathered and scattered I/O, MSG_MORE,
// record coalescing measured on the wire, reasons beside errno, and the errno of a send after
// the peer's close_notify and a reset, and of a connect with a short address.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "testlib/loopback.hpp"
#include "tls_fixture.hpp"

namespace ssx::test {
namespace {

// RecordCountingRelay forwards one TCP connection between a client and |upstream_port| and
// records the length of every TLS record the client sends. A record's header is parsed before
// its bytes are forwarded, so once the server has read some data, the records that carried it
// are counted.
class RecordCountingRelay {
 public:
  explicit RecordCountingRelay(std::uint16_t upstream_port)
      : listener_(plain_listener()), upstream_port_(upstream_port) {
    thread_ = std::make_unique<BackgroundThread>([this] { run(); });
  }
  ~RecordCountingRelay() { thread_.reset(); }

  std::uint16_t port() const { return local_port(listener_.get()); }

  // records returns the lengths of the client's records so far (the 5-byte header excluded).
  std::vector<std::size_t> records() {
    std::lock_guard lock(mu_);
    return records_;
  }

 private:
  void run() {
    Fd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client.get() < 0) return;
    Fd upstream(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback_address(upstream_port_);
    if (::connect(upstream.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) return;
    bool client_open = true;
    bool upstream_open = true;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while ((client_open || upstream_open) && std::chrono::steady_clock::now() < give_up) {
      pollfd p[2] = {{client.get(), static_cast<short>(client_open ? POLLIN : 0), 0},
                     {upstream.get(), static_cast<short>(upstream_open ? POLLIN : 0), 0}};
      if (::poll(p, 2, 1000) < 0) return;
      char buf[65536];
      if (client_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        ssize_t n = ::recv(client.get(), buf, sizeof buf, 0);
        if (n <= 0) {
          client_open = false;
          ::shutdown(upstream.get(), SHUT_WR);
        } else {
          parse(buf, static_cast<std::size_t>(n));
          if (!send_all(upstream.get(), buf, static_cast<std::size_t>(n))) return;
        }
      }
      if (upstream_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        ssize_t n = ::recv(upstream.get(), buf, sizeof buf, 0);
        if (n <= 0) {
          upstream_open = false;
          ::shutdown(client.get(), SHUT_WR);
        } else if (!send_all(client.get(), buf, static_cast<std::size_t>(n))) {
          return;
        }
      }
    }
  }

  static bool send_all(int fd, const char *data, std::size_t length) {
    while (length > 0) {
      ssize_t n = ::send(fd, data, length, MSG_NOSIGNAL);
      if (n <= 0) return false;
      data += n;
      length -= static_cast<std::size_t>(n);
    }
    return true;
  }

  void parse(const char *data, std::size_t length) {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < length; ++i) {
      if (skip_ > 0) {
        const std::size_t k = std::min(skip_, length - i);
        skip_ -= k;
        i += k - 1;
        continue;
      }
      header_[have_++] = static_cast<unsigned char>(data[i]);
      if (have_ == 5) {
        skip_ = static_cast<std::size_t>(header_[3]) << 8 | header_[4];
        records_.push_back(skip_);
        have_ = 0;
      }
    }
  }

  Fd listener_;
  std::uint16_t upstream_port_;
  std::mutex mu_;
  std::vector<std::size_t> records_;
  unsigned char header_[5] = {};
  std::size_t have_ = 0;
  std::size_t skip_ = 0;
  std::unique_ptr<BackgroundThread> thread_;
};

// TLS 1.3 protects |n| bytes of data as a record of n + 1 (content type) + 16 (AEAD tag).
constexpr std::size_t kRecordOverhead = 17;

class ApiGrowthTest : public TlsTest {
 protected:
  // connect_through_relay connects a client through |relay| to a server that echoes nothing but
  // answers "ready" once, so the handshake (and its records) are done before a test counts.
  void connect_through_relay(RecordCountingRelay &relay, Fd *client) {
    ASSERT_GE(ssx_client_connect(relay.port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, client), 0)
        << last_error_text();
    char ready[5];
    ASSERT_EQ(ssx_recv(client->get(), ready, sizeof ready, MSG_WAITALL), 5) << last_error_text();
  }

  // server_reads_then_reports runs a server that says "ready", reads until the client's
  // close_notify and stores what it read.
  std::unique_ptr<BackgroundThread> serve_reader(int listener, std::string *got) {
    return serve_one(listener, [got](int fd, int error) {
      ASSERT_GE(fd, 0) << error;
      ASSERT_EQ(ssx_send(fd, "ready", 5, 0), 5);
      int read_error = -1;
      *got = ssx_recv_until_eof(fd, &read_error);
      EXPECT_EQ(read_error, 0) << last_error_text();
    });
  }

  // records_after_handshake returns the records the client sent after the first |skip|.
  static std::vector<std::size_t> data_records(RecordCountingRelay &relay, std::size_t skip) {
    auto all = relay.records();
    return {all.begin() + static_cast<std::ptrdiff_t>(std::min(skip, all.size())), all.end()};
  }
};

TEST_F(ApiGrowthTest, SendmsgCoalescesIovecsIntoFullRecords) {
  use_policy();
  Fd listener = ssx_listener();
  std::string got;
  auto server = serve_reader(listener.get(), &got);
  RecordCountingRelay relay(local_port(listener.get()));
  Fd client;
  connect_through_relay(relay, &client);
  const std::size_t handshake_records = relay.records().size();

  // 100 iovecs of 10 bytes: one record of 1000 bytes, not 100 records.
  std::string small(1000, '\0');
  for (std::size_t i = 0; i < small.size(); ++i) small[i] = static_cast<char>('a' + i % 26);
  std::vector<iovec> iov;
  for (std::size_t i = 0; i < 100; ++i) iov.push_back({small.data() + i * 10, 10});
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  ASSERT_EQ(ssx_sendmsg(client.get(), &msg, 0), 1000) << last_error_text();

  // 40000 bytes in uneven pieces: full 16 KiB records and one for the rest.
  std::string big(40000, 'x');
  std::vector<iovec> pieces = {{big.data(), 7},
                               {big.data() + 7, 20000},
                               {big.data() + 20007, 1},
                               {big.data() + 20008, 19992}};
  msg.msg_iov = pieces.data();
  msg.msg_iovlen = pieces.size();
  ASSERT_EQ(ssx_sendmsg(client.get(), &msg, 0), 40000) << last_error_text();
  ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0) << last_error_text();
  server.reset();  // the server has read everything: every record passed the relay

  EXPECT_EQ(got, small + big);
  auto records = data_records(relay, handshake_records);
  ASSERT_GE(records.size(), 4u);
  EXPECT_EQ(records[0], 1000 + kRecordOverhead);
  EXPECT_EQ(records[1], 16384 + kRecordOverhead);
  EXPECT_EQ(records[2], 16384 + kRecordOverhead);
  EXPECT_EQ(records[3], 40000 - 2 * 16384 + kRecordOverhead);
  // Then only the close_notify alert (one small record).
  EXPECT_EQ(records.size(), 5u);
}

TEST_F(ApiGrowthTest, MsgMoreFillsRecordsUntilASendWithoutIt) {
  use_policy();
  Fd listener = ssx_listener();
  std::string got;
  auto server = serve_reader(listener.get(), &got);
  RecordCountingRelay relay(local_port(listener.get()));
  Fd client;
  connect_through_relay(relay, &client);
  const std::size_t handshake_records = relay.records().size();

  std::string expected;
  for (int i = 0; i < 5; ++i) {  // held: 500 bytes, nothing on the wire yet
    std::string piece(100, static_cast<char>('0' + i));
    ASSERT_EQ(ssx_send(client.get(), piece.data(), piece.size(), MSG_MORE), 100);
    expected += piece;
  }
  ASSERT_EQ(ssx_send(client.get(), "END", 3, 0), 3);  // sends the 503 bytes as one record
  expected += "END";
  // MSG_MORE across a record boundary: 3 x 10000 bytes make one full record, and the rest goes
  // out with the final send without MSG_MORE.
  for (int i = 0; i < 3; ++i) {
    std::string piece(10000, static_cast<char>('A' + i));
    ASSERT_EQ(ssx_send(client.get(), piece.data(), piece.size(), MSG_MORE), 10000);
    expected += piece;
  }
  ASSERT_EQ(ssx_send(client.get(), "", 0, 0), 0);  // an empty send without MSG_MORE flushes
  // Held bytes go out before the close_notify of ssx_shutdown.
  ASSERT_EQ(ssx_send(client.get(), "tail", 4, MSG_MORE), 4);
  expected += "tail";
  ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0) << last_error_text();
  server.reset();

  EXPECT_EQ(got, expected);
  auto records = data_records(relay, handshake_records);
  ASSERT_EQ(records.size(), 5u);  // 503, 16384, rest, "tail", close_notify
  EXPECT_EQ(records[0], 503 + kRecordOverhead);
  EXPECT_EQ(records[1], 16384 + kRecordOverhead);
  EXPECT_EQ(records[2], 30000 - 16384 + kRecordOverhead);
  EXPECT_EQ(records[3], 4 + kRecordOverhead);
}

TEST_F(ApiGrowthTest, BytesHeldByMsgMoreAreSentByClose) {
  use_policy();
  Fd listener = ssx_listener();
  std::string got;
  auto server = serve_reader(listener.get(), &got);
  Fd client;
  ASSERT_GE(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            0)
      << last_error_text();
  char ready[5];
  ASSERT_EQ(ssx_recv(client.get(), ready, sizeof ready, MSG_WAITALL), 5);
  ASSERT_EQ(ssx_send(client.get(), "held", 4, MSG_MORE), 4);
  ASSERT_EQ(ssx_close(client.release()), 0);
  server.reset();
  EXPECT_EQ(got, "held");  // and then a clean end (the server asserted read_error == 0)
}

TEST_F(ApiGrowthTest, RecvmsgScattersAndPeeks) {
  use_policy();
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int error) {
    ASSERT_GE(fd, 0) << error;
    ASSERT_EQ(ssx_send(fd, "hello world", 11, 0), 11);
    char done = 0;
    EXPECT_EQ(ssx_recv(fd, &done, 1, 0), 0);  // until the client closes
  });
  Fd client;
  ASSERT_GE(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            0)
      << last_error_text();
  char a[5] = {};
  char b[1] = {};
  char c[100] = {};
  iovec iov[4] = {{a, sizeof a}, {nullptr, 0}, {b, sizeof b}, {c, sizeof c}};
  sockaddr_storage name{};
  msghdr msg{};
  msg.msg_name = &name;
  msg.msg_namelen = sizeof name;
  msg.msg_iov = iov;
  msg.msg_iovlen = 4;
  // MSG_WAITALL on the first iovec alone would stop there; without it the scatter takes what
  // one record brought. Peek first: the same bytes come again.
  ASSERT_EQ(ssx_recvmsg(client.get(), &msg, MSG_PEEK), 11) << last_error_text();
  EXPECT_EQ(std::string(a, 5) + std::string(b, 1) + std::string(c, 5), "hello world");
  std::memset(a, 0, sizeof a);
  std::memset(c, 0, sizeof c);
  ssize_t n = ssx_recvmsg(client.get(), &msg, 0);
  ASSERT_GE(n, 5) << last_error_text();
  std::string got = std::string(a, 5) + std::string(b, 1) +
                    std::string(c, static_cast<size_t>(n > 6 ? n - 6 : 0));
  while (got.size() < 11 && n > 0) {  // the record may have been split by the kernel
    char more[16];
    n = ssx_recv(client.get(), more, sizeof more, 0);
    if (n > 0) got.append(more, static_cast<size_t>(n));
  }
  EXPECT_EQ(got.substr(0, 11), "hello world");
  EXPECT_EQ(msg.msg_namelen, 0u);
  EXPECT_EQ(msg.msg_flags, 0);
  ssx_close(client.release());
}

TEST_F(ApiGrowthTest, SendmsgAndRecvmsgRefuseWhatTheyCannotDo) {
  use_policy();
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int) {
    char done = 0;
    if (fd >= 0) (void)ssx_recv(fd, &done, 1, 0);
  });
  Fd client;
  ASSERT_GE(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            0)
      << last_error_text();
  EXPECT_EQ(ssx_sendmsg(client.get(), nullptr, 0), -1);
  EXPECT_EQ(errno, EFAULT);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_INVALID_ARGUMENT);
  EXPECT_EQ(ssx_recvmsg(client.get(), nullptr, 0), -1);
  EXPECT_EQ(errno, EFAULT);

  char byte = 'x';
  std::vector<iovec> many(1025, iovec{&byte, 1});
  msghdr msg{};
  msg.msg_iov = many.data();
  msg.msg_iovlen = many.size();
  EXPECT_EQ(ssx_sendmsg(client.get(), &msg, 0), -1);
  EXPECT_EQ(errno, EMSGSIZE);
  EXPECT_EQ(ssx_recvmsg(client.get(), &msg, 0), -1);
  EXPECT_EQ(errno, EMSGSIZE);

  msg.msg_iovlen = 1;
  sockaddr_in to = loopback_address(1);
  msg.msg_name = &to;
  msg.msg_namelen = sizeof to;
  EXPECT_EQ(ssx_sendmsg(client.get(), &msg, 0), -1);
  EXPECT_EQ(errno, EISCONN);
  msg.msg_name = nullptr;
  msg.msg_namelen = 0;
  char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  EXPECT_EQ(ssx_sendmsg(client.get(), &msg, 0), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_UNSUPPORTED);
  msg.msg_control = nullptr;
  msg.msg_controllen = 0;
  EXPECT_EQ(ssx_sendmsg(client.get(), &msg, MSG_OOB), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  iovec null_base{nullptr, 4};
  msg.msg_iov = &null_base;
  EXPECT_EQ(ssx_sendmsg(client.get(), &msg, 0), -1);
  EXPECT_EQ(errno, EFAULT);
  // Nothing above broke the connection.
  iovec ok{&byte, 1};
  msg.msg_iov = &ok;
  EXPECT_EQ(ssx_sendmsg(client.get(), &msg, 0), 1) << last_error_text();
  ssx_close(client.release());
}

// A non-blocking sendmsg that fills the socket returns a short count and EAGAIN without an
// allocation-heavy message, and the remaining bytes can be sent after waiting.
TEST_F(ApiGrowthTest, NonBlockingSendmsgReturnsShortCountsThenEagain) {
  use_policy();
  Fd listener = ssx_listener();
  std::string got;
  std::atomic<bool> start_reading{false};
  auto server = serve_one(listener.get(), [&](int fd, int error) {
    ASSERT_GE(fd, 0) << error;
    while (!start_reading.load()) std::this_thread::yield();
    int read_error = -1;
    got = ssx_recv_until_eof(fd, &read_error);
    EXPECT_EQ(read_error, 0) << last_error_text();
  });
  Fd client;
  ASSERT_GE(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            0)
      << last_error_text();
  std::string data(8 << 20, 'z');  // far more than the socket buffers hold
  for (std::size_t i = 0; i < data.size(); i += 4096) data[i] = static_cast<char>('a' + i % 26);
  std::size_t sent = 0;
  bool saw_eagain = false;
  while (sent < data.size()) {
    iovec iov[2] = {{data.data() + sent, (data.size() - sent) / 2},
                    {data.data() + sent + (data.size() - sent) / 2,
                     data.size() - sent - (data.size() - sent) / 2}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ssize_t n = ssx_sendmsg(client.get(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN) << last_error_text();
      EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_WOULD_BLOCK);
      saw_eagain = true;
      start_reading = true;
      pollfd p{client.get(), ssx_wants(client.get()), 0};
      ASSERT_NE(p.events, 0);
      ASSERT_GT(::poll(&p, 1, 10000), 0);
      continue;
    }
    sent += static_cast<std::size_t>(n);
  }
  start_reading = true;
  EXPECT_TRUE(saw_eagain);
  ASSERT_EQ(ssx_shutdown(client.get(), SHUT_WR), 0) << last_error_text();
  server.reset();
  EXPECT_TRUE(got == data) << "received " << got.size() << " of " << data.size() << " bytes";
}

// Fix on the way: a send after the peer's close_notify and a reset is the peer going away
// (EPIPE or ECONNRESET), never EPROTO, which docs/errors.md reserves for corrupt or forged records.
void send_after_close_notify_and_reset(Fd &listener, bool read_close_notify_first) {
  auto server = std::make_unique<BackgroundThread>([&listener] {
    int fd = ssx_accept(listener.get(), nullptr, nullptr);
    ASSERT_GE(fd, 0) << last_error_text();
    ASSERT_EQ(ssx_send(fd, "bye", 3, 0), 3);
    ASSERT_EQ(ssx_shutdown(fd, SHUT_WR), 0) << last_error_text();  // close_notify
    ssx_abort(fd);                                                 // then a reset
  });
  Fd client;
  ASSERT_GE(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            0)
      << last_error_text();
  server.reset();
  char buf[3];
  ASSERT_EQ(ssx_recv(client.get(), buf, sizeof buf, MSG_WAITALL), 3) << last_error_text();
  // Wait (bounded) until the reset has arrived: POLLERR / POLLHUP.
  for (int i = 0; i < 100; ++i) {
    pollfd p{client.get(), POLLIN, 0};
    ASSERT_GE(::poll(&p, 1, 100), 0);
    if ((p.revents & (POLLERR | POLLHUP)) != 0) break;
  }
  if (read_close_notify_first) {
    char more;
    ssize_t n = ssx_recv(client.get(), &more, 1, 0);
    // The close_notify, unless the reset discarded it in the kernel first.
    if (n != 0) {
      EXPECT_EQ(n, -1);
      EXPECT_EQ(errno, ECONNRESET) << last_error_text();
    }
  }
  ssize_t n = ssx_send(client.get(), "x", 1, 0);
  for (int i = 0; n > 0 && i < 100; ++i) n = ssx_send(client.get(), "x", 1, 0);
  ASSERT_EQ(n, -1);
  const int error = errno;
  EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << last_error_text();
  EXPECT_NE(error, EPROTO);
  const int reason = ssx_last_error_reason();
  EXPECT_TRUE(reason == SSX_REASON_PEER_GONE || reason == SSX_REASON_CONNECTION_RESET ||
              reason == SSX_REASON_TRUNCATED)
      << ssx_reason_name(reason) << ": " << last_error_text();
}

TEST_F(ApiGrowthTest, SendAfterPeerCloseNotifyAndResetIsEpipeOrEconnreset) {
  use_policy();
  Fd listener = ssx_listener();
  send_after_close_notify_and_reset(listener, true);
  send_after_close_notify_and_reset(listener, false);
}

// Fix on the way: connect(2) says a short address is EINVAL; ssx_connect agrees, and leaves the
// socket usable for a correct connect.
TEST_F(ApiGrowthTest, ConnectWithAShortAddressIsEinval) {
  use_policy();
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int error) { EXPECT_GE(fd, 0) << error; });
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(ssx_set_socket_security(fd.get(), nullptr, 0), 0);
  ASSERT_EQ(ssx_set_socket_peer_target_name(fd.get(), "localhost", nullptr, 0), 0);
  sockaddr_in a = loopback_address(local_port(listener.get()));
  for (socklen_t len : {socklen_t{0}, socklen_t{1}, socklen_t{sizeof(sockaddr_in) - 1}}) {
    EXPECT_EQ(ssx_connect(fd.get(), reinterpret_cast<sockaddr *>(&a), len), -1) << len;
    EXPECT_EQ(errno, EINVAL) << len << ": " << last_error_text();
    EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_INVALID_ARGUMENT);
  }
  sockaddr_storage other{};
  other.ss_family = AF_APPLETALK;
  EXPECT_EQ(ssx_connect(fd.get(), reinterpret_cast<sockaddr *>(&other), sizeof other), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_UNSUPPORTED);
  EXPECT_EQ(ssx_connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0)
      << last_error_text();
}

// The EAGAIN path: a non-blocking receive with nothing to read reports WOULD_BLOCK with the
// reason's static text (no message built per call).
TEST_F(ApiGrowthTest, EagainHasAStaticReason) {
  use_policy();
  Fd listener = ssx_listener();
  auto server = serve_one(listener.get(), [](int fd, int) {
    char done = 0;
    if (fd >= 0) (void)ssx_recv(fd, &done, 1, 0);
  });
  Fd client;
  ASSERT_GE(ssx_client_connect(local_port(listener.get()), {"localhost"}, SSX_GUARANTEE_ENCRYPTION,
                               &client),
            0)
      << last_error_text();
  char buf[16];
  ASSERT_EQ(ssx_recv(client.get(), buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(ssx_last_error_reason(), SSX_REASON_WOULD_BLOCK);
  const char *first = ssx_last_error();
  ASSERT_EQ(ssx_recv(client.get(), buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(ssx_last_error(), first) << "the same static string, not a new one";
  EXPECT_STREQ(ssx_reason_name(ssx_last_error_reason()), "WOULD_BLOCK");
  ssx_close(client.release());
}

}  // namespace
}  // namespace ssx::test
