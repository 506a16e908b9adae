#include "fs/buffer_pool.h"

namespace qatq {

std::shared_ptr<BufferPool> BufferPool::Create(size_t max_free, size_t max_bytes) {
  return std::shared_ptr<BufferPool>(new BufferPool(max_free, max_bytes));
}

std::shared_ptr<std::string> BufferPool::Acquire(size_t size) {
  std::unique_ptr<std::string> buffer;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!free_.empty()) {
      buffer = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (!buffer) buffer = std::make_unique<std::string>();
  // Same-size reuse (whole chunks) neither fills nor reallocates.
  buffer->resize(size);
  auto self = shared_from_this();
  return std::shared_ptr<std::string>(buffer.release(),
                                      [self](std::string* b) { self->Release(b); });
}

void BufferPool::Release(std::string* buffer) {
  std::unique_ptr<std::string> owned(buffer);
  if (owned->capacity() > max_bytes_) return;
  std::lock_guard<std::mutex> l(mu_);
  if (free_.size() < max_free_) free_.push_back(std::move(owned));
}

size_t BufferPool::free_count() {
  std::lock_guard<std::mutex> l(mu_);
  return free_.size();
}

}  // namespace qatq
