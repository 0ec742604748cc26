// SPDX-License-Identifier: Apache-2.0
// policy/validate.hpp — the checks on a table's settings that involve several keys or files.
//
// The loader checks each value on its own as it reads it (syntax, ranges, names OpenSSL knows);
// check_settings then checks what a table's settings mean together and whether the files they
// name are usable. It knows nothing of TOML: it reports the key to blame and the loader turns that
// into a FILE:LINE:COLUMN.

#ifndef SSX_POLICY_VALIDATE_HPP
#define SSX_POLICY_VALIDATE_HPP

#include <optional>
#include <span>
#include <string_view>

#include "ossl/names.hpp"
#include "policy/policy.hpp"
#include "ssx/result.hpp"

namespace ssx::policy {

// SettingsProblem is a failed check and the key it is reported at.
struct SettingsProblem {
  std::string_view key;
  Failure failure;
};

// check_settings checks |settings|, the effective settings of a table that set the keys in
// |set_here| itself (the others are inherited from [defaults], which was checked on its own).
// Only checks that involve a key in |set_here| run, so a rule that changes nothing about its
// credentials does not read them again. It checks, in this order:
//   - certificate and private_key are set together;
//   - the certificate file holds a certificate, the key file holds an unencrypted key that only
//     its owner can access, and the key belongs to the certificate;
//   - trust_bundle ("system" aside) is a readable directory or a file with a certificate;
//   - crl is a file with a CRL;
//   - with min_tls_version = "1.2", tls12_ciphers (when set) leaves a usable, encrypting and
//     authenticating TLS 1.2 suite.
// The problem's key is one of |set_here|, so it always has a position in the table.
std::optional<SettingsProblem> check_settings(const Settings &settings,
                                              std::span<const std::string_view> set_here,
                                              ossl::TlsNameChecker &names);

}  // namespace ssx::policy

#endif  // SSX_POLICY_VALIDATE_HPP
