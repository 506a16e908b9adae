#include "index/chunk_store.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "index/fault_injection_chunk_store.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const fs::path& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Runs the contract tests on both implementations.
class ChunkStoreContract : public ::testing::TestWithParam<bool /*file*/> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      ASSERT_OK(OpenFileChunkStore(dir_.path() / "chunks", &store_));
    } else {
      store_ = NewMemChunkStore();
    }
  }

  test::TempDir dir_;
  std::unique_ptr<ChunkStore> store_;
};

TEST_P(ChunkStoreContract, PutGetExistsDelete) {
  std::string raw = test::RandomBytes(5000, 1);
  ChunkId id = ChunkId::OfRaw(raw);
  std::string rec = "record:" + raw;
  bool exists = true;
  ASSERT_OK(store_->Exists(id, &exists));
  EXPECT_FALSE(exists);
  std::string got;
  EXPECT_TRUE(store_->Get(id, &got).IsNotFound());

  ASSERT_OK(store_->Put(id, rec));
  ASSERT_OK(store_->Sync());
  ASSERT_OK(store_->Exists(id, &exists));
  EXPECT_TRUE(exists);
  ASSERT_OK(store_->Get(id, &got));
  EXPECT_EQ(got, rec);

  ASSERT_OK(store_->Delete(id));
  ASSERT_OK(store_->Exists(id, &exists));
  EXPECT_FALSE(exists);
  EXPECT_OK(store_->Delete(id));  // deleting a missing object is fine
  EXPECT_OK(store_->Sync());
}

TEST_P(ChunkStoreContract, PutOfAnExistingIdKeepsTheObject) {
  ChunkId id = ChunkId::OfRaw("x");
  ASSERT_OK(store_->Put(id, "first!"));
  ASSERT_OK(store_->Put(id, "second"));  // same size: nothing written
  std::string got;
  ASSERT_OK(store_->Get(id, &got));
  EXPECT_EQ(got, "first!");
}

TEST_P(ChunkStoreContract, ForEachVisitsEveryObjectOnce) {
  std::map<ChunkId, uint64_t> want;
  for (int i = 0; i < 300; ++i) {
    std::string raw = "chunk " + std::to_string(i);
    ChunkId id = ChunkId::OfRaw(raw);
    ASSERT_OK(store_->Put(id, std::string(i + 1, 'r')));
    want[id] = i + 1;
  }
  ASSERT_OK(store_->Sync());
  std::map<ChunkId, uint64_t> seen;
  ASSERT_OK(store_->ForEach([&](const ChunkId& id, uint64_t size) {
    EXPECT_TRUE(seen.emplace(id, size).second);
    return Status::OK();
  }));
  EXPECT_EQ(seen, want);

  int calls = 0;
  Status s = store_->ForEach([&](const ChunkId&, uint64_t) {
    ++calls;
    return Status::Corruption("stop");
  });
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(calls, 1);
}

TEST_P(ChunkStoreContract, CapacityIsReported) {
  uint64_t total = 0, free = 0;
  ASSERT_OK(store_->Capacity(&total, &free));
  EXPECT_GT(total, 0u);
  EXPECT_LE(free, total);
}

TEST_P(ChunkStoreContract, ConcurrentPutsOfOverlappingIdsAllSucceed) {
  constexpr int kThreads = 4;
  constexpr int kIds = 64;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIds; ++i) {
        int k = (i + t * 7) % kIds;  // every thread writes every id
        std::string raw = "shared " + std::to_string(k);
        if (!store_->Put(ChunkId::OfRaw(raw), "rec:" + raw).ok()) ++failures;
        if (i % 16 == 0 && !store_->Sync().ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK(store_->Sync());
  int n = 0;
  ASSERT_OK(store_->ForEach([&](const ChunkId& id, uint64_t) {
    std::string rec;
    EXPECT_OK(store_->Get(id, &rec));
    EXPECT_EQ(ChunkId::OfRaw(rec.substr(4)), id);
    ++n;
    return Status::OK();
  }));
  EXPECT_EQ(n, kIds);
}

INSTANTIATE_TEST_SUITE_P(Both, ChunkStoreContract, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "File" : "Mem"; });

// ---- File store specifics ---------------------------------------------------

TEST(FileChunkStore, ObjectsLiveInHexFanOutWithPrivateModes) {
  test::TempDir dir;
  mode_t old = ::umask(0277);  // the modes must not depend on the umask
  std::unique_ptr<ChunkStore> store;
  Status open = OpenFileChunkStore(dir.path() / "chunks", &store);
  ChunkId id = ChunkId::OfRaw("abc");
  Status put = store ? store->Put(id, "rec") : Status::OK();
  ::umask(old);
  ASSERT_OK(open);
  ASSERT_OK(put);
  ASSERT_OK(store->Sync());
  std::string hex = id.ToHex();
  fs::path obj = dir.path() / "chunks" / hex.substr(0, 2) / hex;
  EXPECT_EQ(test::ReadFileOrDie(obj), "rec");
  EXPECT_EQ(ModeOf(obj), 0600u);
  EXPECT_EQ(ModeOf(obj.parent_path()), 0700u);
  EXPECT_EQ(ModeOf(dir.path() / "chunks"), 0700u);
  EXPECT_EQ(ModeOf(dir.path() / "chunks" / "tmp"), 0700u);
  EXPECT_TRUE(fs::is_empty(dir.path() / "chunks" / "tmp"));
}

TEST(FileChunkStore, OpenRemovesStaleTmpFiles) {
  test::TempDir dir;
  std::unique_ptr<ChunkStore> store;
  ASSERT_OK(OpenFileChunkStore(dir.path() / "chunks", &store));
  ChunkId id = ChunkId::OfRaw("kept");
  ASSERT_OK(store->Put(id, "kept"));
  ASSERT_OK(store->Sync());
  store.reset();
  // What a crash between write and rename leaves behind.
  test::WriteFileOrDie(dir.path() / "chunks" / "tmp" / (id.ToHex() + ".123.0"), "half");
  test::WriteFileOrDie(dir.path() / "chunks" / "tmp" / "junk", "x");
  ASSERT_OK(OpenFileChunkStore(dir.path() / "chunks", &store));
  EXPECT_TRUE(fs::is_empty(dir.path() / "chunks" / "tmp"));
  std::string got;
  ASSERT_OK(store->Get(id, &got));
  EXPECT_EQ(got, "kept");
}

TEST(FileChunkStore, ForEachSkipsForeignNames) {
  test::TempDir dir;
  std::unique_ptr<ChunkStore> store;
  ASSERT_OK(OpenFileChunkStore(dir.path() / "chunks", &store));
  ChunkId id = ChunkId::OfRaw("a");
  ASSERT_OK(store->Put(id, "a"));
  std::string hex = id.ToHex();
  fs::path sub = dir.path() / "chunks" / hex.substr(0, 2);
  test::WriteFileOrDie(sub / "README", "x");
  test::WriteFileOrDie(sub / (hex.substr(0, 31) + "Z"), "x");
  // A valid name in the wrong fan-out directory is not an object either.
  std::string other = ChunkId::OfRaw("b").ToHex();
  if (other.substr(0, 2) != hex.substr(0, 2)) test::WriteFileOrDie(sub / other, "x");
  int n = 0;
  ASSERT_OK(store->ForEach([&](const ChunkId& got, uint64_t) {
    EXPECT_EQ(got, id);
    ++n;
    return Status::OK();
  }));
  EXPECT_EQ(n, 1);
}

TEST(FileChunkStore, DamagedObjectOfAnotherSizeIsReplacedByPut) {
  test::TempDir dir;
  std::unique_ptr<ChunkStore> store;
  ASSERT_OK(OpenFileChunkStore(dir.path() / "chunks", &store));
  ChunkId id = ChunkId::OfRaw("z");
  ASSERT_OK(store->Put(id, "full record"));
  std::string hex = id.ToHex();
  fs::resize_file(dir.path() / "chunks" / hex.substr(0, 2) / hex, 4);  // truncated by a bad disk
  ASSERT_OK(store->Put(id, "full record"));
  std::string got;
  ASSERT_OK(store->Get(id, &got));
  EXPECT_EQ(got, "full record");
}

TEST(FileChunkStore, ReadOnlyStoreRefusesWrites) {
  test::TempDir dir;
  std::unique_ptr<ChunkStore> store;
  ASSERT_OK(OpenFileChunkStore(dir.path() / "chunks", &store));
  ChunkId id = ChunkId::OfRaw("r");
  ASSERT_OK(store->Put(id, "r"));
  test::WriteFileOrDie(dir.path() / "chunks" / "tmp" / "stale", "x");
  FileChunkStoreOptions o;
  o.read_only = true;
  ASSERT_OK(OpenFileChunkStore(dir.path() / "chunks", o, &store));
  EXPECT_TRUE(fs::exists(dir.path() / "chunks" / "tmp" / "stale"));  // untouched
  std::string got;
  ASSERT_OK(store->Get(id, &got));
  Status s = store->Put(ChunkId::OfRaw("new"), "n");
  EXPECT_EQ(s.posix_errno(), EROFS) << s.ToString();
  s = store->Delete(id);
  EXPECT_EQ(s.posix_errno(), EROFS) << s.ToString();
  EXPECT_TRUE(OpenFileChunkStore(dir.path() / "missing", o, &store).IsNotFound());
}

TEST(FileChunkStore, NoSpaceSurfacesAsEnospcAndLeavesNoTmpFile) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tiny tmpfs; skipped";
  test::TempDir dir;
  fs::path mnt = dir.path() / "mnt";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount tmpfs (" << std::strerror(errno) << "); skipped";
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};

  std::unique_ptr<ChunkStore> store;
  ASSERT_OK(OpenFileChunkStore(mnt / "chunks", &store));
  std::string big = test::RandomBytes(2 << 20, 5);
  Status s = store->Put(ChunkId::OfRaw(big), big);
  ASSERT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.posix_errno(), ENOSPC) << s.ToString();
  EXPECT_TRUE(fs::is_empty(mnt / "chunks" / "tmp"));
  bool exists = true;
  ASSERT_OK(store->Exists(ChunkId::OfRaw(big), &exists));
  EXPECT_FALSE(exists);
  // Small objects still fit afterwards.
  EXPECT_OK(store->Put(ChunkId::OfRaw("small"), "small"));
  uint64_t total, free;
  ASSERT_OK(store->Capacity(&total, &free));
  EXPECT_EQ(total, 1u << 20);
}

// ---- Fault injection wrapper -------------------------------------------------

TEST(FaultInjectionChunkStore, FailsTheNthCallOnly) {
  FaultInjectionChunkStore store(NewMemChunkStore());
  store.FailNth(ChunkStoreOp::kPut, 3, ENOSPC);
  EXPECT_OK(store.Put(ChunkId::OfRaw("1"), "1"));
  EXPECT_OK(store.Put(ChunkId::OfRaw("2"), "2"));
  Status s = store.Put(ChunkId::OfRaw("3"), "3");
  EXPECT_TRUE(s.IsIOError());
  EXPECT_EQ(s.posix_errno(), ENOSPC);
  EXPECT_OK(store.Put(ChunkId::OfRaw("4"), "4"));
  bool exists = true;
  ASSERT_OK(store.Exists(ChunkId::OfRaw("3"), &exists));
  EXPECT_FALSE(exists);  // the failed Put never reached the store
  EXPECT_EQ(store.calls(ChunkStoreOp::kPut), 4u);
  EXPECT_EQ(store.injected(ChunkStoreOp::kPut), 1u);

  store.FailAlways(ChunkStoreOp::kGet, EIO);
  std::string rec;
  EXPECT_EQ(store.Get(ChunkId::OfRaw("1"), &rec).posix_errno(), EIO);
  EXPECT_EQ(store.Get(ChunkId::OfRaw("1"), &rec).posix_errno(), EIO);
  store.Clear();
  EXPECT_OK(store.Get(ChunkId::OfRaw("1"), &rec));

  store.FailNth(ChunkStoreOp::kSync, 1, EIO);
  EXPECT_EQ(store.Sync().posix_errno(), EIO);
  EXPECT_OK(store.Sync());
}

TEST(FaultInjectionChunkStore, DropUnsyncedLosesOnlyUnsyncedObjects) {
  auto base = NewMemChunkStore();
  FaultInjectionChunkStore store(base.get());
  ASSERT_OK(store.Put(ChunkId::OfRaw("durable"), "d"));
  ASSERT_OK(store.Sync());
  ASSERT_OK(store.Put(ChunkId::OfRaw("volatile"), "v"));
  ASSERT_OK(store.Put(ChunkId::OfRaw("durable"), "d"));  // exists: stays durable
  store.FailNth(ChunkStoreOp::kSync, 1, EIO);
  EXPECT_FALSE(store.Sync().ok());  // a failed Sync makes nothing durable
  ASSERT_OK(store.DropUnsynced());
  bool exists;
  ASSERT_OK(base->Exists(ChunkId::OfRaw("durable"), &exists));
  EXPECT_TRUE(exists);
  ASSERT_OK(base->Exists(ChunkId::OfRaw("volatile"), &exists));
  EXPECT_FALSE(exists);
}

}  // namespace
}  // namespace qatq
