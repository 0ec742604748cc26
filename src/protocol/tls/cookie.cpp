// SPDX-License-Identifier: Apache-2.0
#include "protocol/tls/cookie.hpp"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <mutex>

#include "protocol/tls/socket_bio.hpp"

namespace ssx::tls {
namespace {

using Clock = std::chrono::steady_clock;

struct Secrets {
  std::mutex mu;
  unsigned char current[32]{};
  unsigned char previous[32]{};
  bool has_current = false;
  bool has_previous = false;
  Clock::time_point rotated{};
};

Secrets &secrets() {
  static Secrets s;
  return s;
}

// rotate_locked replaces the secret when it is older than kCookieRotation (or missing).
bool rotate_locked(Secrets &s) {
  const auto now = Clock::now();
  if (s.has_current && now - s.rotated < kCookieRotation) return true;
  unsigned char fresh[32];
  if (RAND_priv_bytes(fresh, sizeof fresh) != 1) return false;
  if (s.has_current) {
    std::memcpy(s.previous, s.current, sizeof s.previous);
    // A secret two periods old is gone; one older still (an idle process) is not kept either.
    s.has_previous = now - s.rotated < 2 * kCookieRotation;
  }
  std::memcpy(s.current, fresh, sizeof s.current);
  OPENSSL_cleanse(fresh, sizeof fresh);
  s.has_current = true;
  s.rotated = now;
  return true;
}

// peer_bytes is what the cookie binds: family, port and address.
std::size_t peer_bytes(const sockaddr *peer, socklen_t peer_len, unsigned char *out) {
  if (peer == nullptr) return 0;
  if (peer->sa_family == AF_INET && peer_len >= sizeof(sockaddr_in)) {
    const auto *in = reinterpret_cast<const sockaddr_in *>(peer);
    out[0] = 4;
    std::memcpy(out + 1, &in->sin_port, 2);
    std::memcpy(out + 3, &in->sin_addr, 4);
    return 7;
  }
  if (peer->sa_family == AF_INET6 && peer_len >= sizeof(sockaddr_in6)) {
    const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(peer);
    out[0] = 6;
    std::memcpy(out + 1, &in6->sin6_port, 2);
    std::memcpy(out + 3, &in6->sin6_addr, 16);
    return 19;
  }
  return 0;
}

bool hmac(const unsigned char *key, const unsigned char *data, std::size_t length,
          unsigned char *out) {
  unsigned int out_len = 0;
  return HMAC(EVP_sha256(), key, 32, data, length, out, &out_len) != nullptr &&
         out_len == kCookieLength;
}

int generate_cb(SSL *ssl, unsigned char *cookie, unsigned int *cookie_len) {
  const SocketBioState *st = bio_state_of(ssl);
  if (st == nullptr || !make_cookie(st->peer, st->peer_len, cookie)) return 0;
  *cookie_len = kCookieLength;
  return 1;
}

int verify_cb(SSL *ssl, const unsigned char *cookie, unsigned int cookie_len) {
  const SocketBioState *st = bio_state_of(ssl);
  return st != nullptr && cookie_valid(st->peer, st->peer_len, cookie, cookie_len) ? 1 : 0;
}

}  // namespace

bool make_cookie(const sockaddr *peer, socklen_t peer_len, unsigned char *out) {
  unsigned char data[19];
  const std::size_t n = peer_bytes(peer, peer_len, data);
  if (n == 0) return false;
  Secrets &s = secrets();
  std::lock_guard lock(s.mu);
  if (!rotate_locked(s)) return false;
  return hmac(s.current, data, n, out);
}

bool cookie_valid(const sockaddr *peer, socklen_t peer_len, const unsigned char *cookie,
                  std::size_t length) {
  if (length != kCookieLength) return false;
  unsigned char data[19];
  const std::size_t n = peer_bytes(peer, peer_len, data);
  if (n == 0) return false;
  unsigned char expected[kCookieLength];
  Secrets &s = secrets();
  std::lock_guard lock(s.mu);
  if (!rotate_locked(s)) return false;
  if (hmac(s.current, data, n, expected) && CRYPTO_memcmp(expected, cookie, length) == 0) {
    return true;
  }
  return s.has_previous && hmac(s.previous, data, n, expected) &&
         CRYPTO_memcmp(expected, cookie, length) == 0;
}

void install_cookie_callbacks(SSL_CTX *ctx) {
  SSL_CTX_set_cookie_generate_cb(ctx, generate_cb);
  SSL_CTX_set_cookie_verify_cb(ctx, verify_cb);
}

}  // namespace ssx::tls
