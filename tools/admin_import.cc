// `qatqfs import`: a QATC artefact stored as a file of a mounted store
// (tools/qatqfs_admin.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <memory>

#include "base/posix_io.h"
#include "codec/chunk_record.h"
#include "codec/qatc_v2.h"
#include "codec/qatc_v3.h"
#include "index/store.h"
#include "index/chunk_store.h"
#include "tools/admin_util.h"
#include "tools/cli.h"
#include "tools/cli_args.h"
#include "tools/cli_io.h"
#include "tools/qatqfs_admin.h"

namespace qatq {

namespace {

constexpr char kImportUsage[] =
    "usage: qatqfs import IN.qatc MOUNT/FILE [--quiet]\n"
    "Stores a QATC v3 or v2 artefact as a file of a mounted qatqfs store. The\n"
    "input is verified completely first; the target is replaced atomically.\n"
    "v3 chunk records of the store's chunk size are stored as they are.\n";

int ImportError(const std::string& msg, int rc = kExitDataError) {
  std::fprintf(stderr, "qatqfs import: %s\n", msg.c_str());
  return rc;
}

bool AllZero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

// The temp file in the target directory; removed unless renamed.
class TempTarget {
 public:
  ~TempTarget() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  // Created 0600 so writing and setting the xattr never depend on `mode`,
  // which Commit applies before the rename.
  Status Create(const std::string& target, mode_t mode) {
    mode_ = mode;
    size_t slash = target.find_last_of('/');
    path_ = target.substr(0, slash + 1) + "." + target.substr(slash + 1) + ".qatq-import." +
            std::to_string(::getpid());
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      Status s = Status::FromErrno("create " + path_);
      path_.clear();
      return s;
    }
    return Status::OK();
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // fsync, close, rename over `target`, fsync the directory.
  Status Commit(const std::string& target) {
    if (::fchmod(fd_, mode_) != 0) return Status::FromErrno("chmod " + path_);
    if (::fsync(fd_) != 0) return Status::FromErrno("fsync " + path_);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Status::FromErrno("close " + path_);
    if (::rename(path_.c_str(), target.c_str()) != 0) {
      return Status::FromErrno("rename " + path_ + " to " + target);
    }
    path_.clear();
    size_t slash = target.find_last_of('/');
    std::string dir = slash == 0 ? "/" : target.substr(0, slash);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return Status::OK();
  }

 private:
  std::string path_;
  int fd_ = -1;
  mode_t mode_ = 0644;
};

}  // namespace

int RunImportCommand(const std::vector<std::string>& args) {
  cli::ParsedArgs pa;
  Status s = cli::ParseArgs(args, {}, {"--quiet", "--help"}, &pa);
  if (pa.Has("--help")) {
    std::fputs(kImportUsage, stdout);
    return kExitOk;
  }
  if (!s.ok() || pa.positional.size() != 2) {
    std::fprintf(stderr, "qatqfs import: %s\n%s",
                 s.ok() ? "need IN.qatc and MOUNT/FILE" : s.message().c_str(), kImportUsage);
    return kExitUsage;
  }
  const std::string& in_path = pa.positional[0];
  const std::string& target_arg = pa.positional[1];
  const bool quiet = pa.Has("--quiet");

  // 1. Verify the whole input before touching anything.
  cli::InputFile input;
  if (!(s = input.Open(in_path)).ok()) return ImportError(in_path + ": " + s.ToString());
  const std::string_view data = input.data();
  const bool v3 = LooksLikeQatcV3(data);
  if (!v3 && !LooksLikeQatcV2(data)) {
    return ImportError(in_path + " is not a QATC v3 or v2 file; nothing was written");
  }
  QatcV3Index index;
  ContainerInfo v2info;
  DType dtype;
  uint64_t raw_bytes = 0;
  if (v3) {
    s = ReadQatcV3Index(data, &index);  // includes the whole-file checksum
    for (size_t k = 0; s.ok() && k < index.chunks.size(); ++k) {
      const QatcV3ChunkRef& c = index.chunks[k];
      ChunkRecordInfo info;
      s = VerifyChunkRecord(data.substr(c.offset, c.record_len), &info);
      if (s.ok() && (info.raw_len != c.raw_len || info.dtype != index.dtype)) {
        s = Status::Corruption("record does not match the chunk index");
      }
      if (!s.ok()) s = s.WithContext("chunk " + std::to_string(k));
      raw_bytes += c.raw_len;
    }
    dtype = index.dtype;
  } else {
    s = ReadQatcV2Structure(data, &v2info);  // includes the aggregate checksum
    dtype = v2info.dtype;
    raw_bytes = v2info.element_count * DTypeWidth(dtype);
  }
  if (!s.ok()) {
    return ImportError(in_path + " is corrupt: " + s.ToString() + "; nothing was written");
  }

  // 2. The target: a file in a directory of a read-write qatqfs mount.
  const std::string target = admin::AbsPath(target_arg);
  struct stat tst;
  const mode_t umask_bits = ::umask(0);
  ::umask(umask_bits);
  mode_t mode = 0666 & ~umask_bits;  // as a new file made by cp
  if (::stat(target.c_str(), &tst) == 0) {
    if (S_ISDIR(tst.st_mode)) {
      return ImportError(target_arg + " is a directory; give the name of the file to create");
    }
    mode = tst.st_mode & 07777;
  } else {
    const std::string dir = target.substr(0, target.find_last_of('/') + 1);
    if (::stat(dir.c_str(), &tst) != 0 || !S_ISDIR(tst.st_mode)) {
      return ImportError("directory " + dir + " of " + target_arg +
                         " does not exist; create it first");
    }
  }
  admin::QatqfsMount mount;
  std::string rel;
  if (!admin::FindMountOf(target, &mount, &rel) || rel == "/") {
    return ImportError(target_arg + " is not a file on a qatqfs mount; mount the store first");
  }
  if (mount.read_only) {
    return ImportError("the store is mounted read-only at " + mount.mount_point +
                       "; remount it read-write to import");
  }
  // Records go in as they are only if they are the chunks the daemon will
  // cut: same chunk size as new files of the store get.
  bool direct = false;
  uint32_t store_chunk_bytes = 0;
  if (v3) {
    std::unique_ptr<Store> store;
    StoreOptions so;
    so.read_only = true;
    s = OpenStore(mount.store, so, &store);
    if (!s.ok()) return ImportError("store " + mount.store + ": " + s.ToString());
    store_chunk_bytes = store->superblock().default_chunk_bytes;
    direct = uint64_t{index.chunk_elements} * DTypeWidth(dtype) == store_chunk_bytes;
  }

  // 3. Objects first (content-addressed: safe beside the daemon), then the
  // bytes through the mount into a temp file renamed over the target.
  TempTarget tmp;
  if (!(s = tmp.Create(target, mode)).ok()) return ImportError(s.ToString());
  const std::string dtype_name(DTypeName(dtype));
  if (::fsetxattr(tmp.fd(), "user.qatq.dtype", dtype_name.data(), dtype_name.size(), 0) != 0) {
    return ImportError(Status::FromErrno("setting user.qatq.dtype on " + tmp.path()).ToString());
  }
  // Objects go straight into the store, beside the running daemon: content
  // addressing makes that safe, and this writer leaves chunks/tmp/ alone.
  std::unique_ptr<ChunkStore> objects;
  if (direct) {
    FileChunkStoreOptions co;
    co.remove_stale_tmp = false;
    if (!(s = OpenFileChunkStore(mount.store + "/chunks", co, &objects)).ok())
      return ImportError(s.ToString());
  }
  uint64_t objects_new = 0, objects_existing = 0;
  auto put_object = [&](const ChunkId& id, std::string_view record) {
    bool exists = false;
    Status st = objects->Exists(id, &exists);
    if (st.ok()) st = objects->Put(id, record);  // replaces a damaged object
    if (st.ok()) ++(exists ? objects_existing : objects_new);
    return st;
  };
  cli::Progress progress("qatqfs: import", raw_bytes, !quiet);
  uint64_t done = 0;
  if (v3) {
    std::string raw;
    for (size_t k = 0; s.ok() && k < index.chunks.size(); ++k) {
      const QatcV3ChunkRef& c = index.chunks[k];
      const std::string_view record = data.substr(c.offset, c.record_len);
      s = DecodeChunkRecord(record, &raw);  // also checks the raw checksum
      if (!s.ok()) {
        s = Status::Corruption(in_path + ": chunk " + std::to_string(k) + ": " + s.message());
        break;
      }
      // All-zero chunks are holes: the daemon stores no object for them.
      if (direct && !AllZero(raw)) s = put_object(ChunkId::OfRaw(raw), record);
      if (s.ok()) s = WriteAll(tmp.fd(), raw, tmp.path());
      done += raw.size();
      progress.Update(done);
    }
    if (s.ok() && direct) s = objects->Sync();
  } else {
    s = DecodeQatcV2(data, [&](std::string_view b) {
      done += b.size();
      progress.Update(done);
      return WriteAll(tmp.fd(), b, tmp.path());
    });
  }
  if (s.ok()) s = tmp.Commit(target);
  progress.Finish();
  if (!s.ok()) {
    return ImportError(s.ToString() + "; " + target_arg + " was not changed" +
                       (objects_new ? " (objects already stored are removed by "
                                            "qatqfs fsck --repair)"
                                          : ""));
  }
  if (!quiet) {
    std::printf("imported %s to %s (%s, %s, QATC %s", in_path.c_str(), target_arg.c_str(),
                admin::HumanBytes(raw_bytes).c_str(), dtype_name.c_str(), v3 ? "v3" : "v2");
    if (v3 && direct) {
      std::printf("; %zu chunk records stored as they are: %" PRIu64 " new, %" PRIu64
                  " already present",
                  index.chunks.size(), objects_new, objects_existing);
    } else if (v3) {
      std::printf("; chunk size %" PRIu64 " bytes differs from the store's %u: re-encoded",
                  uint64_t{index.chunk_elements} * DTypeWidth(dtype), store_chunk_bytes);
    }
    std::printf(")\n");
  }
  return kExitOk;
}

}  // namespace qatq
