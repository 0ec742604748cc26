// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/proxy_protocol.hpp — the PROXY protocol version 2 header a server-mode tunnel
// sends its backend first (--proxy-protocol v2), so that the backend learns who connected:
// the client's address and port, and who the peer proved to be.
//
// Layout (haproxy's doc/proxy-protocol.txt, section 2.2): the 12-byte signature, 0x21 (version 2,
// PROXY), the family (0x11 TCP/IPv4, 0x21 TCP/IPv6, 0x31 UNIX stream, 0x00 unspecified), the
// length of the rest (big-endian), the addresses (source = the client, destination = the
// address it connected to), then TLVs:
//   PP2_TYPE_SSL (0x20), TLS connections only: client = PP2_CLIENT_SSL (0x01), | CERT_CONN
//     (0x02) when the client presented a certificate in this connection, | CERT_SESS (0x04)
//     when the session has one (also on resumption); verify = 0 when that certificate verified,
//     else 1 (big-endian 32 bits); then the sub-TLVs PP2_SUBTYPE_SSL_VERSION (0x21, "TLSv1.3"),
//     PP2_SUBTYPE_SSL_CIPHER (0x23, the IANA name, "TLS_AES_128_GCM_SHA256") and, when the
//     client certificate's subject has a commonName, PP2_SUBTYPE_SSL_CN (0x22, UTF-8).
//   0xE0 (PP2_TYPE_SSX_PRINCIPAL): the peer's principal as ssx reports it (URI SAN, else first
//     DNS SAN, else subject DN; "unix:uid=N" for an AF_UNIX peer), UTF-8; absent when none.
//   0xE1 (PP2_TYPE_SSX_SPKI_SHA256): the SHA-256 of the peer certificate's
//     SubjectPublicKeyInfo, 32 raw bytes; absent when the peer sent no certificate.
//   0xE2 (PP2_TYPE_SSX_POLICY_RULE): the name of the policy rule that applied, UTF-8.
// Types 0xE0-0xEF are the range the specification leaves to applications.

#ifndef SSX_TOOLS_SSX_TUNNEL_PROXY_PROTOCOL_HPP
#define SSX_TOOLS_SSX_TUNNEL_PROXY_PROTOCOL_HPP

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "ssx/result.hpp"

struct ssx_security_info;

namespace ssx::cli::tunnel {

inline constexpr std::uint8_t kPp2TypeSsl = 0x20;
inline constexpr std::uint8_t kPp2SubtypeSslVersion = 0x21;
inline constexpr std::uint8_t kPp2SubtypeSslCn = 0x22;
inline constexpr std::uint8_t kPp2SubtypeSslCipher = 0x23;
inline constexpr std::uint8_t kPp2TypeSsxPrincipal = 0xE0;
inline constexpr std::uint8_t kPp2TypeSsxSpkiSha256 = 0xE1;
inline constexpr std::uint8_t kPp2TypeSsxPolicyRule = 0xE2;
inline constexpr std::uint8_t kPp2ClientSsl = 0x01;
inline constexpr std::uint8_t kPp2ClientCertConn = 0x02;
inline constexpr std::uint8_t kPp2ClientCertSess = 0x04;

// Longest value of one TLV the tunnel sends, and longest header: a peer whose principal (or
// certificate name) is longer fails with EMSGSIZE rather than send the backend a truncated name.
inline constexpr size_t kMaxProxyValue = 4096;
inline constexpr size_t kMaxProxyHeader = 16384;

// ProxyPeer is what the header says about the secured peer.
struct ProxyPeer {
  bool tls = false;          // the connection runs TLS (else AF_UNIX kernel attestation)
  bool certificate = false;  // the peer presented a certificate
  bool verified = false;     // ... and it verified
  bool resumed = false;      // the session was resumed (the certificate is the session's)
  std::string version;       // "TLSv1.3"
  std::string cipher;        // IANA name
  std::string common_name;   // the peer certificate's subject CN; "" when none
  std::string principal;     // "" when none
  std::string spki_sha256;   // 32 raw bytes; "" when no certificate
  std::string rule;          // policy rule; "" when none
};

// proxy_peer_of reads a ProxyPeer from what ssx_query_socket_security reported.
ProxyPeer proxy_peer_of(const ssx_security_info &info);

// proxy_v2_header builds the header for a connection from |source| to |destination| (the same
// family; another or a mismatched family is sent as unspecified, without addresses).
// EMSGSIZE when a value exceeds kMaxProxyValue.
Result<std::string> proxy_v2_header(const sockaddr *source, const sockaddr *destination,
                                    const ProxyPeer &peer);

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_PROXY_PROTOCOL_HPP
