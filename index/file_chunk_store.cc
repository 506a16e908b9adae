// ChunkStore with one file per object: DIR/xx/<32 hex>, written through
// DIR/tmp/ (write, fdatasync, rename). See index/chunk_store.h for the
// durability contract and docs/STORE.md for why objects are files.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <set>
#include <string>

#include "base/posix_io.h"
#include "codec/chunk_record.h"
#include "index/chunk_store.h"

namespace qatq {

namespace {

// No valid record is larger: the biggest raw chunk stored verbatim plus a
// header. Bounds the allocation Get makes from a (possibly damaged) file.
constexpr uint64_t kMaxObjectBytes = uint64_t{kMaxChunkRawBytes} + (1u << 20);

// Upper end of FileChunkStoreOptions::kAutoReserve: RocksDB's largest
// single write is a memtable flush (write_buffer_size, 16 MiB).
constexpr uint64_t kMaxAutoReserve = uint64_t{16} << 20;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // close() errors matter after writes (NFS reports ENOSPC there).
  int Close() {
    int fd = fd_;
    fd_ = -1;
    return ::close(fd);
  }

 private:
  int fd_;
};

bool IsHexByteName(const char* name) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  return name[0] != '\0' && name[1] != '\0' && name[2] == '\0' && hex(name[0]) && hex(name[1]);
}

Status FsyncPath(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno("open " + path);
  if (::fsync(fd.get()) != 0) return Status::FromErrno("fsync " + path);
  return Status::OK();
}

// mkdir with exactly `mode`, whatever the umask. OK if it exists; *created
// says whether this call made it.
Status MakeDir(const std::string& path, mode_t mode, bool* created) {
  *created = false;
  if (::mkdir(path.c_str(), mode) == 0) {
    *created = true;
    if (::chmod(path.c_str(), mode) != 0) return Status::FromErrno("chmod " + path);
    return Status::OK();
  }
  if (errno != EEXIST) return Status::FromErrno("mkdir " + path);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path);
  if (!S_ISDIR(st.st_mode))
    return Status::IOError(path + " exists and is not a directory", ENOTDIR);
  return Status::OK();
}

class FileChunkStore final : public ChunkStore {
 public:
  FileChunkStore(std::string dir, const FileChunkStoreOptions& options)
      : dir_(std::move(dir)),
        tmp_dir_(dir_ + "/tmp"),
        read_only_(options.read_only),
        remove_stale_tmp_(options.remove_stale_tmp),
        reserve_bytes_(options.reserve_bytes) {}

  Status Init() {
    if (reserve_bytes_ == FileChunkStoreOptions::kAutoReserve) {
      struct statvfs v;
      uint64_t total = 0;
      if (::statvfs(dir_.c_str(), &v) == 0) total = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
      // A directory that does not exist yet: its parent's device.
      if (total == 0) {
        size_t slash = dir_.find_last_of('/');
        std::string parent = slash == std::string::npos ? "." : dir_.substr(0, slash);
        if (::statvfs(parent.empty() ? "/" : parent.c_str(), &v) == 0) {
          total = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
        }
      }
      reserve_bytes_ = std::min<uint64_t>(total / 16, kMaxAutoReserve);
    }
    if (read_only_) {
      struct stat st;
      if (::stat(dir_.c_str(), &st) != 0) return Status::FromErrno("chunk directory " + dir_);
      if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(dir_ + " is not a directory");
      return Status::OK();
    }
    bool created_top, created_tmp;
    QATQ_RETURN_IF_ERROR(MakeDir(dir_, 0700, &created_top));
    QATQ_RETURN_IF_ERROR(MakeDir(tmp_dir_, 0700, &created_tmp));
    if (remove_stale_tmp_) QATQ_RETURN_IF_ERROR(RemoveStaleTmp());
    if (created_top || created_tmp) {
      QATQ_RETURN_IF_ERROR(FsyncPath(dir_));
      if (created_top) {
        // The parent must record the new chunks/ entry too.
        size_t slash = dir_.find_last_of('/');
        std::string parent = slash == std::string::npos ? "." : dir_.substr(0, slash);
        if (parent.empty()) parent = "/";
        QATQ_RETURN_IF_ERROR(FsyncPath(parent));
      }
    }
    return Status::OK();
  }

  Status Put(const ChunkId& id, std::string_view record) override {
    if (read_only_) return Status::IOError("chunk store is open read-only", EROFS);
    const std::string hex = id.ToHex();
    const std::string sub = dir_ + "/" + hex.substr(0, 2);
    const std::string final_path = sub + "/" + hex;
    struct stat st;
    if (::stat(final_path.c_str(), &st) == 0) {
      // Same id = same raw bytes, so an object of the right size is already
      // what we would write. A different size means a damaged object (or a
      // different record of the same raw bytes); replace it.
      if (static_cast<uint64_t>(st.st_size) == record.size()) {
        // Another writer may have renamed it in without having synced the
        // directory yet; our caller's next Sync must cover it.
        MarkDirty(sub);
        return Status::OK();
      }
    } else if (errno != ENOENT) {
      return Status::FromErrno("stat " + final_path);
    }

    QATQ_RETURN_IF_ERROR(CheckReserve(record.size()));
    const std::string tmp_path =
        tmp_dir_ + "/" + hex + "." + std::to_string(::getpid()) + "." +
        std::to_string(tmp_counter_.fetch_add(1, std::memory_order_relaxed));
    Status s = WriteTmp(tmp_path, record);
    if (!s.ok()) {
      ::unlink(tmp_path.c_str());
      return s;
    }
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
      if (errno != ENOENT) {
        s = Status::FromErrno("rename " + tmp_path + " to " + final_path);
        ::unlink(tmp_path.c_str());
        return s;
      }
      // The fan-out directory does not exist yet.
      bool created;
      s = MakeDir(sub, 0700, &created);
      if (s.ok() && created) MarkDirty(dir_);
      if (s.ok() && ::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
        s = Status::FromErrno("rename " + tmp_path + " to " + final_path);
      }
      if (!s.ok()) {
        ::unlink(tmp_path.c_str());
        return s;
      }
    }
    MarkDirty(sub);
    return Status::OK();
  }

  Status Sync() override {
    std::set<std::string> dirs;
    {
      std::lock_guard<std::mutex> l(mu_);
      dirs.swap(dirty_dirs_);
    }
    // Fan-out directories first, then DIR which names new ones: a synced DIR
    // entry never points at an unsynced directory.
    Status result;
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
      Status s = FsyncPath(*it);
      if (!s.ok()) {
        if (result.ok()) result = s;
        MarkDirty(*it);  // still owed to the next Sync
      }
    }
    return result;
  }

  Status Get(const ChunkId& id, std::string* record) override {
    const std::string path = ObjectPath(id);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return Status::NotFound("chunk object " + id.ToHex() + " not found");
      return Status::FromErrno("open " + path);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("fstat " + path);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > kMaxObjectBytes) {
      return Status::Corruption("chunk object " + path + " is " + std::to_string(size) +
                                " bytes, larger than any chunk record");
    }
    record->resize(size);
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd.get(), record->data() + done, size - done, static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("read " + path);
      }
      if (n == 0) break;  // shrank under us; the record check will say so
      done += static_cast<size_t>(n);
    }
    record->resize(done);
    return Status::OK();
  }

  Status Exists(const ChunkId& id, bool* exists) override {
    const std::string hex = id.ToHex();
    const std::string sub = dir_ + "/" + hex.substr(0, 2);
    const std::string path = sub + "/" + hex;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      *exists = true;
      // As in Put: Exists + Sync makes the object durable whoever wrote it.
      if (!read_only_) MarkDirty(sub);
      return Status::OK();
    }
    if (errno == ENOENT) {
      *exists = false;
      return Status::OK();
    }
    return Status::FromErrno("stat " + path);
  }

  Status Delete(const ChunkId& id) override {
    if (read_only_) return Status::IOError("chunk store is open read-only", EROFS);
    const std::string hex = id.ToHex();
    const std::string sub = dir_ + "/" + hex.substr(0, 2);
    const std::string path = sub + "/" + hex;
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return Status::OK();
      return Status::FromErrno("unlink " + path);
    }
    MarkDirty(sub);
    return Status::OK();
  }

  Status ForEach(const std::function<Status(const ChunkId&, uint64_t size)>& fn) override {
    DIR* top = ::opendir(dir_.c_str());
    if (top == nullptr) return Status::FromErrno("opendir " + dir_);
    std::set<std::string> subs;  // sorted: deterministic order for tests/fsck output
    errno = 0;
    while (struct dirent* e = ::readdir(top)) {
      if (IsHexByteName(e->d_name)) subs.insert(e->d_name);
    }
    int err = errno;
    ::closedir(top);
    if (err != 0) {
      errno = err;
      return Status::FromErrno("readdir " + dir_);
    }
    for (const std::string& sub : subs) {
      QATQ_RETURN_IF_ERROR(ForEachIn(sub, fn));
    }
    return Status::OK();
  }

  Status Capacity(uint64_t* total_bytes, uint64_t* free_bytes) override {
    struct statvfs v;
    if (::statvfs(dir_.c_str(), &v) != 0) return Status::FromErrno("statvfs " + dir_);
    *total_bytes = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
    uint64_t avail = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
    *free_bytes = avail > reserve_bytes_ ? avail - reserve_bytes_ : 0;
    return Status::OK();
  }

 private:
  std::string ObjectPath(const ChunkId& id) const {
    const std::string hex = id.ToHex();
    return dir_ + "/" + hex.substr(0, 2) + "/" + hex;
  }

  // ENOSPC when writing `bytes` would eat into the reserve kept for the
  // metadata index. Another writer may take the space between this check
  // and our write; the reserve only has to hold most of the time, and the
  // write itself still fails cleanly on a truly full device.
  Status CheckReserve(uint64_t bytes) {
    if (reserve_bytes_ == 0) return Status::OK();
    struct statvfs v;
    if (::statvfs(tmp_dir_.c_str(), &v) != 0) return Status::OK();  // the write will tell
    uint64_t avail = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
    if (avail >= bytes + reserve_bytes_) return Status::OK();
    return Status::IOError("chunk store " + dir_ + ": " + std::to_string(avail) + " bytes free, " +
                               std::to_string(reserve_bytes_) +
                               " of them reserved for the metadata index",
                           ENOSPC);
  }

  void MarkDirty(const std::string& dir) {
    std::lock_guard<std::mutex> l(mu_);
    dirty_dirs_.insert(dir);
  }

  Status WriteTmp(const std::string& tmp_path, std::string_view record) {
    Fd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) return Status::FromErrno("create " + tmp_path);
    // open() applies the umask; the contract is exactly 0600.
    if (::fchmod(fd.get(), 0600) != 0) return Status::FromErrno("fchmod " + tmp_path);
    QATQ_RETURN_IF_ERROR(WriteAll(fd.get(), record, tmp_path));
    if (::fdatasync(fd.get()) != 0) return Status::FromErrno("fdatasync " + tmp_path);
    if (fd.Close() != 0) return Status::FromErrno("close " + tmp_path);
    return Status::OK();
  }

  Status RemoveStaleTmp() {
    DIR* d = ::opendir(tmp_dir_.c_str());
    if (d == nullptr) return Status::FromErrno("opendir " + tmp_dir_);
    Status result;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string path = tmp_dir_ + "/" + std::string(name);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT && result.ok()) {
        result = Status::FromErrno("removing stale " + path);
      }
    }
    ::closedir(d);
    return result;
  }

  Status ForEachIn(const std::string& sub,
                   const std::function<Status(const ChunkId&, uint64_t size)>& fn) {
    const std::string path = dir_ + "/" + sub;
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) return Status::OK();  // removed concurrently
      return Status::FromErrno("opendir " + path);
    }
    std::set<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      ChunkId id;
      // Only names that belong in this fan-out directory are objects.
      if (ChunkId::FromHex(name, &id) && name.substr(0, 2) == sub) names.emplace(name);
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) {
      errno = err;
      return Status::FromErrno("readdir " + path);
    }
    for (const std::string& name : names) {
      struct stat st;
      const std::string obj = path + "/" + name;
      if (::stat(obj.c_str(), &st) != 0) {
        if (errno == ENOENT) continue;  // deleted concurrently
        return Status::FromErrno("stat " + obj);
      }
      if (!S_ISREG(st.st_mode)) continue;
      ChunkId id;
      ChunkId::FromHex(name, &id);
      QATQ_RETURN_IF_ERROR(fn(id, static_cast<uint64_t>(st.st_size)));
    }
    return Status::OK();
  }

  const std::string dir_;
  const std::string tmp_dir_;
  const bool read_only_;
  const bool remove_stale_tmp_;
  uint64_t reserve_bytes_;  // resolved from kAutoReserve by Init()
  std::atomic<uint64_t> tmp_counter_{0};
  std::mutex mu_;
  std::set<std::string> dirty_dirs_;  // GUARDED_BY(mu_)
};

}  // namespace

Status OpenFileChunkStore(const std::string& dir, const FileChunkStoreOptions& options,
                          std::unique_ptr<ChunkStore>* store) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  auto s = std::make_unique<FileChunkStore>(d, options);
  QATQ_RETURN_IF_ERROR(s->Init());
  *store = std::move(s);
  return Status::OK();
}

Status OpenFileChunkStore(const std::string& dir, std::unique_ptr<ChunkStore>* store) {
  return OpenFileChunkStore(dir, FileChunkStoreOptions(), store);
}

}  // namespace qatq
