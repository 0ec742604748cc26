// SPDX-License-Identifier: Apache-2.0
// base/error_table.hpp — the one table of errno values ssx reports, and what each means.
//
// docs/errors.md embeds the Markdown rendering of this table between two markers, and a unit test
// (ErrorTable.DocsMatchTheTable) fails when they drift apart: change the table here, then paste
// the test's expected output into the doc.

#ifndef SSX_BASE_ERROR_TABLE_HPP
#define SSX_BASE_ERROR_TABLE_HPP

#include <string>

namespace ssx::base {

// SSX_ERRORS(X) lists X(errno name, when ssx reports it).
#define SSX_ERRORS(X)                                                                            \
  X(EACCES,                                                                                      \
    "Refused by policy: a `deny` rule, no peer target name where one is required, an "           \
    "unmapped peer for impersonation, "                                                          \
    "unusable policy file or credential, cleartext where it is not permitted, a server "         \
    "without a certificate.")                                                                    \
  X(EKEYREJECTED,                                                                                \
    "The peer's certificate did not verify (unknown CA, bad signature, wrong "                   \
    "usage), matched none of the target names or policy `peer_names`, or the peer "              \
    "rejected ours.")                                                                            \
  X(EKEYEXPIRED,                                                                                 \
    "A certificate in the peer's chain has expired or is not yet valid (or the peer "            \
    "says ours has).")                                                                           \
  X(EKEYREVOKED, "The peer's certificate is revoked by the policy's `crl`.")                     \
  X(EPROTO,                                                                                      \
    "Protocol failure: no TLS version, cipher or group in common (a downgrade refused), "        \
    "the peer does not speak TLS, a corrupt or forged record.")                                  \
  X(ETIMEDOUT, "The handshake did not finish within `handshake_timeout_ms`.")                    \
  X(ECONNRESET,                                                                                  \
    "The peer closed during the handshake, or ended the stream without "                         \
    "close_notify (truncation), or reset the connection.")                                       \
  X(EPIPE, "Sending after the peer went away, or after `ssx_shutdown(SHUT_WR)`. Never SIGPIPE.") \
  X(EAGAIN,                                                                                      \
    "Non-blocking socket: nothing can be done now; wait for `ssx_wants(fd)`. Also a "            \
    "blocking call that hit SO_RCVTIMEO / SO_SNDTIMEO.")                                         \
  X(EINPROGRESS, "Non-blocking `ssx_connect`: connect and handshake are under way.")             \
  X(EALREADY,                                                                                    \
    "`ssx_set_socket_security` called twice, or a second `ssx_connect` while one is in "         \
    "progress.")                                                                                 \
  X(EISCONN,                                                                                     \
    "Security or target names set on a socket that is already connected or listening (or a "     \
    "peer's names once it has an association); an address given to a connected socket.")         \
  X(ENOTCONN,                                                                                    \
    "Data, shutdown or query on a socket whose connection is not established (for a peer of an " \
    "unconnected UDP socket: no established association with it).")                              \
  X(EPERM,                                                                                       \
    "The fd is a socket but not an ssx socket (call `ssx_set_socket_security` first, or it was " \
    "released with `ssx_release`); or, after `fork()`, another process uses the connection "     \
    "(docs/handoff.md).")                                                                        \
  X(EINVAL,                                                                                      \
    "A malformed argument: settings, target name, `how`, non-NULL peer address for a "           \
    "stream socket, a datagram socket that is not AF_INET or AF_INET6.")                         \
  X(EAFNOSUPPORT, "Not AF_INET, AF_INET6 or AF_UNIX.")                                           \
  X(EPROTONOSUPPORT,                                                                             \
    "An explicit protocol the socket cannot use: `SSX_PROTOCOL_DTLS` on a stream socket, "       \
    "`SSX_PROTOCOL_TLS` on a datagram socket, `SSX_PROTOCOL_LOCAL` on a socket that is not "     \
    "AF_UNIX.")                                                                                  \
  X(EMSGSIZE,                                                                                    \
    "A datagram socket: the data does not fit in one DTLS record under `dtls_mtu`; also "        \
    "more than 1024 iovecs.")                                                                    \
  X(EBUSY, "`ssx_impersonate_socket_peer` on a thread that already impersonates.")               \
  X(EOPNOTSUPP, "A flag `ssx_send` / `ssx_recv` does not support.")                              \
  X(ENOTSOCK, "The fd is not a socket.")                                                         \
  X(EBADF, "The fd is not open.")                                                                \
  X(EFAULT, "A required pointer is NULL.")                                                       \
  X(ENOMEM, "Out of memory.")

// errors_markdown renders the table as the Markdown docs/errors.md embeds.
std::string errors_markdown();

// reasons_markdown renders SSX_REASON_TABLE (include/ssx/reasons.h) as docs/errors.md embeds it.
std::string reasons_markdown();

// reason_name is ssx_reason_name: "NAME_MISMATCH", or "UNKNOWN". Static, never NULL.
const char *reason_name(int reason) noexcept;
// reason_meaning is the table's description of |reason| (static; the OTHER one when unknown).
const char *reason_meaning(int reason) noexcept;
// reason_for_errno is the reason a failure that names none gets from its errno alone.
int reason_for_errno(int code) noexcept;

}  // namespace ssx::base

#endif  // SSX_BASE_ERROR_TABLE_HPP
