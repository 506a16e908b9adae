#include "fs/chunk_cache.h"

namespace qatq {

ChunkCache::Value ChunkCache::Lookup(const ChunkId& id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = map_.find(id);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->value;
}

bool ChunkCache::Contains(const ChunkId& id) {
  std::lock_guard<std::mutex> l(mu_);
  return map_.count(id) != 0;
}

void ChunkCache::Insert(const ChunkId& id, Value value) {
  if (!value || value->size() > capacity_) return;
  std::lock_guard<std::mutex> l(mu_);
  auto it = map_.find(id);
  if (it != map_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  charge_ += value->size();
  lru_.push_front(Entry{id, std::move(value)});
  map_[id] = lru_.begin();
  EvictLocked();
}

void ChunkCache::EvictLocked() {
  while (charge_ > capacity_ && !lru_.empty()) {
    Entry& e = lru_.back();
    charge_ -= e.value->size();
    map_.erase(e.id);
    lru_.pop_back();
  }
}

}  // namespace qatq
