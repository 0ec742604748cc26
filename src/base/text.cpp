// SPDX-License-Identifier: Apache-2.0
#include "base/text.hpp"

#include <algorithm>

namespace ssx::base {

std::string quote(std::string_view text, std::size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  // The bound is on what the message gets, escapes included: a value of control bytes would
  // otherwise grow fourfold (\xNN) past it.
  const std::size_t limit = max_bytes + 1;  // + the opening quote
  std::string out = "\"";
  out.reserve(std::min(text.size(), max_bytes) + 5);
  std::size_t char_start = out.size();  // where the current UTF-8 character began in |out|
  bool cut = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool continuation = (u & 0xC0) == 0x80;
    if (!continuation) char_start = out.size();
    char escaped[4];
    std::size_t n = 0;
    switch (c) {
      case '"':
      case '\\':
        escaped[n++] = '\\';
        escaped[n++] = c;
        break;
      case '\n':
        escaped[n++] = '\\';
        escaped[n++] = 'n';
        break;
      case '\t':
        escaped[n++] = '\\';
        escaped[n++] = 't';
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          escaped[n++] = '\\';
          escaped[n++] = 'x';
          escaped[n++] = kHex[u >> 4];
          escaped[n++] = kHex[u & 0xf];
        } else {
          escaped[n++] = c;
        }
    }
    if (out.size() + n > limit) {
      // Never split a character: drop the part of it already copied.
      if (continuation) out.resize(char_start);
      cut = true;
      break;
    }
    out.append(escaped, n);
  }
  out += cut ? "...\"" : "\"";
  return out;
}

std::string file_mode(unsigned mode) {
  std::string out = "0000";
  mode &= 07777;
  for (int i = 3; i >= 0; --i, mode >>= 3)
    out[static_cast<std::size_t>(i)] = static_cast<char>('0' + (mode & 7));
  return out;
}

}  // namespace ssx::base
