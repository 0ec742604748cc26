// SPDX-License-Identifier: Apache-2.0
// testlib/sanitized.hpp — SSX_TEST_SANITIZED is 1 in ASan and TSan builds, else 0.
//
// Sanitizers make ssx several times slower and larger (ASan's shadow memory and quarantine), so
// tests that also bound time or memory scale those bounds in sanitized builds. Sanitized builds
// check memory and thread safety; the normal build checks the performance bounds.

#ifndef SSX_TESTLIB_SANITIZED_HPP
#define SSX_TESTLIB_SANITIZED_HPP

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SSX_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SSX_TEST_SANITIZED 1
#endif
#endif
#ifndef SSX_TEST_SANITIZED
#define SSX_TEST_SANITIZED 0
#endif

#endif  // SSX_TESTLIB_SANITIZED_HPP
