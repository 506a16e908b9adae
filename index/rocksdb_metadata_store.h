// Internals of the RocksDB MetadataStore that tests and tools may need; the
// public entry point is OpenRocksDbMetadataStore (index/metadata_store.h).
#ifndef QATQ_INDEX_ROCKSDB_METADATA_STORE_H_
#define QATQ_INDEX_ROCKSDB_METADATA_STORE_H_

#include <memory>
#include <string>

#include "base/status.h"
#include "index/metadata_store.h"

namespace rocksdb {
class Env;
class Status;
}  // namespace rocksdb

namespace qatq {

// As OpenRocksDbMetadataStore, with RocksDB file I/O routed through `env`
// (not owned; must outlive the store). nullptr = rocksdb::Env::Default().
// Used by tests to inject WAL write failures.
Status OpenRocksDbMetadataStoreWithEnv(const std::string& dir, const MetadataStoreOptions& options,
                                       rocksdb::Env* env, std::unique_ptr<MetadataStore>* store);

// Maps a RocksDB status onto ours: IOError keeps ENOSPC when RocksDB says
// "no space", lock failures become Busy.
Status FromRocksDb(const rocksdb::Status& s, const std::string& context);

}  // namespace qatq

#endif  // QATQ_INDEX_ROCKSDB_METADATA_STORE_H_
