// SPDX-License-Identifier: Apache-2.0
// The limits on what a peer can make a session process (session.hpp, docs/limits.md), against a
// raw OpenSSL peer on a socketpair driven from the test's own thread: KeyUpdate and
// NewSessionTicket floods are cut off with EPROTO after a bounded number of messages, the same
// messages at an honest rate are not, and a certificate chain above the handshake-message bound
// fails the handshake with a message that says so.

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "protocol/tls/context.hpp"
#include "protocol/tls/session.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::tls {
namespace {

constexpr int kMaxSteps = 200000;  // bounds every loop below

class PeerLimitsTest : public ::testing::Test {
 protected:
  PeerLimitsTest() {
    server_ = pki_.server();
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      throw std::runtime_error("socketpair");
    }
    ours_ = fds[0];
    theirs_ = fds[1];
  }
  ~PeerLimitsTest() override {
    peer_.reset();
    session_.reset();
    ::close(ours_);
    ::close(theirs_);
  }

  // start makes our session in |role| and the raw peer in the other role; the peer server uses
  // |peer_cert| (the test server certificate when empty).
  void start(Role role, const test::CredentialFiles *peer_cert = nullptr) {
    policy::Settings settings;
    settings.trust_bundle = pki_.ca_cert();
    if (role == Role::server) {
      settings.certificate = server_.cert;
      settings.private_key = server_.key;
    }
    auto context = Context::build(settings, role);
    ASSERT_TRUE(context.has_value()) << context.error().message;
    PeerRequirements requirements;
    if (role == Role::client)
      requirements.app_names.push_back({identity::TargetName::Kind::dns, "localhost"});
    auto session =
        Session::create(*context, ours_, requirements, role == Role::client ? "localhost" : "", "");
    ASSERT_TRUE(session.has_value()) << session.error().message;
    session_ = std::move(*session);

    peer_ctx_.reset(SSL_CTX_new(role == Role::client ? TLS_server_method() : TLS_client_method()));
    ASSERT_TRUE(peer_ctx_);
    SSL_CTX_set_min_proto_version(peer_ctx_.get(), TLS1_3_VERSION);
    if (role == Role::client) {
      const test::CredentialFiles &creds = peer_cert != nullptr ? *peer_cert : server_;
      ASSERT_EQ(SSL_CTX_use_certificate_chain_file(peer_ctx_.get(), creds.cert.c_str()), 1);
      ASSERT_EQ(SSL_CTX_use_PrivateKey_file(peer_ctx_.get(), creds.key.c_str(), SSL_FILETYPE_PEM),
                1);
    }
    peer_.reset(SSL_new(peer_ctx_.get()));
    ASSERT_TRUE(peer_);
    SSL_set_fd(peer_.get(), theirs_);
    if (role == Role::client) {
      SSL_set_accept_state(peer_.get());
    } else {
      SSL_set_connect_state(peer_.get());
    }
  }

  // handshake drives both ends until both are done; returns our failure, if any.
  Result<void> handshake() {
    bool ours_done = false;
    bool theirs_done = false;
    for (int i = 0; i < kMaxSteps && !(ours_done && theirs_done); ++i) {
      if (!ours_done) {
        auto r = session_->handshake();
        if (!r) return r.error();
        ours_done = *r == Want::nothing;
      }
      if (!theirs_done) {
        const int ret = SSL_do_handshake(peer_.get());
        const int err = SSL_get_error(peer_.get(), ret);
        if (ret != 1 && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
          return fail(EPROTO, "peer handshake failed");
        }
        theirs_done = ret == 1;
      }
    }
    if (!(ours_done && theirs_done)) return fail(ETIMEDOUT, "handshake did not finish");
    return {};
  }

  // drain reads on our side until it would block; returns the bytes read, or our failure.
  Result<std::size_t> drain() {
    std::size_t total = 0;
    char buffer[16384];
    for (int i = 0; i < kMaxSteps; ++i) {
      auto r = session_->read(buffer, sizeof buffer, false);
      if (!r) return std::move(r).error();
      if (r->bytes == 0) return total;
      total += r->bytes;
    }
    return total;
  }

  // peer_send has the peer write |message| (a post-handshake message already queued, when
  // |data| is empty), pumping our side whenever the socket is full. Returns our failure, if any.
  Result<void> peer_flush(const std::string &data) {
    for (int i = 0; i < kMaxSteps; ++i) {
      int ret = 0;
      if (data.empty()) {
        ret = SSL_do_handshake(peer_.get());
      } else {
        std::size_t written = 0;
        ret = SSL_write_ex(peer_.get(), data.data(), data.size(), &written);
      }
      if (ret == 1) return {};
      if (SSL_get_error(peer_.get(), ret) != SSL_ERROR_WANT_WRITE) {
        return fail(EPIPE, "peer cannot write");
      }
      auto r = drain();
      if (!r) return std::move(r).error();
    }
    return fail(ETIMEDOUT, "peer_flush did not finish");
  }

  test::TestPki pki_;
  test::CredentialFiles server_;
  int ours_ = -1;
  int theirs_ = -1;
  std::unique_ptr<Session> session_;
  ossl::UniquePtr<SSL_CTX> peer_ctx_;
  ossl::UniquePtr<SSL> peer_;
};

bool is_flood(const Failure &f) {
  return f.code == EPROTO && f.message.find("more than ssx allows") != std::string::npos;
}

TEST_F(PeerLimitsTest, KeyUpdateFloodIsCutOffWithEproto) {
  start(Role::server);
  ASSERT_TRUE(handshake().has_value());
  int sent = 0;
  Result<void> result;
  for (; sent < 100000 && result; ++sent) {
    ASSERT_EQ(SSL_key_update(peer_.get(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    result = peer_flush("");
    if (result) {
      auto r = drain();
      if (!r) result = std::move(r).error();
    }
  }
  ASSERT_FALSE(result.has_value()) << "100,000 KeyUpdates without data were all processed";
  EXPECT_TRUE(is_flood(result.error())) << result.error().message;
  // Cut off at the allowance, give or take what was already buffered.
  EXPECT_LT(sent, static_cast<int>(kFreeControl + 1000)) << result.error().message;
  // Dead for good: the next read fails the same way.
  char byte;
  auto again = session_->read(&byte, 1, false);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, EPROTO);
}

TEST_F(PeerLimitsTest, KeyUpdatesAtAnHonestRateAreProcessed) {
  start(Role::server);
  ASSERT_TRUE(handshake().has_value());
  const std::string data(kBytesPerControl * 2, 'd');
  std::size_t received = 0;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(peer_flush(data).has_value());
    ASSERT_EQ(SSL_key_update(peer_.get(),
                             i % 2 == 0 ? SSL_KEY_UPDATE_NOT_REQUESTED : SSL_KEY_UPDATE_REQUESTED),
              1);
    auto sent = peer_flush("");
    ASSERT_TRUE(sent.has_value()) << sent.error().message;
    auto r = drain();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    received += *r;
  }
  auto r = drain();
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(received + *r, 300 * data.size());
}

TEST_F(PeerLimitsTest, NewSessionTicketFloodFromAServerIsCutOff) {
  start(Role::client);
  ASSERT_TRUE(handshake().has_value());
  int sent = 0;
  Result<void> result;
  for (; sent < 100000 && result; ++sent) {
    ASSERT_EQ(SSL_new_session_ticket(peer_.get()), 1);
    result = peer_flush("");
    if (result) {
      auto r = drain();
      if (!r) result = std::move(r).error();
    }
  }
  ASSERT_FALSE(result.has_value()) << "100,000 tickets were all processed";
  EXPECT_TRUE(is_flood(result.error())) << result.error().message;
  EXPECT_LT(sent, static_cast<int>(kFreeControl + 1000)) << result.error().message;
}

TEST_F(PeerLimitsTest, OneByteRecordsAreData) {
  // Tiny records are legal and carry data: they do not count as a flood.
  start(Role::server);
  ASSERT_TRUE(handshake().has_value());
  std::size_t received = 0;
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(peer_flush("x").has_value());
    auto r = drain();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    received += *r;
  }
  EXPECT_EQ(received, 2000u);
}

// chain_with_sans issues a server certificate with |count| DNS SANs, about 26 bytes each.
test::CredentialFiles chain_with_sans(test::TestPki &pki, const std::string &name, int count) {
  pki::LeafRequest request = test::TestPki::server_request();
  for (int i = 0; i < count; ++i)
    request.dns.push_back("host" + std::to_string(i) + ".example.test");
  return pki.issue(name, request);
}

TEST_F(PeerLimitsTest, CertificateChainAboveTheBoundFailsTheHandshake) {
  const test::CredentialFiles big = chain_with_sans(pki_, "big", 3500);  // ~90 KB
  start(Role::client, &big);
  auto r = handshake();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EPROTO);
  EXPECT_NE(r.error().message.find("larger than 65536 bytes"), std::string::npos)
      << r.error().message;
}

TEST_F(PeerLimitsTest, CertificateChainBelowTheBoundIsAccepted) {
  const test::CredentialFiles large = chain_with_sans(pki_, "large", 1500);  // ~40 KB
  start(Role::client, &large);
  auto r = handshake();
  EXPECT_TRUE(r.has_value()) << r.error().message;
}

}  // namespace
}  // namespace ssx::tls
