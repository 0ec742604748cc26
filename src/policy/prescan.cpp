// SPDX-License-Identifier: Apache-2.0
// The pre-scan (prescan.hpp): one pass over the text with TOML 1.0's lexical rules, counting the
// nesting depth the parsed document would have. No recursion and no allocation that grows with
// the input beyond a stack of at most kMaxPolicyNesting frames.
//
// The scanner must never take structure for string content (or it would under-count), so it
// follows the string and comment rules exactly. Where the text stops being valid TOML, toml++
// stops at its first error, so all that matters there is that the scanner counted no less than
// toml++ built up to that point; the scanner ignores brackets it does not expect, which keeps
// the depth it counted.

#include "policy/prescan.hpp"

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

namespace ssx::policy {
namespace {

class Scanner {
 public:
  Scanner(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  Result<void> run();

 private:
  enum class Mode { key, header, value };
  struct Frame {
    bool table = false;  // an inline table (else an array)
    int base = 0;        // the level of the values (arrays) or keys (tables) inside
  };

  bool at_end() const { return pos_ >= text_.size(); }
  char peek(std::size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  // advance consumes one byte and keeps the line and column (in code points) of the next one.
  void advance() {
    const auto c = static_cast<unsigned char>(text_[pos_++]);
    if (c == '\n') {
      ++line_;
      column_ = 1;
    } else if (pos_ >= text_.size() || (static_cast<unsigned char>(text_[pos_]) & 0xC0) != 0x80) {
      ++column_;  // the next byte starts a character
    }
  }
  int base() const { return frames_.empty() ? header_level_ : frames_.back().base; }

  void skip_comment() {
    while (!at_end() && peek() != '\n') advance();
  }
  void skip_string(bool multi_line);
  Failure too_deep() const;

  // check fails when |level| exceeds the limit, blaming the character at the current position.
  Result<void> check(int level) const {
    if (level > kMaxPolicyNesting) return too_deep();
    return {};
  }

  std::string_view text_;
  std::string_view source_;
  std::size_t pos_ = 0;
  std::uint32_t line_ = 1;
  std::uint32_t column_ = 1;

  Mode mode_ = Mode::key;
  int header_level_ = 0;  // segments of the table header in force
  int segments_ = 0;      // segments of the key (or header) being read; 0 before it starts
  int value_level_ = 0;   // the level of the value being read
  std::vector<Frame> frames_;
};

Failure Scanner::too_deep() const {
  return fail(EINVAL, std::string(source_) + ":" + std::to_string(line_) + ":" +
                          std::to_string(column_) + ": nesting deeper than " +
                          std::to_string(kMaxPolicyNesting) +
                          " levels (table header segments, dotted key segments, arrays and "
                          "inline tables together); a policy needs at most 4");
}

// skip_string consumes a string that starts at the current position. Basic strings ('"') take
// escapes, so \" does not end them; literal strings (''') do not. A single-line string ends at
// its quote or before a newline (an error toml++ reports); a multi-line one ends at three quotes,
// and up to two more quotes right after them belong to its content (TOML 1.0).
void Scanner::skip_string(bool multi_line) {
  const char quote = peek();
  const bool basic = quote == '"';
  for (int i = 0; i < (multi_line ? 3 : 1); ++i) advance();
  while (!at_end()) {
    const char c = peek();
    if (basic && c == '\\') {
      advance();
      if (!at_end() && (multi_line || peek() != '\n')) advance();
      continue;
    }
    if (!multi_line) {
      if (c == '\n') return;
      advance();
      if (c == quote) return;
      continue;
    }
    if (c == quote && peek(1) == quote && peek(2) == quote) {
      for (int i = 0; i < 3; ++i) advance();
      for (int extra = 0; extra < 2 && peek() == quote; ++extra) advance();
      return;
    }
    advance();
  }
}

Result<void> Scanner::run() {
  if (text_.size() > kMaxPolicyBytes) {
    return fail(EFBIG, std::string(source_) + ": policy is larger than 1 MiB (" +
                           std::to_string(text_.size()) + " bytes)");
  }
  while (!at_end()) {
    const char c = peek();
    if (c == '\n') {
      advance();
      if (frames_.empty()) {  // a new line at the top level starts a key or a header
        mode_ = Mode::key;
        segments_ = 0;
      }
      continue;
    }
    if (c == '#') {
      skip_comment();
      continue;
    }
    if (c == '"' || c == '\'') {
      // Keys and headers take only single-line strings: """ there is an empty key and then an
      // error for toml++, never the start of a multi-line string.
      const bool multi_line = mode_ == Mode::value && peek(1) == c && peek(2) == c;
      if (mode_ != Mode::value && segments_ == 0) {
        segments_ = 1;
        if (auto r = check(base() + segments_); !r) return r;
      }
      skip_string(multi_line);
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      advance();
      continue;
    }
    switch (mode_) {
      case Mode::header:
        if (c == '.') {
          if (auto r = check(++segments_); !r) return r;
        } else if (c == ']') {
          header_level_ = segments_;
          value_level_ = header_level_;
          mode_ = Mode::value;  // only "]", a comment or the end of the line may follow
        }
        break;
      case Mode::key:
        if (c == '[' && frames_.empty() && segments_ == 0) {
          mode_ = Mode::header;
          segments_ = 1;
          if (peek(1) == '[') advance();  // [[array of tables]]
          if (auto r = check(segments_); !r) return r;
        } else if (c == '=') {
          value_level_ = base() + (segments_ == 0 ? 1 : segments_);
          mode_ = Mode::value;
        } else if (c == '.') {
          if (auto r = check(base() + ++segments_); !r) return r;
        } else if (c == ',' && !frames_.empty() && frames_.back().table) {
          segments_ = 0;
        } else if (c == '}' && !frames_.empty() && frames_.back().table) {
          frames_.pop_back();  // "{}" or a trailing comma: toml++ decides whether it is valid
          mode_ = Mode::value;
          value_level_ = base();
        } else if (segments_ == 0) {
          segments_ = 1;
          if (auto r = check(base() + segments_); !r) return r;
        }
        break;
      case Mode::value:
        if (c == '[' || c == '{') {
          const bool table = c == '{';
          if (auto r = check(value_level_ + 1); !r) return r;
          frames_.push_back(Frame{table, value_level_ + 1});
          value_level_ += 1;
          if (table) {
            mode_ = Mode::key;
            segments_ = 0;
          }
        } else if (!frames_.empty() && c == (frames_.back().table ? '}' : ']')) {
          frames_.pop_back();
          value_level_ = base();
        } else if (c == ',' && !frames_.empty()) {
          if (frames_.back().table) {
            mode_ = Mode::key;
            segments_ = 0;
          } else {
            value_level_ = frames_.back().base;
          }
        }
        break;
    }
    advance();
  }
  return {};
}

}  // namespace

Result<void> prescan_policy(std::string_view text, std::string_view source) {
  return Scanner(text, source).run();
}

}  // namespace ssx::policy
