// SPDX-License-Identifier: Apache-2.0
// base/text.hpp — small text helpers for messages.

#ifndef SSX_BASE_TEXT_HPP
#define SSX_BASE_TEXT_HPP

#include <string>
#include <string_view>

namespace ssx::base {

// kQuotedPrefix is how much of a value a "too long" message quotes: enough to recognise it.
inline constexpr std::size_t kQuotedPrefix = 64;

// quote returns |text| in double quotes for a message; it is the one way ssx puts a value from
// outside (a file, an application, a peer) into a message, so that no value can make a message
// unbounded. Quotes, backslashes and control characters
// are escaped (\", \\, \n, \t, \xNN), so a value read from a file cannot forge extra lines in a
// log. The bound counts the escapes: when the quoted text would pass |max_bytes| it is cut at a
// UTF-8 character boundary and ends in "...", so the result is at most |max_bytes| + 5 bytes.
std::string quote(std::string_view text, std::size_t max_bytes = 200);

// file_mode returns the permission bits of |mode| as chmod spells them, e.g. "0644".
std::string file_mode(unsigned mode);

}  // namespace ssx::base

#endif  // SSX_BASE_TEXT_HPP
