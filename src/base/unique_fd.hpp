// SPDX-License-Identifier: Apache-2.0
// base/unique_fd.hpp — a descriptor closed when its owner goes out of scope.

#ifndef SSX_BASE_UNIQUE_FD_HPP
#define SSX_BASE_UNIQUE_FD_HPP

#include <unistd.h>

namespace ssx::base {

// UniqueFd owns |fd| (or nothing, when negative) and closes it on destruction. Not copyable.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd &) = delete;
  UniqueFd &operator=(const UniqueFd &) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace ssx::base

#endif  // SSX_BASE_UNIQUE_FD_HPP
