// SPDX-License-Identifier: Apache-2.0
// protocol/tls/peer_names.hpp — what a certificate says about its owner, and whether it matches a
// target name.
//
// Matching rules: DNS names follow RFC 6125 (wildcard only as the whole left-most label, no
// partial wildcards, and never the subject CN when matching — only DNS SANs); IP addresses match
// IP SANs; URIs match URI SANs byte for byte; a key pin matches the SHA-256 of the
// SubjectPublicKeyInfo.

#ifndef SSX_PROTOCOL_TLS_PEER_NAMES_HPP
#define SSX_PROTOCOL_TLS_PEER_NAMES_HPP

#include <string>
#include <vector>

#include "identity/target_name.hpp"
#include "ossl/ossl.hpp"

namespace ssx::tls {

// certificate_matches reports whether |cert| satisfies |name|.
bool certificate_matches(X509 *cert, const identity::TargetName &name);

// CertificateNames is what a certificate names its owner.
struct CertificateNames {
  std::vector<std::string> dns, ips, uris, emails;
  std::string common_name;  // "" when absent
  std::string subject;      // RFC 2253 one-line DN
};

CertificateNames certificate_names(X509 *cert);

// all_names lists every SAN (DNS, IP, URI, email) then the subject CN, without duplicates.
std::vector<std::string> all_names(const CertificateNames &names);

// principal_of returns the URI SAN if any, else the first DNS SAN, else the subject DN.
std::string principal_of(const CertificateNames &names);

// describe_names says what a certificate offers, for a mismatch message:
// "DNS SANs are www.example, example; URI SANs are spiffe://td/x; key sha256:ab…".
std::string describe_names(X509 *cert);

}  // namespace ssx::tls

#endif  // SSX_PROTOCOL_TLS_PEER_NAMES_HPP
