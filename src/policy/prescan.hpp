// SPDX-License-Identifier: Apache-2.0
// policy/prescan.hpp — bounds a policy text before any TOML parser sees it.
//
// toml++ recurses once per level of nesting, and it limits only arrays and inline tables (to 256
// levels), not the segments of a dotted key or a table header: "[a.a.a.…]" with 40,000 segments
// overflows an 8 MiB stack inside the parser. prescan_policy reads the text once, with the
// lexical rules of TOML 1.0 (basic, literal and multi-line strings with their escapes, comments,
// table headers, keys, arrays, inline tables), and refuses it when it is larger than
// kMaxPolicyBytes or nests deeper than kMaxPolicyNesting, so toml++ only ever sees shallow input.
//
// Nesting counts every level the parsed document would have at a point: the segments of the
// current table header, the segments of each key on the way down (dotted keys, inside inline
// tables too), and each array and inline table. "[[rule]]\npeer_names = [\"x\"]" is 3 levels.
// The scanner errs towards counting too much on text that is not valid TOML (toml++ would
// reject that text anyway); on valid TOML it counts what toml++ builds.
//
// With these limits the whole loader runs in 64 KiB of stack; tests/unit/policy proves it by
// loading the deepest inputs the limits allow on a thread with a 64 KiB stack.

#ifndef SSX_POLICY_PRESCAN_HPP
#define SSX_POLICY_PRESCAN_HPP

#include <cstddef>
#include <string_view>

#include "ssx/result.hpp"

namespace ssx::policy {

// kMaxPolicyBytes bounds a policy's size: 1 MiB is far more than any real policy needs.
inline constexpr std::size_t kMaxPolicyBytes = std::size_t{1} << 20;

// kMaxPolicyNesting bounds the nesting depth defined above. A real policy needs 3.
inline constexpr int kMaxPolicyNesting = 16;

// prescan_policy returns nothing when |text| is within the limits above. Otherwise it fails with
// EFBIG and "SOURCE: policy is larger than 1 MiB (N bytes)" for a text that is too large, or with
// EINVAL and "SOURCE:LINE:COLUMN: …" naming the first character that nests too deep. Lines and
// columns count from 1, columns in characters (UTF-8 code points), as toml++ counts them.
Result<void> prescan_policy(std::string_view text, std::string_view source);

}  // namespace ssx::policy

#endif  // SSX_POLICY_PRESCAN_HPP
