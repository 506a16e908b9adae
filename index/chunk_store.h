// ChunkStore: where chunk objects (QATC v3 chunk records, codec/chunk_record.h)
// live, addressed by ChunkId. The embedded implementation keeps one file per
// object under STORE/chunks/; a distributed one maps the same calls onto
// RADOS or S3 objects. The store never interprets the bytes: callers verify
// records (VerifyChunkRecord) after Get.
//
// Thread-safety: implementations are safe for concurrent use.
// Durability contract: after Put(..) returns and Sync() has returned, the
// object survives a crash or power loss. The filesystem relies on this to
// commit index entries only after the objects they name are durable.
#ifndef QATQ_INDEX_CHUNK_STORE_H_
#define QATQ_INDEX_CHUNK_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "index/types.h"

namespace qatq {

class ChunkStore {
 public:
  virtual ~ChunkStore() = default;

  // Stores `record` under `id`, replacing nothing: if an object with this id
  // exists the call succeeds without writing (content addressing). The data
  // is written and fdatasync'ed; the directory entry becomes durable at the
  // next Sync() (also when the object already existed). IOError carries
  // ENOSPC/EIO from the OS; a failed Put leaves no partial object.
  virtual Status Put(const ChunkId& id, std::string_view record) = 0;

  // Makes every object Put so far durable (directory entries synced).
  virtual Status Sync() = 0;

  // Reads the whole object. NotFound if absent.
  virtual Status Get(const ChunkId& id, std::string* record) = 0;

  // Like Put of an existing object, an Exists that finds the object makes
  // the next Sync() cover it, so "Exists() true, then Sync()" guarantees it
  // is durable even if another thread wrote it and has not synced yet.
  virtual Status Exists(const ChunkId& id, bool* exists) = 0;

  // Removes the object; OK if it did not exist.
  virtual Status Delete(const ChunkId& id) = 0;

  // Calls fn for every object (order unspecified); stops at the first
  // non-OK status from fn and returns it. Unparseable names are skipped.
  virtual Status ForEach(const std::function<Status(const ChunkId&, uint64_t size)>& fn) = 0;

  // Capacity of the device holding the objects (for statfs).
  virtual Status Capacity(uint64_t* total_bytes, uint64_t* free_bytes) = 0;
};

struct FileChunkStoreOptions {
  // Open without creating or cleaning anything; Put/Delete fail with
  // IOError(EROFS).
  // Default: false
  bool read_only = false;
  // Delete leftover files in DIR/tmp/ at open. Only the process that holds
  // the store lock (the daemon, mkfs, fsck) may: another writer beside a
  // running daemon (`qatqfs import`) would delete the daemon's objects in
  // flight. Temp names carry the writer's pid, so writers never collide.
  // Default: true
  bool remove_stale_tmp = true;
  // Bytes kept free on the device for the metadata index, which shares it:
  // a Put that would leave less fails with IOError(ENOSPC), and Capacity()
  // does not count them as free. A full disk then stops data writes while
  // the index can still commit what frees space (unlink, truncate) and the
  // unmount's last commit. kAutoReserve: capacity / 16, at most 16 MiB
  // (as much as one RocksDB memtable flush writes).
  // Default: kAutoReserve
  static constexpr uint64_t kAutoReserve = UINT64_MAX;
  uint64_t reserve_bytes = kAutoReserve;
};

// One file per object: DIR/xx/<32 hex digits>, where xx are the first two
// hex digits. Objects are written to DIR/tmp/, fdatasync'ed and renamed into
// place, so a crash leaves only complete objects (and tmp files that Open
// removes). Files and directories are created 0600/0700 whatever the umask.
// DIR and DIR/tmp are created if missing. Put of an id whose object exists
// with the same size writes nothing; with a different size (a damaged
// object) it replaces the object. Get refuses objects larger than any
// valid record (Corruption) instead of allocating for them.
Status OpenFileChunkStore(const std::string& dir, const FileChunkStoreOptions& options,
                          std::unique_ptr<ChunkStore>* store);
// Same with default options.
Status OpenFileChunkStore(const std::string& dir, std::unique_ptr<ChunkStore>* store);

// An in-memory store for tests.
std::unique_ptr<ChunkStore> NewMemChunkStore();

}  // namespace qatq

#endif  // QATQ_INDEX_CHUNK_STORE_H_
