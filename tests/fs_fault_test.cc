// The filesystem core over a chunk store that fails on purpose: errors reach
// the caller as the right errno, nothing half-written is committed, and a
// retry after the fault clears commits everything.
#include <cerrno>
#include <memory>
#include <string>

#include "fs/errno_map.h"
#include "fs/filesystem.h"
#include "index/fault_injection_chunk_store.h"
#include "index/store.h"
#include "tests/fs_core_fixture.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

// A real store whose chunk store is wrapped by a FaultInjectionChunkStore.
class FaultyStore final : public Store {
 public:
  explicit FaultyStore(std::unique_ptr<Store> real)
      : real_(std::move(real)), faults_(real_->chunks()) {}
  MetadataStore* meta() override { return real_->meta(); }
  ChunkStore* chunks() override { return &faults_; }
  const Superblock& superblock() const override { return real_->superblock(); }
  const std::string& path() const override { return real_->path(); }
  bool read_only() const override { return real_->read_only(); }
  FaultInjectionChunkStore* faults() { return &faults_; }

 private:
  std::unique_ptr<Store> real_;
  FaultInjectionChunkStore faults_;
};

class FsFaultTest : public FsCoreTest {
 protected:
  void TearDown() override {
    if (faults_) faults_->Clear();
    FsCoreTest::TearDown();
  }
  std::unique_ptr<Store> WrapStore(std::unique_ptr<Store> store) override {
    auto faulty = std::make_unique<FaultyStore>(std::move(store));
    faults_ = faulty->faults();
    return faulty;
  }

  FaultInjectionChunkStore* faults_ = nullptr;
};

TEST_F(FsFaultTest, FullDeviceFailsTheCloseWithEnospcThenRetrySucceeds) {
  InodeAttr a;
  uint64_t fh;
  ASSERT_OK(fs_->Create(CallerContext{}, kRootInode, "f", 0644, OpenFlags{true}, &a, &fh));
  std::string data = test::RandomBytes(3 * kChunk + 10, 1);
  faults_->FailAlways(ChunkStoreOp::kPut, ENOSPC);
  // Writes are buffered; the failure surfaces at the commit.
  ASSERT_OK(fs_->Write(a.ino, fh, 0, data));
  EXPECT_EQ(ToErrno(fs_->Flush(a.ino)), ENOSPC);
  EXPECT_EQ(ReadAll(a.ino), data);  // still buffered, still readable
  faults_->Clear();
  ASSERT_OK(fs_->Flush(a.ino));
  ASSERT_OK(fs_->Release(a.ino, fh));
  Remount();
  EXPECT_EQ(ReadAll(a.ino), data);
}

TEST_F(FsFaultTest, FailedSyncCommitsNothing) {
  InodeAttr a;
  uint64_t fh;
  ASSERT_OK(fs_->Create(CallerContext{}, kRootInode, "g", 0644, OpenFlags{true}, &a, &fh));
  ASSERT_OK(fs_->Write(a.ino, fh, 0, test::RandomBytes(2 * kChunk, 2)));
  faults_->FailAlways(ChunkStoreOp::kSync, EIO);
  EXPECT_EQ(ToErrno(fs_->Fsync(a.ino)), EIO);
  // The daemon dies: the index never named the unsynced objects.
  faults_->Clear();
  Crash();
  InodeAttr now;
  ASSERT_OK(fs_->GetAttr(a.ino, &now));
  EXPECT_EQ(now.size, 0u);
  EXPECT_EQ(ReadAll(a.ino), "");
}

TEST_F(FsFaultTest, ObjectsOfAFailedCommitAreFreedWithTheFile) {
  InodeAttr a;
  uint64_t fh;
  ASSERT_OK(fs_->Create(CallerContext{}, kRootInode, "big", 0644, OpenFlags{true}, &a, &fh));
  // The third object does not fit: the three others are stored for a
  // commit that fails.
  faults_->FailNth(ChunkStoreOp::kPut, 3, ENOSPC);
  ASSERT_OK(fs_->Write(a.ino, fh, 0, test::RandomBytes(4 * kChunk, 4)));
  EXPECT_EQ(ToErrno(fs_->Flush(a.ino)), ENOSPC);
  EXPECT_EQ(ObjectCount(), 3u);
  // The device stays full and the application gives up on the file: its
  // space comes back at once, not at the next fsck --repair.
  faults_->FailAlways(ChunkStoreOp::kPut, ENOSPC);
  ASSERT_OK(fs_->Unlink(kRootInode, "big"));
  EXPECT_EQ(ToErrno(fs_->Release(a.ino, fh)), ENOSPC);
  fs_->Forget(a.ino, 1);  // the kernel's reference from the create
  EXPECT_EQ(ObjectCount(), 0u);
  faults_->Clear();
}

TEST_F(FsFaultTest, UnreadableObjectGivesEio) {
  InodeAttr a;
  uint64_t fh;
  ASSERT_OK(fs_->Create(CallerContext{}, kRootInode, "h", 0644, OpenFlags{true}, &a, &fh));
  ASSERT_OK(fs_->Write(a.ino, fh, 0, test::RandomBytes(kChunk, 3)));
  ASSERT_OK(fs_->Release(a.ino, fh));
  Remount();  // empty decoded-chunk cache
  faults_->FailAlways(ChunkStoreOp::kGet, EIO);
  std::string out;
  EXPECT_EQ(ToErrno(fs_->Read(a.ino, 0, 0, 100, &out)), EIO);
  faults_->Clear();
  ASSERT_OK(fs_->Read(a.ino, 0, 0, 100, &out));
  EXPECT_EQ(out.size(), 100u);
}

}  // namespace
}  // namespace qatq
