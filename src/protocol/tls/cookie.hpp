// SPDX-License-Identifier: Apache-2.0
// protocol/tls/cookie.hpp — DTLS stateless cookies (RFC 6347 §4.2.1).
//
// A DTLS server answers a ClientHello that carries no valid cookie with a HelloVerifyRequest
// holding one, and keeps no state for that client until it comes back with it: a spoofed source
// address then costs the server one small datagram and no memory. A cookie is
// HMAC-SHA256(secret, peer address and port). The secret is random, process-wide, and rotates
// every kCookieRotation; a cookie made under the previous secret is still accepted, so a cookie
// is valid for between one and two rotation periods.

#ifndef SSX_PROTOCOL_TLS_COOKIE_HPP
#define SSX_PROTOCOL_TLS_COOKIE_HPP

#include <sys/socket.h>

#include <chrono>
#include <cstddef>

#include "ossl/ossl.hpp"

namespace ssx::tls {

inline constexpr std::chrono::seconds kCookieRotation{60};
inline constexpr std::size_t kCookieLength = 32;  // SHA-256

// install_cookie_callbacks sets the cookie generate and verify callbacks on a DTLS server
// context. They read the peer's address from the session's socket BIO (socket_bio.hpp).
void install_cookie_callbacks(SSL_CTX *ctx);

// make_cookie computes the cookie for |peer| under the current secret into |out|
// (kCookieLength bytes); false if |peer| is not AF_INET/AF_INET6 or HMAC failed.
bool make_cookie(const sockaddr *peer, socklen_t peer_len, unsigned char *out);
// cookie_valid checks |cookie| for |peer| against the current and the previous secret, in
// constant time.
bool cookie_valid(const sockaddr *peer, socklen_t peer_len, const unsigned char *cookie,
                  std::size_t length);

}  // namespace ssx::tls

#endif  // SSX_PROTOCOL_TLS_COOKIE_HPP
