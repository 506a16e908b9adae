// `qatqfs stats`: what a store holds and how well it compressed, in the
// manner of btrfs compsize. Works on a mounted store (read-only open of the
// index) or an unmounted one.
#ifndef QATQ_FS_STORE_STATS_H_
#define QATQ_FS_STORE_STATS_H_

#include <cstdint>
#include <map>
#include <string>

#include "base/status.h"
#include "index/metadata_store.h"

namespace qatq {

struct StoreStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t logical_bytes = 0;     // sum of regular file sizes
  uint64_t referenced_bytes = 0;  // raw bytes of all chunk references
  uint64_t chunk_refs = 0;
  uint64_t unique_chunks = 0;
  uint64_t unique_raw_bytes = 0;
  uint64_t stored_bytes = 0;  // record bytes of unique chunks
  struct PerStrategy {
    uint64_t chunks = 0;  // unique
    uint64_t raw_bytes = 0;
    uint64_t stored_bytes = 0;
  };
  std::map<std::string, PerStrategy> strategies;
  std::map<std::string, uint64_t> files_by_dtype;
  uint32_t default_chunk_bytes = 0;
};

Status ComputeStoreStats(MetadataStore* meta, StoreStats* stats);

// Human-readable table, or one JSON object when json is set.
std::string FormatStoreStats(const StoreStats& stats, bool json);

}  // namespace qatq

#endif  // QATQ_FS_STORE_STATS_H_
