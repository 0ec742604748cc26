// SPDX-License-Identifier: Apache-2.0
// ossl/credentials.hpp — checks that certificate, key, trust and CRL files are usable.
//
// The policy loader calls these so that a policy naming a missing, unreadable, mismatched or
// badly protected credential is rejected when it is loaded, not at the first handshake. They read
// PEM only. Messages name the file and the reason (strerror text for system errors) and never
// contain key material: a key's bytes are wiped from memory once parsed.
//
// Files are opened with O_NONBLOCK and must be regular files, so a FIFO or device named by
// mistake cannot hang the loader. Size limit: 16 MiB per file.
//
// Thread safety: every function is safe to call from any thread.

#ifndef SSX_OSSL_CREDENTIALS_HPP
#define SSX_OSSL_CREDENTIALS_HPP

#include <string>

#include "ssx/result.hpp"

namespace ssx::ossl {

// check_certificate_file succeeds when |path| holds at least one PEM certificate. Errors:
// "cannot read certificate "PATH": STRERROR" (with that errno), or EINVAL with
// "certificate "PATH" contains no PEM certificate".
Result<void> check_certificate_file(const std::string &path);

// check_private_key_file succeeds when |path| is a PEM private key that only its owner may
// access (mode & 077 == 0). Errors: "cannot read private key "PATH": STRERROR" (errno);
// EACCES "private key "PATH" is accessible by group or others (mode 0644); run: chmod 600 "PATH"";
// EINVAL "private key "PATH" is encrypted; ssx needs an unencrypted key" or
// "private key "PATH" contains no PEM private key".
Result<void> check_private_key_file(const std::string &path);

// KeyPairPart names the file a failed check_key_pair is about.
enum class KeyPairPart { certificate, private_key, both };

// check_key_pair runs both checks above, reading each file once, and then X509_check_private_key
// on the first certificate of |certificate_path|: EKEYREJECTED "private key "KEY" does not match
// certificate "CERT"". On failure, |*out_part| (when not null) says which file is to blame
// (|both| for a mismatch).
Result<void> check_key_pair(const std::string &certificate_path, const std::string &key_path,
                            KeyPairPart *out_part = nullptr);

// check_trust_bundle succeeds when |path| is a readable directory (an OpenSSL hashed-certificate
// directory; its contents are not checked) or a file holding at least one PEM certificate.
// Errors: "cannot read trust bundle "PATH": STRERROR"; EINVAL "trust bundle "PATH" contains no
// PEM certificate".
Result<void> check_trust_bundle(const std::string &path);

// check_crl_file succeeds when |path| holds at least one PEM CRL. Errors:
// "cannot read CRL "PATH": STRERROR"; EINVAL "CRL "PATH" contains no PEM CRL".
Result<void> check_crl_file(const std::string &path);

}  // namespace ssx::ossl

#endif  // SSX_OSSL_CREDENTIALS_HPP
