// SPDX-License-Identifier: Apache-2.0
// ssx/result.hpp — the C++ result type of the ssx API.
//
// Result<T> holds either a value or a Failure: a standard errno value plus a human-readable
// reason. Its members are named after C++23's std::expected (has_value, value, error, value_or,
// and_then) so that code moves to std::expected unchanged once ssx builds as C++23; g++ 12 has no
// <expected> in C++20 mode.
//
// value() on a failed Result throws ssx::Error, a std::system_error whose code() is the errno in
// std::generic_category() and whose what() is the reason. Results are plain values: copyable when
// T is, safe to pass between threads, and never shared.

#ifndef SSX_RESULT_HPP
#define SSX_RESULT_HPP

#include <cerrno>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace ssx {

// Failure is why an operation failed: |code| is a standard errno value (EACCES, EKEYREJECTED, …;
// see docs/errors.md), |message| the reason in words, the same text that ssx_last_error()
// returns, and |reason| the enum ssx_reason value that ssx_last_error_reason() returns
// (SSX_REASON_NONE, 0, when not known: the C API then derives it from |code|).
struct Failure {
  int code = EIO;
  std::string message;
  int reason = 0;
};

// Error is what Result<T>::value() throws on failure.
class Error : public std::system_error {
 public:
  explicit Error(const Failure &failure)
      : std::system_error(failure.code, std::generic_category(), failure.message),
        reason_(failure.message) {}
  // reason returns the message without the " : <strerror>" suffix system_error appends.
  const std::string &reason() const noexcept { return reason_; }

 private:
  std::string reason_;
};

// fail builds a Failure; `return fail(EINVAL, "why");` reads well in functions returning Result.
inline Failure fail(int code, std::string message) {
  return Failure{code, std::move(message)};
}
// fail(code, reason, message) also names the enum ssx_reason.
inline Failure fail(int code, int reason, std::string message) {
  return Failure{code, std::move(message), reason};
}
// fail(code, reason) has no message of its own: ssx_last_error() then returns the reason's
// static description, and building the Failure allocates nothing (the EAGAIN path).
inline Failure fail(int code, int reason) noexcept {
  return Failure{code, std::string(), reason};
}

template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(T value)
      : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Failure failure) : state_(std::in_place_index<1>, std::move(failure)) {}  // NOLINT

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // value returns the value, or throws ssx::Error when this holds a Failure.
  T &value() & {
    check();
    return std::get<0>(state_);
  }
  const T &value() const & {
    check();
    return std::get<0>(state_);
  }
  T &&value() && {
    check();
    return std::get<0>(std::move(state_));
  }

  // operator* and operator-> require has_value(), like std::expected's (unchecked, noexcept).
  T &operator*() &noexcept { return *std::get_if<0>(&state_); }
  const T &operator*() const &noexcept { return *std::get_if<0>(&state_); }
  T &&operator*() &&noexcept { return std::move(*std::get_if<0>(&state_)); }
  T *operator->() noexcept { return std::get_if<0>(&state_); }
  const T *operator->() const noexcept { return std::get_if<0>(&state_); }

  // error returns the Failure; requires !has_value().
  const Failure &error() const &noexcept { return *std::get_if<1>(&state_); }
  Failure &&error() &&noexcept { return std::move(*std::get_if<1>(&state_)); }

  template <class U>
  T value_or(U &&fallback) const & {
    return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
  }

  // and_then calls f(value) and returns its Result, or passes this Failure on.
  template <class F>
  auto and_then(F &&f) & -> std::invoke_result_t<F, T &> {
    if (has_value()) return std::forward<F>(f)(std::get<0>(state_));
    return error();
  }
  template <class F>
  auto and_then(F &&f) && -> std::invoke_result_t<F, T &&> {
    if (has_value()) return std::forward<F>(f)(std::get<0>(std::move(state_)));
    return std::move(*this).error();
  }

 private:
  void check() const {
    if (!has_value()) throw Error(std::get<1>(state_));
  }
  std::variant<T, Failure> state_;
};

// Result<void> is success or a Failure.
template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;

  Result() = default;
  Result(Failure failure)
      : failure_(std::move(failure)), ok_(false) {}  // NOLINT: implicit by design

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  void value() const {
    if (!ok_) throw Error(failure_);
  }
  const Failure &error() const &noexcept { return failure_; }
  Failure &&error() &&noexcept { return std::move(failure_); }

  template <class F>
  auto and_then(F &&f) const -> std::invoke_result_t<F> {
    if (ok_) return std::forward<F>(f)();
    return failure_;
  }

 private:
  Failure failure_;
  bool ok_ = true;
};

}  // namespace ssx

#endif  // SSX_RESULT_HPP
