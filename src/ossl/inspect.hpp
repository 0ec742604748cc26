// SPDX-License-Identifier: Apache-2.0
// ossl/inspect.hpp — what a certificate file says about its first certificate: usage, CA bit,
// validity. For checks an administrator wants before a certificate is put to work (`ssx policy
// check`) and for reporting expiry (the tunnel's metrics).
//
// This header is free of OpenSSL types so that its callers (the CLI) need not include OpenSSL.
//
// Thread safety: safe to call from any thread.

#ifndef SSX_OSSL_INSPECT_HPP
#define SSX_OSSL_INSPECT_HPP

#include <ctime>
#include <string>
#include <string_view>

#include "ssx/result.hpp"

namespace ssx::ossl {

// CertificateFacts describes one certificate (the leaf: the first in a PEM file).
struct CertificateFacts {
  std::string subject;          // RFC 2253 distinguished name, e.g. "CN=web,O=Example"
  std::string common_name;      // the subject's (last) commonName as UTF-8; "" when it has none
  bool has_extended_key_usage;  // the extension is present (absent: any usage is allowed)
  bool server_auth;             // extendedKeyUsage allows TLS server authentication
  bool client_auth;             // extendedKeyUsage allows TLS client authentication
  bool is_ca;                   // basicConstraints CA:TRUE
  std::time_t not_before;
  std::time_t not_after;
};

// inspect_certificate_file reads the first PEM certificate of |path| (a regular file of at most
// 16 MiB). Errors: the errno of a file that cannot be read ("cannot read certificate "PATH":
// STRERROR"), EINVAL "certificate "PATH" contains no PEM certificate".
Result<CertificateFacts> inspect_certificate_file(const std::string &path);

// inspect_certificate_pem is the same for the first certificate of |pem| (PEM text in memory,
// e.g. ssx_security_info.peer_chain_pem). EINVAL "no PEM certificate" when there is none.
Result<CertificateFacts> inspect_certificate_pem(std::string_view pem);

}  // namespace ssx::ossl

#endif  // SSX_OSSL_INSPECT_HPP
