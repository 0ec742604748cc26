// base/text.hpp — small text helpers for messages.

#ifndef SSX_BASE_TEXT_HPP
#define SSX_BASE_TEXT_HPP

#include <string>
#include <string_view>

namespace ssx::base {

// quote returns |text| in double quotes for a message. Quotes, backslashes and control characters
// are escaped (\", \\, \n, \t, \xNN), so a value read from a file cannot forge extra lines in a
// log; text longer than |max_bytes| is cut at a UTF-8 character boundary and ends in "...".
std::string quote(std::string_view text, std::size_t max_bytes = 200);

// file_mode returns the permission bits of |mode| as chmod spells them, e.g. "0644".
std::string file_mode(unsigned mode);

}  // namespace ssx::base

#endif  // SSX_BASE_TEXT_HPP
