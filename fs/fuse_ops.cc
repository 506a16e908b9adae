#define FUSE_USE_VERSION 314
#include "fs/fuse_ops.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fs/errno_map.h"
#include "fs/filesystem.h"
#include "fs/log.h"

namespace qatq {

namespace {

FuseContext* Ctx(fuse_req_t req) { return static_cast<FuseContext*>(fuse_req_userdata(req)); }
Filesystem* Fs(fuse_req_t req) { return Ctx(req)->fs; }

CallerContext Caller(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return CallerContext{c->uid, c->gid};
}

void ToStat(const InodeAttr& a, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = a.ino;
  st->st_mode = a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_size = static_cast<off_t>(a.size);
  st->st_rdev = a.rdev;
  st->st_blksize = 4096;
  st->st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  auto ts = [](int64_t ns) {
    struct timespec t;
    t.tv_sec = ns / 1000000000;
    t.tv_nsec = ns % 1000000000;
    if (t.tv_nsec < 0) {
      t.tv_nsec += 1000000000;
      t.tv_sec -= 1;
    }
    return t;
  };
  st->st_atim = ts(a.atime_ns);
  st->st_mtim = ts(a.mtime_ns);
  st->st_ctim = ts(a.ctime_ns);
}

fuse_entry_param ToEntry(fuse_req_t req, const InodeAttr& a) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = a.ino;
  e.generation = 1;
  e.attr_timeout = Ctx(req)->attr_timeout;
  e.entry_timeout = Ctx(req)->entry_timeout;
  ToStat(a, &e.attr);
  return e;
}

void ReplyErr(fuse_req_t req, const Status& s) {
  int err = ToErrno(s);
  if (err == EIO) LogWarning("EIO: %s", s.ToString().c_str());
  fuse_reply_err(req, err);
}

void ReplyEntry(fuse_req_t req, const Status& s, const InodeAttr& a) {
  if (!s.ok()) return ReplyErr(req, s);
  fuse_entry_param e = ToEntry(req, a);
  fuse_reply_entry(req, &e);
}

OpenFlags ToOpenFlags(int flags) {
  OpenFlags f;
  int acc = flags & O_ACCMODE;
  f.write = acc == O_WRONLY || acc == O_RDWR;
  f.append = (flags & O_APPEND) != 0;
  f.truncate = (flags & O_TRUNC) != 0;
  f.exclusive = (flags & O_EXCL) != 0;
  return f;
}

// Runs `body`, which replies as its last action. An exception can only come
// before the reply, so answering EIO keeps "exactly one reply".
template <typename F>
void Guard(fuse_req_t req, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    LogError("exception in FUSE callback: %s", e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    LogError("unknown exception in FUSE callback");
    fuse_reply_err(req, EIO);
  }
}

void OpInit(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  // We clear setuid bits ourselves on chown; writes do not (yet) kill
  // privileges, so let the kernel do it.
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  if (conn->capable & FUSE_CAP_EXPORT_SUPPORT) conn->want |= FUSE_CAP_EXPORT_SUPPORT;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  // Never drop a file's whole page cache because a refreshed mtime or size
  // differs (libfuse asks for auto_inval_data by default). Every change of a
  // mounted store comes through this kernel, whose write-through keeps the
  // cache current, so dropping is never needed, and it loses writes: the
  // kernel fills a page and unlocks it before the WRITE reaches us, so a page
  // dropped in that window is read back (another descriptor's readahead)
  // with the bytes from before the write and stays cached; the writer then
  // reads stale bytes of its own acknowledged write (docs/RELIABILITY.md,
  // lost update between writers of one chunk).
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA) conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
  LogInfo("FUSE protocol %u.%u, max_write %u, max_read %u, max_readahead %u", conn->proto_major,
          conn->proto_minor, conn->max_write, conn->max_read, conn->max_readahead);
}

void OpDestroy(void* userdata) {
  auto* ctx = static_cast<FuseContext*>(userdata);
  try {
    Status s = ctx->fs->Shutdown();
    if (!s.ok()) LogError("shutdown: %s", s.ToString().c_str());
  } catch (...) {
    LogError("exception during shutdown");
  }
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] {
    InodeAttr a;
    Status s = Fs(req)->Lookup(parent, name, &a);
    if (s.IsNotFound() || s.posix_errno() == ENOENT) {
      // A negative entry the kernel may cache.
      fuse_entry_param e;
      std::memset(&e, 0, sizeof e);
      e.entry_timeout = Ctx(req)->entry_timeout;
      fuse_reply_entry(req, &e);
      return;
    }
    ReplyEntry(req, s, a);
  });
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  try {
    Fs(req)->Forget(ino, nlookup);
  } catch (...) {
  }
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  try {
    for (size_t i = 0; i < count; ++i) Fs(req)->Forget(forgets[i].ino, forgets[i].nlookup);
  } catch (...) {
  }
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Guard(req, [&] {
    InodeAttr a;
    Status s = Fs(req)->GetAttr(ino, &a);
    if (!s.ok()) return ReplyErr(req, s);
    struct stat st;
    ToStat(a, &st);
    fuse_reply_attr(req, &st, Ctx(req)->attr_timeout);
  });
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  Guard(req, [&] {
    SetAttrRequest r;
    if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_UID) r.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) r.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) r.size = static_cast<uint64_t>(attr->st_size);
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      r.atime_ns = SetAttrRequest::kNow;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
      r.atime_ns = attr->st_atim.tv_sec * 1000000000LL + attr->st_atim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      r.mtime_ns = SetAttrRequest::kNow;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      r.mtime_ns = attr->st_mtim.tv_sec * 1000000000LL + attr->st_mtim.tv_nsec;
    }
    InodeAttr a;
    Status s = Fs(req)->SetAttr(ino, r, &a);
    if (!s.ok()) return ReplyErr(req, s);
    struct stat st;
    ToStat(a, &st);
    fuse_reply_attr(req, &st, Ctx(req)->attr_timeout);
  });
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  Guard(req, [&] {
    std::string target;
    Status s = Fs(req)->Readlink(ino, &target);
    if (!s.ok()) return ReplyErr(req, s);
    fuse_reply_readlink(req, target.c_str());
  });
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Guard(req, [&] {
    InodeAttr a;
    Status s = Fs(req)->Mknod(Caller(req), parent, name, mode, rdev, &a);
    ReplyEntry(req, s, a);
  });
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Guard(req, [&] {
    InodeAttr a;
    Status s = Fs(req)->Mkdir(Caller(req), parent, name, mode, &a);
    ReplyEntry(req, s, a);
  });
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] { ReplyErr(req, Fs(req)->Unlink(parent, name)); });
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] { ReplyErr(req, Fs(req)->Rmdir(parent, name)); });
}

void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  Guard(req, [&] {
    InodeAttr a;
    Status s = Fs(req)->Symlink(Caller(req), parent, name, link, &a);
    ReplyEntry(req, s, a);
  });
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  Guard(req, [&] {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return fuse_reply_err(req, EINVAL), void();
    RenameFlags f;
    f.noreplace = flags & RENAME_NOREPLACE;
    f.exchange = flags & RENAME_EXCHANGE;
    ReplyErr(req, Fs(req)->Rename(parent, name, newparent, newname, f));
  });
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Guard(req, [&] {
    InodeAttr a;
    Status s = Fs(req)->Link(ino, newparent, newname, &a);
    ReplyEntry(req, s, a);
  });
}

// Raises the readahead of the mount's backing device info (the FUSE bdi is
// named after the mount's device number, as in mountinfo). Must run after
// INIT was processed, since INIT lowers it to the kernel default; so the
// first open does it. Failures only cost speed.
void SetBdiReadahead(FuseContext* ctx) {
  if (ctx->read_ahead_kb == 0 || ctx->mountpoint.empty()) return;
  std::ifstream f("/proc/self/mountinfo");
  std::string line, dev;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string id, parent, majmin, root, mp;
    ss >> id >> parent >> majmin >> root >> mp;
    if (mp == ctx->mountpoint) dev = majmin;
  }
  if (dev.empty()) return;
  std::ofstream ra("/sys/class/bdi/" + dev + "/read_ahead_kb");
  ra << ctx->read_ahead_kb << "\n";
  ra.flush();
  if (ra) {
    LogInfo("read_ahead_kb of bdi %s set to %u", dev.c_str(), ctx->read_ahead_kb);
  } else {
    LogInfo("could not set read_ahead_kb of bdi %s", dev.c_str());
  }
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (!Ctx(req)->read_ahead_set.exchange(true)) {
    try {
      SetBdiReadahead(Ctx(req));
    } catch (...) {
    }
  }
  Guard(req, [&] {
    uint64_t fh = 0;
    bool keep = false;
    Status s = Fs(req)->OpenFile(ino, ToOpenFlags(fi->flags), &fh, &keep);
    if (!s.ok()) return ReplyErr(req, s);
    fi->fh = fh;
    fi->keep_cache = keep;
    if (fuse_reply_open(req, fi) != 0) {
      // The opener went away (interrupted); undo the open.
      Fs(req)->Release(ino, fh).IgnoreError();
    }
  });
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Guard(req, [&] {
    InodeAttr a;
    uint64_t fh = 0;
    Status s = Fs(req)->Create(Caller(req), parent, name, mode, ToOpenFlags(fi->flags), &a, &fh);
    if (!s.ok()) return ReplyErr(req, s);
    fi->fh = fh;
    fuse_entry_param e = ToEntry(req, a);
    if (fuse_reply_create(req, &e, fi) != 0) Fs(req)->Release(a.ino, fh).IgnoreError();
  });
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Guard(req, [&] {
    ReadBuffer buf;
    Status s = Fs(req)->ReadSlices(ino, fi->fh, static_cast<uint64_t>(off), size, &buf);
    if (!s.ok()) return ReplyErr(req, s);
    // Straight from the decoded chunks to the kernel, no copy in between.
    std::vector<iovec> iov;
    iov.reserve(buf.slices().size());
    for (std::string_view sl : buf.slices()) {
      iov.push_back({const_cast<char*>(sl.data()), sl.size()});
    }
    fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
  });
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
             fuse_file_info* fi) {
  Guard(req, [&] {
    Status s =
        Fs(req)->Write(ino, fi->fh, static_cast<uint64_t>(off), std::string_view(data, size));
    if (!s.ok()) return ReplyErr(req, s);
    fuse_reply_write(req, size);
  });
}

void OpCopyFileRange(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info*,
                     fuse_ino_t ino_out, off_t off_out, fuse_file_info*, size_t len, int flags) {
  Guard(req, [&] {
    if (flags != 0) return ReplyErr(req, Status::Posix(EINVAL, "copy_file_range flags"));
    uint64_t copied = 0;
    Status s = Fs(req)->CopyFileRange(ino_in, static_cast<uint64_t>(off_in), ino_out,
                                      static_cast<uint64_t>(off_out), len, &copied);
    if (!s.ok()) return ReplyErr(req, s);
    fuse_reply_write(req, copied);
  });
}

void OpFlush(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Guard(req, [&] { ReplyErr(req, Fs(req)->Flush(ino)); });
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, [&] { ReplyErr(req, Fs(req)->Release(ino, fi->fh)); });
}

void OpFsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  Guard(req, [&] { ReplyErr(req, Fs(req)->Fsync(ino)); });
}

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, [&] {
    uint64_t fh = 0;
    Status s = Fs(req)->OpenDir(ino, &fh);
    if (!s.ok()) return ReplyErr(req, s);
    fi->fh = fh;
    if (fuse_reply_open(req, fi) != 0) Fs(req)->ReleaseDir(fh);
  });
}

void DoReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
               bool plus) {
  Guard(req, [&] {
    std::vector<DirEntry> entries;
    Status s = Fs(req)->ReadDir(ino, fi->fh, static_cast<uint64_t>(off), 1024, &entries);
    if (!s.ok()) return ReplyErr(req, s);
    std::string buf(size, '\0');
    size_t used = 0;
    uint64_t pos = static_cast<uint64_t>(off);
    for (const DirEntry& d : entries) {
      ++pos;
      size_t room = size - used;
      if (!plus) {
        struct stat st;
        std::memset(&st, 0, sizeof st);
        st.st_ino = d.ino;
        st.st_mode = d.type;
        size_t n = fuse_add_direntry(req, buf.data() + used, room, d.name.c_str(), &st,
                                     static_cast<off_t>(pos));
        if (n > room) break;
        used += n;
        continue;
      }
      size_t need = fuse_add_direntry_plus(req, nullptr, 0, d.name.c_str(), nullptr, 0);
      if (need > room) break;
      fuse_entry_param e;
      std::memset(&e, 0, sizeof e);
      if (d.name == "." || d.name == "..") {
        e.attr.st_ino = d.ino;
        e.attr.st_mode = d.type;
      } else {
        InodeAttr a;
        Status ls = Fs(req)->Lookup(ino, d.name, &a);
        if (!ls.ok()) {
          --pos;
          continue;  // removed since the snapshot
        }
        e = ToEntry(req, a);
      }
      used += fuse_add_direntry_plus(req, buf.data() + used, room, d.name.c_str(), &e,
                                     static_cast<off_t>(pos));
    }
    fuse_reply_buf(req, buf.data(), used);
  });
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, false);
}

void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, true);
}

void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Guard(req, [&] {
    Fs(req)->ReleaseDir(fi->fh);
    fuse_reply_err(req, 0);
  });
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  Guard(req, [&] { ReplyErr(req, Fs(req)->Fsync(ino)); });
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  Guard(req, [&] {
    FsStatfs f;
    Status s = Fs(req)->Statfs(&f);
    if (!s.ok()) return ReplyErr(req, s);
    struct statvfs st;
    std::memset(&st, 0, sizeof st);
    st.f_bsize = f.block_size;
    st.f_frsize = f.block_size;
    st.f_blocks = f.blocks;
    st.f_bfree = f.blocks_free;
    st.f_bavail = f.blocks_free;
    st.f_files = f.files;
    st.f_ffree = f.files_free;
    st.f_favail = f.files_free;
    st.f_namemax = f.name_max;
    fuse_reply_statfs(req, &st);
  });
}

bool IsAbsentXattr(const char* name) {
  // Asked on every write (security.capability) or every access (ACLs); the
  // store keeps neither, so answer without touching the index.
  return std::strncmp(name, "security.", 9) == 0 ||
         std::strncmp(name, "system.posix_acl_", 17) == 0;
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  Guard(req,
        [&] { ReplyErr(req, Fs(req)->SetXattr(ino, name, std::string_view(value, size), flags)); });
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (IsAbsentXattr(name)) return fuse_reply_err(req, ENODATA), void();
  Guard(req, [&] {
    std::string v;
    Status s = Fs(req)->GetXattr(ino, name, &v);
    if (!s.ok()) return ReplyErr(req, s);
    if (size == 0) return fuse_reply_xattr(req, v.size()), void();
    if (size < v.size()) return fuse_reply_err(req, ERANGE), void();
    fuse_reply_buf(req, v.data(), v.size());
  });
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guard(req, [&] {
    std::vector<std::string> names;
    Status s = Fs(req)->ListXattr(ino, &names);
    if (!s.ok()) return ReplyErr(req, s);
    std::string buf;
    for (auto& n : names) {
      buf += n;
      buf.push_back('\0');
    }
    if (size == 0) return fuse_reply_xattr(req, buf.size()), void();
    if (size < buf.size()) return fuse_reply_err(req, ERANGE), void();
    fuse_reply_buf(req, buf.data(), buf.size());
  });
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Guard(req, [&] { ReplyErr(req, Fs(req)->RemoveXattr(ino, name)); });
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = OpInit;
  ops.destroy = OpDestroy;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.readlink = OpReadlink;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.symlink = OpSymlink;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.open = OpOpen;
  ops.create = OpCreate;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpFlush;
  ops.copy_file_range = OpCopyFileRange;
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.readdirplus = OpReaddirplus;
  ops.releasedir = OpReleasedir;
  ops.fsyncdir = OpFsyncdir;
  ops.statfs = OpStatfs;
  ops.setxattr = OpSetxattr;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.removexattr = OpRemovexattr;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& QatqfsLowlevelOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace qatq
