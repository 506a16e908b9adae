// ChunkStore in memory, for tests: same contract as the file store, with
// every Put immediately "durable".

#include <map>
#include <mutex>

#include "index/chunk_store.h"

namespace qatq {

namespace {

class MemChunkStore final : public ChunkStore {
 public:
  Status Put(const ChunkId& id, std::string_view record) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = objects_.find(id);
    if (it != objects_.end() && it->second.size() == record.size()) return Status::OK();
    objects_[id] = std::string(record);
    return Status::OK();
  }

  Status Sync() override { return Status::OK(); }

  Status Get(const ChunkId& id, std::string* record) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = objects_.find(id);
    if (it == objects_.end()) return Status::NotFound("chunk object " + id.ToHex() + " not found");
    *record = it->second;
    return Status::OK();
  }

  Status Exists(const ChunkId& id, bool* exists) override {
    std::lock_guard<std::mutex> l(mu_);
    *exists = objects_.count(id) != 0;
    return Status::OK();
  }

  Status Delete(const ChunkId& id) override {
    std::lock_guard<std::mutex> l(mu_);
    objects_.erase(id);
    return Status::OK();
  }

  Status ForEach(const std::function<Status(const ChunkId&, uint64_t size)>& fn) override {
    // Snapshot so fn may call back into the store (fsck deletes orphans).
    std::map<ChunkId, uint64_t> sizes;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& [id, rec] : objects_) sizes.emplace(id, rec.size());
    }
    for (const auto& [id, size] : sizes) QATQ_RETURN_IF_ERROR(fn(id, size));
    return Status::OK();
  }

  Status Capacity(uint64_t* total_bytes, uint64_t* free_bytes) override {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t used = 0;
    for (const auto& [id, rec] : objects_) used += rec.size();
    constexpr uint64_t kTotal = uint64_t{1} << 40;
    *total_bytes = kTotal;
    *free_bytes = used < kTotal ? kTotal - used : 0;
    return Status::OK();
  }

 private:
  std::mutex mu_;
  std::map<ChunkId, std::string> objects_;  // GUARDED_BY(mu_)
};

}  // namespace

std::unique_ptr<ChunkStore> NewMemChunkStore() { return std::make_unique<MemChunkStore>(); }

}  // namespace qatq
