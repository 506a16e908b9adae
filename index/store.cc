#include "index/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

namespace qatq {

namespace {

constexpr char kLockName[] = "LOCK";
constexpr char kIndexName[] = "index";
constexpr char kChunksName[] = "chunks";

std::string Join(const std::string& dir, const char* name) { return dir + "/" + name; }

Status BusyStatus(const std::string& path) {
  return Status::Busy("store " + path +
                      " is in use by another qatqfs process (mounted?); unmount it first");
}

Status FsyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path);
  Status s;
  if (::fsync(fd) != 0) s = Status::FromErrno("fsync " + path);
  ::close(fd);
  return s;
}

// Opens (creating 0600 if needed) and flock()s STORE/LOCK. flock locks
// belong to the open file description, so a second OpenStore in the same
// process is refused too, unlike RocksDB's fcntl lock.
Status TakeLock(const std::string& store_path, int* fd_out) {
  const std::string path = Join(store_path, kLockName);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("open " + path);
  if (::fchmod(fd, 0600) != 0) {
    Status s = Status::FromErrno("chmod " + path);
    ::close(fd);
    return s;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    Status s = errno == EWOULDBLOCK ? BusyStatus(store_path) : Status::FromErrno("flock " + path);
    ::close(fd);
    return s;
  }
  *fd_out = fd;
  return Status::OK();
}

std::string NewUuid() {
  uint8_t b[16] = {};
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    got += static_cast<size_t>(n);
  }
  if (got < sizeof b) {
    // No entropy source: a time-based id is still unique enough to tell
    // stores apart, which is all the uuid is for.
    uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count() ^
                                       ::getpid());
    for (int i = 0; i < 8; ++i) b[i] ^= static_cast<uint8_t>(t >> (8 * i));
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  char s[37];
  std::snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                b[13], b[14], b[15]);
  return s;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// OK if `path` is missing (created 0700) or an empty directory.
Status PrepareEmptyDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0) {
    if (errno != EEXIST) return Status::FromErrno("mkdir " + path);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path);
    if (!S_ISDIR(st.st_mode))
      return Status::InvalidArgument(path + " exists and is not a directory");
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return Status::FromErrno("opendir " + path);
    bool empty = true;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") {
        empty = false;
        break;
      }
    }
    ::closedir(d);
    if (!empty) {
      return Status::InvalidArgument(path + " is not empty; mkfs needs a new or empty directory");
    }
  }
  if (::chmod(path.c_str(), 0700) != 0) return Status::FromErrno("chmod " + path);
  return Status::OK();
}

Status CheckChunkBytes(uint32_t chunk_bytes) {
  if (chunk_bytes < kMinChunkBytes || chunk_bytes > kMaxChunkBytes || chunk_bytes % 4 != 0) {
    return Status::InvalidArgument(
        "chunk size " + std::to_string(chunk_bytes) + " must be a multiple of 4 between " +
        std::to_string(kMinChunkBytes) + " and " + std::to_string(kMaxChunkBytes) + " bytes");
  }
  return Status::OK();
}

class StoreImpl final : public Store {
 public:
  StoreImpl(std::string path, const StoreOptions& options, int lock_fd)
      : path_(std::move(path)),
        read_only_(options.read_only),
        lock_fd_(lock_fd),
        wrap_chunks_(options.wrap_chunks) {}

  ~StoreImpl() override {
    // Close the index before giving up the lock, so the next owner never
    // sees RocksDB's own lock still held.
    meta_.reset();
    chunks_.reset();
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  StoreImpl(const StoreImpl&) = delete;
  StoreImpl& operator=(const StoreImpl&) = delete;

  MetadataStore* meta() override { return meta_.get(); }
  ChunkStore* chunks() override { return chunks_.get(); }
  const Superblock& superblock() const override { return sb_; }
  const std::string& path() const override { return path_; }
  bool read_only() const override { return read_only_; }

  Status Open() {
    MetadataStoreOptions mo;
    mo.read_only = read_only_;
    Status s = OpenRocksDbMetadataStore(Join(path_, kIndexName), mo, &meta_);
    if (s.IsBusy()) return BusyStatus(path_);
    QATQ_RETURN_IF_ERROR(s.WithContext(path_));
    s = meta_->GetSuperblock(&sb_);
    if (s.IsNotFound()) {
      return Status::Corruption(path_ +
                                ": the index has no superblock; this is not a qatqfs store or "
                                "its mkfs did not finish (run qatqfs mkfs on an empty directory)");
    }
    if (s.IsNotSupported()) return s.WithContext(path_);
    QATQ_RETURN_IF_ERROR(s.WithContext(path_));
    if (!CheckChunkBytes(sb_.default_chunk_bytes).ok()) {
      return Status::Corruption(path_ + ": superblock has invalid default chunk size " +
                                std::to_string(sb_.default_chunk_bytes));
    }
    FileChunkStoreOptions co;
    co.read_only = read_only_;
    QATQ_RETURN_IF_ERROR(
        OpenFileChunkStore(Join(path_, kChunksName), co, &chunks_).WithContext(path_));
    if (wrap_chunks_) chunks_ = wrap_chunks_(std::move(chunks_));
    if (!chunks_) return Status::InvalidArgument("wrap_chunks returned no chunk store");
    return Status::OK();
  }

 private:
  const std::string path_;
  const bool read_only_;
  const int lock_fd_;
  const std::function<std::unique_ptr<ChunkStore>(std::unique_ptr<ChunkStore>)> wrap_chunks_;
  std::unique_ptr<MetadataStore> meta_;
  std::unique_ptr<ChunkStore> chunks_;
  Superblock sb_;
};

std::string Normalize(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

}  // namespace

Status CreateStore(const std::string& path_in, const MkfsOptions& options) {
  const std::string path = Normalize(path_in);
  const uint32_t chunk_bytes = options.chunk_bytes == 0 ? kDefaultChunkBytes : options.chunk_bytes;
  QATQ_RETURN_IF_ERROR(CheckChunkBytes(chunk_bytes));
  QATQ_RETURN_IF_ERROR(PrepareEmptyDir(path));

  int lock_fd = -1;
  QATQ_RETURN_IF_ERROR(TakeLock(path, &lock_fd));
  struct LockCloser {
    int fd;
    ~LockCloser() { ::close(fd); }
  } closer{lock_fd};

  std::unique_ptr<ChunkStore> chunks;
  QATQ_RETURN_IF_ERROR(OpenFileChunkStore(Join(path, kChunksName), &chunks));
  chunks.reset();

  const std::string index_dir = Join(path, kIndexName);
  if (::mkdir(index_dir.c_str(), 0700) != 0) return Status::FromErrno("mkdir " + index_dir);
  if (::chmod(index_dir.c_str(), 0700) != 0) return Status::FromErrno("chmod " + index_dir);
  MetadataStoreOptions mo;
  mo.create_if_missing = true;
  std::unique_ptr<MetadataStore> meta;
  QATQ_RETURN_IF_ERROR(OpenRocksDbMetadataStore(index_dir, mo, &meta));

  Superblock sb;
  sb.format_version = kStoreFormatVersion;
  sb.default_chunk_bytes = chunk_bytes;
  sb.created_ns = static_cast<uint64_t>(NowNs());
  sb.uuid = NewUuid();

  InodeAttr root;
  root.ino = kRootInode;
  root.mode = S_IFDIR | (options.root_mode & 07777);
  root.uid = options.root_uid;
  root.gid = options.root_gid;
  root.nlink = 2;
  root.atime_ns = root.mtime_ns = root.ctime_ns = static_cast<int64_t>(sb.created_ns);

  // The commit point of mkfs: before it the directory is "not a store",
  // after it a complete empty filesystem.
  std::unique_ptr<MetaBatch> batch = meta->NewBatch();
  batch->PutSuperblock(sb);
  batch->PutInode(root);
  batch->PutLastInode(kRootInode);
  QATQ_RETURN_IF_ERROR(meta->Commit(batch.get(), /*sync=*/true));
  QATQ_RETURN_IF_ERROR(meta->Flush());
  meta.reset();
  return FsyncDir(path);
}

Status OpenStore(const std::string& path_in, const StoreOptions& options,
                 std::unique_ptr<Store>* store) {
  const std::string path = Normalize(path_in);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("no qatqfs store at " + path);
    return Status::FromErrno("stat " + path);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(path + " is not a directory, so not a qatqfs store");
  }
  const std::string index_dir = Join(path, kIndexName);
  if (::stat(index_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(path + " is not a qatqfs store (no index/ directory)");
  }
  int lock_fd = -1;
  if (!options.read_only) QATQ_RETURN_IF_ERROR(TakeLock(path, &lock_fd));
  auto impl = std::make_unique<StoreImpl>(path, options, lock_fd);
  QATQ_RETURN_IF_ERROR(impl->Open());
  *store = std::move(impl);
  return Status::OK();
}

}  // namespace qatq
