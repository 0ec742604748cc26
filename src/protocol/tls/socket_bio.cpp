// SPDX-License-Identifier: Apache-2.0
#include "protocol/tls/socket_bio.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace ssx::tls {
namespace {

SocketBioState *state_of(BIO *bio) {
  return static_cast<SocketBioState *>(BIO_get_data(bio));
}

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

int bio_write(BIO *bio, const char *data, int len) {
  SocketBioState *st = state_of(bio);
  BIO_clear_retry_flags(bio);
  ssize_t n = st->unconnected
                  ? ::sendto(st->fd, data, static_cast<size_t>(len), MSG_NOSIGNAL | MSG_DONTWAIT,
                             st->peer, st->peer_len)
                  : ::send(st->fd, data, static_cast<size_t>(len), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n >= 0) return static_cast<int>(n);
  if (would_block(errno)) {
    st->last_errno = 0;
    BIO_set_retry_write(bio);
  } else {
    st->last_errno = errno;
  }
  return -1;
}

// datagram_read returns one datagram (cut to |len|: OpenSSL's DTLS buffer holds the largest
// record, so a longer datagram is not DTLS of ours anyway). An empty datagram is no end of
// stream: it is dropped and the read would block.
int datagram_read(BIO *bio, SocketBioState *st, char *data, int len) {
  if (st->inbox != nullptr) {
    if (st->inbox->empty()) {
      st->last_errno = 0;
      BIO_set_retry_read(bio);
      return -1;
    }
    const size_t n = std::min(st->inbox->size(), static_cast<size_t>(len));
    st->inbox->copy(data, n);
    st->inbox->clear();
    if (st->bytes_in == 0) st->first_byte = static_cast<unsigned char>(data[0]);
    st->bytes_in += n;
    return static_cast<int>(n);
  }
  ssize_t n = ::recv(st->fd, data, static_cast<size_t>(len), MSG_DONTWAIT);
  if (n > 0) {
    if (st->bytes_in == 0) st->first_byte = static_cast<unsigned char>(data[0]);
    st->bytes_in += static_cast<size_t>(n);
    return static_cast<int>(n);
  }
  if (n == 0 || would_block(errno)) {
    st->last_errno = 0;
    BIO_set_retry_read(bio);
  } else {
    st->last_errno = errno;
  }
  return -1;
}

int bio_read(BIO *bio, char *data, int len) {
  SocketBioState *st = state_of(bio);
  BIO_clear_retry_flags(bio);
  if (st->refused) {
    st->last_errno = EPROTO;
    return -1;
  }
  if (st->buffered_only) {
    BIO_set_retry_read(bio);
    return -1;
  }
  if (st->datagram) return datagram_read(bio, st, data, len);
  ssize_t n = ::recv(st->fd, data, static_cast<size_t>(len), MSG_DONTWAIT);
  if (n > 0) {
    if (st->bytes_in == 0) st->first_byte = static_cast<unsigned char>(data[0]);
    st->bytes_in += static_cast<size_t>(n);
    return static_cast<int>(n);
  }
  if (n == 0) {
    st->peer_closed = true;
    return 0;
  }
  if (would_block(errno)) {
    st->last_errno = 0;
    BIO_set_retry_read(bio);
  } else {
    st->last_errno = errno;
  }
  return -1;
}

int bio_puts(BIO *bio, const char *str) {
  return bio_write(bio, str, static_cast<int>(strlen(str)));
}

long datagram_ctrl(BIO *bio, int cmd, long num, void *ptr) {
  SocketBioState *st = state_of(bio);
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // nothing is buffered here
    case BIO_CTRL_SET_CLOSE:
      return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_GET_CLOSE:  // BIO_NOCLOSE (0): the fd is never ours to close
      return 0;
    case BIO_CTRL_DGRAM_GET_PEER:
      // |ptr| is a BIO_ADDR, a union at least as large as sockaddr_in6.
      if (st->peer == nullptr || ptr == nullptr || st->peer_len > sizeof(sockaddr_in6)) return 0;
      std::memcpy(ptr, st->peer, st->peer_len);
      return static_cast<long>(st->peer_len);
    case BIO_CTRL_DGRAM_QUERY_MTU:  // the MTU is the policy's (SSL_OP_NO_QUERY_MTU)
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
    case BIO_CTRL_DGRAM_MTU_EXCEEDED:
    case BIO_CTRL_DGRAM_GET_RECV_TIMER_EXP:
    case BIO_CTRL_DGRAM_GET_SEND_TIMER_EXP:
      return 0;
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:  // ssx keeps the timer (never SO_RCVTIMEO)
    case BIO_CTRL_DGRAM_SET_CONNECTED:
    case BIO_CTRL_DGRAM_SET_PEER:
      return 1;
    default:
      (void)num;
      return 0;
  }
}

long bio_ctrl(BIO *bio, int cmd, long num, void *ptr) {
  if (state_of(bio)->datagram) return datagram_ctrl(bio, cmd, num, ptr);
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // nothing is buffered here
      return 1;
    case BIO_CTRL_EOF:
      return state_of(bio)->peer_closed ? 1 : 0;
    case BIO_CTRL_GET_CLOSE:
      return BIO_NOCLOSE;
    case BIO_CTRL_SET_CLOSE:
      return 1;
    default:
      return 0;  // includes kTLS queries: this BIO never offloads
  }
}

int bio_create(BIO *bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int bio_destroy(BIO * /*bio*/) {
  return 1;
}

int our_method_type() {
  static const int kType = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK;
  return kType;
}

BIO_METHOD *method() {
  // One method table for the process; OpenSSL treats it as read-only once built.
  static BIO_METHOD *const kMethod = [] {
    BIO_METHOD *m = BIO_meth_new(our_method_type(), "ssx socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_puts(m, bio_puts);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    BIO_meth_set_destroy(m, bio_destroy);
    return m;
  }();
  return kMethod;
}

}  // namespace

const SocketBioState *bio_state_of(SSL *ssl) {
  BIO *bio = SSL_get_rbio(ssl);
  if (bio == nullptr || BIO_method_type(bio) != our_method_type()) return nullptr;
  return state_of(bio);
}

ossl::UniquePtr<BIO> new_socket_bio(SocketBioState *state) {
  ossl::UniquePtr<BIO> bio(BIO_new(method()));
  if (bio) BIO_set_data(bio.get(), state);
  return bio;
}

}  // namespace ssx::tls
