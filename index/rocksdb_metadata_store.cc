// MetadataStore on one RocksDB database (default column family). Keys and
// values: index/keys.h.

#include "index/rocksdb_metadata_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string_view>
#include <vector>

#include "index/keys.h"

namespace qatq {

namespace {

std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

class RocksMetaBatch final : public MetaBatch {
 public:
  void PutSuperblock(const Superblock& sb) override {
    EncodeSuperblock(sb, &scratch_);
    Put(SuperblockKey(), scratch_);
  }
  void PutInode(const InodeAttr& attr) override {
    EncodeInode(attr, &scratch_);
    Put(InodeKey(attr.ino), scratch_);
  }
  void DeleteInode(InodeId ino) override { Delete(InodeKey(ino)); }
  void PutDirEntry(InodeId parent, const DirEntry& entry) override {
    EncodeDirEntry(entry, &scratch_);
    Put(DirEntryKey(parent, entry.name), scratch_);
  }
  void DeleteDirEntry(InodeId parent, std::string_view name) override {
    Delete(DirEntryKey(parent, name));
  }
  void PutChunkRef(InodeId ino, uint64_t index, const ChunkRef& ref) override {
    EncodeChunkRef(ref, &scratch_);
    Put(ChunkMapKey(ino, index), scratch_);
  }
  void DeleteChunkRef(InodeId ino, uint64_t index) override { Delete(ChunkMapKey(ino, index)); }
  void PutXattr(InodeId ino, std::string_view name, std::string_view value) override {
    EncodeXattrValue(value, &scratch_);
    Put(XattrKey(ino, name), scratch_);
  }
  void DeleteXattr(InodeId ino, std::string_view name) override { Delete(XattrKey(ino, name)); }
  void SetChunkRefcount(const ChunkId& id, uint64_t count) override {
    if (count == 0) {
      Delete(RefcountKey(id));
      return;
    }
    EncodeU64Value(count, &scratch_);
    Put(RefcountKey(id), scratch_);
  }
  void PutOrphan(InodeId ino) override {
    EncodeOrphanValue(&scratch_);
    Put(OrphanKey(ino), scratch_);
  }
  void DeleteOrphan(InodeId ino) override { Delete(OrphanKey(ino)); }
  void PutLastInode(InodeId ino) override {
    EncodeU64Value(ino, &scratch_);
    Put(LastInodeKey(), scratch_);
  }
  bool empty() const override { return batch_.Count() == 0; }

  rocksdb::WriteBatch* batch() { return &batch_; }
  // A WriteBatch records the first error of Put/Delete (only possible for
  // absurd sizes); Commit reports it instead of writing a partial batch.
  const rocksdb::Status& error() const { return error_; }

 private:
  void Put(const std::string& key, const std::string& value) {
    rocksdb::Status s = batch_.Put(key, value);
    if (!s.ok() && error_.ok()) error_ = s;
  }
  void Delete(const std::string& key) {
    rocksdb::Status s = batch_.Delete(key);
    if (!s.ok() && error_.ok()) error_ = s;
  }

  rocksdb::WriteBatch batch_;
  rocksdb::Status error_;
  std::string scratch_;
};

// Forward: opens the RocksDB instance itself (used at open and to reopen
// after a failed write). `recovering`: reopening after a failed write, when
// the device may be full (see Reopen).
rocksdb::Status OpenDb(const std::string& dir, const MetadataStoreOptions& options,
                       rocksdb::Env* env, bool recovering, std::unique_ptr<rocksdb::DB>* db);

// The reserve: a file of preallocated space in the index directory that a
// read-write store keeps while the device has room, and gives up when the
// index cannot be reopened after a failed write (a full device). Without
// it a device filled to the last block (by metadata, or by another tenant)
// could not take even the commit of an unlink that would free space, and
// the store would stay stuck until someone deletes files beside it.
// RocksDB ignores files whose names it does not know.
constexpr char kReserveName[] = "qatq-reserve";
// Enough for what a reopen writes without flushing (MANIFEST, OPTIONS, info
// log, a new WAL) and for many small commits; at most 1/32 of the device.
constexpr uint64_t kMaxReserveBytes = uint64_t{4} << 20;

std::string ReservePath(const std::string& dir) { return dir + "/" + kReserveName; }

// Creates the reserve file if missing and the device has at least 4 times
// its size free. Best effort: failing leaves no partial file.
void EnsureReserve(const std::string& dir) {
  const std::string path = ReservePath(dir);
  if (::access(path.c_str(), F_OK) == 0) return;
  struct statvfs v;
  if (::statvfs(dir.c_str(), &v) != 0) return;
  const uint64_t total = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
  const uint64_t avail = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  const uint64_t size = std::min(kMaxReserveBytes, total / 32);
  if (size == 0 || avail < 4 * size) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return;
  // posix_fallocate writes zeros where the filesystem cannot preallocate,
  // so the blocks are really taken either way.
  bool ok = ::posix_fallocate(fd, 0, static_cast<off_t>(size)) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok) ::unlink(path.c_str());
}

// Deletes the reserve file; true if there was one.
bool ReleaseReserve(const std::string& dir) { return ::unlink(ReservePath(dir).c_str()) == 0; }

// Bytes available to us on the device holding `dir`, or UINT64_MAX if
// unknown.
uint64_t AvailableBytes(const std::string& dir) {
  struct statvfs v;
  if (::statvfs(dir.c_str(), &v) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
}

// A flush that failed on a full device can leave its partial table behind
// (RocksDB 7.8, seen on ext4: a 16 MB .sst), and that file alone can keep
// the next open from finding room. Tables the current MANIFEST does not
// list are such leftovers; a read-only open, which writes nothing, names
// the live ones. Returns true if it deleted any.
bool RemoveLeftoverTables(const std::string& dir, const MetadataStoreOptions& options,
                          rocksdb::Env* env) {
  std::set<std::string> live;
  {
    MetadataStoreOptions ro = options;
    ro.read_only = true;
    std::unique_ptr<rocksdb::DB> db;
    if (!OpenDb(dir, ro, env, /*recovering=*/false, &db).ok()) return false;
    std::vector<rocksdb::LiveFileMetaData> files;
    db->GetLiveFilesMetaData(&files);
    for (const auto& f : files) live.insert(f.relative_filename);
    db->Close().PermitUncheckedError();
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  std::vector<std::string> leftovers;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.size() > 4 && name.substr(name.size() - 4) == ".sst" &&
        !live.count(std::string(name))) {
      leftovers.emplace_back(name);
    }
  }
  ::closedir(d);
  bool removed = false;
  for (const std::string& name : leftovers) {
    removed |= ::unlink((dir + "/" + name).c_str()) == 0;
  }
  return removed;
}

// Makes room for a writable open that failed for lack of space: deletes
// leftover tables and gives up the reserve file. True if anything was freed.
bool FreeSpaceForOpen(const std::string& dir, const MetadataStoreOptions& options,
                      rocksdb::Env* env) {
  bool freed = RemoveLeftoverTables(dir, options, env);
  freed |= ReleaseReserve(dir);
  return freed;
}

class RocksDbMetadataStore final : public MetadataStore {
 public:
  RocksDbMetadataStore(std::unique_ptr<rocksdb::DB> db, std::string dir,
                       const MetadataStoreOptions& options, rocksdb::Env* env)
      : db_(std::move(db)),
        read_only_(options.read_only),
        dir_(std::move(dir)),
        options_(options),
        env_(env) {
    options_.create_if_missing = false;
  }

  ~RocksDbMetadataStore() override {
    // Close() reports background errors we can no longer act on; the WAL
    // already holds every committed batch.
    if (db_) db_->Close().PermitUncheckedError();
  }

  RocksDbMetadataStore(const RocksDbMetadataStore&) = delete;
  RocksDbMetadataStore& operator=(const RocksDbMetadataStore&) = delete;

  Status GetSuperblock(Superblock* sb) override {
    std::string v;
    QATQ_RETURN_IF_ERROR(GetRaw(SuperblockKey(), &v));
    return DecodeSuperblock(v, sb);
  }

  Status GetLastInode(InodeId* ino) override {
    std::string v;
    Status s = GetRaw(LastInodeKey(), &v);
    if (s.IsNotFound()) {
      *ino = 0;
      return Status::OK();
    }
    QATQ_RETURN_IF_ERROR(s);
    return WithKey(DecodeU64Value(v, ino), LastInodeKey());
  }

  Status GetInode(InodeId ino, InodeAttr* attr) override {
    std::string v;
    std::string key = InodeKey(ino);
    QATQ_RETURN_IF_ERROR(GetRaw(key, &v));
    return WithKey(DecodeInode(ino, v, attr), key);
  }

  Status Lookup(InodeId parent, std::string_view name, DirEntry* entry) override {
    std::string v;
    std::string key = DirEntryKey(parent, name);
    QATQ_RETURN_IF_ERROR(GetRaw(key, &v));
    return WithKey(DecodeDirEntry(name, v, entry), key);
  }

  Status ListDir(InodeId dir, std::string_view start_after, size_t max,
                 std::vector<DirEntry>* entries) override {
    entries->clear();
    if (max == 0) return Status::OK();
    const std::string prefix = DirEntryPrefix(dir);
    const std::string start = DirEntryKey(dir, start_after);
    return Scan(start, PrefixSuccessor(prefix), [&](std::string_view k, std::string_view v) {
      InodeId parent;
      std::string_view name;
      if (!ParseDirEntryKey(k, &parent, &name)) return Malformed(k);
      if (k == start) return Status::OK();  // strictly after start_after
      DirEntry e;
      QATQ_RETURN_IF_ERROR(WithKey(DecodeDirEntry(name, v, &e), k));
      entries->push_back(std::move(e));
      return entries->size() >= max ? Stop() : Status::OK();
    });
  }

  Status DirHasEntries(InodeId dir, bool* has) override {
    *has = false;
    const std::string prefix = DirEntryPrefix(dir);
    return Scan(prefix, PrefixSuccessor(prefix), [&](std::string_view, std::string_view) {
      *has = true;
      return Stop();
    });
  }

  Status GetChunkRefs(InodeId ino, uint64_t first, uint64_t last,
                      std::vector<std::pair<uint64_t, ChunkRef>>* refs) override {
    refs->clear();
    if (first > last) return Status::OK();
    return Scan(ChunkMapKey(ino, first), PrefixSuccessor(ChunkMapPrefix(ino)),
                [&](std::string_view k, std::string_view v) {
                  InodeId key_ino;
                  uint64_t index;
                  if (!ParseChunkMapKey(k, &key_ino, &index)) return Malformed(k);
                  if (index > last) return Stop();
                  ChunkRef ref;
                  QATQ_RETURN_IF_ERROR(WithKey(DecodeChunkRef(v, &ref), k));
                  refs->emplace_back(index, ref);
                  return Status::OK();
                });
  }

  Status GetXattr(InodeId ino, std::string_view name, std::string* value) override {
    std::string v;
    std::string key = XattrKey(ino, name);
    QATQ_RETURN_IF_ERROR(GetRaw(key, &v));
    return WithKey(DecodeXattrValue(v, value), key);
  }

  Status ListXattrs(InodeId ino, std::vector<std::string>* names) override {
    names->clear();
    const std::string prefix = XattrPrefix(ino);
    return Scan(prefix, PrefixSuccessor(prefix), [&](std::string_view k, std::string_view) {
      InodeId key_ino;
      std::string_view name;
      if (!ParseXattrKey(k, &key_ino, &name)) return Malformed(k);
      names->emplace_back(name);
      return Status::OK();
    });
  }

  Status GetChunkRefcount(const ChunkId& id, uint64_t* count) override {
    std::string v;
    std::string key = RefcountKey(id);
    Status s = GetRaw(key, &v);
    if (s.IsNotFound()) {
      *count = 0;
      return Status::OK();
    }
    QATQ_RETURN_IF_ERROR(s);
    return WithKey(DecodeU64Value(v, count), key);
  }

  Status ListOrphans(std::vector<InodeId>* inodes) override {
    inodes->clear();
    const std::string prefix(1, kOrphanPrefix);
    return Scan(prefix, PrefixSuccessor(prefix), [&](std::string_view k, std::string_view v) {
      InodeId ino;
      if (!ParseOrphanKey(k, &ino)) return Malformed(k);
      QATQ_RETURN_IF_ERROR(WithKey(DecodeOrphanValue(v), k));
      inodes->push_back(ino);
      return Status::OK();
    });
  }

  Status ForEachInode(const std::function<Status(const InodeAttr&)>& fn) override {
    const std::string prefix(1, kInodePrefix);
    return Scan(prefix, PrefixSuccessor(prefix), [&](std::string_view k, std::string_view v) {
      InodeId ino;
      if (!ParseInodeKey(k, &ino)) return Malformed(k);
      InodeAttr attr;
      QATQ_RETURN_IF_ERROR(WithKey(DecodeInode(ino, v, &attr), k));
      return fn(attr);
    });
  }

  Status ForEachDirEntry(
      const std::function<Status(InodeId parent, const DirEntry&)>& fn) override {
    const std::string prefix(1, kDirEntryPrefix);
    return Scan(prefix, PrefixSuccessor(prefix), [&](std::string_view k, std::string_view v) {
      InodeId parent;
      std::string_view name;
      if (!ParseDirEntryKey(k, &parent, &name)) return Malformed(k);
      DirEntry e;
      QATQ_RETURN_IF_ERROR(WithKey(DecodeDirEntry(name, v, &e), k));
      return fn(parent, e);
    });
  }

  Status ForEachChunkRef(
      const std::function<Status(InodeId ino, uint64_t index, const ChunkRef&)>& fn) override {
    const std::string prefix(1, kChunkMapPrefix);
    return Scan(prefix, PrefixSuccessor(prefix), [&](std::string_view k, std::string_view v) {
      InodeId ino;
      uint64_t index;
      if (!ParseChunkMapKey(k, &ino, &index)) return Malformed(k);
      ChunkRef ref;
      QATQ_RETURN_IF_ERROR(WithKey(DecodeChunkRef(v, &ref), k));
      return fn(ino, index, ref);
    });
  }

  Status ForEachChunkRefcount(
      const std::function<Status(const ChunkId&, uint64_t count)>& fn) override {
    const std::string prefix(1, kRefcountPrefix);
    return Scan(prefix, PrefixSuccessor(prefix), [&](std::string_view k, std::string_view v) {
      ChunkId id;
      if (!ParseRefcountKey(k, &id)) return Malformed(k);
      uint64_t count;
      QATQ_RETURN_IF_ERROR(WithKey(DecodeU64Value(v, &count), k));
      return fn(id, count);
    });
  }

  Status ForEachRaw(
      const std::function<Status(std::string_view key, std::string_view value)>& fn) override {
    return Scan(std::string(), std::string(), fn);
  }

  std::unique_ptr<MetaBatch> NewBatch() override { return std::make_unique<RocksMetaBatch>(); }

  Status Commit(MetaBatch* batch, bool sync) override {
    auto* b = dynamic_cast<RocksMetaBatch*>(batch);
    if (b == nullptr) {
      return Status::InvalidArgument("batch was not created by this metadata store");
    }
    // Nothing to write: fine even read-only (fsync on a read-only mount).
    if (b->empty() && (!sync || read_only_)) return Status::OK();
    if (read_only_) return Status::IOError("metadata index is open read-only", EROFS);
    if (!b->error().ok()) return FromRocksDb(b->error(), "building metadata batch");
    std::lock_guard<std::mutex> w(write_mu_);
    if (failed_.load()) QATQ_RETURN_IF_ERROR(Reopen());
    std::shared_lock<std::shared_mutex> l(mu_);
    if (!db_) return Closed();
    if (b->empty()) {
      // An empty synced commit is how callers make earlier unsynced commits
      // durable (fsync).
      return Checked(db_->SyncWAL(), "syncing metadata WAL");
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return Checked(db_->Write(wo, b->batch()), "committing metadata batch");
  }

  Status Flush() override {
    if (read_only_) return Status::OK();
    std::lock_guard<std::mutex> w(write_mu_);
    if (failed_.load()) QATQ_RETURN_IF_ERROR(Reopen());
    std::shared_lock<std::shared_mutex> l(mu_);
    if (!db_) return Closed();
    // The flush only saves the next open a log replay; on a device without
    // room for the tables it would write, it would fail and could leave a
    // partial table taking the space. The synced WAL holds everything.
    uint64_t mem = 0;
    if (!db_->GetIntProperty("rocksdb.cur-size-all-mem-tables", &mem)) mem = 0;
    if (AvailableBytes(dir_) >= mem + mem / 4 + (uint64_t{4} << 20)) {
      rocksdb::FlushOptions fo;
      fo.wait = true;
      QATQ_RETURN_IF_ERROR(Checked(db_->Flush(fo), "flushing metadata index"));
    }
    return Checked(db_->SyncWAL(), "syncing metadata WAL");
  }

 private:
  // A status that ends a scan early without being an error.
  static Status Stop() { return Status::NotFound("\x01stop"); }
  static bool IsStop(const Status& s) { return s.IsNotFound() && s.message() == "\x01stop"; }

  static Status Malformed(std::string_view key) {
    return Status::Corruption("malformed key in metadata index: " + DescribeKey(key));
  }

  static Status WithKey(const Status& s, std::string_view key) {
    if (s.ok()) return s;
    return s.WithContext(DescribeKey(key));
  }

  // The status of a write through db_; an I/O error or corruption marks
  // the instance failed, so the next write reopens it first.
  // REQUIRES: write_mu_ held.
  Status Checked(const rocksdb::Status& s, const std::string& context) {
    Status result = FromRocksDb(s, context);
    if (!s.ok() && (s.IsIOError() || s.IsCorruption())) {
      last_write_errno_.store(result.posix_errno() != 0 ? result.posix_errno() : EIO);
      failed_.store(true);
    }
    return result;
  }

  // After a failed write RocksDB 7.8 must not write again through the same
  // instance: its WAL writer keeps the error, and the next append, memtable
  // switch or Resume() through it aborts the process (an assertion in
  // WritableFileWriter; seen on a full device). Closing and reopening
  // replays the WAL: the failed batch comes back entirely (its record
  // reached the log) or not at all (torn record dropped), so atomicity
  // holds either way.
  //
  // On a full device the reopen itself may fail (it writes a MANIFEST and a
  // new WAL): then the reserve file is given up and the open retried. If
  // it still fails, a read-only instance keeps reads working (stat, readdir
  // and reads of committed data) and the next write tries again.
  // REQUIRES: write_mu_ held.
  Status Reopen() {
    std::unique_lock<std::shared_mutex> l(mu_);
    if (!failed_.load()) return Status::OK();
    if (db_) {
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
    rocksdb::Status s = OpenDb(dir_, options_, env_, /*recovering=*/true, &db_);
    if (!s.ok()) {
      db_.reset();
      if (FreeSpaceForOpen(dir_, options_, env_)) {
        s = OpenDb(dir_, options_, env_, /*recovering=*/true, &db_);
      }
    }
    if (!s.ok()) {
      db_.reset();
      MetadataStoreOptions ro = options_;
      ro.read_only = true;
      if (!OpenDb(dir_, ro, env_, /*recovering=*/false, &db_).ok()) db_.reset();
      return Status::IOError(
          "metadata index could not be reopened after a failed write: " + s.ToString(),
          s.IsNoSpace() ? ENOSPC : last_write_errno_.load());
    }
    failed_.store(false);
    EnsureReserve(dir_);
    return Status::OK();
  }

  Status Closed() const {
    return Status::IOError("metadata index is closed after a failed write",
                           last_write_errno_.load());
  }

  Status GetRaw(const std::string& key, std::string* value) {
    std::shared_lock<std::shared_mutex> l(mu_);
    if (!db_) return Closed();
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, value);
    if (s.IsNotFound()) return Status::NotFound(DescribeKey(key) + " not found");
    return FromRocksDb(s, "reading " + DescribeKey(key));
  }

  // Calls fn(key, value) for keys in [start, upper) in order until fn
  // returns non-OK; Stop() ends the scan with OK.
  Status Scan(const std::string& start, const std::string& upper,
              const std::function<Status(std::string_view, std::string_view)>& fn) {
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper_slice(upper);
    if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
    // Held for the whole scan: fn may read (shared again) but must not
    // Commit, which could need the exclusive lock to reopen.
    std::shared_lock<std::shared_mutex> l(mu_);
    if (!db_) return Closed();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(start); it->Valid(); it->Next()) {
      Status s = fn(ToView(it->key()), ToView(it->value()));
      if (IsStop(s)) return Status::OK();
      if (!s.ok()) return s;
    }
    return FromRocksDb(it->status(), "scanning metadata index");
  }

  // Writes are serialized so that none reaches an instance after its
  // failure (Checked marks it before the next write starts).
  // Lock order: write_mu_ -> mu_.
  std::mutex write_mu_;
  // Readers and writers hold mu_ shared; Reopen holds it exclusive.
  std::shared_mutex mu_;
  // GUARDED_BY(mu_). Read-only while failed_ if the read-write reopen
  // failed; null if no instance could be opened.
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<bool> failed_{false};  // a write failed; reopen before the next
  std::atomic<int> last_write_errno_{EIO};
  const bool read_only_;
  const std::string dir_;
  MetadataStoreOptions options_;
  rocksdb::Env* const env_;
};

// Read-only opens must not write: RocksDB's default info log would rotate
// the LOG of the process that has the index open for writing (and fails on
// read-only media).
class NullLogger final : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

// RocksDB's own info log writer aborts the process (an assertion in
// WritableFileWriter, enabled in distribution builds) when it writes again
// after a failed write, which a full device causes. This one appends to
// DIR/LOG with plain write(2) and drops what cannot be written; past 4 MiB
// LOG becomes LOG.old (so at most 8 MiB of logs).
class InfoLogFile final : public rocksdb::Logger {
 public:
  explicit InfoLogFile(const std::string& dir) : path_(dir + "/LOG") {
    std::lock_guard<std::mutex> l(mu_);
    struct stat st;
    if (::stat(path_.c_str(), &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
    OpenLocked();
  }
  ~InfoLogFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char buf[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = std::snprintf(buf, sizeof buf, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                          tm.tm_sec, ts.tv_nsec / 1000);
    if (n < 0) return;
    int m = std::vsnprintf(buf + n, sizeof buf - n - 1, format, ap);
    if (m < 0) return;
    size_t len = std::min(sizeof buf - 2, static_cast<size_t>(n) + static_cast<size_t>(m));
    if (buf[len - 1] != '\n') buf[len++] = '\n';
    std::lock_guard<std::mutex> l(mu_);
    if (fd_ < 0) return;
    ssize_t w = ::write(fd_, buf, len);
    if (w > 0) size_ += static_cast<uint64_t>(w);
    // On a full device the line is lost, nothing else.
    if (size_ > kMaxBytes) OpenLocked();
  }

 private:
  static constexpr uint64_t kMaxBytes = 4 << 20;

  // Opens LOG for appending, first renaming a full one to LOG.old.
  void OpenLocked() {
    if (fd_ >= 0) ::close(fd_);
    if (size_ > kMaxBytes && ::rename(path_.c_str(), (path_ + ".old").c_str()) == 0) size_ = 0;
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }

  const std::string path_;
  std::mutex mu_;
  int fd_ = -1;        // GUARDED_BY(mu_)
  uint64_t size_ = 0;  // GUARDED_BY(mu_)
};

// RocksDB's automatic recovery from a background "no space" error resumes
// writing through the same WAL writer, which aborts (see Reopen); the store
// recovers by reopening instead.
class NoAutoRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

rocksdb::Options MakeOptions(const MetadataStoreOptions& options, rocksdb::Env* env,
                             bool recovering) {
  rocksdb::Options o;
  o.create_if_missing = options.create_if_missing;
  if (env != nullptr) o.env = env;
  // Refuse to open on any detected corruption rather than silently dropping
  // data: fsck and a human decide what to do.
  o.paranoid_checks = true;
  // The index is small (~100 bytes per chunk): keep descriptors, memory and
  // info logs bounded on a machine also running the codec.
  o.max_open_files = 512;
  o.write_buffer_size = 16 << 20;
  o.max_write_buffer_number = 3;
  o.max_background_jobs = 2;
  o.keep_log_file_num = 4;
  o.max_log_file_size = 4 << 20;
  o.recycle_log_file_num = 0;
  o.listeners.push_back(std::make_shared<NoAutoRecovery>());
  if (recovering) {
    // A reopen on a full device must not need room for an SST of the
    // replayed log: keep it in a memtable large enough to hold it (3 full
    // memtables) until a later flush, when space has been freed. Costs
    // memory only until the next mount.
    o.avoid_flush_during_recovery = true;
    o.write_buffer_size = 64 << 20;
  }
  rocksdb::BlockBasedTableOptions t;
  // Point lookups dominate (getattr, lookup, refcounts): a bloom filter
  // avoids touching SSTs that do not hold the key.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  t.block_cache = rocksdb::NewLRUCache(32 << 20);
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  t.format_version = 5;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

}  // namespace

Status FromRocksDb(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::OK();
  std::string msg = context + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsNotSupported()) return Status::NotSupported(msg);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return Status::Busy(msg);
  if (s.IsIOError()) {
    const std::string text = s.ToString();
    if (text.find("lock file") != std::string::npos ||
        text.find("lock hold") != std::string::npos) {
      return Status::Busy(msg);
    }
    if (s.IsNoSpace()) return Status::IOError(msg, ENOSPC);
    return Status::IOError(msg, EIO);
  }
  return Status::IOError(msg, EIO);
}

namespace {
rocksdb::Status OpenDb(const std::string& dir, const MetadataStoreOptions& options,
                       rocksdb::Env* env, bool recovering, std::unique_ptr<rocksdb::DB>* db) {
  rocksdb::Options o = MakeOptions(options, env, recovering);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (options.read_only) {
    o.create_if_missing = false;
    o.info_log = std::make_shared<NullLogger>();
    s = rocksdb::DB::OpenForReadOnly(o, dir, &raw);
  } else {
    o.info_log = std::make_shared<InfoLogFile>(dir);
    s = rocksdb::DB::Open(o, dir, &raw);
  }
  db->reset(raw);
  return s;
}
}  // namespace

Status OpenRocksDbMetadataStoreWithEnv(const std::string& dir, const MetadataStoreOptions& options,
                                       rocksdb::Env* env, std::unique_ptr<MetadataStore>* store) {
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::Status s = OpenDb(dir, options, env, /*recovering=*/false, &db);
  if (!s.ok() && !options.read_only && s.IsNoSpace()) {
    // Mounting a full store: make room, and open without flushing.
    db.reset();
    if (FreeSpaceForOpen(dir, options, env)) {
      s = OpenDb(dir, options, env, /*recovering=*/true, &db);
    }
  }
  if (!s.ok()) return FromRocksDb(s, "opening metadata index " + dir);
  if (!options.read_only) EnsureReserve(dir);
  store->reset(new RocksDbMetadataStore(std::move(db), dir, options, env));
  return Status::OK();
}

Status OpenRocksDbMetadataStore(const std::string& dir, const MetadataStoreOptions& options,
                                std::unique_ptr<MetadataStore>* store) {
  return OpenRocksDbMetadataStoreWithEnv(dir, options, nullptr, store);
}

}  // namespace qatq
