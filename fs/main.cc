// qatqfs: the daemon (`qatqfs STORE MOUNTPOINT [-o opts] [-f]`, the argument
// shape mount.fuse3 and fstab use) and its subcommands mkfs, stats.
//
// Start-up order: parse options; unless -f, fork (before any thread exists:
// RocksDB and the worker pool start threads that a later fork would lose);
// the child opens the store, creates the session, installs signal handlers
// and mounts, then tells the waiting parent whether the mount is live. The
// parent prints nothing and exits 0 only then; any error before that is
// printed to the terminal and exits non-zero. Unmount (fusermount3 -u,
// SIGTERM, SIGINT) ends the session loop; destroy commits all dirty data.
#define FUSE_USE_VERSION 314
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fs/filesystem.h"
#include "fs/fuse_ops.h"
#include "fs/log.h"
#include "fs/store_stats.h"
#include "index/store.h"
#include "tools/admin_util.h"
#include "tools/qatqfs_admin.h"

namespace qatq {
namespace {

constexpr char kVersion[] = "0.1.0";

void PrintUsage(FILE* f) {
  std::fprintf(f,
               "usage: qatqfs STORE MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [-s]\n"
               "       qatqfs mkfs STORE [--chunk-size BYTES]\n"
               "       qatqfs stats MOUNTPOINT|STORE [--json]\n"
               "       qatqfs fsck STORE|MOUNTPOINT [--repair] [--read-only] [--deep] [--json]\n"
               "       qatqfs export MOUNT/FILE OUT.qatc [--format v3|v2] [--quiet]\n"
               "       qatqfs export --store STORE /path/in/store OUT.qatc [--format v3|v2]\n"
               "       qatqfs import IN.qatc MOUNT/FILE [--quiet]\n"
               "       qatqfs --version | --help\n"
               "\n"
               "Mounts a qatqfs store: files are stored as losslessly compressed chunks\n"
               "(QATC v3) indexed in RocksDB. Also usable as `mount -t fuse.qatqfs STORE MNT`\n"
               "and in fstab: STORE MNT fuse.qatqfs allow_other,default_permissions 0 0\n"
               "Run 'qatqfs fsck|export|import --help' for those commands; see qatqfs(8).\n"
               "\n"
               "qatqfs options:\n"
               "  -o ro                   mount read-only\n"
               "  -o dtype=auto|bf16|f16|f32|bytes\n"
               "                          element type for new files (default auto:\n"
               "                          user.qatq.dtype xattr, name suffix, safetensors\n"
               "                          header, sampling of the first chunk)\n"
               "  -o cache_mb=N           decoded chunk cache in MiB (default 256)\n"
               "  -o effort=0..9          encoder effort: 0 fastest, 9 smallest (default 5)\n"
               "  -o read_ahead_kb=N      kernel readahead of the mount (default 1024;\n"
               "                          0 keeps the kernel's 128)\n"
               "  -o log_level=error|warning|info|debug (default warning)\n"
               "  -o max_threads=N        FUSE worker threads (default 10)\n"
               "  -f                      stay in the foreground (log to stderr, else syslog)\n"
               "  -d                      debug (FUSE request trace; implies -f)\n"
               "  -s                      single-threaded session loop\n"
               "FUSE options: allow_other, default_permissions, max_idle_threads=N, clone_fd,\n"
               "and others of mount.fuse3(8) (fsname is always the store's absolute path).\n"
               "mkfs: --chunk-size (or -c) BYTES, a multiple of 4 from 64K to 16M (K and M\n"
               "suffixes), default 1M.\n"
               "Exit status: 0 mounted (or done), 1 error, 2 usage error; fsck: 0 clean,\n"
               "1 repaired, 4 problems left, 8 operational error, 16 usage error.\n");
}

struct Config {
  char* store = nullptr;
  int nonopt_count = 0;
  char* dtype = nullptr;
  unsigned cache_mb = 256;
  char* log_level = nullptr;
  int read_only = 0;
  int effort = kUnset;
  int allow_other = 0;
  int default_permissions = 0;
  static constexpr int kUnset = INT32_MIN;
  int read_ahead_kb = -1;
};

enum { kKeyRo = 1, kKeyAllowOther, kKeyDefaultPermissions };

const fuse_opt kOpts[] = {
    {"dtype=%s", offsetof(Config, dtype), 0},
    {"cache_mb=%u", offsetof(Config, cache_mb), 0},
    {"log_level=%s", offsetof(Config, log_level), 0},
    {"effort=%d", offsetof(Config, effort), 0},
    {"read_ahead_kb=%d", offsetof(Config, read_ahead_kb), 0},
    FUSE_OPT_KEY("ro", kKeyRo),
    FUSE_OPT_KEY("allow_other", kKeyAllowOther),
    FUSE_OPT_KEY("default_permissions", kKeyDefaultPermissions),
    FUSE_OPT_END,
};

int OptProc(void* data, const char* arg, int key, fuse_args*) {
  auto* c = static_cast<Config*>(data);
  if (key == FUSE_OPT_KEY_NONOPT) {
    if (c->nonopt_count++ == 0) {
      c->store = strdup(arg);
      return 0;  // consumed: libfuse sees only the mountpoint
    }
    return 1;
  }
  if (key == kKeyRo) {
    c->read_only = 1;
    return 1;  // keep: the kernel mount is read-only too
  }
  if (key == kKeyAllowOther) c->allow_other = 1;
  if (key == kKeyDefaultPermissions) c->default_permissions = 1;
  return 1;
}

std::string AbsPath(const char* p) {
  char buf[PATH_MAX];
  if (realpath(p, buf)) return buf;
  return p;
}

int Mkfs(int argc, char** argv) {
  std::string store;
  MkfsOptions mo;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    const char* size_arg = nullptr;
    if ((a == "--chunk-size" || a == "-c") && i + 1 < argc) {
      size_arg = argv[++i];
    } else if (a.rfind("--chunk-size=", 0) == 0) {
      size_arg = argv[i] + 13;
    }
    if (size_arg) {
      char* end;
      unsigned long long v = std::strtoull(size_arg, &end, 0);
      if (*end == 'K' || *end == 'k') v <<= 10;
      if (*end == 'M' || *end == 'm') v <<= 20;
      mo.chunk_bytes = static_cast<uint32_t>(v);
    } else if (store.empty() && a[0] != '-') {
      store = a;
    } else {
      std::fprintf(stderr, "qatqfs mkfs: unexpected argument %s\n", a.c_str());
      return 2;
    }
  }
  if (store.empty()) {
    std::fprintf(stderr, "usage: qatqfs mkfs STORE [--chunk-size BYTES]\n");
    return 2;
  }
  mo.root_uid = getuid();
  mo.root_gid = getgid();
  Status s = CreateStore(store, mo);
  if (!s.ok()) {
    std::fprintf(stderr, "qatqfs mkfs: %s\n", s.ToString().c_str());
    return 1;
  }
  std::unique_ptr<Store> st;
  StoreOptions so;
  so.read_only = true;
  s = OpenStore(store, so, &st);
  if (s.ok()) {
    std::printf("created qatqfs store %s (chunk size %u bytes, uuid %s)\n",
                AbsPath(store.c_str()).c_str(), st->superblock().default_chunk_bytes,
                st->superblock().uuid.c_str());
  } else {
    std::printf("created qatqfs store %s\n", store.c_str());
  }
  return 0;
}

// The store path of a qatqfs mount at `mnt`, or empty.
std::string StoreOfMount(const std::string& mnt) {
  for (const admin::QatqfsMount& m : admin::ListQatqfsMounts()) {
    if (m.mount_point == mnt) return m.store;
  }
  return {};
}

int Stats(int argc, char** argv) {
  std::string target;
  bool json = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (target.empty()) {
      target = a;
    } else {
      std::fprintf(stderr, "qatqfs stats: unexpected argument %s\n", a.c_str());
      return 2;
    }
  }
  if (target.empty()) {
    std::fprintf(stderr, "usage: qatqfs stats MOUNTPOINT|STORE [--json]\n");
    return 2;
  }
  std::string store = AbsPath(target.c_str());
  std::string from_mount = StoreOfMount(store);
  if (!from_mount.empty()) store = from_mount;
  std::unique_ptr<Store> st;
  StoreOptions so;
  so.read_only = true;
  Status s = OpenStore(store, so, &st);
  StoreStats stats;
  if (s.ok()) s = ComputeStoreStats(st->meta(), &stats);
  if (!s.ok()) {
    std::fprintf(stderr, "qatqfs stats: %s: %s\n", store.c_str(), s.ToString().c_str());
    return 1;
  }
  std::fputs(FormatStoreStats(stats, json).c_str(), stdout);
  return 0;
}

bool ParseLogLevel(const char* s, LogLevel* out) {
  std::string v = s;
  if (v == "error")
    *out = LogLevel::kError;
  else if (v == "warning" || v == "warn")
    *out = LogLevel::kWarning;
  else if (v == "info")
    *out = LogLevel::kInfo;
  else if (v == "debug")
    *out = LogLevel::kDebug;
  else
    return false;
  return true;
}

// Writes the start-up result to the parent (if any) and closes the pipe.
void Report(int fd, char result) {
  if (fd < 0) return;
  ssize_t n = write(fd, &result, 1);
  (void)n;
  close(fd);
}

int Mount(int argc, char** argv) {
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  Config conf;
  fuse_cmdline_opts opts;
  std::memset(&opts, 0, sizeof opts);
  // Frees what option parsing allocated on every return path.
  struct Cleanup {
    fuse_args* args;
    Config* conf;
    fuse_cmdline_opts* opts;
    ~Cleanup() {
      free(conf->store);
      free(conf->dtype);
      free(conf->log_level);
      free(opts->mountpoint);
      fuse_opt_free_args(args);
    }
  } cleanup{&args, &conf, &opts};
  if (fuse_opt_parse(&args, &conf, kOpts, OptProc) != 0) return 2;
  if (fuse_parse_cmdline(&args, &opts) != 0) return 2;
  if (opts.show_help) {
    PrintUsage(stdout);
    return 0;
  }
  if (opts.show_version) {
    std::printf("qatqfs %s (libfuse %s)\n", kVersion, fuse_pkgversion());
    return 0;
  }
  if (!conf.store || !opts.mountpoint || conf.nonopt_count != 2) {
    std::fprintf(stderr, "qatqfs: need STORE and MOUNTPOINT\n");
    PrintUsage(stderr);
    return 2;
  }
  if (conf.log_level) {
    LogLevel l;
    if (!ParseLogLevel(conf.log_level, &l)) {
      std::fprintf(stderr, "qatqfs: bad log_level=%s\n", conf.log_level);
      return 2;
    }
    SetLogLevel(l);
  }
  FilesystemOptions fo;
  fo.read_only = conf.read_only;
  fo.cache_bytes = static_cast<size_t>(conf.cache_mb) << 20;
  if (conf.effort != Config::kUnset) {
    if (conf.effort < 0 || conf.effort > 9) {
      std::fprintf(stderr, "qatqfs: bad effort=%d (0..9)\n", conf.effort);
      return 2;
    }
    fo.encode_effort = conf.effort;
  }
  if (conf.dtype && std::string(conf.dtype) != "auto") {
    auto t = ParseDType(conf.dtype);
    if (!t) {
      std::fprintf(stderr, "qatqfs: bad dtype=%s (auto|bf16|f16|f32|bytes)\n", conf.dtype);
      return 2;
    }
    fo.dtype = *t;
  }
  // The daemon checks no permissions itself: a mount other users can enter
  // gets the kernel's checks, or every user could read every file.
  if (conf.allow_other && !conf.default_permissions) {
    fuse_opt_add_arg(&args, "-odefault_permissions");
    LogInfo("allow_other implies default_permissions");
  }
  const std::string store_path = AbsPath(conf.store);
  std::string fsname_opt = "-ofsname=" + store_path + ",subtype=qatqfs";
  fuse_opt_add_arg(&args, fsname_opt.c_str());

  // Daemon mode: fork now, before any thread exists.
  int report_fd = -1;
  if (!opts.foreground) {
    int p[2];
    if (pipe(p) != 0) {
      std::perror("qatqfs: pipe");
      return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("qatqfs: fork");
      return 1;
    }
    if (pid > 0) {
      close(p[1]);
      char result = 1;
      ssize_t n = read(p[0], &result, 1);
      if (n != 1) {
        int st;
        waitpid(pid, &st, 0);
        return 1;
      }
      return result == 0 ? 0 : 1;
    }
    close(p[0]);
    report_fd = p[1];
    setsid();
  }

  std::unique_ptr<Store> store;
  StoreOptions so;
  so.read_only = fo.read_only;
  Status s = OpenStore(store_path, so, &store);
  if (!s.ok()) {
    std::fprintf(stderr, "qatqfs: cannot mount %s: %s\n", store_path.c_str(), s.ToString().c_str());
    if (s.IsNotFound() || s.IsCorruption() || s.IsInvalidArgument()) {
      std::fprintf(stderr, "qatqfs: create a store with: qatqfs mkfs %s\n", conf.store);
    }
    Report(report_fd, 1);
    return 1;
  }
  std::unique_ptr<Filesystem> fs;
  s = Filesystem::Open(std::move(store), fo, &fs);
  if (!s.ok()) {
    std::fprintf(stderr, "qatqfs: cannot open filesystem: %s\n", s.ToString().c_str());
    Report(report_fd, 1);
    return 1;
  }
  FuseContext ctx;
  ctx.fs = fs.get();
  ctx.mountpoint = AbsPath(opts.mountpoint);
  if (conf.read_ahead_kb >= 0) ctx.read_ahead_kb = static_cast<unsigned>(conf.read_ahead_kb);
  const fuse_lowlevel_ops& ops = QatqfsLowlevelOps();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &ctx);
  int ret = 1;
  if (se == nullptr) {
    std::fprintf(stderr, "qatqfs: bad FUSE options\n");
    Report(report_fd, 1);
    goto out_fs;
  }
  if (fuse_set_signal_handlers(se) != 0) {
    Report(report_fd, 1);
    goto out_session;
  }
  if (fuse_session_mount(se, opts.mountpoint) != 0) {
    std::fprintf(stderr,
                 "qatqfs: cannot mount on %s (if a previous qatqfs died there, clean up "
                 "with: fusermount3 -uz %s)\n",
                 opts.mountpoint, opts.mountpoint);
    Report(report_fd, 1);
    goto out_signals;
  }
  LogInfo("mounted %s on %s", store_path.c_str(), opts.mountpoint);
  if (report_fd >= 0) {
    // Detach from the terminal, as fuse_daemonize does.
    if (chdir("/") != 0) {
    }
    int nullfd = open("/dev/null", O_RDWR);
    if (nullfd >= 0) {
      dup2(nullfd, 0);
      dup2(nullfd, 1);
      dup2(nullfd, 2);
      if (nullfd > 2) close(nullfd);
    }
    LogToSyslog(true);
    Report(report_fd, 0);
    report_fd = -1;
  }
  {
    if (opts.singlethread) {
      ret = fuse_session_loop(se);
    } else {
      fuse_loop_config* lc = fuse_loop_cfg_create();
      fuse_loop_cfg_set_clone_fd(lc, opts.clone_fd);
      // fuse_parse_cmdline leaves UINT_MAX for "not given".
      unsigned max_threads = opts.max_threads;
      if (max_threads == 0 || max_threads > 1024) max_threads = 16;
      unsigned idle = opts.max_idle_threads;
      if (idle == 0 || idle > max_threads) idle = max_threads / 2;
      fuse_loop_cfg_set_max_threads(lc, max_threads);
      fuse_loop_cfg_set_idle_threads(lc, idle);
      ret = fuse_session_loop_mt(se, lc);
      fuse_loop_cfg_destroy(lc);
    }
    // A positive value is the signal (SIGTERM/SIGINT/SIGHUP) that ended the
    // loop: a requested, clean shutdown.
    if (ret > 0) {
      LogInfo("signal %d: unmounting", ret);
      ret = 0;
    }
  }
  fuse_session_unmount(se);
out_signals:
  fuse_remove_signal_handlers(se);
out_session:
  // Calls destroy (Shutdown: commit everything) if the kernel initialised us.
  fuse_session_destroy(se);
out_fs:
  if (ret == 0) {
    // destroy already committed; this only reports a late failure.
    Status ss = fs->Shutdown();
    if (!ss.ok()) {
      // Data is lost: say so in the exit status too (systemd marks the unit
      // failed, scripts see it).
      LogError("shutdown: %s", ss.ToString().c_str());
      ret = 1;
    }
  }
  fs.reset();
  return ret == 0 ? 0 : 1;
}

// Options of fstab/mount(8) that are not mount options of the filesystem.
bool IsMountOnlyOption(const std::string& o) {
  static const char* kDrop[] = {"defaults", "auto",  "noauto", "user",    "nouser", "users",
                                "owner",    "group", "nofail", "_netdev", "rw"};
  for (const char* d : kDrop) {
    if (o == d) return true;
  }
  return o.rfind("x-", 0) == 0 || o.rfind("comment=", 0) == 0;
}

// Invoked by mount(8) as /sbin/mount.fuse.qatqfs (or mount.qatqfs):
//   mount.fuse.qatqfs STORE MNT [-sfnv] [-N ns] [-o opts] [-t type]
// Translates to `qatqfs STORE MNT -o opts` in daemon mode.
int MountHelper(int argc, char** argv) {
  std::vector<std::string> pos;
  std::string opts;
  bool fake = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-o" && i + 1 < argc) {
      if (!opts.empty()) opts += ",";
      opts += argv[++i];
    } else if ((a == "-t" || a == "-N") && i + 1 < argc) {
      ++i;
    } else if (a.size() > 1 && a[0] == '-') {
      if (a.find('f') != std::string::npos) fake = true;  // -f: fake, do nothing
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() != 2) {
    std::fprintf(stderr, "usage: mount.fuse.qatqfs STORE MOUNTPOINT [-o opts]\n");
    return 1;
  }
  if (fake) return 0;
  std::string kept;
  size_t start = 0;
  while (start <= opts.size()) {
    size_t comma = opts.find(',', start);
    if (comma == std::string::npos) comma = opts.size();
    std::string o = opts.substr(start, comma - start);
    if (!o.empty() && !IsMountOnlyOption(o)) {
      if (!kept.empty()) kept += ",";
      kept += o;
    }
    start = comma + 1;
  }
  std::vector<std::string> args = {"qatqfs", pos[0], pos[1]};
  if (!kept.empty()) {
    args.push_back("-o");
    args.push_back(kept);
  }
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  return Mount(static_cast<int>(args.size()), cargs.data());
}

}  // namespace
}  // namespace qatq

int main(int argc, char** argv) {
  std::string self = argv[0];
  self = self.substr(self.rfind('/') == std::string::npos ? 0 : self.rfind('/') + 1);
  if (self == "mount.fuse.qatqfs" || self == "mount.qatqfs") {
    return qatq::MountHelper(argc, argv);
  }
  if (argc >= 2) {
    std::string cmd = argv[1];
    if (cmd == "mkfs") return qatq::Mkfs(argc, argv);
    if (cmd == "stats") return qatq::Stats(argc, argv);
    if (cmd == "fsck") return qatq::RunFsckCommand({argv + 2, argv + argc});
    if (cmd == "export") return qatq::RunExportCommand({argv + 2, argv + argc});
    if (cmd == "import") return qatq::RunImportCommand({argv + 2, argv + argc});
    if (cmd == "--version" || cmd == "-V") {
      std::printf("qatqfs %s\nstore format version: %u (reads and writes)\n"
                  "chunk objects: QATC v3 chunk records\nlibfuse %s\n",
                  qatq::kVersion, qatq::kStoreFormatVersion, fuse_pkgversion());
      return 0;
    }
    if (cmd == "--help" || cmd == "-h") {
      qatq::PrintUsage(stdout);
      return 0;
    }
  }
  if (argc < 2) {
    qatq::PrintUsage(stderr);
    return 2;
  }
  return qatq::Mount(argc, argv);
}
