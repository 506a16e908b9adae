// Store: one qatqfs store directory, opened for use.
//
//   STORE/
//     LOCK        flock()ed by the process that has the store open for writing
//     index/      RocksDB metadata index (index/metadata_store.h)
//     chunks/     chunk objects (index/chunk_store.h)
//
// `qatqfs mkfs STORE` creates one (CreateStore); mounting opens it
// (OpenStore) and refuses stores that are missing, of an unknown format
// version, corrupt (no superblock) or locked by another process.
//
// Thread-safety: a Store is safe for concurrent use; it owns its
// MetadataStore and ChunkStore.
#ifndef QATQ_INDEX_STORE_H_
#define QATQ_INDEX_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "index/chunk_store.h"
#include "index/metadata_store.h"

namespace qatq {

// Chunk size of new stores when MkfsOptions::chunk_bytes is 0. The one
// place this default lives; docs/STORE.md records how it was chosen.
inline constexpr uint32_t kDefaultChunkBytes = 1u << 20;
// Accepted range of MkfsOptions::chunk_bytes (and of a superblock's
// default_chunk_bytes); values must also be multiples of 4.
inline constexpr uint32_t kMinChunkBytes = 64u << 10;
inline constexpr uint32_t kMaxChunkBytes = 16u << 20;

struct StoreOptions {
  // Open for reading only: no lock taken, no writes allowed.
  // Default: false
  bool read_only = false;
  // Tests: if set, called once with the opened chunk store; the Store uses
  // (and owns) what it returns, e.g. a FaultInjectionChunkStore wrapping it
  // (index/fault_injection_chunk_store.h).
  // Default: empty
  std::function<std::unique_ptr<ChunkStore>(std::unique_ptr<ChunkStore>)> wrap_chunks;
};

struct MkfsOptions {
  // Chunk size for new files, bytes; a multiple of 4, 64 KiB .. 16 MiB.
  // Default: 0 = kDefaultChunkBytes (chosen by measurement, docs/STORE.md).
  uint32_t chunk_bytes = 0;
  // Owner of the root directory.
  uint32_t root_uid = 0;
  uint32_t root_gid = 0;
  uint32_t root_mode = 0755;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual MetadataStore* meta() = 0;
  virtual ChunkStore* chunks() = 0;
  virtual const Superblock& superblock() const = 0;
  virtual const std::string& path() const = 0;
  virtual bool read_only() const = 0;
};

// Creates a new, empty store at `path` (which must not exist or be an empty
// directory; its parent must exist): superblock, root inode, directories
// with mode 0700, LOCK 0600. The superblock, the root inode and the last
// inode number are one RocksDB batch, so a crash during mkfs leaves either
// a complete store or a directory OpenStore refuses as "not a store".
// InvalidArgument for a bad chunk size or a non-empty directory.
Status CreateStore(const std::string& path, const MkfsOptions& options);

// Opens an existing store; on success *store owns it (closing it releases
// the lock). Errors:
//   NotFound         `path` does not exist
//   InvalidArgument  `path` is not a directory or has no index/
//   Corruption       the index has no superblock (not a store / mkfs died)
//   NotSupported     the store's format version is not kStoreFormatVersion
//   Busy             another process (or another Store object in this
//                    process) has it open for writing
Status OpenStore(const std::string& path, const StoreOptions& options,
                 std::unique_ptr<Store>* store);

}  // namespace qatq

#endif  // QATQ_INDEX_STORE_H_
