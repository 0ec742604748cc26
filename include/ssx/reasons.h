// SPDX-License-Identifier: Apache-2.0
/* ssx/reasons.h — the one table of ssx failure reasons (included by ssx/ssx.h).
 *
 * Each failing ssx call sets errno (what *kind* of failure) and a reason (what exactly went
 * wrong), read back with ssx_last_error_reason() and named by ssx_reason_name() (ssx.h). This
 * table produces enum ssx_reason, the names ssx_reason_name returns, the static message
 * ssx_last_error returns where a failure has no more specific one, and the reason table in
 * docs/errors.md (a unit test keeps the document equal to the table).
 *
 * Stability: every value is fixed for the life of the soname and never reused; new reasons get
 * new values. A program must treat a value it does not know as SSX_REASON_OTHER.
 *
 * SSX_REASON_TABLE(X) lists X(NAME, value, errno, meaning): the enumerator is SSX_REASON_NAME,
 * |errno| the errno usually reported with it (documentation only). */

#ifndef SSX_REASONS_H
#define SSX_REASONS_H

/* clang-format off */
#define SSX_REASON_TABLE(X) \
  X(NONE, 0, "-", "No ssx call on this thread has failed.") \
  X(OTHER, 1, "any", "A failure without a more specific reason; errno and ssx_last_error() tell more.") \
  X(INVALID_ARGUMENT, 2, "EINVAL, EFAULT", "A malformed or missing argument: settings, settings length, target name, address, flags, `how`, a NULL pointer.") \
  X(WRONG_STATE, 3, "ENOTCONN, EISCONN, EALREADY, EPIPE", "A call that does not fit the socket's state: data before the connection is established, a second connect, target names after connect, a send after `ssx_shutdown(SHUT_WR)`.") \
  X(NOT_SSX_SOCKET, 4, "EPERM", "The fd is a socket, but not an ssx socket (call `ssx_set_socket_security` first).") \
  X(UNSUPPORTED, 5, "EAFNOSUPPORT, EPROTONOSUPPORT, EOPNOTSUPP, ENOTSOCK, EBADF", "Not something ssx can secure: not an open socket, an address family or socket type ssx does not support, a protocol this build lacks, an unsupported flag.") \
  X(WOULD_BLOCK, 6, "EAGAIN", "Non-blocking: nothing can be done now; wait for `ssx_wants(fd)` and call again. Also a blocking call that hit SO_RCVTIMEO / SO_SNDTIMEO.") \
  X(IN_PROGRESS, 7, "EINPROGRESS, EAGAIN", "Non-blocking: the connect or the handshake is under way; wait for `ssx_wants(fd)` and call `ssx_handshake`.") \
  X(SYSTEM, 8, "as the kernel says", "A system call failed with an errno ssx passes on (ECONNREFUSED, ENETUNREACH, EMFILE, ...).") \
  X(OUT_OF_MEMORY, 9, "ENOMEM", "Out of memory.") \
  X(INTERNAL, 10, "EIO", "An internal error in ssx (a bug: please report it).") \
  X(OWNED_BY_OTHER_PROCESS, 11, "EPERM", "After `fork()`, another process has used the connection since and owns it; this process must `ssx_release` and `close` it (docs/handoff.md).") \
  X(POLICY_DENIED, 20, "EACCES", "The policy refuses the connection: a `deny` rule, a protocol or cleartext it does not permit, no peer target name where one is required.") \
  X(POLICY_INVALID, 21, "EACCES, EINVAL, ENOENT", "The policy file, or a certificate, key, trust bundle or CRL it names, is invalid, unreadable or does not match; ssx refuses to secure sockets under it.") \
  X(NO_LOCAL_CERTIFICATE, 22, "EACCES", "A server has no certificate configured for this connection.") \
  X(PEER_UNMAPPED, 23, "EACCES", "Impersonation: the peer maps to no local account.") \
  X(NO_PRIVILEGE, 24, "EPERM", "Impersonation: the process lacks CAP_SETUID / CAP_SETGID, or the kernel refused to change credentials.") \
  X(ALREADY_IMPERSONATING, 25, "EBUSY", "Impersonation: this thread already impersonates a peer.") \
  X(AGENT_REFUSED, 26, "EACCES", "`ssx agent` refused to use a key for this program (the policy's `[[key]]` users/programs), has no such key, or could not sign; ssx_last_error() has its reason.") \
  X(AGENT_UNAVAILABLE, 27, "EACCES, ETIMEDOUT", "A policy key lives in `ssx agent` (`private_key = \"agent:NAME\"`) and the agent is not running, closed the connection, answered nonsense, or did not answer within `agent_timeout_ms`.") \
  X(UNTRUSTED_ISSUER, 40, "EKEYREJECTED", "The peer's certificate chain does not lead to a trusted CA (unknown or missing issuer, self-signed).") \
  X(NAME_MISMATCH, 41, "EKEYREJECTED", "The peer's certificate (or kernel-attested uid) matches none of the target names, or not the policy's `peer_names`.") \
  X(PIN_MISMATCH, 42, "EKEYREJECTED", "The peer's key matches none of the `sha256:` key pins set as target names.") \
  X(EXPIRED, 43, "EKEYEXPIRED", "A certificate in the peer's chain has expired.") \
  X(NOT_YET_VALID, 44, "EKEYEXPIRED", "A certificate in the peer's chain is not valid yet (or a clock is wrong).") \
  X(REVOKED, 45, "EKEYREVOKED", "The peer's certificate is revoked by the policy's `crl`.") \
  X(REVOCATION_UNKNOWN, 46, "EKEYREJECTED, EKEYEXPIRED", "The peer's revocation status cannot be established: the CRL is missing, expired, not yet valid or does not verify.") \
  X(BAD_CERTIFICATE, 47, "EKEYREJECTED", "The peer's certificate is unacceptable for another reason: bad signature, wrong key usage or purpose, weak key or digest, malformed.") \
  X(NO_PEER_CERTIFICATE, 48, "EKEYREJECTED", "The peer presented no certificate where one is required.") \
  X(PEER_REFUSED_US, 60, "EKEYREJECTED, EKEYEXPIRED", "The peer rejected our certificate (an alert: unknown CA, bad, expired, revoked, access denied).") \
  X(PEER_REQUIRES_CERTIFICATE, 61, "EKEYREJECTED", "The peer (a server) requires a client certificate and we sent none.") \
  X(PEER_ALERT, 62, "EPROTO", "The peer ended the handshake with a fatal alert ssx has no more specific reason for.") \
  X(VERSION_MISMATCH, 80, "EPROTO", "No TLS version in common with the peer that the policy allows.") \
  X(NO_SHARED_PARAMETERS, 81, "EPROTO", "No cipher suite, group or signature algorithm in common with the peer that the policy allows; also a peer's generic handshake_failure alert, which does not say whether the version, the cipher or the group was the problem.") \
  X(NOT_TLS, 82, "EPROTO", "The peer does not speak TLS (its first bytes are not a TLS record: cleartext, HTTP, ...).") \
  X(BAD_RECORD, 83, "EPROTO", "A corrupt or forged TLS record (bad MAC, bad length).") \
  X(PROTOCOL_ERROR, 84, "EPROTO", "Another TLS protocol violation by the peer.") \
  X(MESSAGE_TOO_LARGE, 85, "EPROTO", "The peer sent a handshake message larger than ssx accepts (docs/limits.md).") \
  X(PEER_FLOOD, 86, "EPROTO", "The peer sent too many records, alerts or post-handshake messages for the data it sent (docs/limits.md).") \
  X(DATAGRAM_TOO_LARGE, 87, "EMSGSIZE", "A datagram socket: the data does not fit in one DTLS record under the policy's `dtls_mtu` (ssx never splits a datagram).") \
  X(HANDSHAKE_TIMEOUT, 100, "ETIMEDOUT", "The handshake did not finish within `handshake_timeout_ms`.") \
  X(HELLO_TIMEOUT, 101, "ETIMEDOUT", "Server side: the client sent no ClientHello (or nothing) within `client_hello_timeout_ms`.") \
  X(TRUNCATED, 102, "ECONNRESET", "The peer ended the TCP stream without a TLS close_notify: the data may have been cut short.") \
  X(PEER_CLOSED_IN_HANDSHAKE, 103, "ECONNRESET", "The peer closed the connection during the handshake.") \
  X(CONNECTION_RESET, 104, "ECONNRESET", "The peer reset the connection.") \
  X(PEER_GONE, 105, "EPIPE", "Sending after the peer went away (it closed or reset the connection).")
/* clang-format on */

#endif /* SSX_REASONS_H */
