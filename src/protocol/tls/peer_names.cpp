// SPDX-License-Identifier: Apache-2.0
#include "protocol/tls/peer_names.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace ssx::tls {
namespace {

std::string asn1_string(const ASN1_STRING *s) {
  return std::string(reinterpret_cast<const char *>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string ip_text(const ASN1_OCTET_STRING *ip) {
  char buf[INET6_ADDRSTRLEN] = "";
  const unsigned char *bytes = ASN1_STRING_get0_data(ip);
  int len = ASN1_STRING_length(ip);
  if (len == 4) ::inet_ntop(AF_INET, bytes, buf, sizeof buf);
  if (len == 16) ::inet_ntop(AF_INET6, bytes, buf, sizeof buf);
  return buf;
}

std::string join(const std::vector<std::string> &items) {
  std::string out;
  for (const auto &item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

}  // namespace

bool certificate_matches(X509 *cert, const identity::TargetName &name) {
  using Kind = identity::TargetName::Kind;
  switch (name.kind) {
    case Kind::dns:
      // NEVER_CHECK_SUBJECT: RFC 6125 §6.4.4 — the CN is not an identifier when SANs exist, and
      // modern clients ignore it altogether.
      return X509_check_host(
                 cert, name.value.data(), name.value.size(),
                 X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                 nullptr) == 1;
    case Kind::ip:
      return X509_check_ip_asc(cert, name.value.c_str(), 0) == 1;
    case Kind::uri: {
      const auto uris = certificate_names(cert).uris;
      return std::find(uris.begin(), uris.end(), name.value) != uris.end();
    }
    case Kind::spki_pin:
      return ossl::spki_sha256_hex(cert) == name.value;
    default:
      return false;
  }
}

CertificateNames certificate_names(X509 *cert) {
  CertificateNames out;
  ossl::UniquePtr<GENERAL_NAMES> sans(
      static_cast<GENERAL_NAMES *>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans.get(), i);
    switch (gn->type) {
      case GEN_DNS:
        out.dns.push_back(asn1_string(gn->d.dNSName));
        break;
      case GEN_IPADD:
        out.ips.push_back(ip_text(gn->d.iPAddress));
        break;
      case GEN_URI:
        out.uris.push_back(asn1_string(gn->d.uniformResourceIdentifier));
        break;
      case GEN_EMAIL:
        out.emails.push_back(asn1_string(gn->d.rfc822Name));
        break;
      default:
        break;
    }
  }
  X509_NAME *subject = X509_get_subject_name(cert);
  int cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (cn >= 0)
    out.common_name = asn1_string(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn)));
  ossl::UniquePtr<BIO> mem(BIO_new(BIO_s_mem()));
  if (mem && X509_NAME_print_ex(mem.get(), subject, 0, XN_FLAG_RFC2253) >= 0) {
    char *data = nullptr;
    long len = BIO_get_mem_data(mem.get(), &data);
    out.subject.assign(data, static_cast<size_t>(len));
  }
  return out;
}

std::vector<std::string> all_names(const CertificateNames &names) {
  std::vector<std::string> out;
  auto add = [&out](const std::string &n) {
    if (!n.empty() && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  };
  for (const auto *list : {&names.dns, &names.ips, &names.uris, &names.emails}) {
    for (const auto &n : *list) add(n);
  }
  add(names.common_name);
  return out;
}

std::string principal_of(const CertificateNames &names) {
  if (!names.uris.empty()) return names.uris.front();
  if (!names.dns.empty()) return names.dns.front();
  return names.subject;
}

std::string describe_names(X509 *cert) {
  CertificateNames names = certificate_names(cert);
  std::vector<std::string> parts;
  if (!names.dns.empty()) parts.push_back("DNS SANs are " + join(names.dns));
  if (!names.ips.empty()) parts.push_back("IP SANs are " + join(names.ips));
  if (!names.uris.empty()) parts.push_back("URI SANs are " + join(names.uris));
  if (parts.empty()) parts.push_back("no DNS, IP or URI SANs (subject " + names.subject + ")");
  parts.push_back("key sha256:" + ossl::spki_sha256_hex(cert));
  std::string out;
  for (const auto &p : parts) {
    if (!out.empty()) out += "; ";
    out += p;
  }
  return out;
}

}  // namespace ssx::tls
