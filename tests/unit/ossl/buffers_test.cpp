// SPDX-License-Identifier: Apache-2.0
// free_buffers_is_safe: SSL_free_buffers is only used where it cannot free a half-read record.

#include <gtest/gtest.h>

#include "ossl/ossl.hpp"

namespace ssx::ossl {
namespace {

TEST(FreeBuffersIsSafe, FollowsTheReleasesThatFixedCve20244741) {
  EXPECT_FALSE(free_buffers_is_safe_in(3, 0, 0));
  EXPECT_FALSE(free_buffers_is_safe_in(3, 0, 13));
  EXPECT_TRUE(free_buffers_is_safe_in(3, 0, 14));
  EXPECT_FALSE(free_buffers_is_safe_in(3, 1, 5));
  EXPECT_TRUE(free_buffers_is_safe_in(3, 1, 6));
  EXPECT_FALSE(free_buffers_is_safe_in(3, 2, 1));
  EXPECT_TRUE(free_buffers_is_safe_in(3, 2, 2));
  EXPECT_FALSE(free_buffers_is_safe_in(3, 3, 0));
  EXPECT_TRUE(free_buffers_is_safe_in(3, 3, 1));
  EXPECT_TRUE(free_buffers_is_safe_in(3, 4, 0));
  EXPECT_TRUE(free_buffers_is_safe_in(4, 0, 0));
  EXPECT_FALSE(free_buffers_is_safe_in(1, 1, 1));
}

TEST(FreeBuffersIsSafe, MatchesTheRunningOpenSsl) {
  EXPECT_EQ(free_buffers_is_safe(),
            free_buffers_is_safe_in(OPENSSL_version_major(), OPENSSL_version_minor(),
                                    OPENSSL_version_patch()));
}

}  // namespace
}  // namespace ssx::ossl
