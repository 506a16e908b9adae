// MetadataStore: the filesystem's index (inodes, directory entries, per-file
// chunk maps, xattrs, chunk reference counts, orphans, superblock). Reads are
// point lookups and ordered scans; every change goes through a MetaBatch and
// Commit(), which applies it atomically: one RocksDB WriteBatch is the commit
// point of the filesystem. The embedded implementation is RocksDB
// (index/rocksdb_metadata_store.cc); the key space is documented in
// index/keys.h and docs/STORE.md. A PostgreSQL implementation can provide the
// same contract with one transaction per Commit.
//
// Thread-safety: all methods may be called concurrently. Commit() is atomic
// but not serializable with respect to earlier reads: callers that
// read-modify-write (reference counts, inode counters) serialize that
// themselves (the filesystem core holds its commit mutex).
#ifndef QATQ_INDEX_METADATA_STORE_H_
#define QATQ_INDEX_METADATA_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "index/types.h"

namespace qatq {

// DO NOT CHANGE: stored in the superblock; bump on incompatible changes.
inline constexpr uint32_t kStoreFormatVersion = 1;

struct Superblock {
  uint32_t format_version = kStoreFormatVersion;
  // Chunk size for new files, bytes (a multiple of 4).
  uint32_t default_chunk_bytes = 0;
  uint64_t created_ns = 0;
  std::string uuid;  // 36-char text form
};

// A set of changes applied atomically by MetadataStore::Commit.
// Not thread-safe; owned by one caller.
class MetaBatch {
 public:
  virtual ~MetaBatch() = default;

  virtual void PutSuperblock(const Superblock& sb) = 0;
  virtual void PutInode(const InodeAttr& attr) = 0;
  // Removes the inode record only (not its chunk map or xattrs).
  virtual void DeleteInode(InodeId ino) = 0;
  virtual void PutDirEntry(InodeId parent, const DirEntry& entry) = 0;
  virtual void DeleteDirEntry(InodeId parent, std::string_view name) = 0;
  virtual void PutChunkRef(InodeId ino, uint64_t index, const ChunkRef& ref) = 0;
  virtual void DeleteChunkRef(InodeId ino, uint64_t index) = 0;
  virtual void PutXattr(InodeId ino, std::string_view name, std::string_view value) = 0;
  virtual void DeleteXattr(InodeId ino, std::string_view name) = 0;
  // Sets the reference count of a chunk object; 0 deletes the count record.
  virtual void SetChunkRefcount(const ChunkId& id, uint64_t count) = 0;
  // Orphans: inodes with nlink 0 still open; reclaimed on the next mount if
  // the daemon dies before they are released.
  virtual void PutOrphan(InodeId ino) = 0;
  virtual void DeleteOrphan(InodeId ino) = 0;
  // Highest inode number ever allocated (persisted so numbers are not reused).
  virtual void PutLastInode(InodeId ino) = 0;

  virtual bool empty() const = 0;
};

struct MetadataStoreOptions {
  // Create the database if missing (mkfs). Opening an existing store with
  // this set is allowed.
  // Default: false
  bool create_if_missing = false;
  // Open without taking RocksDB's write lock (fsck of a read-only mount,
  // stats of a mounted store).
  // Default: false
  bool read_only = false;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  virtual Status GetSuperblock(Superblock* sb) = 0;
  virtual Status GetLastInode(InodeId* ino) = 0;  // 0 if never set

  // NotFound if absent.
  virtual Status GetInode(InodeId ino, InodeAttr* attr) = 0;
  virtual Status Lookup(InodeId parent, std::string_view name, DirEntry* entry) = 0;
  // Up to `max` entries of `dir` with name > start_after, in name order.
  virtual Status ListDir(InodeId dir, std::string_view start_after, size_t max,
                         std::vector<DirEntry>* entries) = 0;
  // True if `dir` has at least one entry.
  virtual Status DirHasEntries(InodeId dir, bool* has) = 0;

  // Chunk map entries with first <= index <= last, in index order.
  virtual Status GetChunkRefs(InodeId ino, uint64_t first, uint64_t last,
                              std::vector<std::pair<uint64_t, ChunkRef>>* refs) = 0;

  virtual Status GetXattr(InodeId ino, std::string_view name, std::string* value) = 0;
  virtual Status ListXattrs(InodeId ino, std::vector<std::string>* names) = 0;

  // 0 if the chunk has no count record.
  virtual Status GetChunkRefcount(const ChunkId& id, uint64_t* count) = 0;

  virtual Status ListOrphans(std::vector<InodeId>* inodes) = 0;

  // Full scans for fsck and stats. fn returning non-OK stops the scan.
  virtual Status ForEachInode(const std::function<Status(const InodeAttr&)>& fn) = 0;
  virtual Status ForEachDirEntry(
      const std::function<Status(InodeId parent, const DirEntry&)>& fn) = 0;
  virtual Status ForEachChunkRef(
      const std::function<Status(InodeId ino, uint64_t index, const ChunkRef&)>& fn) = 0;
  virtual Status ForEachChunkRefcount(
      const std::function<Status(const ChunkId&, uint64_t count)>& fn) = 0;

  // Every key/value pair in key order, undecoded (keys and values as in
  // index/keys.h): lets fsck report an undecodable entry and go on instead
  // of stopping at it. fn must not Commit. Default: NotSupported.
  virtual Status ForEachRaw(
      const std::function<Status(std::string_view key, std::string_view value)>& fn) {
    (void)fn;
    return Status::NotSupported("raw scans are not supported by this metadata store");
  }

  virtual std::unique_ptr<MetaBatch> NewBatch() = 0;
  // Applies `batch` atomically. sync = true makes it durable (WAL fsync)
  // before returning; an empty batch with sync = true makes every earlier
  // commit durable. IOError on failure; then nothing of the batch is
  // visible, and the store reopens its database before the next commit.
  // After a crash a failed batch is either wholly applied or not at all, so
  // callers must not delete chunk objects the failed batch referenced.
  virtual Status Commit(MetaBatch* batch, bool sync) = 0;

  // Flushes memtables and syncs the WAL (clean unmount).
  virtual Status Flush() = 0;
};

// Opens (or with options.create_if_missing creates) the RocksDB index in
// directory `dir`. Busy if another process holds it open for writing.
Status OpenRocksDbMetadataStore(const std::string& dir, const MetadataStoreOptions& options,
                                std::unique_ptr<MetadataStore>* store);

}  // namespace qatq

#endif  // QATQ_INDEX_METADATA_STORE_H_
