// SPDX-License-Identifier: Apache-2.0
// identity/impersonation.hpp — the calling thread acts as a peer's local account, and back.
//
// This is the only code in ssx that changes credentials. It changes the *effective* uid, gid and
// supplementary groups of the calling thread only (the real and saved uid stay, so the thread can
// return), which makes the kernel's own access checks — open(2), connect(2) on AF_UNIX paths,
// and so on — apply to the peer's account.

#ifndef SSX_IDENTITY_IMPERSONATION_HPP
#define SSX_IDENTITY_IMPERSONATION_HPP

#include "identity/account.hpp"
#include "ssx/result.hpp"

namespace ssx::identity {

// impersonate switches the calling thread to |account|. EBUSY if the thread already
// impersonates; EPERM naming the missing capability (CAP_SETGID, CAP_SETUID) when the process
// lacks it; on any other failure the thread's credentials are restored before returning.
Result<void> impersonate(const Account &account);

// revert restores exactly the credentials the thread had before impersonate; does nothing when
// the thread is not impersonating. A failure leaves the thread impersonating (callers that cannot
// continue safely must abort).
Result<void> revert();

// impersonating reports whether the calling thread currently impersonates.
bool impersonating();

}  // namespace ssx::identity

#endif  // SSX_IDENTITY_IMPERSONATION_HPP
