// SPDX-License-Identifier: Apache-2.0
/* ssx/ssx.h — socket-level security for POSIX sockets.
 *
 * Secure sockets. An application states *requirements* on a plain socket ("encryption is
 * required", "cleartext is allowed"), names the peer it expects, connects or accepts, and then
 * asks what security was applied and who the peer is. The administrator's policy file
 * (/etc/ssx/policy.toml, or $SSX_POLICY; see docs/policy.md), not the application, decides which
 * protocol, versions, ciphers, credentials and trust meet those requirements. Today TCP sockets
 * (AF_INET, AF_INET6, SOCK_STREAM) are secured with TLS over OpenSSL 3, connected UDP sockets
 * (AF_INET, AF_INET6, SOCK_DGRAM), connected or serving many peers, with DTLS 1.2 (see "Datagram
 * sockets" below), and AF_UNIX stream sockets with kernel-attested peer credentials (or TLS when
 * encryption is required).
 *
 * The life of a client socket:
 *
 *   int fd = socket(AF_INET, SOCK_STREAM, 0);
 *   struct ssx_security_settings s = {SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};
 *   ssx_set_socket_security(fd, &s, sizeof s);
 *   ssx_set_socket_peer_target_name(fd, "db.example", NULL, 0);
 *   ssx_connect(fd, addr, addr_len);           // connect + handshake + peer checks
 *   ssx_send(fd, ...); ssx_recv(fd, ...);      // application bytes, protected
 *   ssx_query_socket_security(fd, NULL, 0, &info); ... ssx_free_security_info(info);
 *   ssx_close(fd);                             // close_notify, then close(2)
 *
 * A server calls ssx_set_socket_security on the listening socket before bind(2); sockets that
 * ssx_accept returns inherit the listener's settings and peer target names.
 *
 * Conventions. Every function that returns int returns 0 (or a count) on success and -1 on
 * failure with errno set to a standard value (see the table in docs/errors.md), and records a
 * human-readable reason that ssx_last_error() returns on the same thread and a stable reason
 * code (enum ssx_reason) that ssx_last_error_reason() returns. Pointers handed to ssx
 * are borrowed for the duration of the call unless a function says otherwise.
 *
 * Fail closed. Unless the application sets SSX_ALLOW_INSECURE *and* the policy that applies says
 * `allow_insecure = true`, no application byte is ever sent in cleartext, whatever happens during
 * negotiation.
 *
 * Event loops. ssx reads TLS records ahead, so input can wait inside ssx while poll(2) says the
 * socket is idle: read until ssx_recv fails with EAGAIN, or check ssx_wants for SSX_POLLPENDING
 * before waiting (see ssx_wants).
 *
 * Threads. Different sockets may be used concurrently from any threads. On one socket, one thread
 * may send while another receives; other calls on the same socket are serialised internally. No
 * call holds a socket's internal lock while it waits or does slow work (a blocking connect(2),
 * account lookups through NSS, PEM encoding), so a query never waits for a handshake.
 *
 * Wrong-order calls. A call made in a state where it does not apply (ssx_send or ssx_recv before
 * ssx_connect or on a listening socket, ssx_connect on a listener or a connected socket, ...)
 * fails with the errno its documentation gives and changes nothing: the calls that should have
 * come first still work afterwards. Only a connection that was tried and failed leaves a socket
 * unusable.
 *
 * TCP_NODELAY. ssx sets TCP_NODELAY on the TCP sockets it connects and accepts (as Go's net
 * package does), so a small request after the handshake never waits for a delayed ACK; the
 * policy's `tcp_nodelay = false` leaves Nagle's algorithm on. A program may still set or clear
 * the option itself after ssx_connect or ssx_accept.
 *
 * Closing. A secured socket must be closed with ssx_close, not close(2): ssx keeps state for the
 * socket, and only ssx_close sends the TLS close_notify that lets the peer tell a clean end from a
 * truncation. A process that hands a connection to another (the parent after fork()) calls
 * ssx_release and then close(2) instead (see "Processes" below). If a program does close(2) a
 * secured socket, ssx notices when the descriptor number is reused and never applies the dead
 * connection's state to the new socket, but the state's memory is held until then.
 *
 * Signals. ssx never raises SIGPIPE: it sends with MSG_NOSIGNAL and reports EPIPE instead.
 *
 * Datagram sockets (UDP, DTLS; docs/datagram.md). A UDP socket is secured like a TCP one:
 *
 *   int fd = socket(AF_INET, SOCK_DGRAM, 0);
 *   ssx_set_socket_security(fd, NULL, 0);               // DTLS (SSX_PROTOCOL_DEFAULT on UDP)
 *   ssx_set_socket_peer_target_name(fd, "metrics.example", NULL, 0);
 *   ssx_connect(fd, addr, addr_len);     // connect(2) + DTLS handshake with that one peer
 *   ssx_send(fd, buf, len, 0);           // one call = one datagram, or EMSGSIZE
 *   ssx_recv(fd, buf, sizeof buf, 0);    // one datagram (truncated to the buffer)
 *   ssx_close(fd);                       // close_notify, then close(2)
 *
 * The same trust, target names, credentials, CRL, identity mapping and fail-closed rules apply
 * as for TCP; there is never a cleartext fallback on UDP. DTLS 1.2 is what OpenSSL 3.0 provides
 * (ssx offers the highest version the OpenSSL in use has, never 1.0; a query reports what was
 * negotiated). Handshake datagrams lost on the way are sent again when DTLS's timer expires (1 s,
 * doubling), within handshake_timeout_ms; non-blocking sockets need ssx called at the times
 * ssx_timeout_ms gives. One ssx_send is one datagram and one DTLS record: the policy's dtls_mtu
 * (default 1200 bytes of UDP payload) bounds it, and a send that does not fit fails with EMSGSIZE
 * rather than being split. One ssx_recv returns one datagram; one longer than the buffer is cut
 * and its rest discarded (MSG_TRUNC returns its full length, as recv(2) does). Records that do not
 * authenticate (forged, corrupted, replayed: DTLS keeps a replay window) or are not DTLS at all
 * are dropped and never returned. ssx_recv returns 0 only after the peer's close_notify
 * (empty datagrams are neither sent nor delivered). MSG_MORE is EOPNOTSUPP on UDP.
 * Unconnected UDP sockets serve many peers, as clients and servers: see ssx_sendto and
 * ssx_recvfrom below.
 */

#ifndef SSX_SSX_H
#define SSX_SSX_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "ssx/reasons.h" /* SSX_REASON_TABLE: enum ssx_reason below */
#include "ssx/version.h" /* SSX_VERSION_MAJOR/MINOR/PATCH, SSX_VERSION_STRING */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SSX_EXPORT __attribute__((visibility("default")))
#else
#define SSX_EXPORT
#endif

/* Protocols.
 *
 * ssx_protocol names a security protocol. Applications normally pass SSX_PROTOCOL_DEFAULT and let
 * the administrator's policy choose; an explicit protocol is honoured only when the policy allows
 * it. In a query result, SSX_PROTOCOL_NONE means the connection runs in cleartext. */
enum ssx_protocol {
  SSX_PROTOCOL_DEFAULT = 0, /* the policy decides (TLS for TCP, DTLS for UDP) */
  SSX_PROTOCOL_TLS = 1,     /* TLS 1.3 (1.2 where the policy allows it) over OpenSSL */
  SSX_PROTOCOL_LOCAL = 2,   /* AF_UNIX: the kernel attests the peer (SO_PEERCRED), no crypto */
  SSX_PROTOCOL_DTLS = 3,    /* UDP: DTLS 1.2 (the highest OpenSSL provides; never 1.0) */
  SSX_PROTOCOL_NONE = 4     /* query only: no security protocol, cleartext */
};

/* Settings flags (ssx_security_settings.flags). */

/* SSX_GUARANTEE_ENCRYPTION requires that the traffic be encrypted; if that cannot be had, the
 * connection fails and nothing is sent. It always holds, whatever the policy says. */
#define SSX_GUARANTEE_ENCRYPTION 0x1u
/* SSX_ALLOW_INSECURE lets the connection fall back to cleartext when the peer plainly does not
 * speak the security protocol, but only where the policy also says `allow_insecure = true`.
 * Ignored when SSX_GUARANTEE_ENCRYPTION is set. */
#define SSX_ALLOW_INSECURE 0x2u

/* ssx_security_settings is what an application requires of a socket. The caller allocates it
 * and passes its size to ssx_set_socket_security, so that the structure can grow: later versions
 * of ssx only ever append fields, and the zero value of every field is its default. Initialise
 * it whole ("= {0}" or memset) before setting fields, so that a program rebuilt against newer
 * headers asks for nothing it did not mean to. */
struct ssx_security_settings {
  enum ssx_protocol protocol; /* SSX_PROTOCOL_DEFAULT, SSX_PROTOCOL_TLS (TCP), _DTLS (UDP) */
  uint32_t flags;             /* SSX_GUARANTEE_ENCRYPTION | SSX_ALLOW_INSECURE */
  /* New fields go here, at the end. */
};

/* SSX_SECURITY_SETTINGS_SIZE_V1 is the size of the first version of ssx_security_settings
 * ({protocol, flags}, ssx 0.2): the smallest settings_len ssx_set_socket_security accepts. */
#define SSX_SECURITY_SETTINGS_SIZE_V1 8u
/* SSX_SECURITY_SETTINGS_MAX_SIZE bounds settings_len: a larger value is rejected as a mistake
 * rather than read. */
#define SSX_SECURITY_SETTINGS_MAX_SIZE 4096u

/* Query flags (ssx_security_info.flags). */
#define SSX_INFO_SECURED 0x01u                 /* a security protocol protects the traffic */
#define SSX_INFO_ENCRYPTED 0x02u               /* the traffic is encrypted (implies SECURED) */
#define SSX_INFO_PEER_AUTHENTICATED 0x04u      /* the peer presented a certificate that verified */
#define SSX_INFO_PEER_NAME_VERIFIED 0x08u      /* the peer satisfied a required target name */
#define SSX_INFO_RESUMED 0x10u                 /* the session was resumed (no full handshake) */
#define SSX_INFO_KERNEL_OFFLOAD 0x20u          /* record protection runs in the kernel (kTLS) */
#define SSX_INFO_IMPERSONATION_AVAILABLE 0x40u /* the peer maps to a local account (peer_uid) */

/* ssx_security_info is what ssx_query_socket_security reports. It is allocated by ssx as one
 * block and freed with ssx_free_security_info; every string is NUL-terminated and owned by the
 * block. A string that does not apply is NULL (never dangling). New fields are only ever added
 * at the end, so callers must never allocate this structure themselves. */
struct ssx_security_info {
  enum ssx_protocol protocol;    /* SSX_PROTOCOL_TLS, _DTLS (UDP), _NONE for cleartext */
  uint32_t flags;                /* SSX_INFO_* */
  const char *version;           /* "TLSv1.3", "TLSv1.2", "DTLSv1.2"; NULL in cleartext */
  const char *cipher;            /* IANA name, e.g. "TLS_AES_128_GCM_SHA256" */
  const char *group;             /* key-exchange group, e.g. "x25519"; NULL if unknown */
  const char *peer_principal;    /* URI SAN if any, else the first DNS SAN, else the subject DN */
  const char *const *peer_names; /* NULL-terminated: every DNS/IP/URI/email SAN, then the subject
                                    CN; an empty list (not NULL) when the peer has no certificate */
  const char *peer_spki_sha256;  /* hex SHA-256 of the peer's SubjectPublicKeyInfo */
  const char *peer_chain_pem;    /* the chain the peer sent, PEM, leaf first */
  const char *local_principal;   /* our own certificate's principal; NULL when we sent none */
  const char *policy_rule;       /* the policy rule that applied, or "defaults" */
  uint64_t handshake_ns;         /* wall time of the handshake (TCP connect excluded) */

  /* The peer as a local account, when an [[identity]] rule of the policy maps its principal
   * (AF_UNIX peers without a rule map to their own uid). Unmapped: peer_user and peer_groups are
   * NULL, peer_uid and peer_gid are -1 cast to their types, and
   * SSX_INFO_IMPERSONATION_AVAILABLE is unset. */
  const char *peer_user; /* account name; NULL when unmapped or the uid has no name */
  uid_t peer_uid;
  gid_t peer_gid;
  const gid_t *peer_groups; /* supplementary groups, peer_group_count of them */
  size_t peer_group_count;

  /* AF_UNIX peers (SSX_PROTOCOL_LOCAL): what the kernel attests. */
  pid_t peer_pid;                  /* SO_PEERCRED pid; 0 for other protocols */
  const char *peer_security_label; /* SO_PEERSEC (SELinux/AppArmor label); NULL when none */

  /* The policy's idle_timeout_ms for this connection: -1 when the policy does not set it (the
   * application chooses), 0 for "no limit", else milliseconds. ssx does not enforce it itself:
   * an event loop (such as `ssx tunnel`) ends a connection that moved nothing for that long. */
  int64_t idle_timeout_ms;
};

/* Setting up a socket. */

/* ssx_set_socket_security turns security on for |fd| and records the application's
 * requirements: |settings_len| bytes at |settings|, normally sizeof(struct
 * ssx_security_settings).
 *
 *   struct ssx_security_settings s = {0};
 *   s.flags = SSX_GUARANTEE_ENCRYPTION;
 *   ssx_set_socket_security(fd, &s, sizeof s);
 *
 * |settings| NULL with |settings_len| 0 means the defaults, {SSX_PROTOCOL_DEFAULT, 0}: protected
 * as policy says, never in cleartext. The length is how the structure grows without breaking
 * programs (as WSASetSocketSecurity's SecuritySettingsLen):
 *   - a program built against older headers passes a shorter length: the fields it does not
 *     know get their defaults;
 *   - a program built against newer headers passes a longer length: the bytes beyond the fields
 *     this library knows must all be zero (the new fields' defaults), else EINVAL, since the
 *     program asked for something this library cannot honour;
 *   - a length below SSX_SECURITY_SETTINGS_SIZE_V1, above SSX_SECURITY_SETTINGS_MAX_SIZE, or
 *     non-zero with |settings| NULL, is EINVAL.
 *
 * When: once per socket, after socket(2) and before connect (clients) or before bind (servers).
 * A listening socket received ready-made (systemd socket activation, LISTEN_FDS) may be secured
 * after listen: connections already waiting in its queue are secured when ssx_accept takes them.
 * Sockets returned by ssx_accept inherit the listener's settings and must not call it again.
 *
 * Returns 0, or -1 with errno:
 *   EBADF         |fd| is not open.           ENOTSOCK  |fd| is not a socket.
 *   EALREADY      security was already set on this socket.
 *   EISCONN       the socket is already connected.
 *   EAFNOSUPPORT  the family is not AF_INET, AF_INET6 or AF_UNIX.
 *   EINVAL        bad |settings| (unknown protocol or flags, a bad |settings_len| or a non-zero
 *                 byte beyond the known fields, see above), or neither SOCK_STREAM nor a UDP
 *                 (AF_INET/AF_INET6 SOCK_DGRAM) socket.
 *   EPROTONOSUPPORT  an explicit protocol the socket cannot use: SSX_PROTOCOL_DTLS on a stream
 *                 socket, SSX_PROTOCOL_TLS on a UDP socket, SSX_PROTOCOL_LOCAL on a socket
 *                 that is not AF_UNIX.
 * UDP sockets use SSX_PROTOCOL_DTLS by default (see "Datagram sockets" above); call this before
 * connect and before the first send.
 * AF_UNIX sockets use SSX_PROTOCOL_LOCAL by default; with SSX_GUARANTEE_ENCRYPTION (or
 * SSX_PROTOCOL_TLS) they run TLS instead, as TCP sockets do.
 * Copies |settings|. Thread safety: safe; do not race it against other calls on the same fd.
 * Never blocks. */
SSX_EXPORT int ssx_set_socket_security(int fd, const struct ssx_security_settings *settings,
                                       size_t settings_len);

/* ssx_set_socket_peer_target_name adds |name| to the names the peer must satisfy; the peer must
 * satisfy at least one of the names set. A name is one of:
 *   - a DNS name, "db.example" (matched against DNS SANs with RFC 6125 wildcard rules, and the
 *     first one set is sent as SNI);
 *   - an IP literal, "192.0.2.7" or "2001:db8::7" (matched against IP SANs);
 *   - a URI such as a SPIFFE ID, "spiffe://trust.domain/path" (matched exactly against URI SANs);
 *   - a key pin, "sha256:" followed by 64 hex digits: the SHA-256 of the peer's
 *     SubjectPublicKeyInfo. The chain must still verify; a pin narrows, it never widens;
 *   - a local uid, "unix:uid=N": an AF_UNIX peer whose kernel-attested uid is N.
 * A name is at most 2048 bytes (the SPIFFE ID bound), a DNS name at most 253 (RFC 1035); a
 * longer one is EINVAL, and ssx_last_error quotes only a bounded prefix of it.
 * On a listening socket the names apply to the client certificates of accepted connections.
 * |peer| must be NULL and |peer_len| 0 for stream sockets and connected UDP sockets. On an
 * unconnected UDP socket (ssx_sendto / ssx_recvfrom) |peer| names one peer (address and port,
 * neither zero, of the socket's family: else EINVAL) and the name applies to that peer only;
 * calling it again with another |peer| adds names for that one. |peer| NULL sets the names
 * every peer without names of its own must satisfy (on a server: the names acceptable client
 * certificates must carry). A peer's names must be set before the first exchange with it;
 * afterwards EISCONN for that peer.
 *
 * When: after ssx_set_socket_security, before ssx_connect / listen.
 * Returns 0, or -1 with errno:
 *   EINVAL    malformed or too long name (ssx_last_error says why), or non-NULL |peer|.
 *   EFAULT    |name| is NULL.
 *   EPERM     ssx_set_socket_security was not called on |fd| first.
 *   EISCONN   the socket is already connected: names can no longer change (for |peer|: an
 *             association with that peer exists).
 *   EBADF, ENOTSOCK  as for ssx_set_socket_security.
 * Copies |name|. Never blocks. */
SSX_EXPORT int ssx_set_socket_peer_target_name(int fd, const char *name,
                                               const struct sockaddr *peer, socklen_t peer_len);

/* ssx_delete_socket_peer_target_name removes every target name set on |fd|. |peer| must be NULL
 * for stream sockets. On an unconnected UDP socket a |peer| forgets that peer's names: an
 * association with it that is already established continues, and the next handshake with it
 * uses the socket-wide names. Returns 0, or -1 with errno EBADF, ENOTSOCK, EPERM (security not
 * set), EISCONN (connected: names can no longer change) or EINVAL (non-NULL |peer| on a stream
 * socket, or a bad address). */
SSX_EXPORT int ssx_delete_socket_peer_target_name(int fd, const struct sockaddr *peer,
                                                  socklen_t peer_len);

/* Connecting and accepting. */

/* ssx_connect connects |fd| to |addr| and runs the security handshake, checking the peer's
 * certificate chain against the policy's trust and the peer against the target names.
 * A socket on which ssx_set_socket_security was never called is secured with default settings.
 *
 * Blocking sockets: returns once the handshake is done. The TCP connect takes as long as the
 * kernel says; the handshake is bounded by the policy's handshake_timeout_ms (ETIMEDOUT).
 * Non-blocking sockets (O_NONBLOCK): returns -1 with errno EINPROGRESS; drive the connection with
 * ssx_handshake, waiting for the events ssx_wants returns. ssx_send and ssx_recv drive it too.
 * ssx has no thread of its own: a non-blocking handshake's timeout is checked when one of these
 * calls runs, so an event loop should call ssx_handshake at least once a second (or keep its own
 * timer) for a silent peer to fail with ETIMEDOUT.
 * It may also return 0 at once, when connect and handshake could complete without waiting (the
 * peer's whole reply was already there, or an AF_UNIX connection).
 * UDP sockets: connect(2) fixes the one peer, then the DTLS handshake runs as above (client
 * side); lost handshake datagrams are sent again on DTLS's timer, which a non-blocking caller
 * drives by calling ssx_handshake when ssx_timeout_ms says. A peer's ICMP "port unreachable"
 * surfaces as ECONNREFUSED; a peer that never answers as ETIMEDOUT.
 *
 * Returns 0, or -1 with errno:
 *   EACCES        refused by policy (a `deny` rule, no target name where one is required,
 *                 an invalid policy file, cleartext not permitted, ...).
 *   EKEYREJECTED  the peer's certificate did not verify, or did not match any target name.
 *   EKEYEXPIRED   the peer's certificate (or one in its chain) has expired or is not yet valid.
 *   EPROTO        protocol failure: no common version or cipher (a downgrade), not TLS, alert.
 *   ETIMEDOUT     the handshake did not finish in time.
 *   ECONNRESET    the peer closed the connection during the handshake.
 *   EINPROGRESS   non-blocking socket: in progress (not a failure).
 *   EALREADY      a connect is already in progress on |fd|.
 *   EISCONN       |fd| is already connected (or was returned by ssx_accept).
 *   EINVAL        |fd| is a listening socket.
 *   EFAULT        |addr| is NULL.
 *   any errno connect(2) reports (ECONNREFUSED, ENETUNREACH, ...).
 * The last four change nothing on |fd|. After any other failure the socket is unusable (later
 * calls report the same failure); close it with ssx_close.
 * The socket's lock is not held while a blocking connect(2) waits: other threads' calls on |fd|
 * meanwhile fail with EALREADY or ENOTCONN rather than wait. */
SSX_EXPORT int ssx_connect(int fd, const struct sockaddr *addr, socklen_t addr_len);

/* ssx_accept accepts a connection on |listen_fd| and secures it as the listener's settings and
 * the policy say. |addr|/|addr_len| are as for accept(2) and may be NULL. The new descriptor has
 * FD_CLOEXEC set.
 *
 * Blocking listener: returns a connection whose handshake is done, ready. It takes connections
 * from the kernel's queue and runs their handshakes together, up to 128 at once per listener
 * (docs/limits.md), returning the first that completes; the others stay in progress inside ssx
 * for the next call. So a client that connects and sends nothing (or trickles) does not hold up
 * the clients behind it: it costs a slot until its client_hello_timeout_ms (or
 * handshake_timeout_ms) passes, and only 128 such clients at once delay others, by at most that
 * timeout. A handshake that fails (or times out) closes that connection and returns -1 with the
 * reason, |addr| naming its peer; the listener stays usable, so a server loop logs it and goes on.
 * SO_RCVTIMEO on the listener bounds the call (EAGAIN); handshakes in progress are kept.
 * Threads calling ssx_accept on one listener take turns: one at a time runs the handshakes in
 * progress, so their CPU work is not spread over the threads; for that, use a non-blocking
 * listener (or one listener per thread with SO_REUSEPORT). Connections still in progress when the
 * listener is closed are closed with it. Those connections belong to the process whose
 * ssx_accept took them: after fork(), only one of the processes may go on calling ssx_accept on
 * that listener (the other closes it; ssx_close then closes only its own copies of them, without
 * a byte on the wire). If other processes accept on the same listening socket
 * (pre-forked workers), make it non-blocking: a connection they take between ssx's poll(2) and
 * its accept(2) would otherwise block that accept(2), and this process's handshakes with it.
 * Non-blocking listener: returns -1 with EAGAIN when nothing is pending; otherwise returns the new
 * descriptor at once, non-blocking and still handshaking: drive it with ssx_handshake (or simply
 * ssx_recv / ssx_send), which return -1 with EAGAIN until it is done. If the first step of that
 * handshake already fails (or the policy refuses the connection), the connection is closed and
 * -1 is returned with the reason, as for a blocking listener.
 *
 * Returns the new fd, or -1 with errno as for ssx_connect, or as accept(2) reports, or EACCES when
 * the server has no certificate configured, or EINVAL when |listen_fd| is not listening (then
 * nothing changes: a socket that was never listen(2)ed may still ssx_connect). */
SSX_EXPORT int ssx_accept(int listen_fd, struct sockaddr *addr, socklen_t *addr_len);

/* ssx_handshake advances the connect or handshake of a non-blocking socket. Returns 0 once it is
 * established (and every later call), or -1 with EAGAIN (wait for ssx_wants(fd) then call again)
 * or with a failure as for ssx_connect. On a blocking socket it completes the handshake.
 * ENOTCONN, changing nothing, before ssx_connect or on a listening socket.
 *
 * Agent keys: when the policy's private_key is "agent:NAME" (docs/agent.md), the step of the
 * handshake that needs our signature asks `ssx agent` and blocks the calling thread for at most
 * the policy's agent_timeout_ms (default 2000 ms), on a non-blocking socket too; the first
 * connection that uses the key also fetches its certificate chain, bounded the same way. Agent
 * failures are EACCES (reason SSX_REASON_AGENT_REFUSED or SSX_REASON_AGENT_UNAVAILABLE) or
 * ETIMEDOUT (SSX_REASON_AGENT_UNAVAILABLE), with the agent's reason in ssx_last_error(). */
SSX_EXPORT int ssx_handshake(int fd);

/* SSX_POLLPENDING is set in what ssx_wants returns when ssx already holds input for |fd| that
 * ssx_recv returns at once, without reading the socket: decrypted application data, whole TLS
 * records read ahead with earlier data (ssx_pending counts their bytes), the peer's close_notify
 * (ssx_recv returns 0) or a record that fails (ssx_recv returns -1 with its errno). poll(2) and
 * epoll cannot see such input: the kernel has already handed those bytes to ssx. Do not wait
 * while it is set; call ssx_recv. It is a bit no poll(2) or epoll(7) event uses (poll ignores it
 * in |events|), so it may be left in a value passed to poll, but it must never be waited for. */
#define SSX_POLLPENDING 0x4000

/* ssx_wants returns the events the socket waits for: POLLIN and/or POLLOUT (wait for them with
 * poll(2) or epoll(7), then call again), plus SSX_POLLPENDING when input is already held by ssx
 * (call ssx_recv now; waiting would stall), or 0 when it waits for nothing (established and idle,
 * failed, or not an ssx socket). Call it after a call failed with EAGAIN or EINPROGRESS, and
 * before waiting for input after a successful ssx_recv or a completed handshake.
 *
 * Event loops. ssx reads the socket ahead (a whole TCP segment may carry several TLS records),
 * so after ssx_recv returned data, or after ssx_handshake completed, more data may already sit in
 * ssx while the kernel reports the socket idle. That includes a connection a non-blocking
 * ssx_accept has just returned: its first handshake step may finish the handshake and read the
 * client's first data with its last flight (ssx_wants then returns SSX_POLLPENDING alone, never
 * POLLIN). Two rules, either of which suffices:
 *   - Edge-triggered epoll (EPOLLET), and any loop that can: on readiness, call ssx_recv until it
 *     fails with EAGAIN (or returns 0). EAGAIN means ssx holds nothing complete; the next input
 *     arrives through the socket and wakes the loop.
 *   - Level-triggered epoll or poll that reads once per wake-up: before waiting again, check
 *     `ssx_wants(fd) & SSX_POLLPENDING` (ssx_pending(fd) > 0 covers data only) and call ssx_recv
 *     without waiting while it is set.
 * A loop that stops reading for a while (flow control) must apply the same check when it resumes.
 * On the send side nothing is held back: ssx_send either hands a record to the kernel or fails
 * with EAGAIN, and POLLOUT then says when to retry.
 * Never blocks and never reads the socket. Takes the socket's lock briefly: to count whole
 * records already read it processes them as ssx_recv would (which may send what they call for,
 * such as the reply to a KeyUpdate, or the alert for a corrupt record). After fork() it only
 * looks, in a process that has not claimed the connection (docs/handoff.md). */
SSX_EXPORT short ssx_wants(int fd);

/* ssx_timeout_ms returns how many milliseconds an event loop may wait before it must call ssx
 * on |fd| again although no event came: the time left until the handshake's deadline
 * (handshake_timeout_ms, or a server's client_hello_timeout_ms) or, for a UDP socket (DTLS),
 * until the retransmission timer expires, whichever is first. 0 means now. -1 when no timer
 * runs (no handshake in progress, an established or failed socket, or not an ssx socket).
 *
 * A non-blocking DTLS handshake only makes progress when ssx is called: a lost datagram is sent
 * again when the timer expires and ssx_handshake (or ssx_send / ssx_recv) runs. The loop:
 *
 *   while (ssx_handshake(fd) == -1 && errno == EAGAIN) {
 *     struct pollfd p = {fd, ssx_wants(fd), 0};
 *     poll(&p, 1, ssx_timeout_ms(fd));   // wakes for input or for the timer
 *   }
 *
 * For TCP sockets it gives the handshake deadline, so the same loop makes a silent peer fail
 * with ETIMEDOUT on time. Never blocks, never sets errno. Thread-safe; takes the socket's lock
 * briefly. */
SSX_EXPORT int ssx_timeout_ms(int fd);

/* ssx_pending returns how many bytes of application data ssx_recv can return for |fd| without
 * reading the socket: data ssx has decrypted, plus that of whole TLS records it has read ahead
 * (processing them, never reading more). 0 when there is none, for sockets without TLS (the kernel
 * holds their data: use ioctl FIONREAD), for a descriptor that is not an ssx socket, and after a
 * failure. A partly received record does not count: its rest must come through the socket.
 * Never blocks; never sets errno. Thread safety: as ssx_wants. */
SSX_EXPORT size_t ssx_pending(int fd);

/* Data. */

/* ssx_send sends |len| bytes from |buf|, protected. |flags| may hold MSG_DONTWAIT, MSG_NOSIGNAL
 * (always implied) and MSG_MORE; any other flag is EOPNOTSUPP.
 * UDP sockets (DTLS): the bytes are one datagram, sent whole or not at all: EMSGSIZE (reason
 * SSX_REASON_DATAGRAM_TOO_LARGE; the association goes on) when they do not fit in one record
 * under the policy's dtls_mtu; MSG_MORE is EOPNOTSUPP; |len| 0 sends nothing and returns 0.
 * MSG_MORE says more data follows at once: ssx then fills TLS records instead of sending one per
 * call. Bytes sent with MSG_MORE are held by ssx (counted as sent) until a record is full (16 KiB,
 * which is then sent, the rest held again) or until the next ssx_send / ssx_sendmsg on the socket
 * *without* MSG_MORE, ssx_shutdown or ssx_close sends them with it. At most one record (16 KiB)
 * is ever held. Nothing else sends them: no timer, and not ssx_recv, so a program that waits for
 * a reply must send its last piece without MSG_MORE (as with TCP_CORK). On a cleartext or
 * AF_UNIX (SSX_PROTOCOL_LOCAL) connection MSG_MORE is passed to send(2) as it is.
 * Blocking: sends everything, or fails. Non-blocking (O_NONBLOCK or MSG_DONTWAIT): sends what it
 * can and returns the count, or -1 with EAGAIN when nothing could be sent; a send that returned
 * EAGAIN must be retried with the same bytes (at least as many, same start).
 * Drives an unfinished handshake first. Returns the count, or -1 with errno: EPIPE (peer gone;
 * never SIGPIPE), ECONNRESET, ENOTCONN (not connected, or a listening socket: nothing changes),
 * ESHUTDOWN (after ssx_shutdown SHUT_WR),
 * EAGAIN, or handshake failures as for ssx_connect. */
SSX_EXPORT ssize_t ssx_send(int fd, const void *buf, size_t len, int flags);

/* ssx_recv receives up to |len| bytes into |buf|. |flags| may hold MSG_DONTWAIT, MSG_PEEK and
 * MSG_WAITALL; any other flag is EOPNOTSUPP.
 * UDP sockets (DTLS): returns one datagram, the part beyond |len| discarded; with MSG_TRUNC
 * (allowed on UDP only) it returns the datagram's full length, as recv(2) does. MSG_WAITALL has
 * no effect. Datagrams that do not authenticate are dropped and the call goes on waiting.
 * Returns the count, 0 only at a clean end of stream (the peer sent close_notify), or -1 with
 * errno: ECONNRESET when the TCP stream ended without close_notify (truncation: the data may be
 * cut short), EAGAIN (non-blocking, nothing yet), EPROTO (corrupt or forged records), ENOTCONN
 * (not connected, or a listening socket: nothing changes), or handshake failures as for
 * ssx_connect. A blocking call honours SO_RCVTIMEO (EAGAIN). */
SSX_EXPORT ssize_t ssx_recv(int fd, void *buf, size_t len, int flags);

/* ssx_sendmsg sends the bytes gathered from |msg|'s iovecs, protected, as ssx_send sends one
 * buffer (on a UDP socket: all the iovecs together are one datagram): the iovecs are coalesced into
 * as few TLS records as possible (full records of 16 KiB, never one record per iovec).
 * |msg->msg_name| must be NULL (the socket is connected) and |msg->msg_control| NULL or empty:
 * ancillary data is not supported (EOPNOTSUPP). At most 1024 iovecs (IOV_MAX on Linux; else
 * EMSGSIZE); the total must fit in ssize_t (else EINVAL). |flags| as for ssx_send, MSG_MORE
 * included. Returns the bytes sent (which, for a non-blocking socket, may end inside an iovec:
 * resend from there), or -1 with errno as for ssx_send. */
SSX_EXPORT ssize_t ssx_sendmsg(int fd, const struct msghdr *msg, int flags);

/* ssx_recvmsg receives into |msg|'s iovecs in order, as ssx_recv into one buffer: it blocks (if
 * the socket does) only until the first bytes arrive, then fills further iovecs with what is
 * already available without waiting; with MSG_WAITALL it fills them all. Sets msg_namelen and
 * msg_controllen to 0 (no address or ancillary data for a connected stream) and msg_flags to 0.
 * At most 1024 iovecs (else EMSGSIZE). |flags| as for ssx_recv (MSG_PEEK peeks at most 64 KiB
 * across the iovecs). Returns the bytes received, 0 at a clean end of stream, or -1 with errno as
 * for ssx_recv. */
SSX_EXPORT ssize_t ssx_recvmsg(int fd, struct msghdr *msg, int flags);

/* Unconnected UDP sockets: one socket, many peers (docs/datagram.md).
 *
 * A UDP socket secured with ssx_set_socket_security and never connected talks to many peers,
 * one DTLS association per peer address, with ssx_sendto and ssx_recvfrom. A server binds it
 * (after ssx_set_socket_security, before its first ssx_recvfrom) and calls ssx_recvfrom in a
 * loop; a client sends to each peer with ssx_sendto. ssx_recvfrom's address plus
 * ssx_query_socket_security(fd, that address, ...) give the verified principal of every
 * datagram, so a UDP service can authorise per datagram. A client of many servers may set
 * different target names per server (ssx_set_socket_peer_target_name with |peer|).
 *
 *   int fd = socket(AF_INET, SOCK_DGRAM, 0);
 *   ssx_set_socket_security(fd, NULL, 0);
 *   bind(fd, (struct sockaddr *)&any_4433, sizeof any_4433);
 *   for (;;) {
 *     struct sockaddr_storage from; socklen_t from_len = sizeof from;
 *     ssize_t n = ssx_recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
 *     ...ssx_query_socket_security(fd, (struct sockaddr *)&from, from_len, &info)...
 *     ssx_sendto(fd, reply, reply_len, 0, (struct sockaddr *)&from, from_len);
 *   }
 *
 * New peers (server side): a datagram from an address without an association is answered with
 * a stateless cookie (HelloVerifyRequest, HMAC-SHA256 under a secret that rotates every 60 s);
 * ssx keeps state for the peer only once it returns a valid cookie, so spoofed source addresses
 * cost no memory. At most the policy's max_peers (default 1024) associations exist at once
 * (beyond it new peers are refused, and counted); one that carried nothing for
 * peer_idle_timeout_ms (default 5 minutes) is dropped (with a close_notify). A socket that was
 * not bound before its first exchange only talks to the peers it sent to first. */

/* ssx_sendto sends |len| bytes from |buf| as one datagram to |addr|, protected: on an
 * unconnected UDP socket, the first send to a new peer runs the DTLS handshake with it as client
 * (with the names set for that peer, else the socket's); a blocking socket waits for it (bounded
 * by handshake_timeout_ms and SO_SNDTIMEO) while datagrams from other peers are taken in for
 * ssx_recvfrom; a non-blocking one gets EAGAIN until the handshake, driven by later ssx calls,
 * is done. |addr| NULL with |addr_len| 0 is ssx_send (connected sockets). |flags|:
 * MSG_DONTWAIT, MSG_NOSIGNAL. Returns |len|, or -1 with errno: EMSGSIZE (does not fit under
 * dtls_mtu), EINVAL (an address of another family, a zero address or port), EFAULT, EISCONN (a
 * connected UDP socket, or a stream socket, with an address), EAGAIN (non-blocking; also
 * max_peers associations exist), the handshake's failures as for ssx_connect (the association
 * is then forgotten: the next send tries again). Threads: as ssx_send. */
SSX_EXPORT ssize_t ssx_sendto(int fd, const void *buf, size_t len, int flags,
                              const struct sockaddr *addr, socklen_t addr_len);

/* ssx_recvfrom returns the next application datagram from any established peer of an
 * unconnected UDP socket, and its address in |addr| (as recvfrom(2): |*addr_len| in, the
 * address's length out; both may be NULL). Meanwhile it drives every handshake and, on a socket
 * bound before its first exchange, accepts new peers as server (cookie first). A datagram longer
 * than |len| is cut, the rest discarded; MSG_TRUNC returns its full length; MSG_PEEK leaves it.
 * Datagrams that are not DTLS records of an association (forged, replayed, cleartext, from a
 * peer without an association) are dropped, never returned. On a connected UDP socket it is
 * ssx_recv and |addr| gets the peer's address. |flags|: MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC.
 * Returns the length, or -1 with errno: EAGAIN (non-blocking and nothing ready, or SO_RCVTIMEO
 * passed), EFAULT, EOPNOTSUPP, or as recvfrom(2) reports. Threads: as ssx_recv. */
SSX_EXPORT ssize_t ssx_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                                socklen_t *addr_len);

/* ssx_shutdown ends one or both directions. SHUT_WR (or SHUT_RDWR) sends close_notify and then
 * shuts the TCP write side, so the peer's ssx_recv returns 0; the socket can still receive.
 * Returns 0, or -1 with errno EINVAL (bad |how|), ENOTCONN, or as send(2) reports. */
SSX_EXPORT int ssx_shutdown(int fd, int how);

/* ssx_close sends close_notify if the connection is established and has not been shut down
 * (without waiting for the peer), forgets the socket's security state and closes |fd|.
 * Safe to call on a descriptor ssx never saw (it just closes it). Returns close(2)'s result.
 * After fork(): close_notify is sent only by the process that owns the connection (see
 * "Processes" below); in any other process ssx_close is ssx_release followed by close(2), so a
 * parent that closes a connection it forked away never ends the child's stream. */
SSX_EXPORT int ssx_close(int fd);

/* ssx_abort ends the connection at once, without close_notify: it resets a TCP connection (RST,
 * by SO_LINGER with a zero timeout), forgets the socket's security state and closes |fd|. After
 * fork(), only the process that owns the connection (see "Processes") resets it; in any other
 * process ssx_abort only closes |fd|, since the linger setting would apply to every process's
 * descriptor of the socket. Data
 * not yet sent is discarded, and the peer's kernel may drop data it has not read yet. The peer's
 * ssx_recv fails with ECONNRESET rather than returning 0, so it cannot take what it received for
 * the complete stream: use it when the application
 * gives up mid-stream (a protocol violation, a timeout, a failed upstream). On an AF_UNIX socket
 * secured by kernel attestation (SSX_PROTOCOL_LOCAL) there is no way to signal an abort and the
 * peer sees an ordinary end of stream; over TLS on AF_UNIX it sees a truncation (ECONNRESET).
 * Safe to call on a descriptor ssx never saw (it is reset if it is a TCP socket, and closed).
 * Like ssx_close, it must not race with calls on |fd| in other threads that could reuse the
 * number. Returns close(2)'s result. */
SSX_EXPORT int ssx_abort(int fd);

/* ssx_release forgets ssx's state for |fd| and leaves the descriptor open and the connection
 * untouched: nothing is sent (no close_notify), the socket is not shut down or reset, and its
 * options are unchanged. For the process that hands a connection over — the parent after fork(),
 * or a process that has passed |fd| to another with SCM_RIGHTS — which then closes its own
 * descriptor with close(2). After ssx_release ssx treats |fd| as a socket it never saw (ssx_send,
 * ssx_recv, ... fail with EPERM); the TLS state cannot be attached again.
 * Returns 0 (also for an open descriptor ssx never secured: nothing to forget), or -1 with
 * errno EBADF when |fd| is not open (any state ssx kept under that number is dropped all the
 * same). Must not race with other calls on |fd|. Never blocks. */
SSX_EXPORT int ssx_release(int fd);

/* Processes: fork, exec, dup and descriptor passing.
 *
 * An ssx connection's TLS state (keys, record sequence numbers) lives in the memory of the
 * process, under the descriptor number; the kernel's socket is shared by every descriptor that
 * refers to it. Exactly one process may drive a connection with ssx at a time.
 *
 * fork(). The child gets a copy of the state and may go on using the connection with ssx as the
 * parent did (this is the supported handoff): the classic fork-per-connection server has the
 * child serve the connection and end it with ssx_close, while the parent calls ssx_release(fd)
 * and close(fd) (not ssx_close) and goes back to accept. ssx enforces "one process at a time"
 * itself: after a fork, the first process to send, receive, handshake or shut the connection
 * down claims it, and any other process that tries fails with EPERM (ssx_last_error names the
 * process that has it) without anything reaching the socket; ssx then drops its state there.
 * Closing does not claim: ssx_close sends close_notify only in a process that has used the
 * connection since its last fork, or whose children forked since then have all exited or called
 * exec; otherwise it releases without sending. So a parent that calls ssx_close on a connection
 * it forked away (a common mistake) does not end the child's stream, and neither does a child
 * closing connections it inherited but never used. ssx_wants and ssx_pending do not claim. What
 * ssx does at fork costs one shared page per fork (for the connections open then) and one pipe
 * per child while the parent keeps connections it used before that fork (docs/handoff.md).
 *
 * exec(). ssx's state does not survive exec: a program that execs another with a secured
 * descriptor open hands it a socket whose TLS stream it cannot continue (the new program has no
 * keys). Sockets from ssx_accept are close-on-exec; keep it that way (open pipes or plain sockets
 * to the new program instead, as `ssx listen --exec` does).
 *
 * dup(2)/dup2(2)/dup3(2). The copy is a plain descriptor to ssx: call ssx functions with the
 * number ssx secured. Do not ssx_close a connection's original number while still using a
 * duplicate, and do not dup2 onto a secured number (ssx notices the new socket and forgets the
 * old state, as after close(2)). Closing a duplicate with close(2) is harmless.
 *
 * SCM_RIGHTS. The receiver of a descriptor gets the socket, never the TLS state: it cannot use a
 * passed secured connection with ssx, and an accepted connection that is not secured yet cannot
 * be secured any more (ssx_set_socket_security: EISCONN). Pass a listening socket instead (the
 * receiver secures it and calls ssx_accept, as with systemd socket activation), or keep the
 * connection where it was secured and pass the receiver a pipe or socket pair to relay through.
 * A sender that passed a secured connection anyway must ssx_release it, never ssx_close it. */

/* Query. */

/* ssx_query_socket_security reports the security applied to the established connection |fd|.
 * On success |*out| owns a newly allocated ssx_security_info; free it with
 * ssx_free_security_info. |peer| must be NULL for stream sockets and connected UDP sockets; on
 * an unconnected UDP socket it names the peer to report on (ssx_recvfrom's address), and NULL
 * is EINVAL there.
 * Returns 0, or -1 with errno EFAULT (|out| NULL), ENOTCONN (handshake not finished; for
 * |peer|: no established association with it), EPERM (not an ssx socket), EINVAL (non-NULL
 * |peer| on a stream socket, NULL |peer| on an unconnected UDP socket), ENOMEM.
 * Blocks only to read the account database (an [[identity]] mapping; NSS may ask LDAP or SSSD),
 * and not under the socket's lock: other calls on |fd| go on meanwhile. */
SSX_EXPORT int ssx_query_socket_security(int fd, const struct sockaddr *peer, socklen_t peer_len,
                                         struct ssx_security_info **out);

/* ssx_free_security_info frees what ssx_query_socket_security returned. NULL is a no-op. */
SSX_EXPORT void ssx_free_security_info(struct ssx_security_info *info);

/* Impersonation. */

/* ssx_impersonate_socket_peer makes the calling thread — and only the calling thread — act as the
 * local account the peer of |fd| maps to (see SSX_INFO_IMPERSONATION_AVAILABLE): its effective
 * gid, supplementary groups and uid become the peer's, so the kernel's own access checks
 * (open(2), ...) apply to the peer. Other threads keep their credentials. |peer| as for
 * ssx_query_socket_security (an unconnected UDP socket: the peer to act as). Pair every success
 * with ssx_revert_impersonation once the access checks are done; the thread must not impersonate
 * across calls that expect the process's identity.
 *
 * Returns 0, or -1 with errno:
 *   EACCES    the peer maps to no local account (ssx_last_error names the principal and why).
 *   EPERM     the process lacks CAP_SETUID and/or CAP_SETGID (the message says which).
 *   EBUSY     this thread already impersonates; revert first.
 *   ENOTCONN  the connection is not established.   EBADF, ENOTSOCK, EINVAL as elsewhere.
 * Blocks only to read the account database (passwd, group). */
SSX_EXPORT int ssx_impersonate_socket_peer(int fd, const struct sockaddr *peer, socklen_t peer_len);

/* ssx_revert_impersonation restores exactly the effective uid, gid and supplementary groups the
 * calling thread had before ssx_impersonate_socket_peer. Does nothing (returns 0) when the thread
 * is not impersonating. Returns -1 with errno (EPERM) only if the kernel refuses to restore them;
 * the thread is then still impersonating and the program should not go on (the C++ guard
 * ssx::Impersonation aborts). */
SSX_EXPORT int ssx_revert_impersonation(void);

/* Policy. */

/* ssx_load_policy loads the policy file at |path| and, if it is valid, makes it the policy in
 * force for new connections in this process; established connections keep the policy they were
 * secured under. Without this call ssx loads $SSX_POLICY, else /etc/ssx/policy.toml, else uses
 * the built-in defaults, on first use. On failure the policy in force does not change.
 * Returns 0, or -1 with errno ENOENT (no such file), EACCES/EISDIR/... (unreadable: as open(2)),
 * EINVAL (invalid: ssx_last_error gives "FILE:LINE:COLUMN: message"). Thread-safe. */
SSX_EXPORT int ssx_load_policy(const char *path);

/* ssx_reload_policy reads the policy file in force again (the one ssx_load_policy installed, else
 * $SSX_POLICY, else /etc/ssx/policy.toml) together with every certificate, key, trust bundle and
 * CRL it names, builds everything new connections need from them (so a key that does not match
 * its certificate fails here, not in a handshake) and, if all of it is valid, makes it the policy
 * for new connections. Established connections keep the policy they were secured under. On
 * failure nothing changes: the last good policy stays in force. ssx also reloads by itself when
 * those files change (checked at most once a second when a socket is secured; see
 * docs/policy.md); call this after replacing them to have the change apply at once, or to learn
 * whether the new files are valid.
 * Returns 0, or -1 with errno (ssx_last_error says which file and why):
 *   ENOENT    the policy file is gone (a default path without a file keeps the built-in
 *             defaults and returns 0).
 *   EACCES    the policy file is unreadable or writable by others, or a TLS context cannot be
 *             built from the files.
 *   EINVAL    the policy is invalid, including a certificate, key, trust bundle or CRL that is
 *             missing, unreadable, truncated or does not match ("FILE:LINE:COLUMN: message").
 *   EISDIR, EFBIG, ... as ssx_load_policy.
 * Blocks while it reads the files and builds TLS contexts (milliseconds). Thread-safe;
 * concurrent reloads run one after the other. */
SSX_EXPORT int ssx_reload_policy(void);

/* Errors. */

/* ssx_last_error returns the reason for the last failure of an ssx call on the calling thread,
 * e.g. `peer certificate does not match target name "db.example": DNS SANs are www.example`.
 * Never NULL; "" when no call on this thread has failed. The string is valid until the next ssx
 * call on the same thread. Never contains key material. */
SSX_EXPORT const char *ssx_last_error(void);

/* ssx_reason is why an ssx call failed, finer than errno and stable for programs to act on:
 * SSX_REASON_UNTRUSTED_ISSUER, SSX_REASON_NAME_MISMATCH, SSX_REASON_PIN_MISMATCH,
 * SSX_REASON_EXPIRED, SSX_REASON_NOT_YET_VALID, SSX_REASON_REVOKED,
 * SSX_REASON_NO_PEER_CERTIFICATE, SSX_REASON_PEER_REFUSED_US, SSX_REASON_VERSION_MISMATCH,
 * SSX_REASON_NOT_TLS, SSX_REASON_POLICY_DENIED, SSX_REASON_POLICY_INVALID,
 * SSX_REASON_HANDSHAKE_TIMEOUT, SSX_REASON_TRUNCATED, ... The full list, with values and
 * meanings, is SSX_REASON_TABLE in ssx/reasons.h and the reason table in docs/errors.md.
 * Values are fixed and never reused; treat a value you do not know as SSX_REASON_OTHER. */
enum ssx_reason {
#define SSX_REASON_ENUMERATOR_(name, value, err, meaning) SSX_REASON_##name = value,
  SSX_REASON_TABLE(SSX_REASON_ENUMERATOR_)
#undef SSX_REASON_ENUMERATOR_
      SSX_REASON_END_ /* not a reason: ends the list */
};

/* ssx_last_error_reason returns the ssx_reason of the last failure of an ssx call on the calling
 * thread (SSX_REASON_NONE when none has failed), set together with errno and ssx_last_error().
 * Like errno, a successful call does not reset it: read it right after a call returned -1.
 * Every failure sets it; SSX_REASON_OTHER where ssx knows nothing more specific than errno.
 * Thread-local, never blocks, never allocates (so the EAGAIN path of a non-blocking event loop
 * costs no allocation: its ssx_last_error() text is static too). */
SSX_EXPORT int ssx_last_error_reason(void);

/* ssx_reason_name returns the name of |reason| without its prefix, e.g. "NAME_MISMATCH" for
 * SSX_REASON_NAME_MISMATCH: a static string, stable across versions, for logs and metrics.
 * Returns "UNKNOWN" for a value this library does not know. Never NULL; thread-safe. */
SSX_EXPORT const char *ssx_reason_name(int reason);

/* ssx_version returns the version of the library loaded at run time, e.g. "0.2.0": a static
 * string, never NULL, safe from any thread. Compare with SSX_VERSION_STRING (ssx/version.h), the
 * version of the headers the program was compiled against. */
SSX_EXPORT const char *ssx_version(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SSX_SSX_H */
