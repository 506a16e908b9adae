// A size-bounded LRU cache of decoded chunks, keyed by content address.
// Because keys are content hashes, an entry never goes stale: a rewritten
// chunk has a new id.
//
// Thread-safety: safe for concurrent use.
#ifndef QATQ_FS_CHUNK_CACHE_H_
#define QATQ_FS_CHUNK_CACHE_H_

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "index/types.h"

namespace qatq {

class ChunkCache {
 public:
  using Value = std::shared_ptr<const std::string>;

  // capacity_bytes = 0 disables caching (Insert drops everything).
  explicit ChunkCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // nullptr on a miss.
  Value Lookup(const ChunkId& id);
  bool Contains(const ChunkId& id);
  void Insert(const ChunkId& id, Value value);

  size_t charge() {
    std::lock_guard<std::mutex> l(mu_);
    return charge_;
  }

 private:
  struct Entry {
    ChunkId id;
    Value value;
  };
  void EvictLocked();

  const size_t capacity_;
  std::mutex mu_;
  size_t charge_ = 0;
  std::list<Entry> lru_;  // front = most recent
  std::unordered_map<ChunkId, std::list<Entry>::iterator, ChunkIdHash> map_;
};

}  // namespace qatq

#endif  // QATQ_FS_CHUNK_CACHE_H_
