// Test fixture for mount tests: mkfs a fresh store in a temp directory,
// run `qatqfs STORE MNT -f` in the background, wait for the mount to appear
// in /proc/self/mountinfo, and ALWAYS unmount in teardown (fusermount3 -u,
// then -uz, then SIGKILL, each bounded) so a hung daemon never wedges CI.
// Tests skip with a message when /dev/fuse or root is missing.
#ifndef QATQ_TESTS_MOUNT_FIXTURE_H_
#define QATQ_TESTS_MOUNT_FIXTURE_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "tests/testutil.h"
#include "tools/admin_util.h"

namespace qatq::test {

// Empty if mount tests can run here, else why not.
inline std::string MountUnavailableReason() {
  if (geteuid() != 0) return "mount tests need root";
  if (access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse is not available";
  if (RunCommand("command -v fusermount3 >/dev/null 2>&1") != 0) return "fusermount3 missing";
  if (!std::filesystem::exists(BinaryPath("qatqfs"))) return "qatqfs not built";
  return {};
}

#define QATQ_REQUIRE_MOUNT()                                          \
  do {                                                                \
    std::string why = ::qatq::test::MountUnavailableReason();         \
    if (!why.empty()) GTEST_SKIP() << "skipping mount test: " << why; \
  } while (0)

// Is `mnt` a mount point of type fuse.qatqfs?
inline bool IsQatqfsMounted(const std::string& mnt) {
  for (const admin::QatqfsMount& m : admin::ListQatqfsMounts()) {
    if (m.mount_point == mnt) return true;
  }
  return false;
}


class QatqfsMount {
 public:
  QatqfsMount() {
    root_ = tmp_.path();
    store_ = (root_ / "store").string();
    mnt_ = (root_ / "mnt").string();
    log_ = (root_ / "daemon.log").string();
    std::filesystem::create_directories(mnt_);
  }
  ~QatqfsMount() { Unmount(); }
  QatqfsMount(const QatqfsMount&) = delete;
  QatqfsMount& operator=(const QatqfsMount&) = delete;

  const std::string& store() const { return store_; }
  const std::string& mnt() const { return mnt_; }
  std::filesystem::path root() const { return root_; }
  pid_t pid() const { return pid_; }
  std::string path(const std::string& rel) const { return mnt_ + "/" + rel; }
  std::string Log() const { return ReadFileOrDie(log_); }

  bool Mkfs(const std::string& extra = "") {
    std::string out;
    int rc = RunCommand(ShellQuote(BinaryPath("qatqfs").string()) + " mkfs " + ShellQuote(store_) +
                            " " + extra + " 2>&1",
                        &out);
    if (rc != 0) ADD_FAILURE() << "mkfs failed: " << out;
    return rc == 0;
  }

  // Starts `qatqfs STORE MNT -f -o opts` and waits (10 s) for the mount.
  bool Mount(const std::string& opts = "") {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::string bin = BinaryPath("qatqfs").string();
      if (opts.empty()) {
        execl(bin.c_str(), "qatqfs", store_.c_str(), mnt_.c_str(), "-f", (char*)nullptr);
      } else {
        execl(bin.c_str(), "qatqfs", store_.c_str(), mnt_.c_str(), "-f", "-o", opts.c_str(),
              (char*)nullptr);
      }
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (IsQatqfsMounted(mnt_)) return true;
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "qatqfs exited before mounting: " << Log();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "mount did not appear within 10 s: " << Log();
    Unmount();
    return false;
  }

  // Unmounts and reaps the daemon; returns its exit status (or -1).
  int Unmount() {
    if (IsQatqfsMounted(mnt_)) {
      if (RunCommand("timeout 20 fusermount3 -u " + ShellQuote(mnt_) + " 2>&1") != 0) {
        RunCommand("timeout 20 fusermount3 -uz " + ShellQuote(mnt_) + " 2>&1");
      }
    }
    return Reap(30);
  }

  // Waits up to `seconds` for the daemon to exit, then kills it.
  int Reap(int seconds) {
    if (pid_ <= 0) return -1;
    int status = -1;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    for (;;) {
      int st;
      pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "qatqfs did not exit; killing it";
        kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    if (IsQatqfsMounted(mnt_)) RunCommand("timeout 20 fusermount3 -uz " + ShellQuote(mnt_));
    return status;
  }

 private:
  TempDir tmp_;
  std::filesystem::path root_;
  std::string store_, mnt_, log_;
  pid_t pid_ = -1;
};

// A gtest fixture with a fresh store mounted for each test (skipped when
// mount tests cannot run here) and unmounted in TearDown, where a non-zero
// daemon exit fails the test.
class MountedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    QATQ_REQUIRE_MOUNT();
    m_ = std::make_unique<QatqfsMount>();
    ASSERT_TRUE(m_->Mkfs());
    ASSERT_TRUE(m_->Mount());
  }
  void TearDown() override {
    if (m_) {
      EXPECT_EQ(m_->Unmount(), 0) << m_->Log();
    }
  }
  void Remount() {
    ASSERT_EQ(m_->Unmount(), 0) << m_->Log();
    ASSERT_TRUE(m_->Mount());
  }

  std::unique_ptr<QatqfsMount> m_;
};

}  // namespace qatq::test

#endif  // QATQ_TESTS_MOUNT_FIXTURE_H_
