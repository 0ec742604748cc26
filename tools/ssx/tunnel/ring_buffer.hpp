// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/ring_buffer.hpp — the bounded buffer of one direction of one connection.
//
// Each direction holds at most kBufferSize bytes: when it is full the tunnel stops reading the
// sending side, so a peer that does not drain pushes back on the other one (TCP flow control)
// instead of growing memory. Storage comes from a per-worker pool and goes back to it whenever
// the buffer empties, so idle connections hold no buffer at all.

#ifndef SSX_TOOLS_SSX_TUNNEL_RING_BUFFER_HPP
#define SSX_TOOLS_SSX_TUNNEL_RING_BUFFER_HPP

#include <algorithm>
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

namespace ssx::cli::tunnel {

inline constexpr size_t kBufferSize = 64 * 1024;

// BufferPool recycles kBufferSize blocks within one worker (not thread-safe).
class BufferPool {
 public:
  explicit BufferPool(size_t max_cached = 16) : max_cached_(max_cached) {}
  std::unique_ptr<char[]> acquire() {
    if (free_.empty()) return std::make_unique_for_overwrite<char[]>(kBufferSize);
    auto block = std::move(free_.back());
    free_.pop_back();
    return block;
  }
  void release(std::unique_ptr<char[]> block) {
    if (block && free_.size() < max_cached_) free_.push_back(std::move(block));
  }

 private:
  size_t max_cached_;
  std::vector<std::unique_ptr<char[]>> free_;
};

class RingBuffer {
 public:
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == kBufferSize; }
  size_t size() const { return size_; }

  // writable is the contiguous free space after the data (storage taken from |pool| if needed).
  std::span<char> writable(BufferPool &pool) {
    if (!storage_) storage_ = pool.acquire();
    size_t tail = (head_ + size_) % kBufferSize;
    size_t n = tail >= head_ && size_ != kBufferSize ? kBufferSize - tail : head_ - tail;
    if (size_ == kBufferSize) n = 0;
    return {storage_.get() + tail, n};
  }
  void commit(size_t n) { size_ += n; }

  // readable is the contiguous data at the front. A send that must be retried (ssx_send's
  // EAGAIN) is retried from here with at least as many bytes: the front only moves on consume.
  std::span<const char> readable() const {
    if (size_ == 0) return {};
    return {storage_.get() + head_, std::min(size_, kBufferSize - head_)};
  }
  void consume(size_t n, BufferPool &pool) {
    head_ = (head_ + n) % kBufferSize;
    size_ -= n;
    if (size_ == 0) {
      head_ = 0;
      pool.release(std::move(storage_));
    }
  }
  void reset(BufferPool &pool) {
    head_ = size_ = 0;
    pool.release(std::move(storage_));
  }

 private:
  std::unique_ptr<char[]> storage_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_RING_BUFFER_HPP
