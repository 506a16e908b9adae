#include "index/fault_injection_chunk_store.h"

#include <cstring>
#include <vector>

namespace qatq {

namespace {
const char* OpName(ChunkStoreOp op) {
  switch (op) {
    case ChunkStoreOp::kPut:
      return "Put";
    case ChunkStoreOp::kGet:
      return "Get";
    case ChunkStoreOp::kSync:
      return "Sync";
    case ChunkStoreOp::kExists:
      return "Exists";
    case ChunkStoreOp::kDelete:
      return "Delete";
    case ChunkStoreOp::kForEach:
      return "ForEach";
    case ChunkStoreOp::kCapacity:
      return "Capacity";
  }
  return "?";
}
}  // namespace

FaultInjectionChunkStore::FaultInjectionChunkStore(std::unique_ptr<ChunkStore> base)
    : owned_(std::move(base)), base_(owned_.get()) {}

FaultInjectionChunkStore::FaultInjectionChunkStore(ChunkStore* base) : base_(base) {}

FaultInjectionChunkStore::~FaultInjectionChunkStore() = default;

void FaultInjectionChunkStore::FailNth(ChunkStoreOp op, uint64_t n, int err) {
  std::lock_guard<std::mutex> l(mu_);
  rules_[static_cast<int>(op)] = Rule{n, false, err};
}

void FaultInjectionChunkStore::FailAlways(ChunkStoreOp op, int err) {
  std::lock_guard<std::mutex> l(mu_);
  rules_[static_cast<int>(op)] = Rule{0, true, err};
}

void FaultInjectionChunkStore::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  for (Rule& r : rules_) r = Rule{};
}

uint64_t FaultInjectionChunkStore::calls(ChunkStoreOp op) const {
  std::lock_guard<std::mutex> l(mu_);
  return calls_[static_cast<int>(op)];
}

uint64_t FaultInjectionChunkStore::injected(ChunkStoreOp op) const {
  std::lock_guard<std::mutex> l(mu_);
  return injected_[static_cast<int>(op)];
}

Status FaultInjectionChunkStore::Check(ChunkStoreOp op) {
  std::lock_guard<std::mutex> l(mu_);
  const int i = static_cast<int>(op);
  ++calls_[i];
  Rule& r = rules_[i];
  bool fail = false;
  if (r.always) {
    fail = true;
  } else if (r.countdown > 0) {
    if (--r.countdown == 0) fail = true;
  }
  if (!fail) return Status::OK();
  ++injected_[i];
  return Status::IOError(
      std::string("injected ") + OpName(op) + " failure: " + std::strerror(r.err), r.err);
}

Status FaultInjectionChunkStore::Put(const ChunkId& id, std::string_view record) {
  QATQ_RETURN_IF_ERROR(Check(ChunkStoreOp::kPut));
  // An object that already existed (and is not itself pending) stays
  // durable: Put of an existing id writes nothing.
  bool existed = false;
  QATQ_RETURN_IF_ERROR(base_->Exists(id, &existed));
  QATQ_RETURN_IF_ERROR(base_->Put(id, record));
  std::lock_guard<std::mutex> l(mu_);
  if (!existed) unsynced_.insert(id);
  return Status::OK();
}

Status FaultInjectionChunkStore::Sync() {
  QATQ_RETURN_IF_ERROR(Check(ChunkStoreOp::kSync));
  std::set<ChunkId> pending;
  {
    std::lock_guard<std::mutex> l(mu_);
    pending = unsynced_;
  }
  QATQ_RETURN_IF_ERROR(base_->Sync());
  std::lock_guard<std::mutex> l(mu_);
  // Only what was pending when Sync began is now durable.
  for (const ChunkId& id : pending) unsynced_.erase(id);
  return Status::OK();
}

Status FaultInjectionChunkStore::Get(const ChunkId& id, std::string* record) {
  QATQ_RETURN_IF_ERROR(Check(ChunkStoreOp::kGet));
  return base_->Get(id, record);
}

Status FaultInjectionChunkStore::Exists(const ChunkId& id, bool* exists) {
  QATQ_RETURN_IF_ERROR(Check(ChunkStoreOp::kExists));
  return base_->Exists(id, exists);
}

Status FaultInjectionChunkStore::Delete(const ChunkId& id) {
  QATQ_RETURN_IF_ERROR(Check(ChunkStoreOp::kDelete));
  QATQ_RETURN_IF_ERROR(base_->Delete(id));
  std::lock_guard<std::mutex> l(mu_);
  unsynced_.erase(id);
  return Status::OK();
}

Status FaultInjectionChunkStore::ForEach(
    const std::function<Status(const ChunkId&, uint64_t size)>& fn) {
  QATQ_RETURN_IF_ERROR(Check(ChunkStoreOp::kForEach));
  return base_->ForEach(fn);
}

Status FaultInjectionChunkStore::Capacity(uint64_t* total_bytes, uint64_t* free_bytes) {
  QATQ_RETURN_IF_ERROR(Check(ChunkStoreOp::kCapacity));
  return base_->Capacity(total_bytes, free_bytes);
}

Status FaultInjectionChunkStore::DropUnsynced() {
  std::set<ChunkId> drop;
  {
    std::lock_guard<std::mutex> l(mu_);
    drop.swap(unsynced_);
  }
  for (const ChunkId& id : drop) QATQ_RETURN_IF_ERROR(base_->Delete(id));
  return Status::OK();
}

}  // namespace qatq
