// A bounded free list of byte buffers for decoded chunks. A chunk decoded
// into fresh memory pays a page fault and a kernel zero fill per 4 KiB, and
// std::string's own zero fill on resize: about a fifth of the daemon's CPU
// in a cold sequential read (perf, 1 MiB chunks). Buffers handed out here
// come back when the last shared_ptr to them is dropped (the cache evicted
// the chunk and no reply still points into it), already faulted in and
// sized, so the next decode writes straight into them.
//
// Thread-safety: safe for concurrent use. A buffer may outlive the pool's
// owner: each one keeps the pool alive until it is released.
#ifndef QATQ_FS_BUFFER_POOL_H_
#define QATQ_FS_BUFFER_POOL_H_

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace qatq {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // Keeps at most max_free released buffers (each at most max_bytes of
  // capacity; larger ones are freed).
  static std::shared_ptr<BufferPool> Create(size_t max_free, size_t max_bytes);

  // A buffer of size() == size, contents unspecified: a released buffer
  // when one is free, else a new one.
  std::shared_ptr<std::string> Acquire(size_t size);

  size_t free_count();

 private:
  BufferPool(size_t max_free, size_t max_bytes) : max_free_(max_free), max_bytes_(max_bytes) {}
  void Release(std::string* buffer);

  const size_t max_free_;
  const size_t max_bytes_;
  std::mutex mu_;
  std::vector<std::unique_ptr<std::string>> free_;  // guarded by mu_
};

}  // namespace qatq

#endif  // QATQ_FS_BUFFER_POOL_H_
