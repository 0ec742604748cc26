// SPDX-License-Identifier: Apache-2.0
// capi/info_block.hpp — lays out a query Report as one malloc'd ssx_security_info.
//
// One allocation holds the struct, the peer_names pointer array and every string, so the caller
// frees it all with one ssx_free_security_info (free(3)) and nothing can dangle or leak.

#ifndef SSX_CAPI_INFO_BLOCK_HPP
#define SSX_CAPI_INFO_BLOCK_HPP

#include "core/secure_socket.hpp"
#include "ssx/ssx.h"

namespace ssx::capi {

// make_info_block returns a new block for |report|, or null when out of memory.
ssx_security_info *make_info_block(const core::Report &report);

}  // namespace ssx::capi

#endif  // SSX_CAPI_INFO_BLOCK_HPP
