// POSIX semantics through the kernel on a real qatqfs mount, one by one.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>

#include "tests/mount/fixture.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

using test::QatqfsMount;

class MountPosixTest : public test::MountedStoreTest {
 protected:
  std::string P(const std::string& rel) { return m_->path(rel); }
  static void Put(const std::string& p, const std::string& data) {
    int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << p << ": " << strerror(errno);
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(close(fd), 0);
  }
  static std::string Get(const std::string& p) { return test::ReadFileOrDie(p); }

};

TEST_F(MountPosixTest, WriteReadOverwriteAcrossRemount) {
  std::string data = test::RandomBytes(3 * 1048576 + 17, 1);
  Put(P("f"), data);
  EXPECT_EQ(Get(P("f")), data);
  int fd = open(P("f").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "PATCH", 5, 1048576 - 2), 5);
  ASSERT_EQ(close(fd), 0);
  data.replace(1048576 - 2, 5, "PATCH");
  EXPECT_EQ(Get(P("f")), data);
  Remount();
  EXPECT_EQ(Get(P("f")), data);
}

TEST_F(MountPosixTest, TruncateAndHoles) {
  Put(P("t"), "abcdef");
  ASSERT_EQ(truncate(P("t").c_str(), 3), 0);
  EXPECT_EQ(Get(P("t")), "abc");
  ASSERT_EQ(truncate(P("t").c_str(), 6), 0);
  EXPECT_EQ(Get(P("t")), std::string("abc\0\0\0", 6));
  ASSERT_EQ(truncate(P("huge").c_str(), 0), -1);  // ENOENT
  int fd = open(P("huge").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 1ll << 40), 0);
  char buf[16];
  ASSERT_EQ(pread(fd, buf, sizeof buf, (1ll << 40) - 16), 16);
  EXPECT_EQ(std::string(buf, 16), std::string(16, '\0'));
  ASSERT_EQ(pwrite(fd, "x", 1, 1ll << 35), 1);
  ASSERT_EQ(close(fd), 0);
  struct stat st;
  ASSERT_EQ(stat(P("huge").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1ll << 40);
  char chunks[32] = {0};
  ASSERT_GT(getxattr(P("huge").c_str(), "user.qatq.chunks", chunks, sizeof chunks), 0);
  EXPECT_STREQ(chunks, "1");
}

TEST_F(MountPosixTest, AppendFromTwoProcessesLosesNothing) {
  const int kWrites = 200;
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = fork();
    if (kids[k] == 0) {
      int fd = open(P("log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd < 0) _exit(1);
      std::string line(99, k ? 'b' : 'a');
      line += '\n';
      for (int i = 0; i < kWrites; ++i) {
        if (write(fd, line.data(), line.size()) != 100) _exit(2);
      }
      _exit(close(fd) == 0 ? 0 : 3);
    }
  }
  for (pid_t k : kids) {
    int st;
    waitpid(k, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  std::string all = Get(P("log"));
  ASSERT_EQ(all.size(), 2u * kWrites * 100);
  for (size_t i = 0; i < all.size(); i += 100) {
    char c = all[i];
    EXPECT_EQ(all.substr(i, 99), std::string(99, c)) << "torn record at " << i;
  }
}

TEST_F(MountPosixTest, UnlinkedOpenFileStaysReadable) {
  std::string data = test::RandomBytes(2 * 1048576, 2);
  Put(P("u"), data);
  int fd = open(P("u").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(unlink(P("u").c_str()), 0);
  EXPECT_NE(access(P("u").c_str(), F_OK), 0);
  std::string back(data.size(), '\0');
  ASSERT_EQ(pread(fd, back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, data);
  ASSERT_EQ(close(fd), 0);
}

TEST_F(MountPosixTest, RenameVariants) {
  Put(P("a"), "A");
  Put(P("b"), "B");
  ASSERT_EQ(rename(P("a").c_str(), P("b").c_str()), 0);
  EXPECT_EQ(Get(P("b")), "A");
  Put(P("c"), "C");
  EXPECT_EQ(renameat2(AT_FDCWD, P("b").c_str(), AT_FDCWD, P("c").c_str(), RENAME_NOREPLACE), -1);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_EQ(renameat2(AT_FDCWD, P("b").c_str(), AT_FDCWD, P("c").c_str(), RENAME_EXCHANGE), 0);
  EXPECT_EQ(Get(P("b")), "C");
  EXPECT_EQ(Get(P("c")), "A");
  ASSERT_EQ(mkdir(P("d1").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("d2").c_str(), 0755), 0);
  Put(P("d1/x"), "X");
  ASSERT_EQ(rename(P("d1").c_str(), P("d2/d1").c_str()), 0);
  EXPECT_EQ(Get(P("d2/d1/x")), "X");
  EXPECT_EQ(rename(P("d2").c_str(), P("d2/d1/inside").c_str()), -1);
  EXPECT_EQ(errno, EINVAL);
  Remount();
  EXPECT_EQ(Get(P("d2/d1/x")), "X");
}

TEST_F(MountPosixTest, DirectoriesLinksSymlinksAndReaddir) {
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  EXPECT_EQ(mkdir(P("d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EEXIST);
  for (int i = 0; i < 300; ++i) Put(P("d/f" + std::to_string(i)), std::to_string(i));
  ASSERT_EQ(link(P("d/f1").c_str(), P("hard").c_str()), 0);
  ASSERT_EQ(symlink("d/f2", P("sym").c_str()), 0);
  EXPECT_EQ(Get(P("sym")), "2");
  struct stat st;
  ASSERT_EQ(stat(P("hard").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  char target[64] = {0};
  ASSERT_EQ(readlink(P("sym").c_str(), target, sizeof target), 4);
  std::set<std::string> names;
  DIR* d = opendir(P("d").c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) names.insert(e->d_name);
  closedir(d);
  EXPECT_EQ(names.size(), 302u);
  EXPECT_EQ(rmdir(P("d").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(unlink(P("d/f" + std::to_string(i)).c_str()), 0);
  ASSERT_EQ(rmdir(P("d").c_str()), 0);
  EXPECT_EQ(Get(P("hard")), "1");
}

TEST_F(MountPosixTest, AttributesChmodChownUtimens) {
  Put(P("a"), "x");
  ASSERT_EQ(chmod(P("a").c_str(), 0600), 0);
  ASSERT_EQ(chown(P("a").c_str(), 1234, 5678), 0);
  struct timespec ts[2] = {{1000, 5}, {2000, 7}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("a").c_str(), ts, 0), 0);
  Remount();
  struct stat st;
  ASSERT_EQ(stat(P("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 7);
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
}

TEST_F(MountPosixTest, ExtendedAttributes) {
  Put(P("x"), "data");
  ASSERT_EQ(setxattr(P("x").c_str(), "user.k", "v1", 2, 0), 0);
  char buf[256];
  ASSERT_EQ(getxattr(P("x").c_str(), "user.k", buf, sizeof buf), 2);
  EXPECT_EQ(setxattr(P("x").c_str(), "trusted.k", "v", 1, 0), -1);
  ssize_t n = listxattr(P("x").c_str(), buf, sizeof buf);
  ASSERT_EQ(n, 7);
  EXPECT_STREQ(buf, "user.k");
  EXPECT_EQ(getxattr(P("x").c_str(), "security.capability", buf, sizeof buf), -1);
  EXPECT_EQ(errno, ENODATA);
  ASSERT_GT(getxattr(P("x").c_str(), "user.qatq.ratio", buf, sizeof buf), 0);
  ASSERT_EQ(removexattr(P("x").c_str(), "user.k"), 0);
  EXPECT_EQ(getxattr(P("x").c_str(), "user.k", buf, sizeof buf), -1);
}

TEST_F(MountPosixTest, CreateExclusiveAndTruncOnOpen) {
  Put(P("e"), "old contents");
  EXPECT_EQ(open(P("e").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644), -1);
  EXPECT_EQ(errno, EEXIST);
  int fd = open(P("e").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "new", 3), 3);
  ASSERT_EQ(close(fd), 0);
  EXPECT_EQ(Get(P("e")), "new");
}

TEST_F(MountPosixTest, MmapReadsAndWrites) {
  std::string data = test::RandomBytes(3 * 1048576 + 100, 3);
  Put(P("m"), data);
  int fd = open(P("m").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  void* p = mmap(nullptr, data.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_EQ(std::memcmp(p, data.data(), data.size()), 0);
  std::memcpy(static_cast<char*>(p) + 2 * 1048576 + 5, "mmapped", 7);
  ASSERT_EQ(msync(p, data.size(), MS_SYNC), 0);
  munmap(p, data.size());
  ASSERT_EQ(close(fd), 0);
  data.replace(2 * 1048576 + 5, 7, "mmapped");
  Remount();
  EXPECT_EQ(Get(P("m")), data);
}

TEST_F(MountPosixTest, FsyncAndStatfs) {
  int fd = open(P("s").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  std::string data = test::RandomBytes(1 << 20, 4);
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(fsync(fd), 0);
  ASSERT_EQ(close(fd), 0);
  struct statvfs sv;
  ASSERT_EQ(statvfs(m_->mnt().c_str(), &sv), 0);
  EXPECT_GT(sv.f_blocks, 0u);
  EXPECT_GT(sv.f_bavail, 0u);
  EXPECT_GE(sv.f_blocks - sv.f_bfree, (1u << 20) / sv.f_frsize);
}

TEST_F(MountPosixTest, TwoProcessesWriteAndReadConcurrently) {
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = fork();
    if (kids[k] == 0) {
      std::string mine = P("w" + std::to_string(k));
      std::string data = test::RandomBytes(4 << 20, 100 + k);
      for (int round = 0; round < 3; ++round) {
        int fd = open(mine.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) _exit(1);
        for (size_t off = 0; off < data.size(); off += 65536) {
          if (write(fd, data.data() + off, 65536) != 65536) _exit(2);
        }
        close(fd);
        std::string back = test::ReadFileOrDie(mine);
        if (back != data) _exit(3);
      }
      _exit(0);
    }
  }
  for (pid_t k : kids) {
    int st;
    waitpid(k, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child status " << st;
  }
}

TEST_F(MountPosixTest, SecondHandleReadsWritesBeforeClose) {
  int w = open(P("rw").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(w, 0);
  std::string data = test::RandomBytes(1500000, 5);
  ASSERT_EQ(write(w, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  int r = open(P("rw").c_str(), O_RDONLY);
  ASSERT_GE(r, 0);
  std::string back(data.size(), '\0');
  ASSERT_EQ(pread(r, back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, data);
  ASSERT_EQ(pwrite(w, "zz", 2, 10), 2);
  char two[2];
  ASSERT_EQ(pread(r, two, 2, 10), 2);
  EXPECT_EQ(std::string(two, 2), "zz");
  close(r);
  close(w);
}

TEST_F(MountPosixTest, SetgidDirectoryPassesItsGroupOn) {
  ASSERT_EQ(mkdir(P("g").c_str(), 0775), 0);
  ASSERT_EQ(chown(P("g").c_str(), 0, 4321), 0);
  ASSERT_EQ(chmod(P("g").c_str(), 02775), 0);
  Put(P("g/f"), "x");
  ASSERT_EQ(mkdir(P("g/sub").c_str(), 0755), 0);
  struct stat st;
  ASSERT_EQ(stat(P("g/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4321u);
  ASSERT_EQ(stat(P("g/sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4321u);
  EXPECT_TRUE(st.st_mode & S_ISGID);
}

}  // namespace
}  // namespace qatq
