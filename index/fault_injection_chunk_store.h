// A ChunkStore wrapper that fails chosen calls, for tests of the layers above
// (filesystem write path, fsck): "the 3rd Put fails with ENOSPC", "every
// Sync fails with EIO". It also remembers which objects were Put since the
// last successful Sync, so a test can simulate a crash that loses them
// (DropUnsynced), the way leveldb's fault_injection_test drops unsynced data.
//
// Thread-safety: safe for concurrent use, like the wrapped store.
#ifndef QATQ_INDEX_FAULT_INJECTION_CHUNK_STORE_H_
#define QATQ_INDEX_FAULT_INJECTION_CHUNK_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>

#include "index/chunk_store.h"

namespace qatq {

enum class ChunkStoreOp : uint8_t { kPut = 0, kGet, kSync, kExists, kDelete, kForEach, kCapacity };
inline constexpr int kNumChunkStoreOps = 7;

class FaultInjectionChunkStore final : public ChunkStore {
 public:
  // Wraps `base`, which it owns.
  explicit FaultInjectionChunkStore(std::unique_ptr<ChunkStore> base);
  // Wraps `base`, which must outlive this object.
  explicit FaultInjectionChunkStore(ChunkStore* base);
  ~FaultInjectionChunkStore() override;

  FaultInjectionChunkStore(const FaultInjectionChunkStore&) = delete;
  FaultInjectionChunkStore& operator=(const FaultInjectionChunkStore&) = delete;

  // The n-th call of `op` from now (n >= 1) fails with IOError(err) without
  // reaching the wrapped store; later calls succeed again. Replaces any
  // earlier rule for `op`.
  void FailNth(ChunkStoreOp op, uint64_t n, int err);
  // Every call of `op` from now fails with IOError(err) until Clear().
  void FailAlways(ChunkStoreOp op, int err);
  // Removes all failure rules.
  void Clear();

  // Calls of `op` seen so far (failed ones included).
  uint64_t calls(ChunkStoreOp op) const;
  // Calls of `op` that were failed on purpose.
  uint64_t injected(ChunkStoreOp op) const;

  // Deletes from the wrapped store every object Put since the last
  // successful Sync(): what a power loss could do to the file store.
  Status DropUnsynced();

  ChunkStore* base() const { return base_; }

  Status Put(const ChunkId& id, std::string_view record) override;
  Status Sync() override;
  Status Get(const ChunkId& id, std::string* record) override;
  Status Exists(const ChunkId& id, bool* exists) override;
  Status Delete(const ChunkId& id) override;
  Status ForEach(const std::function<Status(const ChunkId&, uint64_t size)>& fn) override;
  Status Capacity(uint64_t* total_bytes, uint64_t* free_bytes) override;

 private:
  struct Rule {
    uint64_t countdown = 0;  // fail when it reaches 1; 0 = no rule
    bool always = false;
    int err = 0;
  };

  // Counts the call and returns the injected failure, if any.
  Status Check(ChunkStoreOp op);

  std::unique_ptr<ChunkStore> owned_;
  ChunkStore* const base_;
  mutable std::mutex mu_;
  Rule rules_[kNumChunkStoreOps];              // GUARDED_BY(mu_)
  uint64_t calls_[kNumChunkStoreOps] = {};     // GUARDED_BY(mu_)
  uint64_t injected_[kNumChunkStoreOps] = {};  // GUARDED_BY(mu_)
  std::set<ChunkId> unsynced_;                 // GUARDED_BY(mu_)
};

}  // namespace qatq

#endif  // QATQ_INDEX_FAULT_INJECTION_CHUNK_STORE_H_
