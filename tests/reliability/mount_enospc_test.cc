// Full-disk behaviour through a real mount (docs/RELIABILITY.md, "Full
// disk"): the store lives on a small tmpfs (or a loop-mounted ext4) of its
// own, mounted by the test; the test fills it with incompressible data and
// then with large xattrs (metadata), and checks:
//  - ENOSPC reaches the application (from write, fsync or close; which one
//    is printed), never another errno, and no call that returned success
//    lost its data: every file whose writes, fsync and close all returned 0
//    and every xattr whose setxattr returned 0 is read back exactly, now and
//    after a remount;
//  - while the disk is full the daemon keeps serving stat, readdir and reads
//    of the committed files, and deleting files works;
//  - once space is freed, new writes, fsyncs and xattrs work again (the
//    metadata index recovers from its own failed writes);
//  - the daemon unmounts with status 0, mounts again, and the store check of
//    `qatqfs fsck` (index/fsck.h, in-process, and the CLI) reports nothing
//    but orphan objects (removable garbage).
//
// Every step that talks to the mount runs under a watchdog that SIGKILLs the
// daemon when it overruns (which aborts the FUSE connection and releases the
// blocked call), and teardown unmounts the qatqfs mount and then the scratch
// filesystem even when the test failed.
//
// ChunkStoreReserve.* and MetadataStoreReserve.* check the two reserves
// behind this (index/chunk_store.h, index/rocksdb_metadata_store.cc)
// without a mount.
//
// The Mount* tests skip (with a message) unless mount tests can run here
// and the scratch filesystem can be mounted. Environment: QATQ_ENOSPC_SEED (default 1),
// QATQ_ENOSPC_MB (scratch size, default 48).
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "index/chunk_store.h"
#include "index/fsck.h"
#include "index/metadata_store.h"
#include "index/store.h"
#include "tests/reliability/mount_util.h"
#include "tests/reliability/rng.h"
#include "tests/testutil.h"

namespace qatq::test {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMiB = size_t{1} << 20;
// Below kMaxXattrValue (64 KiB), so every setxattr is a large index write.
constexpr size_t kXattrBytes = 60000;

// Incompressible bytes: qatqfs cannot store them in less than their size.
std::string RandomData(size_t n, Rng* rng) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng->Next();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

uint64_t Digest(const std::string& s) { return Fnv1a(s.data(), s.size()); }

std::string ErrnoName(int e) {
  if (e == 0) return "ok";
  const char* name = strerrorname_np(e);
  return name ? name : std::to_string(e);
}

// A scratch filesystem (tmpfs, or ext4 on a loop device) mounted at `dir`
// for the test's lifetime; the destructor unmounts it (lazily if busy).
class ScratchFs {
 public:
  explicit ScratchFs(fs::path dir) : dir_(std::move(dir)) {}
  ~ScratchFs() { Unmount(); }
  ScratchFs(const ScratchFs&) = delete;
  ScratchFs& operator=(const ScratchFs&) = delete;

  bool MountTmpfs(size_t mib, std::string* err) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    std::string opts = "size=" + std::to_string(mib) + "m,mode=0700";
    if (mount("qatq-enospc", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      *err = "mount -t tmpfs -o " + opts + " " + dir_.string() + ": " + strerror(errno);
      return false;
    }
    mounted_ = true;
    return true;
  }

  // ext4 in an image file of `mib` MiB beside `dir`, loop-mounted at dir.
  bool MountExt4(size_t mib, std::string* err) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    image_ = dir_.string() + ".img";
    std::string out;
    int rc = RunWithTimeout({"truncate", "-s", std::to_string(mib) + "M", image_}, 30000, &out);
    if (rc == 0) {
      rc = RunWithTimeout({"mkfs.ext4", "-q", "-F", "-m", "0", image_}, 60000, &out);
    }
    if (rc == 0) rc = RunWithTimeout({"mount", "-o", "loop", image_, dir_.string()}, 60000, &out);
    if (rc != 0) {
      *err = "loop-mounted ext4: " + out;
      return false;
    }
    mounted_ = true;
    return true;
  }

  void Unmount() {
    if (mounted_ && IsMountPoint(dir_)) {
      if (umount2(dir_.c_str(), 0) != 0) umount2(dir_.c_str(), MNT_DETACH);
    }
    mounted_ = false;
    if (!image_.empty()) {
      std::error_code ec;
      fs::remove(image_, ec);
      image_.clear();
    }
  }

  uint64_t FreeBytes() const {
    struct statvfs v;
    if (statvfs(dir_.c_str(), &v) != 0) return 0;
    return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  }

 private:
  fs::path dir_;
  std::string image_;
  bool mounted_ = false;
};

// SIGKILLs the daemon when an armed phase overruns: the FUSE connection is
// aborted and every call of the test blocked on the mount returns, so a
// hang fails the test instead of wedging it.
class Watchdog {
 public:
  Watchdog() : thread_([this] { Run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void Arm(pid_t pid, const std::string& phase, int seconds) {
    std::lock_guard<std::mutex> l(mu_);
    pid_ = pid;
    phase_ = phase;
    deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    cv_.notify_all();
  }
  void Disarm() {
    std::lock_guard<std::mutex> l(mu_);
    pid_ = -1;
  }
  // The phase that overran, or "".
  std::string fired() {
    std::lock_guard<std::mutex> l(mu_);
    return fired_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      if (pid_ <= 0) {
        cv_.wait(l);
        continue;
      }
      if (cv_.wait_until(l, deadline_) == std::cv_status::timeout && pid_ > 0 &&
          std::chrono::steady_clock::now() >= deadline_) {
        kill(pid_, SIGKILL);
        fired_ = phase_;
        pid_ = -1;
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  pid_t pid_ = -1;
  std::string phase_, fired_;
  std::chrono::steady_clock::time_point deadline_;
  std::thread thread_;
};

// What the application saw when writing one file.
struct WriteOutcome {
  int open_errno = 0;
  int write_errno = 0;  // first failed write (writing stops there)
  int fsync_errno = 0;
  int close_errno = 0;
  size_t written = 0;  // bytes acknowledged by write()
  bool ok() const { return !open_errno && !write_errno && !fsync_errno && !close_errno; }
  int first_errno() const {
    return open_errno    ? open_errno
           : write_errno ? write_errno
           : fsync_errno ? fsync_errno
                         : close_errno;
  }
  std::string Describe() const {
    return "open " + ErrnoName(open_errno) + ", write " + ErrnoName(write_errno) + " after " +
           std::to_string(written) + " bytes, fsync " + ErrnoName(fsync_errno) + ", close " +
           ErrnoName(close_errno);
  }
};

// Creates `path` with `data` in 1 MiB writes (stopping at the first failed
// one), then fsyncs (if asked) and closes it, recording every error.
WriteOutcome WriteFile(const fs::path& path, const std::string& data, bool do_fsync) {
  WriteOutcome o;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    o.open_errno = errno;
    return o;
  }
  while (o.written < data.size()) {
    size_t n = std::min(kMiB, data.size() - o.written);
    ssize_t w = pwrite(fd, data.data() + o.written, n, static_cast<off_t>(o.written));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      o.write_errno = w < 0 ? errno : EIO;
      break;
    }
    o.written += static_cast<size_t>(w);
  }
  if (do_fsync && fsync(fd) != 0) o.fsync_errno = errno;
  if (close(fd) != 0) o.close_errno = errno;
  return o;
}

// Reads `path` from the daemon: the kernel's cached pages of it are dropped
// first (they are clean, so FADV_DONTNEED discards them).
bool ReadFromDaemon(const fs::path& path, std::string* out, int* err) {
  out->clear();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return false;
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno;
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

class MountEnospc : public ::testing::Test {
 protected:
  void SetUp() override {
    QATQ_REQUIRE_MOUNT();
    m_ = std::make_unique<QatqfsMount>();
    ASSERT_FALSE(m_->dir().empty());
    scratch_ = std::make_unique<ScratchFs>(m_->store());
    seed_ = EnvOr("QATQ_ENOSPC_SEED", 1);
    scratch_mb_ = EnvOr("QATQ_ENOSPC_MB", 48);
  }

  void TearDown() override {
    watchdog_.Disarm();
    // Order matters: the daemon holds the scratch filesystem busy, and
    // QatqfsMount removes its directory only once nothing is mounted in it.
    if (m_) m_->ForceCleanup();
    scratch_.reset();
    m_.reset();
  }

  // Arms the watchdog on the running daemon for one phase.
  void Phase(const std::string& name, int seconds = 120) {
    std::printf("[enospc] %s (scratch free %.1f MiB)\n", name.c_str(),
                static_cast<double>(scratch_->FreeBytes()) / kMiB);
    std::fflush(stdout);
    phase_ = name;
    watchdog_.Arm(m_->daemon_pid(), name, seconds);
  }

  std::string Context() {
    std::string f = watchdog_.fired();
    return "phase " + phase_ + (f.empty() ? "" : " (watchdog killed the daemon in " + f + ")") +
           "\ndaemon log:\n" + m_->LogTail();
  }

  // Every committed file reads back exactly through the mount.
  void CheckCommitted(const std::string& when) {
    for (const auto& [name, digest] : committed_) {
      std::string data;
      int err = 0;
      bool ok = ReadFromDaemon(m_->mnt() / name, &data, &err);
      EXPECT_TRUE(ok) << when << ": read " << name << ": " << strerror(err) << "\n" << Context();
      if (!ok) continue;
      EXPECT_EQ(Digest(data), digest.second) << when << ": " << name << " differs (" << data.size()
                                             << " bytes, expected " << digest.first << ")";
      EXPECT_EQ(data.size(), digest.first) << when << ": " << name;
    }
    for (const auto& [name, digest] : xattrs_) {
      std::string v(kXattrBytes + 16, '\0');
      ssize_t n = getxattr((m_->mnt() / "xattrs").c_str(), name.c_str(), v.data(), v.size());
      EXPECT_EQ(n, static_cast<ssize_t>(kXattrBytes))
          << when << ": getxattr " << name << ": " << (n < 0 ? strerror(errno) : "wrong size");
      if (n == static_cast<ssize_t>(kXattrBytes)) {
        v.resize(static_cast<size_t>(n));
        EXPECT_EQ(Digest(v), digest) << when << ": xattr " << name << " differs";
      }
    }
  }

  // Writes one file of `bytes` random bytes; a file whose every call
  // returned 0 joins committed_ (it must read back exactly from then on).
  WriteOutcome WriteAndRecord(const std::string& name, size_t bytes, bool do_fsync) {
    std::string data = RandomData(bytes, &rng_);
    WriteOutcome o = WriteFile(m_->mnt() / name, data, do_fsync);
    std::printf("[enospc]   %-8s %2zu MiB %-8s -> %s\n", name.c_str(), bytes / kMiB,
                do_fsync ? "fsync" : "no-fsync", o.Describe().c_str());
    if (o.ok()) {
      committed_[name] = {data.size(), Digest(data)};
    } else {
      failed_.push_back(name);
    }
    return o;
  }

  void RunScenario();

  std::unique_ptr<QatqfsMount> m_;
  std::unique_ptr<ScratchFs> scratch_;
  Watchdog watchdog_;
  Rng rng_{1};
  uint64_t seed_ = 1;
  size_t scratch_mb_ = 48;
  std::string phase_;
  // name -> (size, digest) of files that must read back exactly.
  std::map<std::string, std::pair<size_t, uint64_t>> committed_;
  std::map<std::string, uint64_t> xattrs_;  // xattr name on "xattrs" -> digest
  std::vector<std::string> failed_;         // files with a failed call
};

void MountEnospc::RunScenario() {
  rng_ = Rng(seed_);
  std::string err;
  ASSERT_TRUE(m_->Mkfs({}, &err)) << err;
  // Small caches so the daemon's own memory does not matter here.
  ASSERT_TRUE(m_->Mount(&err, {"-o", "cache_mb=16"})) << err;
  const uint64_t free_at_start = scratch_->FreeBytes();

  // 1. Files written and fsync'ed while there is room: base* are kept to
  // the end, spare* are deleted to make room after the disk filled up.
  Phase("initial files");
  for (int i = 0; i < 6; ++i) {
    std::string name = (i < 4 ? "base" : "spare") + std::to_string(i);
    WriteOutcome o = WriteAndRecord(name, (i < 4 ? 2 : 4) * kMiB, true);
    ASSERT_TRUE(o.ok()) << "with " << scratch_->FreeBytes() << " bytes free: " << o.Describe()
                        << "\n"
                        << Context();
  }

  // 2. Data until ENOSPC: 4 MiB files, every other one fsync'ed, all closed.
  Phase("filling with data");
  int data_errno = 0;
  std::string data_where;
  const size_t limit = 4 * scratch_mb_ * kMiB;
  size_t total = 0;
  for (int i = 0; total < limit && data_errno == 0; ++i) {
    std::string name = "fill" + std::to_string(i);
    WriteOutcome o = WriteAndRecord(name, 4 * kMiB, i % 2 == 0);
    total += 4 * kMiB;
    if (!o.ok()) {
      data_errno = o.first_errno();
      data_where = name + ": " + o.Describe();
    }
  }
  ASSERT_NE(data_errno, 0) << "no error after writing " << total / kMiB
                           << " MiB of incompressible data to a " << scratch_mb_ << " MiB store\n"
                           << Context();
  EXPECT_EQ(data_errno, ENOSPC) << data_where << "\n" << Context();
  // Another attempt right away fails the same way or succeeds in full.
  WriteOutcome again = WriteAndRecord("again", 2 * kMiB, true);
  if (!again.ok()) {
    EXPECT_EQ(again.first_errno(), ENOSPC) << again.Describe() << "\n" << Context();
  }

  // 3. Metadata until ENOSPC: large xattrs fill the index's log and tables.
  Phase("filling with xattrs");
  {
    int fd = open((m_->mnt() / "xattrs").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int create_errno = fd < 0 ? errno : 0;
    if (fd >= 0) create_errno = close(fd) == 0 ? 0 : errno;
    if (create_errno != 0) {
      // The create itself hit the full disk: acceptable, but then ENOSPC.
      EXPECT_EQ(create_errno, ENOSPC) << Context();
    } else {
      committed_["xattrs"] = {0, Digest("")};
      int xerr = 0;
      for (int i = 0; i < static_cast<int>(2 * scratch_mb_ * kMiB / kXattrBytes) && xerr == 0;
           ++i) {
        std::string name = "user.pad" + std::to_string(i);
        std::string v = RandomData(kXattrBytes, &rng_);
        if (setxattr((m_->mnt() / "xattrs").c_str(), name.c_str(), v.data(), v.size(), 0) == 0) {
          xattrs_[name] = Digest(v);
        } else {
          xerr = errno;
        }
      }
      std::printf("[enospc]   %zu xattrs of %zu bytes set, then %s\n", xattrs_.size(), kXattrBytes,
                  ErrnoName(xerr).c_str());
      EXPECT_EQ(xerr, ENOSPC) << "setxattr after " << xattrs_.size() << " xattrs\n" << Context();
    }
  }

  // 4. Still full: the daemon serves stat, readdir and reads.
  Phase("serving while full");
  for (const auto& [name, digest] : committed_) {
    struct stat st;
    ASSERT_EQ(stat((m_->mnt() / name).c_str(), &st), 0) << name << ": " << strerror(errno) << "\n"
                                                        << Context();
    EXPECT_EQ(static_cast<size_t>(st.st_size), digest.first) << name;
  }
  {
    size_t entries = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator(m_->mnt(), ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      ++entries;
    }
    EXPECT_FALSE(ec) << "readdir: " << ec.message() << "\n" << Context();
    EXPECT_GE(entries, committed_.size());
  }
  CheckCommitted("while full");
  if (mkdir((m_->mnt() / "probe").c_str(), 0755) != 0) {
    EXPECT_EQ(errno, ENOSPC) << "mkdir while full\n" << Context();
  }

  // 5. Free space: delete the files whose writes failed, the spare files
  // and half of the committed fill files; new data and metadata must work
  // again.
  Phase("freeing space");
  for (const char* spare : {"spare4", "spare5"}) failed_.push_back(spare);
  for (const std::string& name : failed_) {
    EXPECT_EQ(unlink((m_->mnt() / name).c_str()), 0)
        << "unlink " << name << " while full: " << strerror(errno) << "\n"
        << Context();
    committed_.erase(name);
  }
  for (int i = 0;; i += 2) {
    std::string name = "fill" + std::to_string(i);
    auto it = committed_.find(name);
    if (it == committed_.end()) break;
    EXPECT_EQ(unlink((m_->mnt() / name).c_str()), 0)
        << "unlink " << name << ": " << strerror(errno) << "\n"
        << Context();
    committed_.erase(it);
  }
  ASSERT_FALSE(HasFailure()) << Context();
  const uint64_t free_after_delete = scratch_->FreeBytes();
  std::printf("[enospc]   scratch free after deleting: %.1f MiB (at start %.1f MiB)\n",
              static_cast<double>(free_after_delete) / kMiB,
              static_cast<double>(free_at_start) / kMiB);

  Phase("writing after freeing space");
  WriteOutcome after = WriteAndRecord("after", 2 * kMiB, true);
  EXPECT_TRUE(after.ok()) << "with " << scratch_->FreeBytes() << " bytes free: " << after.Describe()
                          << "\n"
                          << Context();
  {
    std::string v = RandomData(1000, &rng_);
    EXPECT_EQ(setxattr((m_->mnt() / "after").c_str(), "user.after", v.data(), v.size(), 0), 0)
        << "setxattr after freeing space: " << strerror(errno) << "\n"
        << Context();
    EXPECT_EQ(mkdir((m_->mnt() / "dir-after").c_str(), 0755), 0)
        << "mkdir after freeing space: " << strerror(errno) << "\n"
        << Context();
  }
  CheckCommitted("after freeing space");
  ASSERT_FALSE(HasFailure()) << Context();

  // 6. Clean unmount, store check, remount, everything committed is there.
  Phase("unmount");
  watchdog_.Disarm();
  ASSERT_TRUE(m_->Unmount(&err)) << err;
  // The daemon exits 0 even when its last commit fails; the log tells.
  EXPECT_EQ(m_->LogTail(1 << 20).find("shutdown:"), std::string::npos)
      << "the unmount's commit or index flush failed:\n"
      << m_->LogTail();
  // Given up when the index could not reopen on the full device (see
  // index/rocksdb_metadata_store.cc); taken again once there is room.
  std::printf("[enospc] index reserve file after the run: %s\n",
              fs::exists(m_->store() / "index" / "qatq-reserve") ? "present" : "absent");
  uint64_t orphans = 0;
  std::string summary;
  std::string damage = StoreDamage(m_->store(), false, &orphans, &summary);
  EXPECT_EQ(damage, "") << "store check after the full-disk run:\n" << summary;
  std::printf("[enospc] store check: %s, %llu orphan objects\n",
              damage.empty() ? "no damage" : "DAMAGE", static_cast<unsigned long long>(orphans));

  ASSERT_TRUE(m_->Mount(&err, {"-o", "cache_mb=16"})) << err;
  Phase("verify after remount");
  CheckCommitted("after remount");
  watchdog_.Disarm();
  ASSERT_TRUE(m_->Unmount(&err)) << err;
  EXPECT_EQ(m_->LogTail(1 << 20).find("shutdown:"), std::string::npos) << m_->LogTail();

  std::string out;
  int rc =
      RunWithTimeout({ToolPath("qatqfs").string(), "fsck", m_->store().string()}, 120000, &out);
  std::printf("[enospc] qatqfs fsck: exit %d\n%s\n", rc, out.c_str());
  damage = StoreDamage(m_->store(), false, &orphans, &summary);
  EXPECT_EQ(damage, "") << "store check after the remount:\n" << summary;
  // 0 = clean, 4 = problems found; the in-process check says they are only
  // orphan objects.
  EXPECT_TRUE(rc == 0 || (rc == 4 && damage.empty())) << out;
}

TEST_F(MountEnospc, FullTmpfsReportsEnospcAndKeepsCommittedData) {
  std::string err;
  if (!scratch_->MountTmpfs(scratch_mb_, &err)) GTEST_SKIP() << "cannot mount a tmpfs: " << err;
  RunScenario();
}

TEST_F(MountEnospc, FullExt4ReportsEnospcAndKeepsCommittedData) {
  if (RunCommand("command -v mkfs.ext4 >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "mkfs.ext4 not found";
  }
  std::string err;
  // ext4's journal and metadata take about 14 MiB of a 48 MiB image.
  scratch_mb_ += 16;
  if (!scratch_->MountExt4(scratch_mb_, &err)) GTEST_SKIP() << "cannot mount ext4: " << err;
  // mkfs wants an empty directory; ext4 has lost+found.
  std::error_code ec;
  fs::remove_all(m_->store() / "lost+found", ec);
  RunScenario();
}

// The reserves behind the mount tests above, without a mount (these also run
// under the sanitizers).

TEST(ChunkStoreReserve, PutInsideTheReserveFailsWithEnospcAndLeavesNothing) {
  TempDir dir;
  struct statvfs v;
  ASSERT_EQ(statvfs(dir.path().c_str(), &v), 0);
  FileChunkStoreOptions o;
  // More than the device has free: every Put would eat into it.
  o.reserve_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize + (uint64_t{1} << 30);
  std::unique_ptr<ChunkStore> store;
  ASSERT_OK(OpenFileChunkStore((dir.path() / "chunks").string(), o, &store));
  const std::string record = "not a real record, the store does not look";
  const ChunkId id = ChunkId::OfRaw(record);
  Status s = store->Put(id, record);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.posix_errno(), ENOSPC) << s.ToString();
  bool exists = true;
  ASSERT_OK(store->Exists(id, &exists));
  EXPECT_FALSE(exists);
  EXPECT_TRUE(fs::is_empty(dir.path() / "chunks" / "tmp"));
  uint64_t total = 0, free = 1;
  ASSERT_OK(store->Capacity(&total, &free));
  EXPECT_GT(total, 0u);
  EXPECT_EQ(free, 0u) << "the reserve is not free space";

  o.reserve_bytes = 0;
  ASSERT_OK(OpenFileChunkStore((dir.path() / "chunks").string(), o, &store));
  EXPECT_OK(store->Put(id, record));
}

TEST(MetadataStoreReserve, WritableOpenKeepsAReserveFileReadOnlyDoesNot) {
  TempDir dir;
  const fs::path index = dir.path() / "index";
  std::unique_ptr<MetadataStore> meta;
  MetadataStoreOptions o;
  o.create_if_missing = true;
  ASSERT_OK(OpenRocksDbMetadataStore(index.string(), o, &meta));
  meta.reset();
  const fs::path reserve = index / "qatq-reserve";
  ASSERT_TRUE(fs::exists(reserve)) << "no reserve file beside the index";
  EXPECT_GT(fs::file_size(reserve), 0u);
  EXPECT_LE(fs::file_size(reserve), uint64_t{4} << 20);
  // Taken again by the next writable open, never by a read-only one.
  fs::remove(reserve);
  o.create_if_missing = false;
  o.read_only = true;
  ASSERT_OK(OpenRocksDbMetadataStore(index.string(), o, &meta));
  meta.reset();
  EXPECT_FALSE(fs::exists(reserve));
  o.read_only = false;
  ASSERT_OK(OpenRocksDbMetadataStore(index.string(), o, &meta));
  EXPECT_TRUE(fs::exists(reserve));
}

}  // namespace
}  // namespace qatq::test
