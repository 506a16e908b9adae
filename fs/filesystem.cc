#include "fs/filesystem.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <xxhash.h>

#include "codec/chunk_record.h"
#include "fs/buffer_pool.h"
#include "fs/chunk_cache.h"
#include "fs/dtype_detect.h"
#include "fs/log.h"
#include "fs/worker_pool.h"

namespace qatq {

// ---------------------------------------------------------------------------
// ReadBuffer

namespace {
// Holes and bytes past a chunk's end are served from here.
constexpr size_t kZeroPage = 1u << 20;
const char* ZeroPage() {
  static const char* zeros = new char[kZeroPage]();
  return zeros;
}
}  // namespace

void ReadBuffer::Append(std::shared_ptr<const std::string> owner, std::string_view slice) {
  if (slice.empty()) return;
  if (owner) owners_.push_back(std::move(owner));
  slices_.push_back(slice);
  size_ += slice.size();
}

void ReadBuffer::AppendZeros(size_t n) {
  while (n > 0) {
    size_t k = std::min(n, kZeroPage);
    Append(nullptr, std::string_view(ZeroPage(), k));
    n -= k;
  }
}

void ReadBuffer::CopyTo(std::string* out) const {
  out->clear();
  out->reserve(size_);
  for (std::string_view s : slices_) out->append(s);
}

void ReadBuffer::Clear() {
  owners_.clear();
  slices_.clear();
  size_ = 0;
}

namespace {

constexpr uint64_t kNoFloor = UINT64_MAX;
constexpr std::string_view kDTypeXattr = "user.qatq.dtype";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsZero(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    if (v) return false;
    p += 8;
    n -= 8;
  }
  while (n--) {
    if (*p++) return false;
  }
  return true;
}

Status NameCheck(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return Status::Posix(EINVAL, "bad name");
  if (name.size() > 255) return Status::Posix(ENAMETOOLONG, "name too long");
  if (name.find('/') != std::string_view::npos) return Status::Posix(EINVAL, "slash in name");
  return Status::OK();
}

// Changes to one inode's chunk map: staged in a MetaBatch together with the
// reference-count deltas they imply, and applied to the in-memory map once
// that batch is committed.
struct ChunkMapEdit {
  ChunkMapEdit(MetaBatch* b, InodeId i) : batch(b), ino(i) {}
  MetaBatch* const batch;
  const InodeId ino;
  std::map<ChunkId, int64_t> deltas;
  std::map<ChunkId, uint32_t> sizes;  // stored_len per object, for the stats
  std::map<uint64_t, std::optional<ChunkRef>> changes;

  // Points chunk `index` at `ref` (nullopt: a hole) in place of its entry in
  // `committed`, if any.
  void Set(const std::map<uint64_t, ChunkRef>& committed, uint64_t index,
           const std::optional<ChunkRef>& ref) {
    auto old = committed.find(index);
    if (old != committed.end()) {
      deltas[old->second.id]--;
      sizes[old->second.id] = old->second.stored_len;
    }
    if (ref) {
      batch->PutChunkRef(ino, index, *ref);
      deltas[ref->id]++;
      sizes[ref->id] = ref->stored_len;
    } else if (old != committed.end()) {
      batch->DeleteChunkRef(ino, index);
    }
    changes[index] = ref;
  }
  // After the commit.
  void ApplyTo(std::map<uint64_t, ChunkRef>* committed) const {
    for (auto& [index, ref] : changes) {
      if (ref) {
        (*committed)[index] = *ref;
      } else {
        committed->erase(index);
      }
    }
  }
};

// Result of encoding one chunk on the worker pool.
struct EncodeJob {
  Completion done;
  std::mutex mu;  // guards finished, abandoned, pinned
  bool finished = false;
  bool abandoned = false;  // the pending chunk no longer needs the result
  std::shared_ptr<const std::string> raw;
  DType dtype = DType::kBytes;
  // Results, valid once done.
  Status status;
  bool hole = false;
  bool pinned = false;
  ChunkRef ref;
};

struct PendingChunk {
  // The chunk's bytes; shorter than chunk_bytes means zeros follow (up to
  // the file size). Mutable only while job == nullptr (dirty).
  std::shared_ptr<std::string> raw;
  std::shared_ptr<EncodeJob> job;  // set once submitted; raw is then frozen
  uint64_t gen = 0;                // bumped on every change
};

struct Inode {
  explicit Inode(InodeId i) : ino(i) {}
  const InodeId ino;
  std::mutex flush_mu;  // serializes commits of this inode
  std::mutex mu;
  InodeAttr attr;
  uint64_t committed_size = 0;
  uint64_t lookups = 0;
  int opens = 0;
  bool deleted = false;  // reclaimed; any further use is ENOENT
  bool map_loaded = false;
  std::map<uint64_t, ChunkRef> committed;
  std::map<uint64_t, PendingChunk> pending;
  size_t pending_bytes = 0;
  uint64_t floor = kNoFloor;  // committed chunks >= floor are dead (truncate)
  uint64_t floor_gen = 0;
  bool attr_dirty = false;  // attr differs from the last committed inode record
  uint64_t attr_gen = 0;    // bumped with every change that sets attr_dirty
  void MarkAttrDirty() {
    attr_dirty = true;
    ++attr_gen;
  }
  uint64_t next_read = UINT64_MAX;  // readahead: where a sequential read continues
  std::string name;                 // last name seen, for logs
  std::optional<SafetensorsLayout> safetensors;
};

struct Handle {
  InodeId ino = 0;
  OpenFlags flags;
  // Readahead: the end of the furthest read through this handle.
  uint64_t next_read = 0;
};

struct DirHandle {
  InodeId ino = 0;
  std::vector<DirEntry> entries;
};

class FilesystemImpl final : public Filesystem {
 public:
  FilesystemImpl(std::unique_ptr<Store> store, const FilesystemOptions& options)
      : store_(std::move(store)),
        meta_(store_->meta()),
        chunks_(store_->chunks()),
        options_(options),
        read_only_(options.read_only || store_->read_only()),
        cache_(options.cache_bytes),
        pool_(options.worker_threads) {}

  // pool_ is the last member, so it drains and joins before anything its
  // tasks touch is destroyed.
  ~FilesystemImpl() override = default;

  Status Init();

  Status Shutdown() override;
  Status Lookup(InodeId parent, std::string_view name, InodeAttr* attr) override;
  void Forget(InodeId ino, uint64_t nlookup) override;
  Status GetAttr(InodeId ino, InodeAttr* attr) override;
  Status SetAttr(InodeId ino, const SetAttrRequest& req, InodeAttr* attr) override;
  Status Mkdir(const CallerContext& ctx, InodeId parent, std::string_view name, uint32_t mode,
               InodeAttr* attr) override;
  Status Mknod(const CallerContext& ctx, InodeId parent, std::string_view name, uint32_t mode,
               uint64_t rdev, InodeAttr* attr) override;
  Status Symlink(const CallerContext& ctx, InodeId parent, std::string_view name,
                 std::string_view target, InodeAttr* attr) override;
  Status Readlink(InodeId ino, std::string* target) override;
  Status Link(InodeId ino, InodeId new_parent, std::string_view new_name, InodeAttr* attr) override;
  Status Unlink(InodeId parent, std::string_view name) override;
  Status Rmdir(InodeId parent, std::string_view name) override;
  Status Rename(InodeId parent, std::string_view name, InodeId new_parent,
                std::string_view new_name, RenameFlags flags) override;
  Status OpenDir(InodeId ino, uint64_t* fh) override;
  Status ReadDir(InodeId ino, uint64_t fh, uint64_t offset, size_t max,
                 std::vector<DirEntry>* entries) override;
  void ReleaseDir(uint64_t fh) override;
  Status Create(const CallerContext& ctx, InodeId parent, std::string_view name, uint32_t mode,
                OpenFlags flags, InodeAttr* attr, uint64_t* fh) override;
  Status OpenFile(InodeId ino, OpenFlags flags, uint64_t* fh, bool* keep_cache) override;
  Status ReadSlices(InodeId ino, uint64_t fh, uint64_t offset, size_t size,
                    ReadBuffer* out) override;
  Status Write(InodeId ino, uint64_t fh, uint64_t offset, std::string_view data) override;
  Status Flush(InodeId ino) override { return CommitInode(ino, false, false); }
  Status Fsync(InodeId ino) override { return CommitInode(ino, true, false); }
  Status Release(InodeId ino, uint64_t fh) override;
  Status CopyFileRange(InodeId src, uint64_t src_off, InodeId dst, uint64_t dst_off,
                       uint64_t len, uint64_t* copied) override;
  Status SetXattr(InodeId ino, std::string_view name, std::string_view value, int flags) override;
  Status GetXattr(InodeId ino, std::string_view name, std::string* value) override;
  Status ListXattr(InodeId ino, std::vector<std::string>* names) override;
  Status RemoveXattr(InodeId ino, std::string_view name) override;
  Status Statfs(FsStatfs* st) override;
  bool read_only() const override { return read_only_; }

 private:
  using InodeRef = std::shared_ptr<Inode>;

  Status CheckWritable() const {
    return read_only_ ? Status::Posix(EROFS, "read-only filesystem") : Status::OK();
  }
  // Loads (or finds) the in-memory inode. NotFound if it does not exist.
  Status GetInode(InodeId ino, InodeRef* out);
  // REQUIRES: inode->mu held.
  Status LoadMapLocked(Inode* inode);
  void MaybeEvict(InodeId ino);

  // Commits the inode's pending data and attributes. full_only: leave the
  // partially written dirty chunks (auto-commit under write pressure).
  Status CommitInode(InodeId ino, bool sync, bool full_only);
  Status CommitInodeRef(const InodeRef& inode, bool sync, bool full_only);
  // Commits the dirtiest files until the filesystem's dirty bytes are under
  // half of max_dirty_bytes (back-pressure on a write over the limit).
  void RelieveDirtyPressure();
  // REQUIRES: inode->mu held. Submits the dirty chunk for encoding.
  void SubmitEncodeLocked(Inode* inode, uint64_t index, PendingChunk* pc);
  DType ChunkDTypeLocked(Inode* inode, uint64_t index, std::string_view raw);
  void RunEncode(const std::shared_ptr<EncodeJob>& job);
  // True if an intact object with job's content exists; fills job->ref.
  // Sets *damaged if an object exists but does not verify.
  bool ReuseStoredChunk(EncodeJob* job, bool* damaged);
  void FinishJob(EncodeJob* job, const Status& s);
  // Drops a pending chunk (REQUIRES: inode->mu held).
  void DropPendingLocked(Inode* inode, std::map<uint64_t, PendingChunk>::iterator it);
  // The caller no longer needs `job`'s object pinned: unpins now if the
  // encode finished, else when it does.
  // `committed`: the job's object was just committed; otherwise nothing
  // may reference it any more and it is queued for the refcount check of
  // DeleteDead (an object stored for a commit that never happened).
  void ReleaseJob(const std::shared_ptr<EncodeJob>& job, bool committed = false);
  // REQUIRES: job->mu held.
  void QueueUncommittedLocked(EncodeJob* job);

  // REQUIRES: commit_mu_ held. Applies refcount deltas to `batch`; ids whose
  // count reaches 0 are appended to *dead.
  Status ApplyRefDeltas(MetaBatch* batch, const std::map<ChunkId, int64_t>& deltas,
                        std::vector<std::pair<ChunkId, uint32_t>>* dead,
                        const std::map<ChunkId, uint32_t>& sizes);
  // REQUIRES: commit_mu_ held; after the commit.
  void DeleteDead(const std::vector<std::pair<ChunkId, uint32_t>>& dead);
  // REQUIRES: inode.mu held. No name, open file or kernel lookup refers to
  // the inode any more, so it can be reclaimed.
  bool UnreferencedLocked(const Inode& inode) const {
    return !read_only_ && !inode.deleted && inode.lookups == 0 && inode.opens == 0 &&
           inode.attr.nlink == 0;
  }
  // REQUIRES: commit_mu_ held. Removes everything of an inode with nlink 0
  // and no opens.
  Status ReclaimLocked(const InodeRef& inode);

  // Chunk fetch + decode through the cache. index/path for logs.
  Status GetDecoded(const ChunkRef& ref, const Inode& inode, uint64_t index,
                    std::shared_ptr<const std::string>* raw);
  Status FetchDecode(const ChunkRef& ref, std::shared_ptr<const std::string>* raw);
  void Pin(const ChunkId& id);
  void Unpin(const ChunkId& id);
  void ScheduleReadahead(const InodeRef& inode, uint64_t from_index);

  // REQUIRES: inode->mu held. Makes a dirty pending chunk for `index`,
  // loading committed contents (read-modify-write). Unlocks mu while
  // fetching.
  Status DirtyChunkLocked(std::unique_lock<std::mutex>& lock, Inode* inode, uint64_t index,
                          PendingChunk** out);
  // Copies bytes through Read and Write; *copied is short if the source
  // ends early.
  Status CopyBytes(InodeId src, uint64_t src_off, InodeId dst, uint64_t dst_off, uint64_t len,
                   uint64_t* copied);
  // Points `count` whole chunks of dst, from index dst_first, at the
  // committed chunks of src from src_first, plus one more chunk of
  // tail_len bytes when tail_len > 0 (the source's last chunk). Chunks it
  // cannot share (uncommitted in src, or dst holds bytes past the tail) are
  // listed in *unshared as positions 0..count and left to the caller.
  Status ShareChunks(const std::shared_ptr<Inode>& src, uint64_t src_first,
                     const std::shared_ptr<Inode>& dst, uint64_t dst_first, uint64_t count,
                     uint64_t tail_len, std::vector<uint64_t>* unshared);
  // REQUIRES: inode->mu held. In-memory truncate.
  Status TruncateLocked(std::unique_lock<std::mutex>& lock, Inode* inode, uint64_t size);

  Status NewInode(const CallerContext& ctx, InodeId parent, std::string_view name, uint32_t mode,
                  uint64_t rdev, std::string_view symlink, InodeAttr* attr);
  // REQUIRES: commit_mu_ held. Persisted form of an inode's attributes.
  InodeAttr PersistedAttr(Inode* inode);
  void TouchDir(MetaBatch* batch, const InodeRef& dir, int nlink_delta);
  Status LookupChild(InodeId parent, std::string_view name, DirEntry* e);
  void LogCorruptOnce(const Inode& inode, uint64_t index, const Status& s);

  std::unique_ptr<Store> store_;
  MetadataStore* meta_;
  ChunkStore* chunks_;
  const FilesystemOptions options_;
  const bool read_only_;
  ChunkCache cache_;
  // Decoded chunks are decoded into recycled buffers (fs/buffer_pool.h):
  // enough free ones for the readahead window and the readers of both
  // workers; larger than 4 chunks of the store's size they are not kept.
  const std::shared_ptr<BufferPool> decoded_buffers_ = BufferPool::Create(
      8, 4 * std::max<uint64_t>(store_->superblock().default_chunk_bytes, 1u << 20));

  std::mutex commit_mu_;
  std::atomic<InodeId> last_ino_{0};

  std::mutex table_mu_;
  std::unordered_map<InodeId, InodeRef> inodes_;

  std::mutex handles_mu_;
  uint64_t next_fh_ = 1;
  std::unordered_map<uint64_t, Handle> handles_;
  std::unordered_map<uint64_t, DirHandle> dir_handles_;

  std::mutex pin_mu_;
  std::unordered_map<ChunkId, int, ChunkIdHash> pins_;
  std::map<ChunkId, uint32_t> deferred_deletes_;  // count 0 but pinned at the time

  std::mutex inflight_mu_;
  std::unordered_map<ChunkId, std::shared_ptr<Completion>, ChunkIdHash> inflight_;
  // Readahead decodes queued on the pool and not started yet.
  std::unordered_set<ChunkId, ChunkIdHash> readahead_queued_;

  std::mutex log_mu_;
  std::set<std::pair<InodeId, uint64_t>> logged_corrupt_;

  std::atomic<int64_t> dirty_bytes_{0};
  std::atomic<int64_t> stored_bytes_{0};

  WorkerPool pool_;
};

// ---------------------------------------------------------------------------
// Setup

Status FilesystemImpl::Init() {
  InodeId last = 0;
  QATQ_RETURN_IF_ERROR(meta_->GetLastInode(&last));
  last_ino_ = std::max<InodeId>(last, kRootInode);
  InodeAttr root;
  QATQ_RETURN_IF_ERROR(meta_->GetInode(kRootInode, &root).WithContext("root inode"));
  int64_t stored = 0;
  QATQ_RETURN_IF_ERROR(chunks_->ForEach([&](const ChunkId&, uint64_t size) {
    stored += static_cast<int64_t>(size);
    return Status::OK();
  }));
  stored_bytes_ = stored;
  if (read_only_) return Status::OK();
  std::vector<InodeId> orphans;
  QATQ_RETURN_IF_ERROR(meta_->ListOrphans(&orphans));
  for (InodeId ino : orphans) {
    InodeRef inode;
    Status s = GetInode(ino, &inode);
    std::lock_guard<std::mutex> l(commit_mu_);
    if (s.IsNotFound()) {
      auto b = meta_->NewBatch();
      b->DeleteOrphan(ino);
      QATQ_RETURN_IF_ERROR(meta_->Commit(b.get(), false));
      continue;
    }
    QATQ_RETURN_IF_ERROR(s);
    QATQ_RETURN_IF_ERROR(ReclaimLocked(inode));
  }
  return Status::OK();
}

Status FilesystemImpl::Shutdown() {
  std::vector<InodeRef> all;
  {
    std::lock_guard<std::mutex> l(table_mu_);
    for (auto& [ino, inode] : inodes_) all.push_back(inode);
  }
  Status first;
  if (!read_only_) {
    for (auto& inode : all) {
      Status s = CommitInodeRef(inode, false, false);
      if (!s.ok() && !s.IsNotFound() && first.ok()) first = s;
    }
    std::lock_guard<std::mutex> l(commit_mu_);
    for (auto& inode : all) {
      bool reclaim;
      {
        std::lock_guard<std::mutex> il(inode->mu);
        reclaim = !inode->deleted && inode->attr.nlink == 0;
      }
      if (reclaim) {
        Status s = ReclaimLocked(inode);
        if (!s.ok() && first.ok()) first = s;
      }
    }
    DeleteDead({});
    Status s = chunks_->Sync();
    if (!s.ok() && first.ok()) first = s;
  }
  Status s = meta_->Flush();
  if (!s.ok() && first.ok()) first = s;
  return first;
}

// ---------------------------------------------------------------------------
// Inode table

Status FilesystemImpl::GetInode(InodeId ino, InodeRef* out) {
  {
    std::lock_guard<std::mutex> l(table_mu_);
    auto it = inodes_.find(ino);
    if (it != inodes_.end()) {
      if (it->second->deleted) return Status::Posix(ENOENT, "inode deleted");
      *out = it->second;
      return Status::OK();
    }
  }
  auto inode = std::make_shared<Inode>(ino);
  Status s = meta_->GetInode(ino, &inode->attr);
  if (s.IsNotFound()) return Status::Posix(ENOENT, "no such inode");
  QATQ_RETURN_IF_ERROR(s);
  inode->committed_size = inode->attr.size;
  std::lock_guard<std::mutex> l(table_mu_);
  auto [it, inserted] = inodes_.emplace(ino, inode);
  *out = it->second;
  return Status::OK();
}

Status FilesystemImpl::LoadMapLocked(Inode* inode) {
  if (inode->map_loaded) return Status::OK();
  std::vector<std::pair<uint64_t, ChunkRef>> refs;
  QATQ_RETURN_IF_ERROR(meta_->GetChunkRefs(inode->ino, 0, UINT64_MAX, &refs));
  for (auto& [i, r] : refs) inode->committed[i] = r;
  inode->map_loaded = true;
  return Status::OK();
}

void FilesystemImpl::MaybeEvict(InodeId ino) {
  std::lock_guard<std::mutex> l(table_mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end() || ino == kRootInode) return;
  Inode* inode = it->second.get();
  std::unique_lock<std::mutex> il(inode->mu, std::try_to_lock);
  if (!il.owns_lock()) return;
  if (inode->deleted || (inode->lookups == 0 && inode->opens == 0 && inode->pending.empty() &&
                         !inode->attr_dirty && inode->floor == kNoFloor && inode->attr.nlink > 0)) {
    il.unlock();
    inodes_.erase(it);
  }
}

Status FilesystemImpl::Lookup(InodeId parent, std::string_view name, InodeAttr* attr) {
  DirEntry e;
  QATQ_RETURN_IF_ERROR(LookupChild(parent, name, &e));
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(e.ino, &inode));
  std::lock_guard<std::mutex> l(inode->mu);
  inode->lookups++;
  inode->name = std::string(name);
  *attr = inode->attr;
  return Status::OK();
}

Status FilesystemImpl::LookupChild(InodeId parent, std::string_view name, DirEntry* e) {
  if (name.size() > 255) return Status::Posix(ENAMETOOLONG, "name too long");
  Status s = meta_->Lookup(parent, name, e);
  if (s.IsNotFound()) return Status::Posix(ENOENT, "no such entry");
  return s;
}

void FilesystemImpl::Forget(InodeId ino, uint64_t nlookup) {
  InodeRef inode;
  {
    std::lock_guard<std::mutex> l(table_mu_);
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return;
    inode = it->second;
  }
  bool reclaim;
  {
    std::lock_guard<std::mutex> il(inode->mu);
    inode->lookups -= std::min(inode->lookups, nlookup);
    reclaim = UnreferencedLocked(*inode);
  }
  if (reclaim) {
    // The kernel's last reference to an unlinked inode: free it now.
    std::lock_guard<std::mutex> cl(commit_mu_);
    Status s = ReclaimLocked(inode);
    if (!s.ok())
      LogError("reclaim of inode %llu: %s", (unsigned long long)ino, s.ToString().c_str());
    return;
  }
  MaybeEvict(ino);
}

Status FilesystemImpl::GetAttr(InodeId ino, InodeAttr* attr) {
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  std::lock_guard<std::mutex> l(inode->mu);
  *attr = inode->attr;
  return Status::OK();
}

InodeAttr FilesystemImpl::PersistedAttr(Inode* inode) {
  InodeAttr a = inode->attr;
  a.size = inode->committed_size;
  return a;
}

void FilesystemImpl::TouchDir(MetaBatch* batch, const InodeRef& dir, int nlink_delta) {
  std::lock_guard<std::mutex> l(dir->mu);
  int64_t now = NowNs();
  dir->attr.mtime_ns = dir->attr.ctime_ns = now;
  dir->attr.nlink = static_cast<uint32_t>(static_cast<int64_t>(dir->attr.nlink) + nlink_delta);
  batch->PutInode(PersistedAttr(dir.get()));
}

// ---------------------------------------------------------------------------
// Creation

Status FilesystemImpl::NewInode(const CallerContext& ctx, InodeId parent, std::string_view name,
                                uint32_t mode, uint64_t rdev, std::string_view symlink,
                                InodeAttr* attr) {
  QATQ_RETURN_IF_ERROR(CheckWritable());
  QATQ_RETURN_IF_ERROR(NameCheck(name));
  InodeRef dir;
  QATQ_RETURN_IF_ERROR(GetInode(parent, &dir));
  std::string dir_dtype;
  bool has_dir_dtype = false;
  if ((S_ISREG(mode) && !options_.dtype) || S_ISDIR(mode)) {
    Status s = meta_->GetXattr(parent, kDTypeXattr, &dir_dtype);
    has_dir_dtype = s.ok();
  }
  std::lock_guard<std::mutex> cl(commit_mu_);
  InodeAttr d;
  {
    std::lock_guard<std::mutex> l(dir->mu);
    if (dir->deleted || dir->attr.nlink == 0) return Status::Posix(ENOENT, "directory removed");
    d = dir->attr;
  }
  if (!S_ISDIR(d.mode)) return Status::Posix(ENOTDIR, "not a directory");
  DirEntry existing;
  Status s = meta_->Lookup(parent, name, &existing);
  if (s.ok()) return Status::Posix(EEXIST, "exists");
  if (!s.IsNotFound()) return s;

  InodeAttr a;
  a.ino = last_ino_.load() + 1;
  a.mode = mode;
  a.uid = ctx.uid;
  a.gid = (d.mode & S_ISGID) ? d.gid : ctx.gid;
  if (S_ISDIR(mode) && (d.mode & S_ISGID)) a.mode |= S_ISGID;
  a.nlink = S_ISDIR(mode) ? 2 : 1;
  a.rdev = rdev;
  a.atime_ns = a.mtime_ns = a.ctime_ns = NowNs();
  a.symlink_target = std::string(symlink);
  if (S_ISLNK(mode)) a.size = symlink.size();
  if (S_ISREG(mode)) {
    a.chunk_bytes = store_->superblock().default_chunk_bytes;
    if (a.chunk_bytes == 0 || a.chunk_bytes % 4 != 0) a.chunk_bytes = 1u << 20;
    if (options_.dtype) {
      a.dtype = *options_.dtype;
      a.dtype_source = DTypeSource::kMountOption;
    } else if (has_dir_dtype && ParseDType(dir_dtype)) {  // "auto" falls through
      a.dtype = *ParseDType(dir_dtype);
      a.dtype_source = DTypeSource::kXattr;
    } else if (auto t = DTypeFromName(name)) {
      a.dtype = *t;
      a.dtype_source = DTypeSource::kName;
    } else {
      a.dtype = DType::kBytes;
      a.dtype_source = DTypeSource::kDefault;  // decided at the first encode
    }
  }
  auto b = meta_->NewBatch();
  b->PutInode(a);
  b->PutLastInode(a.ino);
  b->PutDirEntry(parent, DirEntry{std::string(name), a.ino, a.mode & S_IFMT});
  if (S_ISDIR(mode) && has_dir_dtype) b->PutXattr(a.ino, kDTypeXattr, dir_dtype);
  TouchDir(b.get(), dir, S_ISDIR(mode) ? 1 : 0);
  Status cs = meta_->Commit(b.get(), false);
  if (!cs.ok()) {
    std::lock_guard<std::mutex> l(dir->mu);
    if (S_ISDIR(mode)) dir->attr.nlink--;
    return cs;
  }
  last_ino_ = a.ino;
  auto inode = std::make_shared<Inode>(a.ino);
  inode->attr = a;
  inode->committed_size = a.size;
  inode->map_loaded = true;
  inode->lookups = 1;
  inode->name = std::string(name);
  {
    std::lock_guard<std::mutex> l(table_mu_);
    inodes_[a.ino] = inode;
  }
  *attr = a;
  return Status::OK();
}

Status FilesystemImpl::Mkdir(const CallerContext& ctx, InodeId parent, std::string_view name,
                             uint32_t mode, InodeAttr* attr) {
  return NewInode(ctx, parent, name, S_IFDIR | (mode & 07777), 0, {}, attr);
}

Status FilesystemImpl::Mknod(const CallerContext& ctx, InodeId parent, std::string_view name,
                             uint32_t mode, uint64_t rdev, InodeAttr* attr) {
  if ((mode & S_IFMT) == 0) mode |= S_IFREG;
  if (S_ISDIR(mode) || S_ISLNK(mode)) return Status::Posix(EINVAL, "mknod of dir/symlink");
  return NewInode(ctx, parent, name, mode, rdev, {}, attr);
}

Status FilesystemImpl::Symlink(const CallerContext& ctx, InodeId parent, std::string_view name,
                               std::string_view target, InodeAttr* attr) {
  if (target.size() >= 4096) return Status::Posix(ENAMETOOLONG, "symlink target too long");
  return NewInode(ctx, parent, name, S_IFLNK | 0777, 0, target, attr);
}

Status FilesystemImpl::Readlink(InodeId ino, std::string* target) {
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  std::lock_guard<std::mutex> l(inode->mu);
  if (!S_ISLNK(inode->attr.mode)) return Status::Posix(EINVAL, "not a symlink");
  *target = inode->attr.symlink_target;
  return Status::OK();
}

Status FilesystemImpl::Create(const CallerContext& ctx, InodeId parent, std::string_view name,
                              uint32_t mode, OpenFlags flags, InodeAttr* attr, uint64_t* fh) {
  Status s = NewInode(ctx, parent, name, S_IFREG | (mode & 07777), 0, {}, attr);
  if (s.posix_errno() == EEXIST && !flags.exclusive) {
    // Raced with another creator: open the existing file.
    QATQ_RETURN_IF_ERROR(Lookup(parent, name, attr));
    bool keep;
    QATQ_RETURN_IF_ERROR(OpenFile(attr->ino, flags, fh, &keep));
    return GetAttr(attr->ino, attr);
  }
  QATQ_RETURN_IF_ERROR(s);
  bool keep;
  flags.truncate = false;
  return OpenFile(attr->ino, flags, fh, &keep);
}

Status FilesystemImpl::Link(InodeId ino, InodeId new_parent, std::string_view new_name,
                            InodeAttr* attr) {
  QATQ_RETURN_IF_ERROR(CheckWritable());
  QATQ_RETURN_IF_ERROR(NameCheck(new_name));
  InodeRef inode, dir;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  QATQ_RETURN_IF_ERROR(GetInode(new_parent, &dir));
  std::lock_guard<std::mutex> cl(commit_mu_);
  DirEntry existing;
  Status s = meta_->Lookup(new_parent, new_name, &existing);
  if (s.ok()) return Status::Posix(EEXIST, "exists");
  if (!s.IsNotFound()) return s;
  auto b = meta_->NewBatch();
  {
    std::lock_guard<std::mutex> l(inode->mu);
    if (S_ISDIR(inode->attr.mode)) return Status::Posix(EPERM, "hard link to directory");
    if (inode->attr.nlink == 0) return Status::Posix(ENOENT, "unlinked");
    inode->attr.nlink++;
    inode->attr.ctime_ns = NowNs();
    b->PutInode(PersistedAttr(inode.get()));
    inode->lookups++;
    *attr = inode->attr;
  }
  b->PutDirEntry(new_parent, DirEntry{std::string(new_name), ino, attr->mode & S_IFMT});
  TouchDir(b.get(), dir, 0);
  Status cs = meta_->Commit(b.get(), false);
  if (!cs.ok()) {
    std::lock_guard<std::mutex> l(inode->mu);
    inode->attr.nlink--;
    return cs;
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Removal

Status FilesystemImpl::ReclaimLocked(const InodeRef& inode) {
  auto b = meta_->NewBatch();
  ChunkMapEdit edit(b.get(), inode->ino);
  {
    std::lock_guard<std::mutex> l(inode->mu);
    if (inode->deleted) return Status::OK();
    QATQ_RETURN_IF_ERROR(LoadMapLocked(inode.get()));
    while (!inode->pending.empty()) DropPendingLocked(inode.get(), inode->pending.begin());
    for (auto& [i, r] : inode->committed) edit.Set(inode->committed, i, std::nullopt);
  }
  std::vector<std::string> xattrs;
  QATQ_RETURN_IF_ERROR(meta_->ListXattrs(inode->ino, &xattrs));
  for (auto& n : xattrs) b->DeleteXattr(inode->ino, n);
  b->DeleteInode(inode->ino);
  b->DeleteOrphan(inode->ino);
  std::vector<std::pair<ChunkId, uint32_t>> dead;
  QATQ_RETURN_IF_ERROR(ApplyRefDeltas(b.get(), edit.deltas, &dead, edit.sizes));
  QATQ_RETURN_IF_ERROR(meta_->Commit(b.get(), false));
  {
    std::lock_guard<std::mutex> l(inode->mu);
    inode->deleted = true;
    inode->committed.clear();
  }
  {
    std::lock_guard<std::mutex> l(table_mu_);
    inodes_.erase(inode->ino);
  }
  DeleteDead(dead);
  return Status::OK();
}

Status FilesystemImpl::Unlink(InodeId parent, std::string_view name) {
  QATQ_RETURN_IF_ERROR(CheckWritable());
  InodeRef dir;
  QATQ_RETURN_IF_ERROR(GetInode(parent, &dir));
  std::lock_guard<std::mutex> cl(commit_mu_);
  DirEntry e;
  QATQ_RETURN_IF_ERROR(LookupChild(parent, name, &e));
  if (S_ISDIR(e.type)) return Status::Posix(EISDIR, "is a directory");
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(e.ino, &inode));
  auto b = meta_->NewBatch();
  b->DeleteDirEntry(parent, name);
  bool reclaim = false;
  {
    std::lock_guard<std::mutex> l(inode->mu);
    if (inode->attr.nlink > 0) inode->attr.nlink--;
    inode->attr.ctime_ns = NowNs();
    if (inode->attr.nlink > 0) {
      b->PutInode(PersistedAttr(inode.get()));
    } else if (inode->opens > 0 || inode->lookups > 0) {
      // Still reachable by the kernel (an OPEN may be on its way for a name
      // it resolved just before this unlink): reclaimed at the last Release
      // or Forget.
      b->PutInode(PersistedAttr(inode.get()));
      b->PutOrphan(inode->ino);
    } else {
      // Recorded as an orphan too, so a crash before ReclaimLocked's own
      // commit still frees it at the next mount.
      b->PutOrphan(inode->ino);
      reclaim = true;
    }
  }
  TouchDir(b.get(), dir, 0);
  QATQ_RETURN_IF_ERROR(meta_->Commit(b.get(), false));
  if (reclaim) return ReclaimLocked(inode);
  return Status::OK();
}

Status FilesystemImpl::Rmdir(InodeId parent, std::string_view name) {
  QATQ_RETURN_IF_ERROR(CheckWritable());
  if (name == ".") return Status::Posix(EINVAL, "rmdir .");
  if (name == "..") return Status::Posix(ENOTEMPTY, "rmdir ..");
  InodeRef dir;
  QATQ_RETURN_IF_ERROR(GetInode(parent, &dir));
  std::lock_guard<std::mutex> cl(commit_mu_);
  DirEntry e;
  QATQ_RETURN_IF_ERROR(LookupChild(parent, name, &e));
  if (!S_ISDIR(e.type)) return Status::Posix(ENOTDIR, "not a directory");
  bool has = false;
  QATQ_RETURN_IF_ERROR(meta_->DirHasEntries(e.ino, &has));
  if (has) return Status::Posix(ENOTEMPTY, "directory not empty");
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(e.ino, &inode));
  auto b = meta_->NewBatch();
  b->DeleteDirEntry(parent, name);
  bool reclaim;
  {
    std::lock_guard<std::mutex> l(inode->mu);
    inode->attr.nlink = 0;
    inode->attr.ctime_ns = NowNs();
    // A directory the kernel still references (a process's cwd) keeps
    // answering getattr until the kernel forgets it, as with unlinked files;
    // the orphan record frees it after a crash.
    reclaim = inode->opens == 0 && inode->lookups == 0;
    if (!reclaim) b->PutInode(PersistedAttr(inode.get()));
  }
  b->PutOrphan(inode->ino);
  TouchDir(b.get(), dir, -1);
  QATQ_RETURN_IF_ERROR(meta_->Commit(b.get(), false));
  if (reclaim) return ReclaimLocked(inode);
  return Status::OK();
}

Status FilesystemImpl::Rename(InodeId parent, std::string_view name, InodeId new_parent,
                              std::string_view new_name, RenameFlags flags) {
  QATQ_RETURN_IF_ERROR(CheckWritable());
  QATQ_RETURN_IF_ERROR(NameCheck(new_name));
  if (flags.noreplace && flags.exchange) return Status::Posix(EINVAL, "bad rename flags");
  InodeRef src_dir, dst_dir;
  QATQ_RETURN_IF_ERROR(GetInode(parent, &src_dir));
  QATQ_RETURN_IF_ERROR(GetInode(new_parent, &dst_dir));
  std::lock_guard<std::mutex> cl(commit_mu_);
  DirEntry src;
  QATQ_RETURN_IF_ERROR(LookupChild(parent, name, &src));
  DirEntry dst;
  Status ds = meta_->Lookup(new_parent, new_name, &dst);
  if (!ds.ok() && !ds.IsNotFound()) return ds;
  bool dst_exists = ds.ok();
  if (dst_exists && dst.ino == src.ino) return Status::OK();  // same file: no-op
  if (flags.noreplace && dst_exists) return Status::Posix(EEXIST, "target exists");
  if (flags.exchange && !dst_exists) return Status::Posix(ENOENT, "exchange target missing");
  // The kernel rejects moves of a directory below itself (VFS ancestor
  // check); the store keeps no parent links, so only the direct case is
  // checked here.
  if (new_parent == src.ino) return Status::Posix(EINVAL, "rename into itself");
  auto b = meta_->NewBatch();
  InodeRef victim;
  bool reclaim = false;
  if (flags.exchange) {
    b->PutDirEntry(parent, DirEntry{std::string(name), dst.ino, dst.type});
    b->PutDirEntry(new_parent, DirEntry{std::string(new_name), src.ino, src.type});
    int delta = (S_ISDIR(src.type) ? 1 : 0) - (S_ISDIR(dst.type) ? 1 : 0);
    if (parent != new_parent) {
      TouchDir(b.get(), src_dir, -delta);
      TouchDir(b.get(), dst_dir, delta);
    } else {
      TouchDir(b.get(), src_dir, 0);
    }
  } else {
    if (dst_exists) {
      if (S_ISDIR(src.type) && !S_ISDIR(dst.type)) return Status::Posix(ENOTDIR, "not a dir");
      if (!S_ISDIR(src.type) && S_ISDIR(dst.type)) return Status::Posix(EISDIR, "is a dir");
      if (S_ISDIR(dst.type)) {
        bool has = false;
        QATQ_RETURN_IF_ERROR(meta_->DirHasEntries(dst.ino, &has));
        if (has) return Status::Posix(ENOTEMPTY, "target directory not empty");
      }
      QATQ_RETURN_IF_ERROR(GetInode(dst.ino, &victim));
      std::lock_guard<std::mutex> l(victim->mu);
      if (S_ISDIR(dst.type)) {
        victim->attr.nlink = 0;
      } else if (victim->attr.nlink > 0) {
        victim->attr.nlink--;
      }
      victim->attr.ctime_ns = NowNs();
      if (victim->attr.nlink > 0 || victim->opens > 0 || victim->lookups > 0) {
        b->PutInode(PersistedAttr(victim.get()));
        if (victim->attr.nlink == 0) b->PutOrphan(victim->ino);
      } else {
        b->PutOrphan(victim->ino);
        reclaim = true;
      }
    }
    b->DeleteDirEntry(parent, name);
    b->PutDirEntry(new_parent, DirEntry{std::string(new_name), src.ino, src.type});
    int src_delta = S_ISDIR(src.type) ? -1 : 0;
    int dst_delta = (S_ISDIR(src.type) ? 1 : 0) - (dst_exists && S_ISDIR(dst.type) ? 1 : 0);
    if (parent != new_parent) {
      TouchDir(b.get(), src_dir, src_delta);
      TouchDir(b.get(), dst_dir, dst_delta);
    } else {
      TouchDir(b.get(), src_dir, src_delta + dst_delta);
    }
  }
  QATQ_RETURN_IF_ERROR(meta_->Commit(b.get(), false));
  if (reclaim) return ReclaimLocked(victim);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Directories

Status FilesystemImpl::OpenDir(InodeId ino, uint64_t* fh) {
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  {
    std::lock_guard<std::mutex> l(inode->mu);
    if (!S_ISDIR(inode->attr.mode)) return Status::Posix(ENOTDIR, "not a directory");
  }
  DirHandle h;
  h.ino = ino;
  h.entries.push_back(DirEntry{".", ino, S_IFDIR});
  h.entries.push_back(DirEntry{"..", ino, S_IFDIR});
  std::string after;
  for (;;) {
    std::vector<DirEntry> batch;
    QATQ_RETURN_IF_ERROR(meta_->ListDir(ino, after, 1024, &batch));
    if (batch.empty()) break;
    after = batch.back().name;
    for (auto& e : batch) h.entries.push_back(std::move(e));
  }
  std::lock_guard<std::mutex> l(handles_mu_);
  *fh = next_fh_++;
  dir_handles_[*fh] = std::move(h);
  return Status::OK();
}

Status FilesystemImpl::ReadDir(InodeId, uint64_t fh, uint64_t offset, size_t max,
                               std::vector<DirEntry>* entries) {
  std::lock_guard<std::mutex> l(handles_mu_);
  auto it = dir_handles_.find(fh);
  if (it == dir_handles_.end()) return Status::Posix(EBADF, "bad directory handle");
  const auto& all = it->second.entries;
  for (uint64_t i = offset; i < all.size() && entries->size() < max; ++i) {
    entries->push_back(all[i]);
  }
  return Status::OK();
}

void FilesystemImpl::ReleaseDir(uint64_t fh) {
  std::lock_guard<std::mutex> l(handles_mu_);
  dir_handles_.erase(fh);
}

// ---------------------------------------------------------------------------
// Open / close

Status FilesystemImpl::OpenFile(InodeId ino, OpenFlags flags, uint64_t* fh, bool* keep_cache) {
  if ((flags.write || flags.truncate) && read_only_) return Status::Posix(EROFS, "read-only");
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  {
    std::unique_lock<std::mutex> l(inode->mu);
    if (S_ISDIR(inode->attr.mode)) return Status::Posix(EISDIR, "is a directory");
    if (flags.truncate && flags.write && inode->attr.size != 0) {
      QATQ_RETURN_IF_ERROR(TruncateLocked(l, inode.get(), 0));
    }
    inode->opens++;
    // Always keep (see the contract in filesystem.h): the kernel's cache of
    // a file is never older than our data, and dropping it at an open races
    // with writes in flight through other descriptors.
    *keep_cache = true;
  }
  std::lock_guard<std::mutex> l(handles_mu_);
  *fh = next_fh_++;
  handles_[*fh] = Handle{ino, flags};
  return Status::OK();
}

Status FilesystemImpl::Release(InodeId ino, uint64_t fh) {
  {
    std::lock_guard<std::mutex> l(handles_mu_);
    handles_.erase(fh);
  }
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  Status s;
  if (!read_only_) s = CommitInodeRef(inode, false, false);
  bool reclaim;
  {
    std::lock_guard<std::mutex> l(inode->mu);
    if (inode->opens > 0) inode->opens--;
    reclaim = UnreferencedLocked(*inode);
  }
  if (reclaim) {
    std::lock_guard<std::mutex> cl(commit_mu_);
    Status rs = ReclaimLocked(inode);
    if (s.ok()) s = rs;
  } else {
    MaybeEvict(ino);
  }
  return s;
}

// ---------------------------------------------------------------------------
// Attributes

Status FilesystemImpl::SetAttr(InodeId ino, const SetAttrRequest& req, InodeAttr* attr) {
  QATQ_RETURN_IF_ERROR(CheckWritable());
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  int64_t now = NowNs();
  {
    std::unique_lock<std::mutex> l(inode->mu);
    if (req.size) {
      if (S_ISDIR(inode->attr.mode)) return Status::Posix(EISDIR, "truncate of a directory");
      if (!S_ISREG(inode->attr.mode)) return Status::Posix(EINVAL, "truncate of a special file");
      QATQ_RETURN_IF_ERROR(TruncateLocked(l, inode.get(), *req.size));
    }
    InodeAttr& a = inode->attr;
    if (req.mode) a.mode = (a.mode & S_IFMT) | (*req.mode & 07777);
    if (req.uid) a.uid = *req.uid;
    if (req.gid) a.gid = *req.gid;
    if ((req.uid || req.gid) && !req.mode && S_ISREG(a.mode)) a.mode &= ~(S_ISUID | S_ISGID);
    if (req.atime_ns) a.atime_ns = *req.atime_ns == SetAttrRequest::kNow ? now : *req.atime_ns;
    if (req.mtime_ns) a.mtime_ns = *req.mtime_ns == SetAttrRequest::kNow ? now : *req.mtime_ns;
    a.ctime_ns = now;
    inode->MarkAttrDirty();
  }
  QATQ_RETURN_IF_ERROR(CommitInodeRef(inode, false, false));
  return GetAttr(ino, attr);
}

Status FilesystemImpl::TruncateLocked(std::unique_lock<std::mutex>& lock, Inode* inode,
                                      uint64_t size) {
  InodeAttr& a = inode->attr;
  if (size == a.size) return Status::OK();
  const uint64_t cb = a.chunk_bytes;
  if (size < a.size) {
    // Chunks wholly past the new end die; the boundary chunk is trimmed.
    uint64_t first_dead = (size + cb - 1) / cb;
    for (auto it = inode->pending.lower_bound(first_dead); it != inode->pending.end();) {
      auto next = std::next(it);
      DropPendingLocked(inode, it);
      it = next;
    }
    inode->floor = std::min(inode->floor, first_dead);
    inode->floor_gen++;
    if (size % cb != 0) {
      uint64_t idx = size / cb;
      size_t keep = size % cb;
      PendingChunk* pc;
      QATQ_RETURN_IF_ERROR(DirtyChunkLocked(lock, inode, idx, &pc));
      if (pc->raw->size() > keep) {
        size_t before = pc->raw->size();
        pc->raw->resize(keep);
        inode->pending_bytes -= before - keep;
        dirty_bytes_ -= static_cast<int64_t>(before - keep);
        pc->gen++;
      }
    }
  }
  a.size = size;
  a.mtime_ns = a.ctime_ns = NowNs();
  inode->MarkAttrDirty();
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Write path

void FilesystemImpl::DropPendingLocked(Inode* inode,
                                       std::map<uint64_t, PendingChunk>::iterator it) {
  size_t n = it->second.raw->size();
  inode->pending_bytes -= n;
  dirty_bytes_ -= static_cast<int64_t>(n);
  if (auto job = it->second.job) ReleaseJob(job);
  inode->pending.erase(it);
}

void FilesystemImpl::ReleaseJob(const std::shared_ptr<EncodeJob>& job, bool committed) {
  std::lock_guard<std::mutex> l(job->mu);
  if (!job->finished) {
    job->abandoned = true;
    return;
  }
  if (job->pinned) {
    job->pinned = false;
    Unpin(job->ref.id);
  }
  if (!committed) QueueUncommittedLocked(job.get());
}

void FilesystemImpl::QueueUncommittedLocked(EncodeJob* job) {
  if (!job->status.ok() || job->hole) return;
  std::lock_guard<std::mutex> l(pin_mu_);
  // Size 0: stored_bytes_ never counted an uncommitted object.
  deferred_deletes_.emplace(job->ref.id, 0);
}

Status FilesystemImpl::DirtyChunkLocked(std::unique_lock<std::mutex>& lock, Inode* inode,
                                        uint64_t index, PendingChunk** out) {
  for (;;) {
    auto it = inode->pending.find(index);
    if (it != inode->pending.end()) {
      PendingChunk& pc = it->second;
      if (pc.job) {
        // Copy-on-write of a chunk being encoded; the old encode result is
        // dropped (its pin released once done).
        auto job = pc.job;
        pc.raw = std::make_shared<std::string>(*pc.raw);
        pc.job = nullptr;
        pc.gen++;
        ReleaseJob(job);
      }
      *out = &pc;
      return Status::OK();
    }
    QATQ_RETURN_IF_ERROR(LoadMapLocked(inode));
    auto cit = inode->committed.find(index);
    if (cit == inode->committed.end() || index >= inode->floor) {
      PendingChunk pc;
      pc.raw = std::make_shared<std::string>();
      pc.gen = 1;
      *out = &(inode->pending[index] = std::move(pc));
      return Status::OK();
    }
    ChunkRef ref = cit->second;
    Pin(ref.id);
    lock.unlock();
    std::shared_ptr<const std::string> raw;
    Status s = GetDecoded(ref, *inode, index, &raw);
    lock.lock();
    Unpin(ref.id);
    QATQ_RETURN_IF_ERROR(s);
    // The map may have changed while unlocked; start over if so.
    if (inode->pending.count(index)) continue;
    cit = inode->committed.find(index);
    if (cit == inode->committed.end() || !(cit->second.id == ref.id) || index >= inode->floor) {
      continue;
    }
    PendingChunk pc;
    pc.raw = std::make_shared<std::string>(*raw);
    pc.gen = 1;
    inode->pending_bytes += pc.raw->size();
    dirty_bytes_ += static_cast<int64_t>(pc.raw->size());
    *out = &(inode->pending[index] = std::move(pc));
    return Status::OK();
  }
}

DType FilesystemImpl::ChunkDTypeLocked(Inode* inode, uint64_t index, std::string_view raw) {
  InodeAttr& a = inode->attr;
  if (a.dtype_source == DTypeSource::kDefault) {
    // Decide once, from the first chunk when we have it.
    std::string_view sample = raw;
    auto first = inode->pending.find(0);
    if (first != inode->pending.end()) sample = *first->second.raw;
    SafetensorsLayout layout;
    if (IsSafetensorsName(inode->name) && index == 0 &&
        ParseSafetensorsHeader(sample, &layout).ok()) {
      inode->safetensors = layout;
      a.dtype = layout.dominant;
      a.dtype_source = DTypeSource::kSafetensors;
    } else {
      a.dtype = DetectDType(sample);
      a.dtype_source = DTypeSource::kSampled;
    }
    inode->MarkAttrDirty();
  }
  DType t = a.dtype;
  if (inode->safetensors) {
    // Each chunk takes the dtype of the tensor(s) it holds, so a checkpoint
    // mixing f32 and bf16 tensors encodes each as what it is.
    uint64_t begin = index * a.chunk_bytes;
    t = inode->safetensors->DTypeOfRange(begin, begin + raw.size());
  }
  if (raw.size() % DTypeWidth(t) != 0) t = DType::kBytes;
  return t;
}

void FilesystemImpl::SubmitEncodeLocked(Inode* inode, uint64_t index, PendingChunk* pc) {
  auto job = std::make_shared<EncodeJob>();
  job->raw = pc->raw;
  job->dtype = ChunkDTypeLocked(inode, index, *pc->raw);
  pc->job = job;
  pool_.Submit([this, job] { RunEncode(job); });
}

void FilesystemImpl::RunEncode(const std::shared_ptr<EncodeJob>& job) {
  const std::string& raw = *job->raw;
  if (IsZero(raw)) {
    job->hole = true;
    FinishJob(job.get(), Status::OK());
    return;
  }
  job->ref.id = ChunkId::OfRaw(raw);
  job->ref.raw_len = static_cast<uint32_t>(raw.size());
  // Pinned before the existence check so a concurrent commit cannot delete
  // the object we are about to reference.
  Pin(job->ref.id);
  job->pinned = true;
  bool damaged = false;
  if (ReuseStoredChunk(job.get(), &damaged)) {
    FinishJob(job.get(), Status::OK());
    return;
  }
  std::string record;
  ChunkEncodeOptions eo;
  eo.effort = options_.encode_effort;
  Status s = EncodeChunkRecord(job->dtype, raw, eo, &record);
  if (s.ok()) {
    ChunkRecordInfo info;
    s = ParseChunkRecordHeader(record, &info);
    job->ref.strategy = info.strategy;
    job->ref.stored_len = static_cast<uint32_t>(record.size());
  }
  // Put keeps an existing object of the same size, so a damaged one is
  // removed first; the fresh object also heals every file sharing it.
  if (s.ok() && damaged) s = chunks_->Delete(job->ref.id);
  if (s.ok()) s = chunks_->Put(job->ref.id, record);
  if (!s.ok()) {
    std::lock_guard<std::mutex> l(job->mu);
    job->pinned = false;
    Unpin(job->ref.id);
  }
  FinishJob(job.get(), s);
}

bool FilesystemImpl::ReuseStoredChunk(EncodeJob* job, bool* damaged) {
  // Identical content is already stored (a dedup hit, or `qatqfs import`,
  // which puts an artefact's records before writing its bytes): reference
  // that object instead of encoding again. It must verify and describe these
  // exact bytes, so a damaged object is never adopted; Put then replaces it.
  bool exists = false;
  if (!chunks_->Exists(job->ref.id, &exists).ok() || !exists) return false;
  std::string record;
  ChunkRecordInfo info;
  const std::string& raw = *job->raw;
  if (!chunks_->Get(job->ref.id, &record).ok() || !VerifyChunkRecord(record, &info).ok() ||
      info.raw_len != raw.size() || info.raw_checksum != XXH3_64bits(raw.data(), raw.size())) {
    *damaged = true;
    return false;
  }
  job->ref.strategy = info.strategy;
  job->ref.stored_len = static_cast<uint32_t>(record.size());
  return true;
}

void FilesystemImpl::FinishJob(EncodeJob* job, const Status& s) {
  {
    std::lock_guard<std::mutex> l(job->mu);
    job->status = s;
    job->finished = true;
    if (job->abandoned && job->pinned) {
      job->pinned = false;
      Unpin(job->ref.id);
    }
    if (job->abandoned) QueueUncommittedLocked(job);
  }
  job->done.Done();
}

Status FilesystemImpl::Write(InodeId ino, uint64_t fh, uint64_t offset, std::string_view data) {
  QATQ_RETURN_IF_ERROR(CheckWritable());
  bool append = false;
  {
    std::lock_guard<std::mutex> l(handles_mu_);
    auto it = handles_.find(fh);
    if (it != handles_.end()) append = it->second.flags.append;
  }
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  bool commit_full = false, over_limit = false;
  {
    std::unique_lock<std::mutex> l(inode->mu);
    if (!S_ISREG(inode->attr.mode)) return Status::Posix(EINVAL, "not a regular file");
    if (append) offset = inode->attr.size;
    if (offset + data.size() < offset || offset + data.size() > (1ull << 60)) {
      return Status::Posix(EFBIG, "file too large");
    }
    const uint64_t cb = inode->attr.chunk_bytes;
    size_t done = 0;
    while (done < data.size()) {
      uint64_t pos = offset + done;
      uint64_t idx = pos / cb;
      size_t in_chunk = pos % cb;
      size_t n = std::min<size_t>(data.size() - done, cb - in_chunk);
      PendingChunk* pc;
      QATQ_RETURN_IF_ERROR(DirtyChunkLocked(l, inode.get(), idx, &pc));
      std::string& raw = *pc->raw;
      if (raw.size() < in_chunk + n) {
        size_t grow = in_chunk + n - raw.size();
        raw.resize(in_chunk + n, '\0');
        inode->pending_bytes += grow;
        dirty_bytes_ += static_cast<int64_t>(grow);
      }
      std::memcpy(raw.data() + in_chunk, data.data() + done, n);
      pc->gen++;
      done += n;
      uint64_t end = offset + done;
      if (end > inode->attr.size) inode->attr.size = end;
      if (raw.size() == cb && in_chunk + n == cb) SubmitEncodeLocked(inode.get(), idx, pc);
    }
    inode->attr.mtime_ns = inode->attr.ctime_ns = NowNs();
    inode->MarkAttrDirty();
    over_limit = static_cast<size_t>(dirty_bytes_.load()) > options_.max_dirty_bytes;
    commit_full = inode->pending_bytes > options_.inode_commit_bytes;
  }
  if (commit_full) QATQ_RETURN_IF_ERROR(CommitInodeRef(inode, false, true));
  if (over_limit) RelieveDirtyPressure();
  // Memory stays bounded even when other files' commits fail: then this
  // writer commits its own file and hears its outcome.
  if (static_cast<size_t>(dirty_bytes_.load()) > options_.max_dirty_bytes) {
    QATQ_RETURN_IF_ERROR(CommitInodeRef(inode, false, false));
  }
  return Status::OK();
}

void FilesystemImpl::RelieveDirtyPressure() {
  // The files holding the most dirty bytes are committed until the total is
  // under half the limit, so one write over the limit pays for a few large
  // commits instead of every later write committing its own small file.
  std::vector<std::pair<size_t, InodeRef>> dirty;
  {
    std::lock_guard<std::mutex> l(table_mu_);
    for (auto& [ino, in] : inodes_) {
      // try_lock: table_mu_ is a leaf; an inode busy now is skipped.
      std::unique_lock<std::mutex> il(in->mu, std::try_to_lock);
      if (il.owns_lock() && in->pending_bytes > 0 && !in->deleted) {
        dirty.emplace_back(in->pending_bytes, in);
      }
    }
  }
  std::sort(dirty.begin(), dirty.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  const int64_t target = static_cast<int64_t>(options_.max_dirty_bytes / 2);
  for (auto& [bytes, in] : dirty) {
    if (dirty_bytes_.load() <= target) break;
    // A failure is logged by the commit and stays the business of that
    // file's own writers (their flush, fsync or close reports it).
    CommitInodeRef(in, false, false).IgnoreError();
  }
  // The commits just freed many chunk buffers at once, scattered through
  // the heap; glibc keeps such holes unless asked, and RSS would grow past
  // the dirty limit with the churn (docs/RELIABILITY.md section 5).
  malloc_trim(0);
}

Status FilesystemImpl::CommitInode(InodeId ino, bool sync, bool full_only) {
  if (read_only_) return Status::OK();
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  return CommitInodeRef(inode, sync, full_only);
}

Status FilesystemImpl::CommitInodeRef(const InodeRef& inode, bool sync, bool full_only) {
  if (read_only_) return Status::OK();
  std::lock_guard<std::mutex> fl(inode->flush_mu);
  struct Snap {
    uint64_t index;
    uint64_t gen;
    std::shared_ptr<EncodeJob> job;
  };
  std::vector<Snap> snap;
  uint64_t floor, floor_gen, size, attr_gen = 0;
  bool attr_dirty;
  {
    std::lock_guard<std::mutex> l(inode->mu);
    if (inode->deleted) return Status::OK();
    if (inode->pending.empty() && !inode->attr_dirty && inode->floor == kNoFloor) {
      if (sync) return meta_->Commit(meta_->NewBatch().get(), true);
      return Status::OK();
    }
    QATQ_RETURN_IF_ERROR(LoadMapLocked(inode.get()));
    const uint64_t cb = inode->attr.chunk_bytes;
    uint64_t skipped_from = UINT64_MAX;
    for (auto& [idx, pc] : inode->pending) {
      if (!pc.job) {
        if (full_only && pc.raw->size() < cb) {
          skipped_from = std::min(skipped_from, idx);
          continue;
        }
        SubmitEncodeLocked(inode.get(), idx, &pc);
      }
      snap.push_back({idx, pc.gen, pc.job});
    }
    floor = inode->floor;
    floor_gen = inode->floor_gen;
    size = inode->attr.size;
    if (skipped_from != UINT64_MAX) {
      size = std::min(size, std::max(inode->committed_size, skipped_from * cb));
    }
    attr_dirty = inode->attr_dirty;
  }
  for (auto& s : snap) s.job->done.Wait();
  // Our own pins: a concurrent write may release the jobs' pins (copy on
  // write) before this commit references their objects.
  for (auto& s : snap) {
    if (s.job->status.ok() && !s.job->hole) Pin(s.job->ref.id);
  }
  struct Unpinner {
    FilesystemImpl* fs;
    std::vector<Snap>* snap;
    ~Unpinner() {
      for (auto& s : *snap) {
        if (s.job->status.ok() && !s.job->hole) fs->Unpin(s.job->ref.id);
      }
    }
  } unpinner{this, &snap};
  Status failed;
  for (auto& s : snap) {
    if (s.job->status.ok()) continue;
    LogError("write of chunk %llu of inode %llu (%s) failed: %s",
             static_cast<unsigned long long>(s.index), static_cast<unsigned long long>(inode->ino),
             inode->name.c_str(), s.job->status.ToString().c_str());
    if (failed.ok()) failed = s.job->status;
    // Back to dirty, so a later commit encodes and stores it again.
    std::lock_guard<std::mutex> l(inode->mu);
    auto it = inode->pending.find(s.index);
    if (it != inode->pending.end() && it->second.job == s.job) {
      it->second.job = nullptr;
      it->second.gen++;
    }
  }
  QATQ_RETURN_IF_ERROR(failed);
  if (!snap.empty()) QATQ_RETURN_IF_ERROR(chunks_->Sync());

  std::lock_guard<std::mutex> cl(commit_mu_);
  auto b = meta_->NewBatch();
  ChunkMapEdit edit(b.get(), inode->ino);
  {
    std::lock_guard<std::mutex> l(inode->mu);
    if (inode->deleted) return Status::OK();
    for (auto& s : snap) {
      edit.Set(inode->committed, s.index,
               s.job->hole ? std::nullopt : std::optional<ChunkRef>(s.job->ref));
    }
    if (floor != kNoFloor) {
      // Dead past a truncate, unless just written again.
      for (auto it = inode->committed.lower_bound(floor); it != inode->committed.end(); ++it) {
        if (!edit.changes.count(it->first)) edit.Set(inode->committed, it->first, std::nullopt);
      }
    }
    InodeAttr a = inode->attr;
    a.size = size;
    b->PutInode(a);
    attr_gen = inode->attr_gen;
  }
  std::vector<std::pair<ChunkId, uint32_t>> dead;
  QATQ_RETURN_IF_ERROR(ApplyRefDeltas(b.get(), edit.deltas, &dead, edit.sizes));
  QATQ_RETURN_IF_ERROR(meta_->Commit(b.get(), sync));
  {
    std::lock_guard<std::mutex> l(inode->mu);
    edit.ApplyTo(&inode->committed);
    for (auto& s : snap) {
      auto it = inode->pending.find(s.index);
      if (it != inode->pending.end() && it->second.gen == s.gen && it->second.job == s.job) {
        size_t n = it->second.raw->size();
        inode->pending_bytes -= n;
        dirty_bytes_ -= static_cast<int64_t>(n);
        inode->pending.erase(it);
      }
      ReleaseJob(s.job, /*committed=*/true);
    }
    if (inode->floor_gen == floor_gen) inode->floor = kNoFloor;
    inode->committed_size = size;
    // A change made after the batch was built stays dirty for the next commit.
    if (attr_dirty && size == inode->attr.size && inode->attr_gen == attr_gen) {
      inode->attr_dirty = false;
    }
  }
  DeleteDead(dead);
  return Status::OK();
}

Status FilesystemImpl::ApplyRefDeltas(MetaBatch* batch, const std::map<ChunkId, int64_t>& deltas,
                                      std::vector<std::pair<ChunkId, uint32_t>>* dead,
                                      const std::map<ChunkId, uint32_t>& sizes) {
  for (auto& [id, d] : deltas) {
    if (d == 0) continue;
    uint64_t count = 0;
    QATQ_RETURN_IF_ERROR(meta_->GetChunkRefcount(id, &count));
    int64_t n = static_cast<int64_t>(count) + d;
    if (n < 0) n = 0;  // tolerate a damaged count rather than wrap
    batch->SetChunkRefcount(id, static_cast<uint64_t>(n));
    auto sz = sizes.find(id);
    uint32_t stored = sz == sizes.end() ? 0 : sz->second;
    if (n == 0) dead->push_back({id, stored});
    if (count == 0 && n > 0) stored_bytes_ += stored;
  }
  return Status::OK();
}

void FilesystemImpl::DeleteDead(const std::vector<std::pair<ChunkId, uint32_t>>& dead) {
  std::lock_guard<std::mutex> l(pin_mu_);
  for (auto& d : dead) deferred_deletes_[d.first] = d.second;
  for (auto it = deferred_deletes_.begin(); it != deferred_deletes_.end();) {
    auto cur = it++;
    if (pins_.count(cur->first)) continue;
    uint64_t count = 0;
    if (!meta_->GetChunkRefcount(cur->first, &count).ok()) continue;
    if (count == 0) {
      Status s = chunks_->Delete(cur->first);
      if (!s.ok()) {
        LogError("delete of chunk %s failed: %s", cur->first.ToHex().c_str(), s.ToString().c_str());
        continue;
      }
      stored_bytes_ -= cur->second;
    }
    deferred_deletes_.erase(cur);
  }
}

void FilesystemImpl::Pin(const ChunkId& id) {
  std::lock_guard<std::mutex> l(pin_mu_);
  pins_[id]++;
}

void FilesystemImpl::Unpin(const ChunkId& id) {
  std::lock_guard<std::mutex> l(pin_mu_);
  auto it = pins_.find(id);
  if (it != pins_.end() && --it->second <= 0) pins_.erase(it);
}

// ---------------------------------------------------------------------------
// copy_file_range

Status FilesystemImpl::CopyFileRange(InodeId src_ino, uint64_t src_off, InodeId dst_ino,
                                     uint64_t dst_off, uint64_t len, uint64_t* copied) {
  *copied = 0;
  QATQ_RETURN_IF_ERROR(CheckWritable());
  InodeRef src, dst;
  QATQ_RETURN_IF_ERROR(GetInode(src_ino, &src));
  QATQ_RETURN_IF_ERROR(GetInode(dst_ino, &dst));
  uint64_t src_size, cb;
  auto check_regular = [](const InodeAttr& a) {
    if (S_ISDIR(a.mode)) return Status::Posix(EISDIR, "copy of a directory");
    if (!S_ISREG(a.mode)) return Status::Posix(EINVAL, "copy of a special file");
    return Status::OK();
  };
  {
    std::lock_guard<std::mutex> l(src->mu);
    QATQ_RETURN_IF_ERROR(check_regular(src->attr));
    src_size = src->attr.size;
    cb = src->attr.chunk_bytes;
  }
  bool same_chunking;
  {
    std::lock_guard<std::mutex> l(dst->mu);
    QATQ_RETURN_IF_ERROR(check_regular(dst->attr));
    same_chunking = dst->attr.chunk_bytes == cb;
  }
  if (src_off >= src_size || len == 0) return Status::OK();
  len = std::min(len, src_size - src_off);
  if (dst_off + len < dst_off || dst_off + len > (1ull << 60)) {
    return Status::Posix(EFBIG, "file too large");
  }
  if (src_ino == dst_ino && src_off < dst_off + len && dst_off < src_off + len) {
    return Status::Posix(EINVAL, "overlapping ranges of one file");
  }

  uint64_t done = 0, shared = 0;
  if (same_chunking && src_off % cb == dst_off % cb) {
    // Bytes written through other descriptors must be in the committed map
    // to be shared.
    QATQ_RETURN_IF_ERROR(CommitInodeRef(src, false, false));
    uint64_t head = std::min(len, (cb - src_off % cb) % cb);
    uint64_t n = 0;
    QATQ_RETURN_IF_ERROR(CopyBytes(src_ino, src_off, dst_ino, dst_off, head, &n));
    done = n;
    if (n < head) {
      *copied = done;
      return Status::OK();
    }
    const uint64_t rest = len - head;
    const uint64_t whole = rest / cb;
    // The source's last chunk can be shared too when the copy ends at its
    // end of file.
    const uint64_t tail = rest % cb != 0 && src_off + len == src_size ? rest % cb : 0;
    if (whole > 0 || tail > 0) {
      std::vector<uint64_t> unshared;
      QATQ_RETURN_IF_ERROR(ShareChunks(src, (src_off + head) / cb, dst, (dst_off + head) / cb,
                                       whole, tail, &unshared));
      shared = whole + (tail > 0 ? 1 : 0) - unshared.size();
      for (uint64_t k : unshared) {
        uint64_t off = head + k * cb;
        uint64_t want = k < whole ? cb : tail;
        QATQ_RETURN_IF_ERROR(CopyBytes(src_ino, src_off + off, dst_ino, dst_off + off, want, &n));
      }
      done = head + whole * cb + tail;
    }
  }
  uint64_t n = 0;
  QATQ_RETURN_IF_ERROR(CopyBytes(src_ino, src_off + done, dst_ino, dst_off + done, len - done, &n));
  *copied = done + n;
  LogDebug("copy_file_range %s -> %s: %llu bytes, %llu chunks shared", src->name.c_str(),
           dst->name.c_str(), static_cast<unsigned long long>(*copied),
           static_cast<unsigned long long>(shared));
  return Status::OK();
}

Status FilesystemImpl::CopyBytes(InodeId src, uint64_t src_off, InodeId dst, uint64_t dst_off,
                                 uint64_t len, uint64_t* copied) {
  *copied = 0;
  std::string buf;
  while (*copied < len) {
    size_t piece = static_cast<size_t>(std::min<uint64_t>(len - *copied, 1u << 20));
    // fh 0 names no open handle: no O_APPEND, no per-handle readahead.
    QATQ_RETURN_IF_ERROR(Read(src, 0, src_off + *copied, piece, &buf));
    if (buf.empty()) break;
    QATQ_RETURN_IF_ERROR(Write(dst, 0, dst_off + *copied, buf));
    *copied += buf.size();
    if (buf.size() < piece) break;
  }
  return Status::OK();
}

Status FilesystemImpl::ShareChunks(const InodeRef& src, uint64_t src_first, const InodeRef& dst,
                                   uint64_t dst_first, uint64_t count, uint64_t tail_len,
                                   std::vector<uint64_t>* unshared) {
  const uint64_t total = count + (tail_len > 0 ? 1 : 0);
  // dst's own uncommitted changes go first, so the map edit below is the
  // only change in flight for it (flush_mu keeps other commits out).
  QATQ_RETURN_IF_ERROR(CommitInodeRef(dst, false, false));
  std::lock_guard<std::mutex> fl(dst->flush_mu);
  std::lock_guard<std::mutex> cl(commit_mu_);
  // Under commit_mu_ no commit can drop the source's objects before ours
  // adds references to them.
  std::vector<std::optional<ChunkRef>> refs(total);  // nullopt: a hole
  std::vector<bool> shareable(total, true);
  uint64_t cb;
  DType src_dtype;
  DTypeSource src_dtype_source;
  {
    std::lock_guard<std::mutex> l(src->mu);
    if (src->deleted) return Status::Posix(ENOENT, "inode deleted");
    QATQ_RETURN_IF_ERROR(LoadMapLocked(src.get()));
    cb = src->attr.chunk_bytes;
    src_dtype = src->attr.dtype;
    src_dtype_source = src->attr.dtype_source;
    for (uint64_t k = 0; k < total; ++k) {
      uint64_t idx = src_first + k;
      if (src->pending.count(idx) || idx >= src->floor) {
        shareable[k] = false;
        continue;
      }
      auto it = src->committed.find(idx);
      if (it != src->committed.end()) refs[k] = it->second;
      if (k == count && refs[k] && refs[k]->raw_len > tail_len) shareable[k] = false;
    }
  }

  std::lock_guard<std::mutex> l(dst->mu);
  if (dst->deleted) return Status::Posix(ENOENT, "inode deleted");
  QATQ_RETURN_IF_ERROR(LoadMapLocked(dst.get()));
  // A truncate not yet committed marks committed chunks dead from the
  // floor on; sharing into such a map would be undone by its commit.
  if (dst->floor != kNoFloor) shareable.assign(total, false);
  // Bytes of dst past the copied tail must survive, so that chunk is copied.
  if (tail_len > 0 && dst->attr.size > (dst_first + count) * cb + tail_len) {
    shareable[count] = false;
  }
  auto b = meta_->NewBatch();
  ChunkMapEdit edit(b.get(), dst->ino);
  uint64_t new_end = 0;
  for (uint64_t k = 0; k < total; ++k) {
    if (!shareable[k]) {
      unshared->push_back(k);
      continue;
    }
    uint64_t j = dst_first + k;
    edit.Set(dst->committed, j, refs[k]);
    new_end = j * cb + (k < count ? cb : tail_len);
  }
  if (edit.changes.empty()) return Status::OK();
  InodeAttr a = dst->attr;
  if (a.dtype_source == DTypeSource::kDefault) {
    // The copy decides the dtype of a file nothing was written to yet.
    a.dtype = src_dtype;
    a.dtype_source = src_dtype_source;
  }
  a.size = std::max(dst->committed_size, new_end);
  a.mtime_ns = a.ctime_ns = NowNs();
  b->PutInode(a);
  std::vector<std::pair<ChunkId, uint32_t>> dead;
  QATQ_RETURN_IF_ERROR(ApplyRefDeltas(b.get(), edit.deltas, &dead, edit.sizes));
  QATQ_RETURN_IF_ERROR(meta_->Commit(b.get(), false));
  edit.ApplyTo(&dst->committed);
  for (auto& [j, ref] : edit.changes) {
    // Uncommitted bytes there (written since our commit) are superseded.
    auto pit = dst->pending.find(j);
    if (pit != dst->pending.end()) DropPendingLocked(dst.get(), pit);
  }
  dst->attr.dtype = a.dtype;
  dst->attr.dtype_source = a.dtype_source;
  dst->attr.size = std::max(dst->attr.size, a.size);
  dst->attr.mtime_ns = a.mtime_ns;
  dst->attr.ctime_ns = a.ctime_ns;
  dst->committed_size = a.size;
  DeleteDead(dead);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Read path

void FilesystemImpl::LogCorruptOnce(const Inode& inode, uint64_t index, const Status& s) {
  std::lock_guard<std::mutex> l(log_mu_);
  if (!logged_corrupt_.insert({inode.ino, index}).second) return;
  LogError("corrupt chunk %llu of inode %llu (%s): %s", static_cast<unsigned long long>(index),
           static_cast<unsigned long long>(inode.ino), inode.name.c_str(), s.ToString().c_str());
}

Status FilesystemImpl::FetchDecode(const ChunkRef& ref, std::shared_ptr<const std::string>* raw) {
  // Per thread and reused, like the decoded buffers: no page faults per
  // chunk read.
  thread_local std::string record;
  Status s = chunks_->Get(ref.id, &record);
  if (s.IsNotFound()) return Status::Corruption("chunk object " + ref.id.ToHex() + " missing");
  QATQ_RETURN_IF_ERROR(s);
  std::shared_ptr<std::string> out = decoded_buffers_->Acquire(ref.raw_len);
  ChunkRecordInfo info;
  QATQ_RETURN_IF_ERROR(DecodeChunkRecord(record, out.get(), &info));
  if (out->size() != ref.raw_len || !(ChunkId::OfRaw(*out) == ref.id)) {
    return Status::Corruption("chunk " + ref.id.ToHex() + " decodes to other bytes");
  }
  *raw = std::move(out);
  return Status::OK();
}

Status FilesystemImpl::GetDecoded(const ChunkRef& ref, const Inode& inode, uint64_t index,
                                  std::shared_ptr<const std::string>* raw) {
  for (int attempt = 0;; ++attempt) {
    if ((*raw = cache_.Lookup(ref.id))) return Status::OK();
    std::shared_ptr<Completion> wait;
    std::shared_ptr<Completion> mine;
    {
      std::lock_guard<std::mutex> l(inflight_mu_);
      auto it = inflight_.find(ref.id);
      if (it != inflight_.end() && attempt == 0) {
        wait = it->second;
      } else if (it == inflight_.end()) {
        mine = std::make_shared<Completion>();
        inflight_[ref.id] = mine;
      }
    }
    if (wait) {
      wait->Wait();
      continue;
    }
    Status s = FetchDecode(ref, raw);
    if (s.ok()) cache_.Insert(ref.id, *raw);
    if (mine) {
      std::lock_guard<std::mutex> l(inflight_mu_);
      inflight_.erase(ref.id);
      mine->Done();
    }
    if (!s.ok()) {
      LogCorruptOnce(inode, index, s);
      if (s.IsCorruption()) return Status::IOError(s.message(), EIO);
    }
    return s;
  }
}

void FilesystemImpl::ScheduleReadahead(const InodeRef& inode, uint64_t from_index) {
  if (options_.readahead_chunks <= 0) return;
  if (pool_.low_priority_backlog() > static_cast<size_t>(options_.readahead_chunks)) return;
  std::vector<std::pair<uint64_t, ChunkRef>> todo;
  {
    std::lock_guard<std::mutex> l(inode->mu);
    auto it = inode->committed.lower_bound(from_index);
    std::lock_guard<std::mutex> il(inflight_mu_);
    for (int n = 0; it != inode->committed.end() && n < options_.readahead_chunks; ++it, ++n) {
      if (it->first >= inode->floor || inode->pending.count(it->first)) continue;
      const ChunkId& id = it->second.id;
      // Every read of a stream asks again for the same chunks ahead: one
      // decode each, never a worker parked waiting for another's.
      if (cache_.Contains(id) || inflight_.count(id) || !readahead_queued_.insert(id).second) {
        continue;
      }
      Pin(id);
      todo.push_back(*it);
    }
  }
  for (auto& [idx, ref] : todo) {
    pool_.Submit(
        [this, inode, idx = idx, ref = ref] {
          bool busy;
          {
            std::lock_guard<std::mutex> l(inflight_mu_);
            readahead_queued_.erase(ref.id);
            busy = inflight_.count(ref.id) > 0;
          }
          std::shared_ptr<const std::string> raw;
          // A failure is the reader's to retry and report.
          if (!busy) GetDecoded(ref, *inode, idx, &raw).IgnoreError();
          Unpin(ref.id);
        },
        /*low_priority=*/true);
  }
}

Status FilesystemImpl::ReadSlices(InodeId ino, uint64_t fh, uint64_t offset, size_t size,
                                  ReadBuffer* out) {
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  out->Clear();
  // The read's pieces in file order: bytes of a committed chunk to fetch,
  // or a buffer that is ready (nullptr = zeros).
  struct Piece {
    uint64_t index;
    size_t in_chunk;
    size_t len;
    std::optional<ChunkRef> ref;
    std::shared_ptr<const std::string> ready;
  };
  std::vector<Piece> pieces;
  bool sequential;
  uint64_t cb;
  {
    std::lock_guard<std::mutex> l(inode->mu);
    if (S_ISDIR(inode->attr.mode)) return Status::Posix(EISDIR, "is a directory");
    uint64_t fsize = inode->attr.size;
    if (offset >= fsize || size == 0) return Status::OK();
    size = static_cast<size_t>(std::min<uint64_t>(size, fsize - offset));
    QATQ_RETURN_IF_ERROR(LoadMapLocked(inode.get()));
    cb = inode->attr.chunk_bytes;
    size_t done = 0;
    while (done < size) {
      uint64_t pos = offset + done;
      uint64_t idx = pos / cb;
      size_t in_chunk = pos % cb;
      size_t n = std::min<size_t>(size - done, cb - in_chunk);
      Piece p{idx, in_chunk, n, std::nullopt, nullptr};
      auto pit = inode->pending.find(idx);
      if (pit != inode->pending.end()) {
        // Dirty bytes change under later writes: snapshot them.
        const std::string& raw = *pit->second.raw;
        if (in_chunk < raw.size()) {
          p.ready = std::make_shared<const std::string>(
              raw.substr(in_chunk, std::min(n, raw.size() - in_chunk)));
          p.in_chunk = 0;
        }
      } else if (idx < inode->floor) {
        auto cit = inode->committed.find(idx);
        if (cit != inode->committed.end() && in_chunk < cit->second.raw_len) {
          Pin(cit->second.id);
          p.ref = cit->second;
        }
      }
      pieces.push_back(std::move(p));
      done += n;
    }
    // Sequential if within two chunks of where the stream left off: the
    // multithreaded session delivers a stream's 128 KiB requests out of
    // order. Tracked per handle so two readers of one file do not confuse
    // each other.
    auto near = [&](uint64_t expect) {
      return expect != UINT64_MAX && offset + 2 * cb >= expect && offset <= expect + 2 * cb;
    };
    std::lock_guard<std::mutex> hl(handles_mu_);
    auto h = handles_.find(fh);
    uint64_t& next = h != handles_.end() ? h->second.next_read : inode->next_read;
    sequential = offset == 0 || near(next);
    next = sequential && next != UINT64_MAX ? std::max(next, offset + size) : offset + size;
  }
  Status st;
  for (auto& p : pieces) {
    if (!p.ref) continue;
    Status s = st.ok() ? GetDecoded(*p.ref, *inode, p.index, &p.ready) : st;
    Unpin(p.ref->id);
    if (!s.ok()) st = s;
  }
  QATQ_RETURN_IF_ERROR(st);
  for (auto& p : pieces) {
    size_t have = 0;
    if (p.ready && p.ready->size() > p.in_chunk) {
      have = std::min(p.len, p.ready->size() - p.in_chunk);
      out->Append(p.ready, std::string_view(*p.ready).substr(p.in_chunk, have));
    }
    out->AppendZeros(p.len - have);  // past a chunk's raw length, or a hole
  }
  if (sequential) ScheduleReadahead(inode, (offset + size + cb - 1) / cb);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Extended attributes

Status FilesystemImpl::SetXattr(InodeId ino, std::string_view name, std::string_view value,
                                int flags) {
  QATQ_RETURN_IF_ERROR(CheckWritable());
  if (name.substr(0, 5) != "user.") return Status::Posix(EOPNOTSUPP, "only user.* xattrs");
  if (name.size() > 255) return Status::Posix(ERANGE, "xattr name too long");
  if (value.size() > kMaxXattrValue) return Status::Posix(E2BIG, "xattr value too large");
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  bool is_dir, is_reg;
  {
    std::lock_guard<std::mutex> l(inode->mu);
    is_dir = S_ISDIR(inode->attr.mode);
    is_reg = S_ISREG(inode->attr.mode);
  }
  if (name.substr(0, 10) == "user.qatq.") {
    if (name != kDTypeXattr) return Status::Posix(EPERM, "read-only statistics attribute");
    std::string v(value);
    while (!v.empty() && (v.back() == '\n' || v.back() == '\0')) v.pop_back();
    auto t = ParseDType(v);
    if (!t && v != "auto") return Status::Posix(EINVAL, "dtype must be bf16|f16|f32|bytes|auto");
    if (is_reg) {
      {
        std::lock_guard<std::mutex> l(inode->mu);
        if (t) {
          inode->attr.dtype = *t;
          inode->attr.dtype_source = DTypeSource::kXattr;
        } else {
          inode->attr.dtype_source = DTypeSource::kDefault;
        }
        inode->MarkAttrDirty();
      }
      return CommitInodeRef(inode, false, false);
    }
    if (!is_dir) return Status::Posix(EPERM, "dtype applies to files and directories");
    value = v;
    std::string stored(v);
    std::lock_guard<std::mutex> cl(commit_mu_);
    auto b = meta_->NewBatch();
    b->PutXattr(ino, name, stored);
    return meta_->Commit(b.get(), false);
  }
  if (!is_reg && !is_dir) {
    // Linux forbids user.* on symlinks and special files.
    return Status::Posix(EPERM, "user xattrs only on files and directories");
  }
  std::lock_guard<std::mutex> cl(commit_mu_);
  std::string old;
  Status gs = meta_->GetXattr(ino, name, &old);
  if (!gs.ok() && !gs.IsNotFound()) return gs;
  if ((flags & XATTR_CREATE) && gs.ok()) return Status::Posix(EEXIST, "xattr exists");
  if ((flags & XATTR_REPLACE) && !gs.ok()) return Status::Posix(ENODATA, "no such xattr");
  auto b = meta_->NewBatch();
  b->PutXattr(ino, name, value);
  {
    std::lock_guard<std::mutex> l(inode->mu);
    inode->attr.ctime_ns = NowNs();
    b->PutInode(PersistedAttr(inode.get()));
  }
  return meta_->Commit(b.get(), false);
}

Status FilesystemImpl::GetXattr(InodeId ino, std::string_view name, std::string* value) {
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  if (name.substr(0, 10) == "user.qatq.") {
    std::lock_guard<std::mutex> l(inode->mu);
    if (S_ISREG(inode->attr.mode)) {
      QATQ_RETURN_IF_ERROR(LoadMapLocked(inode.get()));
      uint64_t stored = 0, chunks = 0;
      std::map<std::string, uint64_t> strategies;
      for (auto& [i, r] : inode->committed) {
        if (i >= inode->floor) continue;
        stored += r.stored_len;
        chunks++;
        strategies[StrategyName(r.strategy)]++;
      }
      if (name == "user.qatq.stored_bytes") {
        *value = std::to_string(stored);
      } else if (name == "user.qatq.chunks") {
        *value = std::to_string(chunks);
      } else if (name == "user.qatq.ratio") {
        char buf[64];
        double ratio = stored ? static_cast<double>(inode->committed_size) / stored : 0.0;
        std::snprintf(buf, sizeof buf, "%.4f", ratio);
        *value = buf;
      } else if (name == kDTypeXattr) {
        *value = std::string(DTypeName(inode->attr.dtype));
      } else if (name == "user.qatq.strategies") {
        value->clear();
        for (auto& [n, c] : strategies) {
          if (!value->empty()) *value += ",";
          *value += n + ":" + std::to_string(c);
        }
      } else {
        return Status::Posix(ENODATA, "no such attribute");
      }
      return Status::OK();
    }
  }
  Status s = meta_->GetXattr(ino, name, value);
  if (s.IsNotFound()) return Status::Posix(ENODATA, "no such attribute");
  return s;
}

Status FilesystemImpl::ListXattr(InodeId ino, std::vector<std::string>* names) {
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  return meta_->ListXattrs(ino, names);
}

Status FilesystemImpl::RemoveXattr(InodeId ino, std::string_view name) {
  QATQ_RETURN_IF_ERROR(CheckWritable());
  if (name.substr(0, 5) != "user.") return Status::Posix(EOPNOTSUPP, "only user.* xattrs");
  InodeRef inode;
  QATQ_RETURN_IF_ERROR(GetInode(ino, &inode));
  std::lock_guard<std::mutex> cl(commit_mu_);
  std::string old;
  Status gs = meta_->GetXattr(ino, name, &old);
  if (gs.IsNotFound()) {
    if (name.substr(0, 10) == "user.qatq.") return Status::Posix(EPERM, "read-only attribute");
    return Status::Posix(ENODATA, "no such attribute");
  }
  QATQ_RETURN_IF_ERROR(gs);
  auto b = meta_->NewBatch();
  b->DeleteXattr(ino, name);
  return meta_->Commit(b.get(), false);
}

// ---------------------------------------------------------------------------

Status FilesystemImpl::Statfs(FsStatfs* st) {
  uint64_t total = 0, free = 0;
  QATQ_RETURN_IF_ERROR(chunks_->Capacity(&total, &free));
  st->block_size = 4096;
  uint64_t used = static_cast<uint64_t>(std::max<int64_t>(stored_bytes_.load(), 0));
  st->blocks = (used + free + st->block_size - 1) / st->block_size;
  st->blocks_free = free / st->block_size;
  st->files = 1ull << 32;
  uint64_t inodes = last_ino_.load();
  st->files_free = st->files > inodes ? st->files - inodes : 0;
  st->name_max = 255;
  return Status::OK();
}

}  // namespace

Status Filesystem::Open(std::unique_ptr<Store> store, const FilesystemOptions& options,
                        std::unique_ptr<Filesystem>* fs) {
  auto impl = std::make_unique<FilesystemImpl>(std::move(store), options);
  QATQ_RETURN_IF_ERROR(impl->Init());
  *fs = std::move(impl);
  return Status::OK();
}

}  // namespace qatq
