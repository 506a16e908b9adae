#include "tests/reliability/mount_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "index/fsck.h"
#include "index/store.h"
#include "tests/testutil.h"

namespace qatq::test {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Decodes the octal escapes (\040 etc.) of a mountinfo path field.
std::string UnescapeMountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (int k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Child side of Spawn/RunWithTimeout: never returns.
[[noreturn]] void ExecChild(const std::vector<std::string>& argv, int out_fd) {
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, 0);
  if (out_fd >= 0) {
    dup2(out_fd, 1);
    dup2(out_fd, 2);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
  _exit(127);
}

// Processes with a descriptor, cwd or root under `dir` (for EBUSY).
std::string HoldersOf(const fs::path& dir) {
  std::string out;
  std::error_code ec;
  const std::string prefix = dir.string();
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    std::string pid = proc.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::vector<fs::path> links = {proc.path() / "cwd", proc.path() / "root"};
    std::error_code e2;
    for (const auto& fd : fs::directory_iterator(proc.path() / "fd", e2))
      links.push_back(fd.path());
    for (const auto& l : links) {
      std::error_code e3;
      std::string target = fs::read_symlink(l, e3).string();
      if (!e3 && target.rfind(prefix, 0) == 0) {
        std::string comm;
        ReadWholeFile(proc.path() / "comm", &comm);
        out += "\n  held by pid " + pid + " (" + comm.substr(0, comm.find('\n')) +
               "): " + l.filename().string() + " -> " + target;
        break;
      }
    }
  }
  return out.empty() ? "\n  (no process holds it now)" : out;
}

}  // namespace

fs::path ToolPath(const std::string& name) {
  const char* dir = std::getenv("QATQ_TOOLS_DIR");
  if (dir && *dir) return fs::path(dir) / name;
  return BinaryPath(name);
}

std::string MountSkipReason() {
  if (geteuid() != 0) return "not running as root";
  if (access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse is missing or not accessible";
  if (RunCommand("command -v fusermount3 >/dev/null 2>&1") != 0) return "fusermount3 not found";
  fs::path bin = ToolPath("qatqfs");
  if (access(bin.c_str(), X_OK) != 0) return "qatqfs binary not built at " + bin.string();
  fs::path fsx = ToolPath("qatq-fsx");
  if (access(fsx.c_str(), X_OK) != 0) return "qatq-fsx not built at " + fsx.string();
  return "";
}

int RunWithTimeout(const std::vector<std::string>& argv, int timeout_ms, std::string* output) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) ExecChild(argv, p[1]);
  close(p[1]);
  std::string buf;
  auto start = Clock::now();
  bool killed = false;
  for (;;) {
    int left = timeout_ms - static_cast<int>(MsSince(start));
    if (left <= 0) {
      if (!killed) kill(pid, SIGKILL);
      killed = true;
      left = 1000;  // a killed child still closes the pipe promptly
    }
    pollfd pfd{p[0], POLLIN, 0};
    int r = poll(&pfd, 1, std::min(left, 200));
    if (r > 0) {
      char tmp[4096];
      ssize_t n = read(p[0], tmp, sizeof tmp);
      if (n > 0) {
        buf.append(tmp, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) break;
    }
    if (killed && MsSince(start) > timeout_ms + 5000) break;
  }
  close(p[0]);
  int status = 0;
  if (!WaitPid(pid, killed ? 5000 : timeout_ms, &status)) {
    kill(pid, SIGKILL);
    WaitPid(pid, 5000, &status);
    if (output) *output = buf + "\n[timed out]";
    return -1;
  }
  if (killed) buf += "\n[killed after " + std::to_string(timeout_ms) + " ms]";
  if (output) *output = std::move(buf);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool WaitPid(pid_t pid, int timeout_ms, int* status) {
  auto start = Clock::now();
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (status) *status = st;
      return true;
    }
    if (r < 0 && errno != EINTR) return false;
    if (MsSince(start) >= timeout_ms) return false;
    SleepMs(10);
  }
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return std::string("signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "status " + std::to_string(status);
}

bool IsMountPoint(const fs::path& dir) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  const std::string want = dir.string();
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp;
    ss >> id >> parent >> dev >> root >> mp;
    if (UnescapeMountinfo(mp) == want) return true;
  }
  return false;
}

uint64_t Fnv1a(const void* data, size_t len, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

bool ReadWholeFile(const fs::path& p, std::string* out) {
  out->clear();
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      errno = e;
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

int64_t StoreStat(const fs::path& store, const std::string& field, std::string* err) {
  std::string out;
  int rc = RunWithTimeout({ToolPath("qatqfs").string(), "stats", store.string(), "--json"}, 120000,
                          &out);
  size_t at = out.find("\"" + field + "\":");
  if (rc != 0 || at == std::string::npos) {
    *err = "qatqfs stats --json (exit " + std::to_string(rc) + "): " + out;
    return -1;
  }
  return std::strtoll(out.c_str() + at + field.size() + 3, nullptr, 10);
}

pid_t Spawn(const std::vector<std::string>& argv, const fs::path& log) {
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t pid = fork();
  if (pid == 0) ExecChild(argv, fd);
  if (fd >= 0) close(fd);
  return pid;
}

QatqfsMount::QatqfsMount() {
  // The store lives in RAM when possible: the tests exercise the daemon's
  // logic, and fsync on a shared CI disk would dominate their run time.
  const char* base = std::getenv("QATQ_MOUNT_TMPDIR");
  if (base == nullptr && access("/dev/shm", W_OK) == 0) base = "/dev/shm";
  if (base == nullptr) base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/qatq-mount-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << strerror(errno);
    return;
  }
  dir_ = fs::canonical(tmpl);
  store_ = dir_ / "store";
  mnt_ = dir_ / "mnt";
  log_ = dir_ / "daemon.log";
  fs::create_directories(mnt_);
}

QatqfsMount::~QatqfsMount() {
  ForceCleanup();
  if (dir_.empty()) return;
  if (IsMountPoint(mnt_)) {
    // Never recurse into a live mount; leave the directory for inspection.
    fprintf(stderr, "QatqfsMount: %s is still mounted; leaving %s\n", mnt_.c_str(), dir_.c_str());
    return;
  }
  if (std::getenv("QATQ_KEEP_MOUNT_DIR")) {
    fprintf(stderr, "QatqfsMount: kept %s\n", dir_.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

bool QatqfsMount::Mkfs(const std::vector<std::string>& extra, std::string* err) {
  std::vector<std::string> argv = {ToolPath("qatqfs").string(), "mkfs", store_.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string out;
  int rc = RunWithTimeout(argv, 60000, &out);
  if (rc != 0) {
    *err = "qatqfs mkfs failed (" + std::to_string(rc) + "): " + out;
    return false;
  }
  return true;
}

bool QatqfsMount::Mount(std::string* err, const std::vector<std::string>& extra, int timeout_ms) {
  if (pid_ > 0) {
    *err = "Mount: a daemon is already running";
    return false;
  }
  std::vector<std::string> argv = {ToolPath("qatqfs").string(), store_.string(), mnt_.string(),
                                   "-f"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) dprintf(fd, "=== mount %s\n", mnt_.c_str());
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    *err = std::string("fork: ") + strerror(errno);
    return false;
  }
  if (pid == 0) {
    // Take the daemon down with the test if the test dies first.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    setpgid(0, 0);
    ExecChild(argv, fd);
  }
  if (fd >= 0) close(fd);
  pid_ = pid;
  auto start = Clock::now();
  while (MsSince(start) < timeout_ms) {
    if (IsMountPoint(mnt_)) return true;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *err = "qatqfs exited before mounting (" + DescribeStatus(status) + "):\n" + LogTail();
      return false;
    }
    SleepMs(10);
  }
  *err = "mount did not appear within " + std::to_string(timeout_ms) + " ms:\n" + LogTail();
  ForceCleanup();
  return false;
}

bool QatqfsMount::Unmount(std::string* err, int timeout_ms) {
  if (pid_ <= 0) {
    *err = "Unmount: no daemon running";
    return false;
  }
  std::string out;
  int rc = 0;
  // EBUSY can be transient (a process of someone else's scanning the tree,
  // a just-killed process whose files are still being closed): retry for a
  // few seconds, then name the holders.
  for (int attempt = 0; attempt < 25; ++attempt) {
    rc = RunWithTimeout({"fusermount3", "-u", mnt_.string()}, 60000, &out);
    if (rc == 0 || out.find("busy") == std::string::npos) break;
    SleepMs(200);
  }
  if (rc != 0) {
    *err = "fusermount3 -u failed (" + std::to_string(rc) + "): " + out + HoldersOf(mnt_);
    ForceCleanup();
    return false;
  }
  int status;
  if (!WaitDaemon(timeout_ms, &status)) {
    *err = "daemon did not exit within " + std::to_string(timeout_ms) + " ms after unmount:\n" +
           LogTail();
    ForceCleanup();
    return false;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *err = "daemon ended with " + DescribeStatus(status) + " after unmount:\n" + LogTail();
    return false;
  }
  return true;
}

void QatqfsMount::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

bool QatqfsMount::WaitDaemon(int timeout_ms, int* status) {
  if (pid_ <= 0) return false;
  if (!WaitPid(pid_, timeout_ms, status)) return false;
  pid_ = -1;
  return true;
}

bool QatqfsMount::CleanDeadMount(std::string* err) {
  if (!IsMountPoint(mnt_)) return true;
  std::string out;
  int rc = RunWithTimeout({"fusermount3", "-uz", mnt_.string()}, 30000, &out);
  if (rc != 0 || IsMountPoint(mnt_)) {
    *err = "fusermount3 -uz failed (" + std::to_string(rc) + "): " + out;
    return false;
  }
  return true;
}

void QatqfsMount::ForceCleanup() {
  if (mnt_.empty()) return;
  if (IsMountPoint(mnt_)) RunWithTimeout({"fusermount3", "-u", mnt_.string()}, 20000);
  if (IsMountPoint(mnt_)) {
    // Killing the daemon aborts the connection, which also releases any
    // process blocked in a request; then detach the dead mount.
    Signal(SIGKILL);
    RunWithTimeout({"fusermount3", "-uz", mnt_.string()}, 20000);
  }
  if (pid_ > 0) {
    int status;
    if (!WaitDaemon(30000, &status)) {
      Signal(SIGTERM);
      if (!WaitDaemon(10000, &status)) {
        Signal(SIGKILL);
        WaitDaemon(10000, &status);
      }
    }
  }
  if (IsMountPoint(mnt_)) RunWithTimeout({"fusermount3", "-uz", mnt_.string()}, 20000);
}

std::string QatqfsMount::LogTail(size_t bytes) const {
  std::string s;
  if (!ReadWholeFile(log_, &s)) return "(no daemon log)";
  if (s.size() > bytes) s = "..." + s.substr(s.size() - bytes);
  return s;
}

RemountServer::RemountServer(QatqfsMount* mount, const fs::path& dir)
    : mount_(mount), req_(dir / "remount.req"), rep_(dir / "remount.rep") {
  mkfifo(req_.c_str(), 0600);
  mkfifo(rep_.c_str(), 0600);
  // O_RDWR on both: opening never blocks, and a reply written before the
  // child opens the FIFO stays buffered because we hold a writer open.
  req_fd_ = open(req_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  rep_fd_ = open(rep_.c_str(), O_RDWR | O_CLOEXEC);
}

RemountServer::~RemountServer() {
  if (req_fd_ >= 0) close(req_fd_);
  if (rep_fd_ >= 0) close(rep_fd_);
}

std::string RemountServer::Command() const {
  return "echo remount > '" + req_.string() + "' && read r < '" + rep_.string() +
         "' && [ \"$r\" = ok ]";
}

bool RemountServer::Serve(pid_t pid, int timeout_ms, int* status, int* remounts, std::string* err) {
  auto start = Clock::now();
  std::string pending;
  while (MsSince(start) < timeout_ms) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      *status = st;
      return true;
    }
    pollfd pfd{req_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 50) <= 0) continue;
    char buf[256];
    ssize_t n = read(req_fd_, buf, sizeof buf);
    if (n <= 0) continue;
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      pending.erase(0, nl + 1);
      std::string e;
      bool ok = mount_->Unmount(&e) && mount_->Mount(&e);
      if (!ok && err->empty()) *err = "remount " + std::to_string(*remounts + 1) + ": " + e;
      ++*remounts;
      const char* reply = ok ? "ok\n" : "fail\n";
      if (write(rep_fd_, reply, strlen(reply)) < 0) {
        *err += " (reply failed)";
      }
    }
  }
  kill(pid, SIGKILL);
  WaitPid(pid, 10000, status);
  return false;
}

std::string StoreDamage(const std::filesystem::path& store, bool repair, uint64_t* orphans,
                        std::string* summary) {
  std::unique_ptr<Store> st;
  StoreOptions so;
  so.read_only = !repair;
  Status s = OpenStore(store.string(), so, &st);
  if (!s.ok()) return "cannot open the store: " + s.ToString();
  FsckOptions fo;
  fo.repair = repair;
  FsckReport report;
  s = CheckStore(st.get(), fo, &report);
  if (!s.ok()) return "check failed: " + s.ToString();
  *summary = report.Summary();
  std::string damage;
  for (const FsckProblem& p : report.problems) {
    if (p.kind == FsckProblemKind::kOrphanObject) {
      ++*orphans;
    } else {
      damage += std::string(FsckProblemName(p.kind)) + ": " + p.detail + "\n";
    }
  }
  if (report.problems.size() < report.problem_count) damage += "more problems not listed\n";
  for (const auto& f : report.damaged_files) damage += "unrecoverable " + f.path + "\n";
  return damage;
}

}  // namespace qatq::test
