// SPDX-License-Identifier: Apache-2.0
// protocol/tls/socket_bio.hpp — OpenSSL's I/O on the socket itself, never blocking, never SIGPIPE.
//
// OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE when the peer has gone, and
// blocks when the socket does. This BIO sends with MSG_NOSIGNAL | MSG_DONTWAIT and receives with
// MSG_DONTWAIT, whatever O_NONBLOCK says, so that ssx alone decides when and how long to wait
// (net/wait.hpp). It works on the socket fd directly — no memory BIO and no extra copy.
//
// It also remembers what it saw, which the handshake needs to explain failures: the errno of the
// last failed call, whether the peer closed the stream, and the first byte the peer sent (a
// cleartext peer's first byte is not a TLS record type).

#ifndef SSX_PROTOCOL_TLS_SOCKET_BIO_HPP
#define SSX_PROTOCOL_TLS_SOCKET_BIO_HPP

#include <sys/socket.h>

#include <cstddef>
#include <string>

#include "ossl/ossl.hpp"

namespace ssx::tls {

struct SocketBioState {  // ordered without padding holes: one lives in every Session
  int fd = -1;
  int last_errno = 0;        // errno of the last failed send/recv (0 when it would block)
  std::size_t bytes_in = 0;  // bytes received so far
  int first_byte = -1;       // first byte received, -1 before any
  bool peer_closed = false;  // recv returned 0
  // refused makes every later read fail at once (EPROTO, no retry): set when the peer broke a
  // limit (session.hpp), so that OpenSSL stops reading records from the socket mid-call.
  bool refused = false;
  // buffered_only makes reads report "would block" without touching the socket, so that OpenSSL
  // can be asked what it holds already (Session::buffered) without taking bytes from the kernel.
  bool buffered_only = false;
  // Datagram mode (DTLS over UDP). Each read returns one datagram and each write sends one; an
  // empty datagram is dropped (a UDP read of 0 bytes is not an end of stream). |peer| names the
  // peer: writes go to it with sendto(2) when the socket is not connected, and the cookie
  // callbacks (cookie.hpp) authenticate it. With |inbox| set (an unconnected socket's
  // association: core demultiplexes datagrams by source address), reads take the datagram
  // waiting there instead of reading the socket.
  bool datagram = false;
  bool unconnected = false;  // sendto(|peer|) rather than send
  const sockaddr *peer = nullptr;
  socklen_t peer_len = 0;
  std::string *inbox = nullptr;  // one datagram waiting for this association, or empty
};

// new_socket_bio returns a BIO over |state->fd|. |state| is borrowed and must outlive the BIO.
// The BIO does not close the fd.
ossl::UniquePtr<BIO> new_socket_bio(SocketBioState *state);

// bio_state_of returns the state of |ssl|'s read BIO when it is one of ours, else null.
const SocketBioState *bio_state_of(SSL *ssl);

}  // namespace ssx::tls

#endif  // SSX_PROTOCOL_TLS_SOCKET_BIO_HPP
