// SPDX-License-Identifier: Apache-2.0
// tools/ssx/agentd/pkcs11.hpp — private keys in PKCS#11 tokens, through libp11.
//
// A [[key]]'s private_key may be an RFC 7512 URI (policy/values.hpp checks its syntax):
//   pkcs11:token=LABEL;object=LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/ssx/pin
// token= picks the token by label (else the first token), object= and/or id= the private key,
// module-path= the PKCS#11 module (required: no default module), pin-value= or
// pin-source=file:PATH the user PIN (the file's first line). The key never leaves the token: the
// agent gets a handle whose signatures the token makes.
//
// A module is loaded once per path for the life of the agent (reloading would C_Finalize the
// module under keys still in use); tokens are logged in once.
//
// Thread safety: not thread safe; the agent is single-threaded.

#ifndef SSX_TOOLS_SSX_AGENTD_PKCS11_HPP
#define SSX_TOOLS_SSX_AGENTD_PKCS11_HPP

#include <string>

#include "ossl/ossl.hpp"
#include "ssx/result.hpp"

namespace ssx::cli::agent_daemon {

// available reports whether this build has PKCS#11 support (libp11).
bool pkcs11_available();

// load_pkcs11_key returns the private key |uri| names. Errors name the URI's part at fault.
Result<ossl::UniquePtr<EVP_PKEY>> load_pkcs11_key(const std::string &uri);

}  // namespace ssx::cli::agent_daemon

#endif  // SSX_TOOLS_SSX_AGENTD_PKCS11_HPP
