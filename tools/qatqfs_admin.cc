// `qatqfs fsck`. export and import live in admin_export.cc and
// admin_import.cc.
#include "tools/qatqfs_admin.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <unordered_map>

#include "index/fsck.h"
#include "index/keys.h"
#include "index/store.h"
#include "tools/admin_util.h"
#include "tools/cli_args.h"

namespace qatq {

namespace {

constexpr char kFsckHelp[] =
    "usage: qatqfs fsck STORE|MOUNTPOINT [--repair] [--read-only] [--deep] [--json]\n"
    "Checks every index entry and chunk object of a qatqfs store.\n"
    "  --repair     fix what can be fixed (store must not be mounted)\n"
    "  --read-only  change nothing (allowed while the store is mounted; objects\n"
    "               being written may then show as orphans)\n"
    "  --deep       also decode every chunk and check its content address\n"
    "  --json       machine-readable report on stdout\n"
    "Exit status: 0 clean, 1 problems found and all repaired, 4 problems left,\n"
    "8 operational error, 16 usage error.\n";

// inode -> (parent, name) from one raw scan of the dentries; tolerant of
// undecodable entries (fsck reports those itself).
class PathResolver {
 public:
  Status Load(MetadataStore* meta) {
    return meta->ForEachRaw([&](std::string_view key, std::string_view value) {
      InodeId parent;
      std::string_view name;
      if (key.empty() || key[0] != kDirEntryPrefix || !ParseDirEntryKey(key, &parent, &name)) {
        return Status::OK();
      }
      DirEntry e;
      if (DecodeDirEntry(name, value, &e).ok() && !parent_.count(e.ino)) {
        parent_.emplace(e.ino, std::make_pair(parent, std::string(name)));
      }
      return Status::OK();
    });
  }

  // "/a/b", "/" for the root, "" if the inode has no path from the root.
  std::string PathOf(InodeId ino) const {
    std::string path;
    InodeId cur = ino;
    for (int depth = 0; depth < 4096 && cur != kRootInode; ++depth) {
      auto it = parent_.find(cur);
      if (it == parent_.end()) return "";
      path = "/" + it->second.second + path;
      cur = it->second.first;
    }
    if (cur != kRootInode) return "";
    return path.empty() ? "/" : path;
  }

 private:
  std::unordered_map<InodeId, std::pair<InodeId, std::string>> parent_;
};

int FsckError(const std::string& msg) {
  std::fprintf(stderr, "qatqfs fsck: %s\n", msg.c_str());
  return kFsckOperationalError;
}

}  // namespace

int RunFsckCommand(const std::vector<std::string>& args) {
  cli::ParsedArgs pa;
  Status s =
      cli::ParseArgs(args, {}, {"--repair", "--read-only", "--deep", "--json", "--help"}, &pa);
  if (pa.Has("--help")) {
    std::fputs(kFsckHelp, stdout);
    return kFsckClean;
  }
  if (!s.ok() || pa.positional.size() != 1 || (pa.Has("--repair") && pa.Has("--read-only"))) {
    std::fprintf(stderr, "qatqfs fsck: %s\n%s",
                 s.ok() ? "need exactly one STORE (and not both --repair and --read-only)"
                        : s.message().c_str(),
                 kFsckHelp);
    return kFsckUsage;
  }
  const bool repair = pa.Has("--repair");
  const bool json = pa.Has("--json");
  std::string store_path = admin::AbsPath(pa.positional[0]);
  {
    // A mount point stands for its store (as in `qatqfs stats`).
    admin::QatqfsMount m;
    std::string rel;
    if (admin::FindMountOf(store_path, &m, &rel) && rel == "/") store_path = m.store;
  }

  bool read_only = pa.Has("--read-only");
  admin::QatqfsMount mount;
  if (admin::FindMountOfStore(store_path, &mount)) {
    if (repair || (!mount.read_only && !read_only)) {
      return FsckError("store " + store_path + " is mounted " +
                       (mount.read_only ? "read-only" : "read-write") + " at " + mount.mount_point +
                       "; unmount it first" +
                       (repair ? " to repair" : " (or check it as it is with --read-only)"));
    }
    read_only = true;
  }

  std::unique_ptr<Store> store;
  StoreOptions so;
  // Unmounted: open for writing even without --repair, so the store lock
  // keeps a daemon from mounting it during the check.
  so.read_only = read_only;
  s = OpenStore(store_path, so, &store);
  if (s.IsBusy()) {
    return FsckError("store " + store_path +
                     " is in use by another qatqfs process (mounted in another mount "
                     "namespace?); unmount it first");
  }
  if (!s.ok() && !read_only && !repair && (s.posix_errno() == EROFS || s.posix_errno() == EACCES)) {
    // A store on read-only media (a snapshot, a backup) can still be checked.
    so.read_only = read_only = true;
    s = OpenStore(store_path, so, &store);
  }
  if (!s.ok()) return FsckError(store_path + ": " + s.ToString());

  FsckOptions fo;
  fo.repair = repair;
  fo.deep = pa.Has("--deep");
  FsckReport report;
  s = CheckStore(store.get(), fo, &report);
  if (!s.ok()) return FsckError(store_path + ": " + s.ToString());
  PathResolver paths;
  // After a repair the paths are those of the repaired tree; a path is only
  // a label, so a failed load just leaves inode numbers.
  (void)paths.Load(store->meta());

  int rc = report.clean() ? kFsckClean : report.unrepaired() == 0 ? kFsckRepaired : kFsckUnrepaired;

  if (json) {
    std::string out = "{\"store\":" + admin::JsonEscape(store_path);
    out += ",\"read_only\":" + std::string(read_only ? "true" : "false");
    out += ",\"repair\":" + std::string(repair ? "true" : "false");
    out += ",\"inodes\":" + std::to_string(report.inodes);
    out += ",\"directories\":" + std::to_string(report.directories);
    out += ",\"regular_files\":" + std::to_string(report.regular_files);
    out += ",\"chunk_refs\":" + std::to_string(report.chunk_refs);
    out += ",\"objects\":" + std::to_string(report.objects);
    out += ",\"object_bytes\":" + std::to_string(report.object_bytes);
    out += ",\"objects_verified\":" + std::to_string(report.objects_verified);
    out += ",\"problem_count\":" + std::to_string(report.problem_count);
    out += ",\"repaired_count\":" + std::to_string(report.repaired_count);
    out += ",\"problems\":[";
    for (size_t i = 0; i < report.problems.size(); ++i) {
      const FsckProblem& p = report.problems[i];
      if (i) out += ",";
      out += "{\"kind\":" + admin::JsonEscape(FsckProblemName(p.kind));
      out += ",\"ino\":" + std::to_string(p.ino);
      std::string path = p.ino ? paths.PathOf(p.ino) : "";
      if (!path.empty()) out += ",\"path\":" + admin::JsonEscape(path);
      out += ",\"detail\":" + admin::JsonEscape(p.detail);
      out += ",\"repaired\":" + std::string(p.repaired ? "true" : "false") + "}";
    }
    out += "],\"damaged_files\":[";
    for (size_t i = 0; i < report.damaged_files.size(); ++i) {
      const auto& f = report.damaged_files[i];
      if (i) out += ",";
      out += "{\"path\":" + admin::JsonEscape(f.path) + ",\"ino\":" + std::to_string(f.ino) +
             ",\"bad_chunks\":" + std::to_string(f.bad_chunks) + "}";
    }
    out += "],\"exit_code\":" + std::to_string(rc) + "}\n";
    std::fputs(out.c_str(), stdout);
    return rc;
  }

  std::printf("qatqfs fsck %s%s\n", store_path.c_str(),
              read_only ? " (read-only check)"
              : repair  ? " (repair)"
                        : "");
  std::printf("checked %" PRIu64 " files, %" PRIu64 " directories, %" PRIu64
              " chunk references, %" PRIu64 " objects (%s), %" PRIu64 " verified\n",
              report.regular_files, report.directories, report.chunk_refs, report.objects,
              admin::HumanBytes(report.object_bytes).c_str(), report.objects_verified);
  for (const FsckProblem& p : report.problems) {
    std::string path = p.ino ? paths.PathOf(p.ino) : "";
    std::printf("%s %s: %s%s\n", p.repaired ? "repaired" : "problem ", FsckProblemName(p.kind),
                path.empty() ? "" : (path + ": ").c_str(), p.detail.c_str());
  }
  if (report.problems.size() < report.problem_count) {
    std::printf("... and %" PRIu64 " more problems\n",
                report.problem_count - report.problems.size());
  }
  for (const auto& f : report.damaged_files) {
    std::printf("unrecoverable %s (inode %" PRIu64 "): %" PRIu64
                " chunks missing or corrupt; restore it from a copy\n",
                f.path.c_str(), f.ino, f.bad_chunks);
  }
  if (report.clean()) {
    std::printf("clean\n");
  } else {
    std::printf("%" PRIu64 " problems, %" PRIu64 " repaired%s\n", report.problem_count,
                report.repaired_count,
                rc == kFsckUnrepaired && !repair && !read_only
                    ? "; run qatqfs fsck --repair to fix what can be fixed"
                    : "");
  }
  return rc;
}

}  // namespace qatq
