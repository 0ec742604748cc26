// SPDX-License-Identifier: Apache-2.0
// capi/ssx.cpp — the extern "C" entry points: argument checks, the exception firewall, errno.
//
// Every entry point clears OpenSSL's error queue first (stale entries would lie about the cause),
// converts a Failure into -1 + errno + ssx_last_error(), and never lets a C++ exception cross into
// C: allocation failure becomes ENOMEM, anything else EIO.

#include "ssx/ssx.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <type_traits>
#include <vector>

#include "base/error_table.hpp"
#include "base/last_error.hpp"
#include "capi/info_block.hpp"
#include "core/policy_state.hpp"
#include "core/registry.hpp"
#include "identity/impersonation.hpp"
#include "ossl/ossl.hpp"
#include "ssx/version.h"

namespace {

using ssx::fail;
using ssx::Failure;
using ssx::Result;
using ssx::core::SecureSocket;

template <class T>
T failed(const Failure &failure, T value) {
  ssx::base::record_failure(failure);
  return value;
}

// guarded runs |body| behind the exception firewall; |on_error| is the C failure value.
template <class F, class T>
T guarded(F &&body, T on_error) {
  ssx::ossl::ErrorQueueGuard clear_stale_errors;
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return failed(fail(ENOMEM, "out of memory"), on_error);
  } catch (const std::exception &e) {
    return failed(fail(EIO, std::string("internal error: ") + e.what()), on_error);
  } catch (...) {
    return failed(fail(EIO, "internal error"), on_error);
  }
}

int to_c(const Result<void> &r) {
  return r ? 0 : failed(r.error(), -1);
}

// with_reason gives |failure| |reason| when it names none of its own.
Failure with_reason(Failure failure, int reason) {
  if (failure.reason == 0) failure.reason = reason;
  return failure;
}

// policy_result: a policy file that cannot be loaded is POLICY_INVALID, whatever its errno.
int policy_result(const Result<void> &r) {
  return r ? 0 : failed(with_reason(r.error(), SSX_REASON_POLICY_INVALID), -1);
}

int socket_domain(int fd) {
  int domain = 0;
  socklen_t len = sizeof domain;
  ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
  return domain;
}

int socket_type(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  return type;
}

// check_socket explains why |fd| cannot be an ssx socket, if it cannot: TCP and AF_UNIX stream
// sockets, UDP sockets (AF_INET, AF_INET6).
Result<void> check_socket(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(EBADF, "fd " + std::to_string(fd) + " is not open");
  if (!S_ISSOCK(st.st_mode)) return fail(ENOTSOCK, "fd " + std::to_string(fd) + " is not a socket");
  const int domain = socket_domain(fd);
  int type = 0;
  socklen_t len = sizeof type;
  ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  if (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX) {
    return fail(EAFNOSUPPORT, "only AF_INET, AF_INET6 and AF_UNIX sockets can be secured");
  }
  if (type == SOCK_DGRAM && domain == AF_UNIX) {
    return fail(EINVAL, "AF_UNIX datagram sockets cannot be secured (UDP sockets can)");
  }
  if (type != SOCK_STREAM && type != SOCK_DGRAM) {
    return fail(EINVAL, "only SOCK_STREAM and (UDP) SOCK_DGRAM sockets can be secured");
  }
  return {};
}

// lookup returns the ssx socket for |fd|, or says why there is none.
Result<std::shared_ptr<SecureSocket>> lookup(int fd) {
  if (auto socket = ssx::core::find_socket(fd)) return socket;
  if (auto r = check_socket(fd); !r) return r.error();
  return fail(EPERM, "fd " + std::to_string(fd) +
                         " is not an ssx socket: call ssx_set_socket_security first");
}

// lookup_or_default returns the ssx socket for |fd|, securing it with default settings when
// the application never called ssx_set_socket_security (secure by default).
Result<std::shared_ptr<SecureSocket>> lookup_or_default(int fd) {
  if (auto socket = ssx::core::find_socket(fd)) return socket;
  if (auto r = check_socket(fd); !r) return r.error();
  auto socket = std::make_shared<SecureSocket>(fd, ssx::core::AppSettings{});
  ssx::core::register_socket(socket);
  return socket;
}

// read_settings copies the caller's ssx_security_settings of |length| bytes (see ssx.h): fields
// beyond |length| keep their defaults (zero), and bytes beyond the fields this library knows
// must be zero. Nothing (std::nullopt) for NULL with length 0: the defaults.
Result<std::optional<ssx_security_settings>> read_settings(const ssx_security_settings *settings,
                                                           size_t length) {
  if (settings == nullptr) {
    if (length != 0) {
      return fail(EINVAL, "settings is NULL but settings_len is " + std::to_string(length) +
                              ": pass NULL with 0 for the defaults");
    }
    return std::optional<ssx_security_settings>{};
  }
  if (length < SSX_SECURITY_SETTINGS_SIZE_V1) {
    return fail(EINVAL, "settings_len " + std::to_string(length) + " is smaller than the first " +
                            "version of struct ssx_security_settings (" +
                            std::to_string(SSX_SECURITY_SETTINGS_SIZE_V1) +
                            " bytes): pass sizeof(struct ssx_security_settings)");
  }
  if (length > SSX_SECURITY_SETTINGS_MAX_SIZE) {
    return fail(EINVAL, "settings_len " + std::to_string(length) + " is larger than " +
                            std::to_string(SSX_SECURITY_SETTINGS_MAX_SIZE) +
                            " bytes: not a struct ssx_security_settings");
  }
  ssx_security_settings copy{};  // zero is every field's default
  std::memcpy(&copy, settings, std::min(length, sizeof copy));
  // A newer caller's struct is longer: its extra fields are ones this library does not know.
  // They must be zero (their defaults), or the caller asked for something that cannot be given.
  const auto *bytes = reinterpret_cast<const unsigned char *>(settings);
  for (size_t i = sizeof copy; i < length; ++i) {
    if (bytes[i] != 0) {
      return fail(EINVAL, "struct ssx_security_settings has a non-zero byte at offset " +
                              std::to_string(i) + ", beyond the " + std::to_string(sizeof copy) +
                              " bytes this library (" + SSX_VERSION_STRING +
                              ") knows: a field it cannot honour");
    }
  }
  return std::optional<ssx_security_settings>{copy};
}

// kMaxIov is Linux's IOV_MAX (UIO_MAXIOV); kMaxPeek bounds what ssx_recvmsg(MSG_PEEK) copies.
constexpr size_t kMaxIov = 1024;
constexpr size_t kMaxPeek = 65536;

// check_msghdr checks what ssx_sendmsg / ssx_recvmsg accept and returns the total iovec length.
Result<size_t> check_msghdr(const struct msghdr *msg, const char *call) {
  if (msg == nullptr) return fail(EFAULT, std::string(call) + ": msg is NULL");
  if (msg->msg_iovlen > kMaxIov) {
    return fail(EMSGSIZE, SSX_REASON_INVALID_ARGUMENT,
                std::string(call) + ": more than " + std::to_string(kMaxIov) + " iovecs");
  }
  if (msg->msg_iov == nullptr && msg->msg_iovlen > 0) {
    return fail(EFAULT, std::string(call) + ": msg_iov is NULL");
  }
  if (msg->msg_name != nullptr && std::strcmp(call, "ssx_sendmsg") == 0) {
    return fail(EISCONN, SSX_REASON_INVALID_ARGUMENT,
                std::string(call) + ": msg_name must be NULL: the socket is connected");
  }
  if (msg->msg_control != nullptr && msg->msg_controllen > 0 &&
      std::strcmp(call, "ssx_sendmsg") == 0) {
    return fail(EOPNOTSUPP, SSX_REASON_UNSUPPORTED,
                std::string(call) + ": ancillary data (msg_control) is not supported");
  }
  size_t total = 0;
  for (size_t i = 0; i < msg->msg_iovlen; ++i) {
    const iovec &v = msg->msg_iov[i];
    if (v.iov_base == nullptr && v.iov_len > 0) {
      return fail(EFAULT, std::string(call) + ": iovec " + std::to_string(i) + " is NULL");
    }
    if (v.iov_len > static_cast<size_t>(SSIZE_MAX) - total) {
      return fail(EINVAL, std::string(call) + ": the iovecs add up to more than SSIZE_MAX");
    }
    total += v.iov_len;
  }
  return total;
}

Result<void> no_peer_address(const struct sockaddr *peer, socklen_t peer_len) {
  if (peer != nullptr || peer_len != 0) {
    return fail(EINVAL, "peer address must be NULL for stream sockets");
  }
  return {};
}

}  // namespace

extern "C" {

int ssx_set_socket_security(int fd, const struct ssx_security_settings *settings,
                            size_t settings_len) {
  return guarded(
      [&]() -> int {
        ssx::core::AppSettings app;
        auto copied = read_settings(settings, settings_len);
        if (!copied) return failed(copied.error(), -1);
        if (copied->has_value()) {
          const ssx_security_settings &given = **copied;
          // C callers may pass any integer here; in C++ reading an enum outside its enumerators'
          // range is undefined, so look at the raw integer first.
          std::underlying_type_t<ssx_protocol> raw = 0;
          std::memcpy(&raw, &given.protocol, sizeof raw);
          if (raw != SSX_PROTOCOL_DEFAULT && raw != SSX_PROTOCOL_TLS && raw != SSX_PROTOCOL_LOCAL &&
              raw != SSX_PROTOCOL_DTLS) {
            return failed(fail(EINVAL, "unknown protocol " + std::to_string(raw)), -1);
          }
          if ((given.flags & ~(SSX_GUARANTEE_ENCRYPTION | SSX_ALLOW_INSECURE)) != 0) {
            return failed(fail(EINVAL, "unknown settings flags"), -1);
          }
          app.protocol = given.protocol;
          app.flags = given.flags;
        }
        if (auto r = check_socket(fd); !r) return failed(r.error(), -1);
        if (app.protocol == SSX_PROTOCOL_LOCAL && socket_domain(fd) != AF_UNIX) {
          return failed(fail(EPROTONOSUPPORT, "SSX_PROTOCOL_LOCAL needs an AF_UNIX socket"), -1);
        }
        const bool datagram = socket_type(fd) == SOCK_DGRAM;
        if (app.protocol == SSX_PROTOCOL_DTLS && !datagram) {
          return failed(fail(EPROTONOSUPPORT, "SSX_PROTOCOL_DTLS needs a UDP (SOCK_DGRAM) socket"),
                        -1);
        }
        if (app.protocol == SSX_PROTOCOL_TLS && datagram) {
          return failed(
              fail(EPROTONOSUPPORT,
                   "SSX_PROTOCOL_TLS needs a stream socket: UDP sockets use SSX_PROTOCOL_DTLS"),
              -1);
        }
        if (ssx::core::find_socket(fd)) {
          return failed(fail(EALREADY, "security is already set on this socket"), -1);
        }
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &peer_len) == 0) {
          return failed(fail(EISCONN,
                             "the socket is already connected: set security before "
                             "connect"),
                        -1);
        }
        // A listening socket is accepted: one received ready-made (systemd socket activation)
        // cannot be secured before listen, and nothing has passed over it yet. Connections
        // already queued on it are secured when ssx_accept takes them.
        ssx::core::register_socket(std::make_shared<SecureSocket>(fd, std::move(app)));
        return 0;
      },
      -1);
}

int ssx_set_socket_peer_target_name(int fd, const char *name, const struct sockaddr *peer,
                                    socklen_t peer_len) {
  return guarded(
      [&]() -> int {
        if (name == nullptr) return failed(fail(EFAULT, "name is NULL"), -1);
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), -1);
        if (peer != nullptr || peer_len != 0) {
          if (!(*socket)->datagram()) return failed(no_peer_address(peer, peer_len).error(), -1);
          auto parsed = ssx::identity::parse_target_name(name);
          if (!parsed) return failed(parsed.error(), -1);
          return to_c((*socket)->add_peer_target_name(peer, peer_len, std::move(*parsed)));
        }
        auto parsed = ssx::identity::parse_target_name(name);
        if (!parsed) return failed(parsed.error(), -1);
        return to_c((*socket)->add_target_name(std::move(*parsed)));
      },
      -1);
}

int ssx_delete_socket_peer_target_name(int fd, const struct sockaddr *peer, socklen_t peer_len) {
  return guarded(
      [&]() -> int {
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), -1);
        if (peer != nullptr || peer_len != 0) {
          if (!(*socket)->datagram()) return failed(no_peer_address(peer, peer_len).error(), -1);
          return to_c((*socket)->clear_peer_target_names(peer, peer_len));
        }
        return to_c((*socket)->clear_target_names());
      },
      -1);
}

int ssx_connect(int fd, const struct sockaddr *addr, socklen_t addr_len) {
  return guarded(
      [&]() -> int {
        auto socket = lookup_or_default(fd);
        if (!socket) return failed(socket.error(), -1);
        return to_c((*socket)->connect(addr, addr_len));
      },
      -1);
}

int ssx_accept(int listen_fd, struct sockaddr *addr, socklen_t *addr_len) {
  return guarded(
      [&]() -> int {
        auto listener = lookup_or_default(listen_fd);
        if (!listener) return failed(listener.error(), -1);
        auto child = (*listener)->accept(addr, addr_len);
        if (!child) return failed(child.error(), -1);
        auto r = (*child)->handshake();
        if (!r && r.error().code != EAGAIN) {
          // This connection failed; the listener is untouched and the server loop goes on.
          ::close((*child)->fd());
          return failed(r.error(), -1);
        }
        ssx::core::register_socket(*child);
        return (*child)->fd();
      },
      -1);
}

int ssx_handshake(int fd) {
  return guarded(
      [&]() -> int {
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), -1);
        return to_c((*socket)->handshake());
      },
      -1);
}

short ssx_wants(int fd) {
  return guarded(
      [&]() -> short {
        auto socket = ssx::core::find_socket(fd);
        if (!socket) return short{0};
        auto events = static_cast<unsigned>(socket->wants());
        const auto held = socket->buffered_input();
        if (held.held) events |= SSX_POLLPENDING;
        if (held.want == ssx::tls::Want::write) events |= POLLOUT;  // a KeyUpdate reply waits
        return static_cast<short>(events);
      },
      short{0});
}

size_t ssx_pending(int fd) {
  return guarded(
      [&]() -> size_t {
        auto socket = ssx::core::find_socket(fd);
        return socket ? socket->buffered_input().bytes : size_t{0};
      },
      size_t{0});
}

ssize_t ssx_send(int fd, const void *buf, size_t len, int flags) {
  return guarded(
      [&]() -> ssize_t {
        if (buf == nullptr && len > 0) return failed(fail(EFAULT, "buffer is NULL"), ssize_t{-1});
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), ssize_t{-1});
        auto n = (*socket)->send(buf, len, flags);
        if (!n) return failed(n.error(), ssize_t{-1});
        return static_cast<ssize_t>(*n);
      },
      ssize_t{-1});
}

ssize_t ssx_recv(int fd, void *buf, size_t len, int flags) {
  return guarded(
      [&]() -> ssize_t {
        if (buf == nullptr && len > 0) return failed(fail(EFAULT, "buffer is NULL"), ssize_t{-1});
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), ssize_t{-1});
        auto n = (*socket)->recv(buf, len, flags);
        if (!n) return failed(n.error(), ssize_t{-1});
        return static_cast<ssize_t>(*n);
      },
      ssize_t{-1});
}

ssize_t ssx_sendmsg(int fd, const struct msghdr *msg, int flags) {
  return guarded(
      [&]() -> ssize_t {
        auto checked = check_msghdr(msg, "ssx_sendmsg");
        if (!checked) return failed(checked.error(), ssize_t{-1});
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), ssize_t{-1});
        auto n = (*socket)->sendv(msg->msg_iov, msg->msg_iovlen, flags);
        if (!n) return failed(n.error(), ssize_t{-1});
        return static_cast<ssize_t>(*n);
      },
      ssize_t{-1});
}

ssize_t ssx_recvmsg(int fd, struct msghdr *msg, int flags) {
  return guarded(
      [&]() -> ssize_t {
        auto checked = check_msghdr(msg, "ssx_recvmsg");
        if (!checked) return failed(checked.error(), ssize_t{-1});
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), ssize_t{-1});
        msg->msg_namelen = 0;  // a connected stream: no address
        msg->msg_controllen = 0;
        msg->msg_flags = 0;
        if ((flags & MSG_PEEK) != 0) {
          // Peek once into one buffer and scatter it: peeking per iovec would see the same
          // bytes again.
          std::vector<unsigned char> peeked(std::min<size_t>(*checked, kMaxPeek));
          auto n = (*socket)->recv(peeked.data(), peeked.size(), flags);
          if (!n) return failed(n.error(), ssize_t{-1});
          size_t at = 0;
          for (size_t i = 0; i < msg->msg_iovlen && at < *n; ++i) {
            const size_t k = std::min(msg->msg_iov[i].iov_len, *n - at);
            if (k > 0) std::memcpy(msg->msg_iov[i].iov_base, peeked.data() + at, k);
            at += k;
          }
          return static_cast<ssize_t>(*n);
        }
        size_t total = 0;
        for (size_t i = 0; i < msg->msg_iovlen; ++i) {
          const iovec &v = msg->msg_iov[i];
          if (v.iov_len == 0) continue;
          // The first read waits as the socket and |flags| say; later ones take only what is
          // there already (unless MSG_WAITALL), as recvmsg(2) does.
          const int f = total == 0 || (flags & MSG_WAITALL) != 0 ? flags : (flags | MSG_DONTWAIT);
          auto n = (*socket)->recv(v.iov_base, v.iov_len, f);
          if (!n) {
            if (total > 0) return static_cast<ssize_t>(total);  // EAGAIN, or a failure that repeats
            return failed(n.error(), ssize_t{-1});
          }
          total += *n;
          if (*n < v.iov_len) break;  // end of stream, or nothing more available now
        }
        return static_cast<ssize_t>(total);
      },
      ssize_t{-1});
}

ssize_t ssx_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
                   socklen_t addr_len) {
  return guarded(
      [&]() -> ssize_t {
        if (buf == nullptr && len > 0) return failed(fail(EFAULT, "buffer is NULL"), ssize_t{-1});
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), ssize_t{-1});
        auto n = addr == nullptr && addr_len == 0 ? (*socket)->send(buf, len, flags)
                 : (*socket)->datagram()
                     ? (*socket)->send_to(buf, len, flags, addr, addr_len)
                     : Result<size_t>(fail(EISCONN, SSX_REASON_INVALID_ARGUMENT,
                                           "a stream socket takes no address: use ssx_send"));
        if (!n) return failed(n.error(), ssize_t{-1});
        return static_cast<ssize_t>(*n);
      },
      ssize_t{-1});
}

ssize_t ssx_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                     socklen_t *addr_len) {
  return guarded(
      [&]() -> ssize_t {
        if (buf == nullptr && len > 0) return failed(fail(EFAULT, "buffer is NULL"), ssize_t{-1});
        if (addr != nullptr && addr_len == nullptr) {
          return failed(fail(EFAULT, "addr_len is NULL"), ssize_t{-1});
        }
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), ssize_t{-1});
        const bool unconnected = (*socket)->datagram() && ((*socket)->unconnected_datagram() ||
                                                           !ssx::core::is_connected(fd));
        if (unconnected) {
          auto n = (*socket)->recv_from(buf, len, flags, addr, addr_len);
          if (!n) return failed(n.error(), ssize_t{-1});
          return static_cast<ssize_t>(*n);
        }
        auto n = (*socket)->recv(buf, len, flags);
        if (!n) return failed(n.error(), ssize_t{-1});
        if (addr != nullptr && ::getpeername(fd, addr, addr_len) != 0) *addr_len = 0;
        return static_cast<ssize_t>(*n);
      },
      ssize_t{-1});
}

int ssx_timeout_ms(int fd) {
  return guarded(
      [&]() -> int {
        auto socket = ssx::core::find_socket(fd);
        return socket ? socket->timeout_ms() : -1;
      },
      -1);
}

int ssx_shutdown(int fd, int how) {
  return guarded(
      [&]() -> int {
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), -1);
        return to_c((*socket)->shutdown(how));
      },
      -1);
}

int ssx_close(int fd) {
  return guarded(
      [&]() -> int {
        if (auto socket = ssx::core::unregister_socket(fd)) {
          // Only send close_notify on the socket that is still ours (not a reused number).
          if (ssx::core::inode_of(fd) == socket->identity()) socket->close_notify_best_effort();
        }
        if (::close(fd) != 0) return failed(fail(errno, std::strerror(errno)), -1);
        return 0;
      },
      -1);
}

int ssx_release(int fd) {
  return guarded(
      [&]() -> int {
        // Nothing is sent and the descriptor stays open: the TLS state is simply dropped (an
        // entry left by a descriptor closed with close(2) goes too).
        ssx::core::unregister_socket(fd);
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
          return failed(fail(EBADF, "fd " + std::to_string(fd) + " is not open"), -1);
        }
        return 0;
      },
      -1);
}

int ssx_abort(int fd) {
  return guarded(
      [&]() -> int {
        // no close_notify: the peer must not see a clean end
        auto socket = ssx::core::unregister_socket(fd);
        // The socket's options are shared with every process that holds it: a connection forked
        // away and used (or perhaps about to be used) by another process is only closed here.
        const bool ours = !socket || ssx::core::inode_of(fd) != socket->identity() ||
                          socket->standing(true) == ssx::core::handoff::Standing::own;
        // A zero linger makes close(2) send RST on a TCP socket; elsewhere (AF_UNIX, not a
        // socket) setsockopt fails or does nothing, and the descriptor is closed all the same.
        const linger reset{1, 0};
        if (ours) (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        if (::close(fd) != 0) return failed(fail(errno, std::strerror(errno)), -1);
        return 0;
      },
      -1);
}

int ssx_query_socket_security(int fd, const struct sockaddr *peer, socklen_t peer_len,
                              struct ssx_security_info **out) {
  return guarded(
      [&]() -> int {
        if (out == nullptr) return failed(fail(EFAULT, "out is NULL"), -1);
        *out = nullptr;
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), -1);
        const bool per_peer = (*socket)->unconnected_datagram() || peer != nullptr;
        if (!(*socket)->datagram()) {
          if (auto r = no_peer_address(peer, peer_len); !r) return failed(r.error(), -1);
        }
        auto report = per_peer ? (*socket)->query_peer(peer, peer_len) : (*socket)->query();
        if (!report) return failed(report.error(), -1);
        *out = ssx::capi::make_info_block(*report);
        if (*out == nullptr) return failed(fail(ENOMEM, "out of memory"), -1);
        return 0;
      },
      -1);
}

void ssx_free_security_info(struct ssx_security_info *info) {
  std::free(info);
}

int ssx_impersonate_socket_peer(int fd, const struct sockaddr *peer, socklen_t peer_len) {
  return guarded(
      [&]() -> int {
        if (ssx::identity::impersonating()) {
          return failed(fail(EBUSY, "this thread is already impersonating a peer"), -1);
        }
        auto socket = lookup(fd);
        if (!socket) return failed(socket.error(), -1);
        if (!(*socket)->datagram()) {
          if (auto r = no_peer_address(peer, peer_len); !r) return failed(r.error(), -1);
        }
        const bool per_peer = (*socket)->unconnected_datagram() || peer != nullptr;
        auto account =
            per_peer ? (*socket)->peer_account(peer, peer_len) : (*socket)->peer_account();
        if (!account) {
          const int reason = account.error().code == EACCES ? SSX_REASON_PEER_UNMAPPED : 0;
          return failed(with_reason(account.error(), reason), -1);
        }
        auto r = ssx::identity::impersonate(*account);
        if (!r) {
          const int reason = r.error().code == EPERM ? SSX_REASON_NO_PRIVILEGE : 0;
          return failed(with_reason(r.error(), reason), -1);
        }
        return 0;
      },
      -1);
}

int ssx_revert_impersonation(void) {
  return guarded(
      [&]() -> int {
        auto r = ssx::identity::revert();
        return r ? 0 : failed(with_reason(r.error(), SSX_REASON_NO_PRIVILEGE), -1);
      },
      -1);
}

int ssx_load_policy(const char *path) {
  return guarded(
      [&]() -> int {
        if (path == nullptr) return failed(fail(EFAULT, "path is NULL"), -1);
        return policy_result(ssx::core::install_policy_file(path));
      },
      -1);
}

const char *ssx_last_error(void) {
  return ssx::base::last_error();
}

int ssx_last_error_reason(void) {
  return ssx::base::last_reason();
}

const char *ssx_reason_name(int reason) {
  return ssx::base::reason_name(reason);
}

const char *ssx_version(void) {
  return SSX_VERSION_STRING;  // the library's own version, fixed when it was compiled
}

int ssx_reload_policy(void) {
  return guarded([&]() -> int { return policy_result(ssx::core::reload_policy()); }, -1);
}

}  // extern "C"

static_assert(offsetof(ssx_security_settings, flags) + sizeof(uint32_t) ==
                  SSX_SECURITY_SETTINGS_SIZE_V1,
              "the first version of ssx_security_settings is {protocol, flags}");
