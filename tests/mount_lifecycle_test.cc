// Daemon lifecycle: SIGTERM with open files, stale mounts, locked stores,
// daemon mode, read-only mounts, permissions under allow_other.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "tests/mount/fixture.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

using test::QatqfsMount;
using test::RunCommand;
using test::ShellQuote;

std::string Qatqfs() { return ShellQuote(test::BinaryPath("qatqfs").string()); }

TEST(MountLifecycle, SigtermWithOpenFileCommitsEverythingWritten) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;
  ASSERT_TRUE(m.Mkfs());
  ASSERT_TRUE(m.Mount());
  std::string data = test::RandomBytes(5 * 1048576 + 333, 1);
  int fd = open(m.path("open").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(kill(m.pid(), SIGTERM), 0);
  EXPECT_EQ(m.Reap(30), 0) << m.Log();
  close(fd);  // the mount is gone; the close goes nowhere
  ASSERT_FALSE(test::IsQatqfsMounted(m.mnt()));
  ASSERT_TRUE(m.Mount());
  EXPECT_EQ(test::ReadFileOrDie(m.path("open")), data);
  EXPECT_EQ(m.Unmount(), 0);
}

TEST(MountLifecycle, StaleMountOfAKilledDaemonCanBeCleanedAndRemounted) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;
  ASSERT_TRUE(m.Mkfs());
  ASSERT_TRUE(m.Mount());
  test::WriteFileOrDie(m.path("kept"), "committed");
  ASSERT_EQ(kill(m.pid(), SIGKILL), 0);
  m.Reap(10);
  // Reap lazily unmounted the dead mount; a second daemon mounts again.
  struct stat st;
  EXPECT_EQ(stat(m.mnt().c_str(), &st), 0);
  ASSERT_TRUE(m.Mount());
  EXPECT_EQ(test::ReadFileOrDie(m.path("kept")), "committed");
  EXPECT_EQ(m.Unmount(), 0);
}

TEST(MountLifecycle, StaleMountGivesAClearHint) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;
  ASSERT_TRUE(m.Mkfs());
  ASSERT_TRUE(m.Mount());
  pid_t dead = m.pid();
  ASSERT_EQ(kill(dead, SIGKILL), 0);
  // Wait for the process to die without cleaning the mount.
  for (int i = 0; i < 500 && kill(dead, 0) == 0; ++i) {
    int st;
    if (waitpid(dead, &st, WNOHANG) == dead) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  struct stat st;
  EXPECT_EQ(stat(m.mnt().c_str(), &st), -1);
  EXPECT_EQ(errno, ENOTCONN);
  std::string out;
  EXPECT_NE(RunCommand(Qatqfs() + " " + ShellQuote(m.store()) + " " + ShellQuote(m.mnt()) + " 2>&1",
                       &out),
            0);
  EXPECT_NE(out.find("fusermount3 -uz"), std::string::npos) << out;
  EXPECT_EQ(RunCommand("fusermount3 -uz " + ShellQuote(m.mnt())), 0);
  ASSERT_TRUE(m.Mount());
  EXPECT_EQ(m.Unmount(), 0);
}

TEST(MountLifecycle, LockedStoreIsRefusedWithAClearMessage) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;
  ASSERT_TRUE(m.Mkfs());
  ASSERT_TRUE(m.Mount());
  std::string other = (m.root() / "other").string();
  mkdir(other.c_str(), 0755);
  std::string out;
  EXPECT_NE(RunCommand(Qatqfs() + " " + ShellQuote(m.store()) + " " + other + " 2>&1", &out), 0);
  EXPECT_NE(out.find("in use"), std::string::npos) << out;
  EXPECT_FALSE(test::IsQatqfsMounted(other));
  EXPECT_EQ(m.Unmount(), 0);
}

TEST(MountLifecycle, NonStoreIsRefused) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;
  std::string empty = (m.root() / "empty").string();
  mkdir(empty.c_str(), 0755);
  std::string out;
  EXPECT_NE(RunCommand(Qatqfs() + " " + empty + " " + ShellQuote(m.mnt()) + " 2>&1", &out), 0);
  EXPECT_NE(out.find("mkfs"), std::string::npos) << out;
  EXPECT_FALSE(test::IsQatqfsMounted(m.mnt()));
}

TEST(MountLifecycle, DaemonModeReturnsOnceTheMountIsLive) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;
  ASSERT_TRUE(m.Mkfs());
  std::string out;
  ASSERT_EQ(RunCommand(Qatqfs() + " " + ShellQuote(m.store()) + " " + ShellQuote(m.mnt()) + " 2>&1",
                       &out),
            0)
      << out;
  EXPECT_TRUE(test::IsQatqfsMounted(m.mnt()));
  test::WriteFileOrDie(m.path("f"), "daemon");
  EXPECT_EQ(RunCommand("fusermount3 -u " + ShellQuote(m.mnt())), 0);
  // The daemon commits and releases the store lock shortly after unmount.
  bool remounted = false;
  for (int i = 0; i < 100 && !remounted; ++i) {
    remounted = RunCommand(Qatqfs() + " " + ShellQuote(m.store()) + " " + ShellQuote(m.mnt()) +
                           " 2>/dev/null") == 0;
    if (!remounted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(remounted);
  EXPECT_EQ(test::ReadFileOrDie(m.path("f")), "daemon");
  EXPECT_EQ(RunCommand("fusermount3 -u " + ShellQuote(m.mnt())), 0);
}

TEST(MountLifecycle, ReadOnlyMountRefusesWrites) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;
  ASSERT_TRUE(m.Mkfs());
  ASSERT_TRUE(m.Mount());
  test::WriteFileOrDie(m.path("f"), "data");
  ASSERT_EQ(m.Unmount(), 0);
  ASSERT_TRUE(m.Mount("ro"));
  EXPECT_EQ(test::ReadFileOrDie(m.path("f")), "data");
  EXPECT_EQ(open(m.path("g").c_str(), O_WRONLY | O_CREAT, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(m.Unmount(), 0);
}

// Mounts with `opts` (allow_other among them) and checks what user nobody
// may do.
void ExpectOtherUsersDeniedPrivateFiles(const std::string& opts) {
  QatqfsMount m;
  ASSERT_TRUE(m.Mkfs());
  // The mount point's parents must be traversable by nobody.
  chmod(m.root().c_str(), 0755);
  ASSERT_TRUE(m.Mount(opts));
  chmod(m.mnt().c_str(), 0755);
  test::WriteFileOrDie(m.path("private"), "secret");
  test::WriteFileOrDie(m.path("public"), "hello");
  ASSERT_EQ(chmod(m.path("private").c_str(), 0600), 0);
  ASSERT_EQ(chmod(m.path("public").c_str(), 0644), 0);
  std::string as_nobody = "setpriv --reuid=nobody --regid=nogroup --clear-groups ";
  std::string out;
  EXPECT_NE(RunCommand(as_nobody + "cat " + ShellQuote(m.path("private")) + " 2>&1", &out), 0);
  EXPECT_NE(out.find("Permission denied"), std::string::npos) << out;
  EXPECT_EQ(RunCommand(as_nobody + "cat " + ShellQuote(m.path("public")), &out), 0);
  EXPECT_EQ(out, "hello");
  EXPECT_NE(RunCommand(as_nobody + "touch " + ShellQuote(m.path("new")) + " 2>&1", &out), 0);
  // A file nobody creates in a world-writable directory is theirs.
  ASSERT_EQ(mkdir(m.path("tmp").c_str(), 01777), 0);
  ASSERT_EQ(chmod(m.path("tmp").c_str(), 01777), 0);
  EXPECT_EQ(RunCommand(as_nobody + "touch " + ShellQuote(m.path("tmp/mine"))), 0);
  struct stat st;
  ASSERT_EQ(stat(m.path("tmp/mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(m.Unmount(), 0);
}

#define QATQ_REQUIRE_NOBODY()                                                          \
  do {                                                                                 \
    if (RunCommand("command -v setpriv >/dev/null && id nobody >/dev/null") != 0) {    \
      GTEST_SKIP() << "setpriv or user nobody missing";                                \
    }                                                                                  \
  } while (0)

TEST(MountLifecycle, OtherUsersAreDeniedPrivateFilesUnderDefaultPermissions) {
  QATQ_REQUIRE_MOUNT();
  QATQ_REQUIRE_NOBODY();
  ExpectOtherUsersDeniedPrivateFiles("allow_other,default_permissions");
}

TEST(MountLifecycle, AllowOtherAloneStillChecksPermissions) {
  QATQ_REQUIRE_MOUNT();
  QATQ_REQUIRE_NOBODY();
  ExpectOtherUsersDeniedPrivateFiles("allow_other");
}

TEST(MountLifecycle, MountHelperAcceptsMount8ArgumentsAndFstabOptions) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;
  ASSERT_TRUE(m.Mkfs());
  // mount(8) runs /sbin/mount.fuse.qatqfs STORE MNT -o OPTS with the fstab
  // options, including ones meant for mount(8) itself.
  std::string helper = (m.root() / "mount.fuse.qatqfs").string();
  ASSERT_EQ(symlink(test::BinaryPath("qatqfs").c_str(), helper.c_str()), 0);
  std::string out;
  ASSERT_EQ(
      RunCommand(ShellQuote(helper) + " " + ShellQuote(m.store()) + " " + ShellQuote(m.mnt()) +
                     " -n -o rw,noauto,nofail,_netdev,x-systemd.automount,allow_other,"
                     "default_permissions,dtype=auto 2>&1",
                 &out),
      0)
      << out;
  EXPECT_TRUE(test::IsQatqfsMounted(m.mnt()));
  test::WriteFileOrDie(m.path("f"), "via helper");
  EXPECT_EQ(test::ReadFileOrDie(m.path("f")), "via helper");
  EXPECT_EQ(RunCommand("fusermount3 -u " + ShellQuote(m.mnt())), 0);
}

TEST(MountLifecycle, Mount8WithInstalledHelper) {
  QATQ_REQUIRE_MOUNT();
  if (access("/sbin/mount.fuse.qatqfs", X_OK) != 0) {
    GTEST_SKIP() << "/sbin/mount.fuse.qatqfs not installed (cmake --install)";
  }
  QatqfsMount m;
  ASSERT_TRUE(m.Mkfs());
  std::string fstab = (m.root() / "fstab").string();
  test::WriteFileOrDie(fstab, m.store() + " " + m.mnt() +
                                  " fuse.qatqfs allow_other,default_permissions,noauto 0 0\n");
  std::string out;
  ASSERT_EQ(RunCommand("mount -T " + ShellQuote(fstab) + " " + ShellQuote(m.mnt()) + " 2>&1", &out),
            0)
      << out;
  EXPECT_TRUE(test::IsQatqfsMounted(m.mnt()));
  EXPECT_EQ(RunCommand("umount " + ShellQuote(m.mnt())), 0);
}

}  // namespace
}  // namespace qatq
