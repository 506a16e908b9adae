// Harness for tests that mount a real qatqfs daemon (the Mount* suites).
// The temporary directory is under $QATQ_MOUNT_TMPDIR, else /dev/shm, else
// $TMPDIR, else /tmp.
//
// Every blocking step has a timeout and the destructor always tears the
// mount down (fusermount3 -u, then -uz, then SIGTERM/SIGKILL of the daemon)
// so a hung daemon never wedges CI. The daemon is started with -f as a child
// of the test process with PR_SET_PDEATHSIG, so it also goes away when the
// test binary itself is killed (ctest timeout).
//
// Thread-safety: none; use from the test's main thread.
#ifndef QATQ_TESTS_RELIABILITY_MOUNT_UTIL_H_
#define QATQ_TESTS_RELIABILITY_MOUNT_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qatq::test {

// Path of a tool (qatqfs, qatq-fsx): $QATQ_TOOLS_DIR/NAME when set (long
// runs use a copy of the binaries, so rebuilding cannot disturb them),
// else the build tree's tools/NAME.
std::filesystem::path ToolPath(const std::string& name);

// Empty when mount tests can run here; otherwise why not (not root, no
// /dev/fuse, no fusermount3, qatqfs not built).
std::string MountSkipReason();

// Skips the current test with the reason when mount tests cannot run.
#define QATQ_REQUIRE_MOUNT()                                           \
  do {                                                                 \
    std::string _why = ::qatq::test::MountSkipReason();                \
    if (!_why.empty()) GTEST_SKIP() << "mount test skipped: " << _why; \
  } while (0)

// Runs argv[0] (PATH lookup) with stdin from /dev/null; stdout and stderr
// go to *output (when not null). Kills it with SIGKILL after timeout_ms.
// Returns the exit code, 128+signal when killed by a signal, or -1.
int RunWithTimeout(const std::vector<std::string>& argv, int timeout_ms,
                   std::string* output = nullptr);

// Waits up to timeout_ms for `pid` (a child) to exit. Returns true and
// stores the wait status when it did.
bool WaitPid(pid_t pid, int timeout_ms, int* status);

// "exit 0", "signal 9", ... for messages.
std::string DescribeStatus(int status);

// True when `dir` is a mount point in /proc/self/mountinfo.
bool IsMountPoint(const std::filesystem::path& dir);

// 64-bit FNV-1a, for content digests.
uint64_t Fnv1a(const void* data, size_t len, uint64_t h = 1469598103934665603ull);

// Reads a whole file; false (with errno set) on error.
bool ReadWholeFile(const std::filesystem::path& p, std::string* out);

// One store directory and one mount point in a fresh temporary directory,
// plus the daemon mounting one on the other.
class QatqfsMount {
 public:
  QatqfsMount();
  // Unmounts (forcefully if needed), then removes the temporary directory
  // unless the mount could not be removed.
  ~QatqfsMount();
  QatqfsMount(const QatqfsMount&) = delete;
  QatqfsMount& operator=(const QatqfsMount&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  const std::filesystem::path& store() const { return store_; }
  const std::filesystem::path& mnt() const { return mnt_; }
  pid_t daemon_pid() const { return pid_; }

  // `qatqfs mkfs STORE extra...`. On failure returns false and fills *err.
  bool Mkfs(const std::vector<std::string>& extra, std::string* err);
  // Starts `qatqfs STORE MNT -f extra...` and waits until the mount shows
  // in /proc/self/mountinfo. Fails if the daemon exits first or after
  // timeout_ms. REQUIRES: not mounted by us.
  bool Mount(std::string* err, const std::vector<std::string>& extra = {}, int timeout_ms = 30000);
  // Clean unmount: fusermount3 -u, then waits for the daemon to commit and
  // exit. Fails unless the daemon exits with status 0.
  bool Unmount(std::string* err, int timeout_ms = 120000);
  // Sends `sig` to the daemon.
  void Signal(int sig);
  // Waits for the daemon to exit (after Signal). Stores its wait status.
  bool WaitDaemon(int timeout_ms, int* status);
  // After the daemon died: detaches the dead mount (fusermount3 -uz).
  bool CleanDeadMount(std::string* err);
  // Best effort, never blocks forever: -u, -uz, SIGTERM, SIGKILL.
  void ForceCleanup();

  // The last `bytes` of the daemon's log (stdout and stderr of every
  // daemon started by this object).
  std::string LogTail(size_t bytes = 4000) const;

 private:
  std::filesystem::path dir_, store_, mnt_, log_;
  pid_t pid_ = -1;
};

// Lets a child process (qatq-fsx --remount-cmd) ask the test to remount:
// the command writes a line to a request FIFO and waits for "ok" on a reply
// FIFO; Serve() unmounts and remounts in the test process, so every daemon
// stays a child whose exit status is checked.
class RemountServer {
 public:
  RemountServer(QatqfsMount* mount, const std::filesystem::path& dir);
  ~RemountServer();
  RemountServer(const RemountServer&) = delete;
  RemountServer& operator=(const RemountServer&) = delete;

  // A /bin/sh command for --remount-cmd.
  std::string Command() const;
  // Serves remount requests until child `pid` exits or timeout_ms passes.
  // Returns true with *status when the child exited; on timeout kills it
  // and returns false. *remounts counts served requests; a failed remount
  // is answered "fail" and recorded in *err.
  bool Serve(pid_t pid, int timeout_ms, int* status, int* remounts, std::string* err);

 private:
  QatqfsMount* mount_;
  std::filesystem::path req_, rep_;
  int req_fd_ = -1, rep_fd_ = -1;
};

// `qatqfs stats STORE --json` of an unmounted store: the value of the
// integer field `field` (e.g. "chunk_refs", "unique_chunks"), or -1 (with
// *err set) when the command fails or the field is missing.
int64_t StoreStat(const std::filesystem::path& store, const std::string& field, std::string* err);

// The store check behind `qatqfs fsck` (index/fsck.h), run in-process on
// the unmounted store (with `repair`, as `fsck --repair`). Damage is every
// problem other than an orphan object (written but never committed, or
// freed by a commit whose deletion a kill interrupted: removable garbage)
// and every unrecoverable file. Returns "" when there is none; adds the
// orphan objects found to *orphans.
std::string StoreDamage(const std::filesystem::path& store, bool repair, uint64_t* orphans,
                        std::string* summary);

// Starts `argv` with stdout and stderr appended to `log`; returns its pid.
pid_t Spawn(const std::vector<std::string>& argv, const std::filesystem::path& log);

}  // namespace qatq::test

#endif  // QATQ_TESTS_RELIABILITY_MOUNT_UTIL_H_
