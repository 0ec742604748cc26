// SPDX-License-Identifier: Apache-2.0
#include "policy/validate.hpp"

#include <algorithm>

#include "ossl/credentials.hpp"

namespace ssx::policy {
namespace {

class KeySet {
 public:
  explicit KeySet(std::span<const std::string_view> keys) : keys_(keys) {}
  bool has(std::string_view key) const {
    return std::find(keys_.begin(), keys_.end(), key) != keys_.end();
  }
  // blame returns |preferred| when this table set it, else |other| (which it then must have set).
  std::string_view blame(std::string_view preferred, std::string_view other) const {
    return has(preferred) ? preferred : other;
  }

 private:
  std::span<const std::string_view> keys_;
};

std::optional<SettingsProblem> problem(std::string_view key, Result<void> result) {
  if (result) return std::nullopt;
  return SettingsProblem{key, std::move(result).error()};
}

std::optional<SettingsProblem> check_credentials(const Settings &s, const KeySet &here) {
  if (!here.has("certificate") && !here.has("private_key")) return std::nullopt;
  if (!agent_key_name(s).empty()) {
    // The agent holds the key (and serves the certificate when none is set here): only a
    // certificate named here is read, and the agent checks that it matches its key.
    if (s.certificate.empty()) return std::nullopt;
    return problem(here.blame("certificate", "private_key"),
                   ossl::check_certificate_file(s.certificate));
  }
  if (s.certificate.empty() != s.private_key.empty()) {
    const std::string_view missing = s.certificate.empty() ? "certificate" : "private_key";
    const std::string_view present = s.certificate.empty() ? "private_key" : "certificate";
    return SettingsProblem{here.blame(present, missing),
                           fail(EINVAL, std::string(present) + " is set but " +
                                            std::string(missing) + " is not; set both or neither")};
  }
  if (s.certificate.empty()) return std::nullopt;
  ossl::KeyPairPart part = ossl::KeyPairPart::both;
  auto checked = ossl::check_key_pair(s.certificate, s.private_key, &part);
  // Report a file's own problem at its key, a mismatch at the key this table changed.
  const std::string_view key = part == ossl::KeyPairPart::certificate
                                   ? here.blame("certificate", "private_key")
                                   : here.blame("private_key", "certificate");
  return problem(key, std::move(checked));
}

}  // namespace

std::optional<SettingsProblem> check_settings(const Settings &settings,
                                              std::span<const std::string_view> set_here,
                                              ossl::TlsNameChecker &names) {
  const KeySet here(set_here);
  if (auto p = check_credentials(settings, here)) return p;
  if (here.has("trust_bundle") && settings.trust_bundle != "system") {
    if (auto p = problem("trust_bundle", ossl::check_trust_bundle(settings.trust_bundle))) return p;
  }
  if (here.has("crl") && !settings.crl.empty()) {
    if (auto p = problem("crl", ossl::check_crl_file(settings.crl))) return p;
  }
  if ((here.has("min_tls_version") || here.has("tls12_ciphers")) &&
      settings.min_tls_version == TlsVersion::v1_2 && !settings.tls12_ciphers.empty()) {
    if (auto p = problem(here.blame("tls12_ciphers", "min_tls_version"),
                         names.check_tls12_usable(settings.tls12_ciphers))) {
      return p;
    }
  }
  return std::nullopt;
}

}  // namespace ssx::policy
