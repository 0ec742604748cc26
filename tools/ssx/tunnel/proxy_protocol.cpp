// SPDX-License-Identifier: Apache-2.0
#include "proxy_protocol.hpp"

#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "ossl/inspect.hpp"
#include "ssx/ssx.h"

namespace ssx::cli::tunnel {
namespace {

constexpr char kSignature[12] = {'\x0D', '\x0A', '\x0D', '\x0A', '\x00', '\x0D',
                                 '\x0A', '\x51', '\x55', '\x49', '\x54', '\x0A'};

void put16(std::string &out, size_t value) {
  out += static_cast<char>((value >> 8) & 0xff);
  out += static_cast<char>(value & 0xff);
}

void put_bytes(std::string &out, const void *data, size_t size) {
  out.append(static_cast<const char *>(data), size);
}

Result<void> put_tlv(std::string &out, std::uint8_t type, const std::string &value) {
  if (value.size() > kMaxProxyValue) {
    return fail(EMSGSIZE, "PROXY header: a value of TLV type " + std::to_string(type) + " is " +
                              std::to_string(value.size()) + " bytes (at most " +
                              std::to_string(kMaxProxyValue) + ")");
  }
  out += static_cast<char>(type);
  put16(out, value.size());
  out += value;
  return {};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// raw_sha256 turns 64 hex digits into 32 bytes; "" when |hex| is not that.
std::string raw_sha256(const char *hex) {
  if (hex == nullptr || std::strlen(hex) != 64) return {};
  std::string out;
  for (size_t i = 0; i < 64; i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace

ProxyPeer proxy_peer_of(const ssx_security_info &info) {
  ProxyPeer peer;
  peer.tls = info.protocol == SSX_PROTOCOL_TLS;
  peer.verified = (info.flags & SSX_INFO_PEER_AUTHENTICATED) != 0;
  peer.resumed = (info.flags & SSX_INFO_RESUMED) != 0;
  peer.spki_sha256 = raw_sha256(info.peer_spki_sha256);
  peer.certificate = peer.tls && !peer.spki_sha256.empty();
  if (info.version != nullptr) peer.version = info.version;
  if (info.cipher != nullptr) peer.cipher = info.cipher;
  if (info.peer_principal != nullptr) peer.principal = info.peer_principal;
  if (info.policy_rule != nullptr) peer.rule = info.policy_rule;
  if (peer.certificate && info.peer_chain_pem != nullptr) {
    if (auto facts = ossl::inspect_certificate_pem(info.peer_chain_pem)) {
      peer.common_name = facts->common_name;
    }
  }
  return peer;
}

Result<std::string> proxy_v2_header(const sockaddr *source, const sockaddr *destination,
                                    const ProxyPeer &peer) {
  std::string addresses;
  std::uint8_t family = 0x00;  // AF_UNSPEC, unknown transport
  if (source->sa_family == destination->sa_family) {
    if (source->sa_family == AF_INET) {
      const auto *s = reinterpret_cast<const sockaddr_in *>(source);
      const auto *d = reinterpret_cast<const sockaddr_in *>(destination);
      family = 0x11;
      put_bytes(addresses, &s->sin_addr, 4);
      put_bytes(addresses, &d->sin_addr, 4);
      put_bytes(addresses, &s->sin_port, 2);  // already big-endian
      put_bytes(addresses, &d->sin_port, 2);
    } else if (source->sa_family == AF_INET6) {
      const auto *s = reinterpret_cast<const sockaddr_in6 *>(source);
      const auto *d = reinterpret_cast<const sockaddr_in6 *>(destination);
      family = 0x21;
      put_bytes(addresses, &s->sin6_addr, 16);
      put_bytes(addresses, &d->sin6_addr, 16);
      put_bytes(addresses, &s->sin6_port, 2);
      put_bytes(addresses, &d->sin6_port, 2);
    } else if (source->sa_family == AF_UNIX) {
      const auto *s = reinterpret_cast<const sockaddr_un *>(source);
      const auto *d = reinterpret_cast<const sockaddr_un *>(destination);
      family = 0x31;
      put_bytes(addresses, s->sun_path, sizeof s->sun_path);  // 108 bytes each, NUL-padded
      put_bytes(addresses, d->sun_path, sizeof d->sun_path);
    }
  }

  std::string tlvs;
  if (peer.tls) {
    std::string ssl;
    std::uint8_t client = kPp2ClientSsl;
    if (peer.certificate) {
      client |= kPp2ClientCertSess;
      if (!peer.resumed) client |= kPp2ClientCertConn;
    }
    ssl += static_cast<char>(client);
    const std::uint32_t verify = peer.certificate && peer.verified ? 0 : 1;
    for (int shift = 24; shift >= 0; shift -= 8) ssl += static_cast<char>((verify >> shift) & 0xff);
    if (auto r = put_tlv(ssl, kPp2SubtypeSslVersion, peer.version); !r) return r.error();
    if (auto r = put_tlv(ssl, kPp2SubtypeSslCipher, peer.cipher); !r) return r.error();
    if (!peer.common_name.empty()) {
      if (auto r = put_tlv(ssl, kPp2SubtypeSslCn, peer.common_name); !r) return r.error();
    }
    tlvs += static_cast<char>(kPp2TypeSsl);
    put16(tlvs, ssl.size());
    tlvs += ssl;
  }
  if (!peer.principal.empty()) {
    if (auto r = put_tlv(tlvs, kPp2TypeSsxPrincipal, peer.principal); !r) return r.error();
  }
  if (!peer.spki_sha256.empty()) {
    if (auto r = put_tlv(tlvs, kPp2TypeSsxSpkiSha256, peer.spki_sha256); !r) return r.error();
  }
  if (!peer.rule.empty()) {
    if (auto r = put_tlv(tlvs, kPp2TypeSsxPolicyRule, peer.rule); !r) return r.error();
  }

  const size_t rest = addresses.size() + tlvs.size();
  if (16 + rest > kMaxProxyHeader) {
    return fail(EMSGSIZE, "PROXY header: " + std::to_string(16 + rest) + " bytes (at most " +
                              std::to_string(kMaxProxyHeader) + ")");
  }
  std::string header(kSignature, sizeof kSignature);
  header += static_cast<char>(0x21);  // version 2, PROXY
  header += static_cast<char>(family);
  put16(header, rest);
  header += addresses;
  header += tlvs;
  return header;
}

}  // namespace ssx::cli::tunnel
