// SPDX-License-Identifier: Apache-2.0
#include "protocol/tls/socket_bio.hpp"

#include <sys/socket.h>

#include <cerrno>
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
  ssize_t n = ::send(st->fd, data, static_cast<size_t>(len), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n >= 0) return static_cast<int>(n);
  if (would_block(errno)) {
    st->last_errno = 0;
    BIO_set_retry_write(bio);
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

long bio_ctrl(BIO *bio, int cmd, long /*num*/, void * /*ptr*/) {
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

BIO_METHOD *method() {
  // One method table for the process; OpenSSL treats it as read-only once built.
  static BIO_METHOD *const kMethod = [] {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ssx socket");
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

ossl::UniquePtr<BIO> new_socket_bio(SocketBioState *state) {
  ossl::UniquePtr<BIO> bio(BIO_new(method()));
  if (bio) BIO_set_data(bio.get(), state);
  return bio;
}

}  // namespace ssx::tls
