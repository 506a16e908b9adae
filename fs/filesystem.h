// Filesystem: the FUSE-free core of qatqfs. fs/fuse_ops.cc translates each
// FUSE request into one call here and the reply into errno values
// (fs/errno_map.h); unit tests drive this class directly.
//
// Data path. Each regular file is a map of fixed-size chunks (the file's
// chunk_bytes). Writes go to per-inode dirty chunk buffers (read-modify-write
// of a committed chunk when a write touches part of it). A chunk that fills
// up is encoded (codec/chunk_record.h) and Put into the ChunkStore on the
// worker pool; Flush/Fsync/Release, and a write that finds too much dirty
// data, commit: every dirty chunk is encoded and stored, ChunkStore::Sync()
// makes the objects durable, then one MetaBatch carrying the chunk map
// changes, the inode record and the chunk reference counts is committed.
// Objects whose count fell to 0 are deleted after the commit.
//
// Holes: chunks that are all zeros are not stored; a missing chunk reads as
// zeros, as do bytes past a chunk's raw length below the file size.
//
// Lifetime: an inode whose link count reaches 0 while open is recorded as an
// orphan and reclaimed at its last Release (or at the next mount).
//
// Thread-safety: every public method may be called concurrently (the FUSE
// session loop is multithreaded).
// Lock order: commit_mu_ -> Inode::mu -> inflight_mu_ -> pin_mu_; table_mu_,
// handles_mu_ and the chunk cache's lock are leaves. Inode::flush_mu is taken
// before commit_mu_.
#ifndef QATQ_FS_FILESYSTEM_H_
#define QATQ_FS_FILESYSTEM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "codec/dtype.h"
#include "index/store.h"
#include "index/types.h"

namespace qatq {

struct FilesystemOptions {
  // Refuse every change with EROFS.
  // Default: false
  bool read_only = false;
  // Element type for new files; nullopt = auto (xattr, name, safetensors
  // header, sampling of the first chunk).
  // Default: nullopt
  std::optional<DType> dtype;
  // Decoded chunk cache size.
  // Default: 256 MiB
  size_t cache_bytes = 256u << 20;
  // Threads encoding chunks and decoding readahead.
  // Default: 2
  int worker_threads = 2;
  // A write that leaves more than this many uncommitted bytes in the whole
  // filesystem commits its inode before returning (back-pressure).
  // Default: 256 MiB
  size_t max_dirty_bytes = 256u << 20;
  // A write that leaves more than this many uncommitted bytes in its inode
  // commits the full chunks of that inode.
  // Default: 64 MiB
  size_t inode_commit_bytes = 64u << 20;
  // Chunks decoded ahead of a sequential reader.
  // Default: 4
  int readahead_chunks = 4;
  // Encoder effort (ChunkEncodeOptions::effort).
  // Default: 5
  int encode_effort = 5;
};

// The caller of a request (fuse_req_ctx).
struct CallerContext {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct SetAttrRequest {
  std::optional<uint32_t> mode;  // permission bits only
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  std::optional<int64_t> atime_ns;  // kNow = current time
  std::optional<int64_t> mtime_ns;
  static constexpr int64_t kNow = INT64_MIN;
};

struct FsStatfs {
  uint64_t block_size = 4096;
  uint64_t blocks = 0;
  uint64_t blocks_free = 0;
  uint64_t files = 0;
  uint64_t files_free = 0;
  uint32_t name_max = 255;
};

// Open flags the core cares about (translated from O_* by the adapter).
struct OpenFlags {
  bool write = false;
  bool append = false;
  bool truncate = false;
  bool exclusive = false;  // O_EXCL on create
};

struct RenameFlags {
  bool noreplace = false;
  bool exchange = false;
};

// The result of a read: slices, in file order, of buffers it owns a share
// of (decoded chunks, a snapshot of uncommitted bytes) or of a static zero
// page. Not thread-safe.
class ReadBuffer {
 public:
  // `owner` keeps `slice`'s bytes alive; nullptr for static bytes.
  void Append(std::shared_ptr<const std::string> owner, std::string_view slice);
  void AppendZeros(size_t n);
  const std::vector<std::string_view>& slices() const { return slices_; }
  size_t size() const { return size_; }
  void CopyTo(std::string* out) const;
  void Clear();

 private:
  std::vector<std::shared_ptr<const std::string>> owners_;
  std::vector<std::string_view> slices_;
  size_t size_ = 0;
};

// Largest xattr value accepted (user.* attributes).
inline constexpr size_t kMaxXattrValue = 64u << 10;

class Filesystem {
 public:
  // Takes ownership of `store`. Reclaims orphans left by a crashed daemon
  // unless the store is read-only.
  static Status Open(std::unique_ptr<Store> store, const FilesystemOptions& options,
                     std::unique_ptr<Filesystem>* fs);

  // Does not commit: dirty data not yet committed is dropped (as in a
  // crash). Call Shutdown() first for a clean unmount.
  virtual ~Filesystem() = default;

  // Commits every dirty inode, reclaims unlinked inodes, flushes the index.
  virtual Status Shutdown() = 0;

  // Namespace. Lookup counts a kernel reference (see Forget).
  virtual Status Lookup(InodeId parent, std::string_view name, InodeAttr* attr) = 0;
  virtual void Forget(InodeId ino, uint64_t nlookup) = 0;
  virtual Status GetAttr(InodeId ino, InodeAttr* attr) = 0;
  virtual Status SetAttr(InodeId ino, const SetAttrRequest& req, InodeAttr* attr) = 0;
  virtual Status Mkdir(const CallerContext& ctx, InodeId parent, std::string_view name,
                       uint32_t mode, InodeAttr* attr) = 0;
  // Regular files, FIFOs, sockets and device nodes (mode has the type).
  virtual Status Mknod(const CallerContext& ctx, InodeId parent, std::string_view name,
                       uint32_t mode, uint64_t rdev, InodeAttr* attr) = 0;
  virtual Status Symlink(const CallerContext& ctx, InodeId parent, std::string_view name,
                         std::string_view target, InodeAttr* attr) = 0;
  virtual Status Readlink(InodeId ino, std::string* target) = 0;
  virtual Status Link(InodeId ino, InodeId new_parent, std::string_view new_name,
                      InodeAttr* attr) = 0;
  virtual Status Unlink(InodeId parent, std::string_view name) = 0;
  virtual Status Rmdir(InodeId parent, std::string_view name) = 0;
  virtual Status Rename(InodeId parent, std::string_view name, InodeId new_parent,
                        std::string_view new_name, RenameFlags flags) = 0;

  // Directories. Offsets are positions in a snapshot taken by OpenDir.
  virtual Status OpenDir(InodeId ino, uint64_t* fh) = 0;
  // Entries from position `offset` on ("." and ".." included); each entry's
  // next offset is its position + 1.
  virtual Status ReadDir(InodeId ino, uint64_t fh, uint64_t offset, size_t max,
                         std::vector<DirEntry>* entries) = 0;
  virtual void ReleaseDir(uint64_t fh) = 0;

  // Files.
  virtual Status Create(const CallerContext& ctx, InodeId parent, std::string_view name,
                        uint32_t mode, OpenFlags flags, InodeAttr* attr, uint64_t* fh) = 0;
  // *keep_cache: whether the kernel may keep its page cache of the file;
  // always true. Every change goes through the kernel, whose write-through
  // keeps that cache current, and dropping it while another descriptor's
  // write is in flight caches the bytes from before that write.
  virtual Status OpenFile(InodeId ino, OpenFlags flags, uint64_t* fh, bool* keep_cache) = 0;
  // Reads up to `size` bytes at `offset`; short only at end of file. The
  // bytes are slices of decoded chunks shared with the cache (no copy);
  // `out` keeps them alive.
  virtual Status ReadSlices(InodeId ino, uint64_t fh, uint64_t offset, size_t size,
                            ReadBuffer* out) = 0;
  // ReadSlices into one string.
  Status Read(InodeId ino, uint64_t fh, uint64_t offset, size_t size, std::string* out) {
    ReadBuffer buf;
    QATQ_RETURN_IF_ERROR(ReadSlices(ino, fh, offset, size, &buf));
    buf.CopyTo(out);
    return Status::OK();
  }
  // Writes `data` at `offset` (at end of file for O_APPEND handles).
  virtual Status Write(InodeId ino, uint64_t fh, uint64_t offset, std::string_view data) = 0;
  // Commits the inode's data and attributes (not synced to disk).
  virtual Status Flush(InodeId ino) = 0;
  // Commits and makes durable.
  virtual Status Fsync(InodeId ino) = 0;
  virtual Status Release(InodeId ino, uint64_t fh) = 0;
  // copy_file_range(2): copies up to `len` bytes of file `src` at `src_off`
  // to file `dst` at `dst_off`; *copied is short only at the source's end of
  // file. Chunks covered whole, at the same offset within a chunk in both
  // files, are shared (their reference counts grow) instead of decoded and
  // stored again, so copying a committed file costs index updates only; the
  // rest is copied as bytes. EINVAL for overlapping ranges of one file.
  virtual Status CopyFileRange(InodeId src, uint64_t src_off, InodeId dst, uint64_t dst_off,
                               uint64_t len, uint64_t* copied) = 0;

  // Extended attributes. Only user.* is writable; user.qatq.* statistics are
  // read-only and not listed; user.qatq.dtype on a file sets its dtype.
  // flags: XATTR_CREATE / XATTR_REPLACE.
  virtual Status SetXattr(InodeId ino, std::string_view name, std::string_view value,
                          int flags) = 0;
  virtual Status GetXattr(InodeId ino, std::string_view name, std::string* value) = 0;
  virtual Status ListXattr(InodeId ino, std::vector<std::string>* names) = 0;
  virtual Status RemoveXattr(InodeId ino, std::string_view name) = 0;

  virtual Status Statfs(FsStatfs* st) = 0;

  virtual bool read_only() const = 0;
};

}  // namespace qatq

#endif  // QATQ_FS_FILESYSTEM_H_
