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

#include <memory>
#include <string>

#include "base/status.h"
#include "index/chunk_store.h"
#include "index/metadata_store.h"

namespace qatq {

struct StoreOptions {
  // Open for reading only: no lock taken, no writes allowed.
  // Default: false
  bool read_only = false;
};

struct MkfsOptions {
  // Chunk size for new files, bytes; a multiple of 4, 64 KiB .. 16 MiB.
  // Default: see kDefaultChunkBytes in index/store.cc (chosen by measurement,
  // docs/STORE.md).
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
// directory): superblock, root inode, directories with mode 0700.
Status CreateStore(const std::string& path, const MkfsOptions& options);

// Opens an existing store. Busy (message names what to do) if locked.
Status OpenStore(const std::string& path, const StoreOptions& options,
                 std::unique_ptr<Store>* store);

}  // namespace qatq

#endif  // QATQ_INDEX_STORE_H_
