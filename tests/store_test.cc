#include "index/store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "index/fault_injection_chunk_store.h"
#include "index/keys.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const fs::path& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

class StoreTest : public ::testing::Test {
 protected:
  std::string path() const { return (dir_.path() / "store").string(); }
  test::TempDir dir_;
};

TEST_F(StoreTest, MkfsCreatesAnOpenableEmptyFilesystem) {
  MkfsOptions mk;
  mk.root_uid = 1000;
  mk.root_gid = 100;
  mk.root_mode = 0750;
  ASSERT_OK(CreateStore(path(), mk));

  std::unique_ptr<Store> store;
  ASSERT_OK(OpenStore(path(), StoreOptions(), &store));
  EXPECT_EQ(store->path(), path());
  EXPECT_FALSE(store->read_only());
  const Superblock& sb = store->superblock();
  EXPECT_EQ(sb.format_version, kStoreFormatVersion);
  EXPECT_EQ(sb.default_chunk_bytes, kDefaultChunkBytes);
  EXPECT_EQ(sb.uuid.size(), 36u);
  EXPECT_GT(sb.created_ns, 0u);

  InodeAttr root;
  ASSERT_OK(store->meta()->GetInode(kRootInode, &root));
  EXPECT_EQ(root.mode, static_cast<uint32_t>(S_IFDIR | 0750));
  EXPECT_EQ(root.uid, 1000u);
  EXPECT_EQ(root.gid, 100u);
  EXPECT_EQ(root.nlink, 2u);
  InodeId last;
  ASSERT_OK(store->meta()->GetLastInode(&last));
  EXPECT_EQ(last, kRootInode);
  bool has;
  ASSERT_OK(store->meta()->DirHasEntries(kRootInode, &has));
  EXPECT_FALSE(has);

  // The chunk store works.
  ChunkId id = ChunkId::OfRaw("x");
  ASSERT_OK(store->chunks()->Put(id, "rec"));
  ASSERT_OK(store->chunks()->Sync());
}

TEST_F(StoreTest, StoreDirectoriesArePrivateWhateverTheUmask) {
  mode_t old = ::umask(0);
  Status s = CreateStore(path(), MkfsOptions());
  ::umask(old);
  ASSERT_OK(s);
  EXPECT_EQ(ModeOf(path()), 0700u);
  EXPECT_EQ(ModeOf(path() + "/index"), 0700u);
  EXPECT_EQ(ModeOf(path() + "/chunks"), 0700u);
  EXPECT_EQ(ModeOf(path() + "/LOCK"), 0600u);
}

TEST_F(StoreTest, MkfsKeepsTheChosenChunkSizeAndRejectsBadOnes) {
  MkfsOptions mk;
  mk.chunk_bytes = 3 << 20;
  ASSERT_OK(CreateStore(path(), mk));
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenStore(path(), StoreOptions(), &store));
  EXPECT_EQ(store->superblock().default_chunk_bytes, 3u << 20);

  for (uint32_t bad : {1000u, (64u << 10) + 2, 32u << 20, 4u}) {
    mk.chunk_bytes = bad;
    Status s = CreateStore((dir_.path() / ("bad" + std::to_string(bad))).string(), mk);
    EXPECT_TRUE(s.IsInvalidArgument()) << bad << " " << s.ToString();
  }
}

TEST_F(StoreTest, MkfsRefusesANonEmptyDirectory) {
  fs::create_directory(path());
  test::WriteFileOrDie(fs::path(path()) / "precious", "data");
  Status s = CreateStore(path(), MkfsOptions());
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(test::ReadFileOrDie(fs::path(path()) / "precious"), "data");
  // Nor will it run twice on the same store.
  ASSERT_OK(CreateStore((dir_.path() / "s2").string(), MkfsOptions()));
  EXPECT_TRUE(CreateStore((dir_.path() / "s2").string(), MkfsOptions()).IsInvalidArgument());
}

TEST_F(StoreTest, MkfsAcceptsAnEmptyDirectory) {
  fs::create_directory(path());
  ASSERT_OK(CreateStore(path(), MkfsOptions()));
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenStore(path() + "/", StoreOptions(), &store));
}

TEST_F(StoreTest, SecondWriterIsRefusedAsBusy) {
  ASSERT_OK(CreateStore(path(), MkfsOptions()));
  std::unique_ptr<Store> first;
  ASSERT_OK(OpenStore(path(), StoreOptions(), &first));
  std::unique_ptr<Store> second;
  Status s = OpenStore(path(), StoreOptions(), &second);
  ASSERT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_NE(s.message().find("in use by another qatqfs process"), std::string::npos);
  EXPECT_NE(s.message().find("unmount it first"), std::string::npos);
  EXPECT_NE(s.message().find(path()), std::string::npos);

  // A reader may look at a store in use.
  StoreOptions ro;
  ro.read_only = true;
  ASSERT_OK(OpenStore(path(), ro, &second));
  EXPECT_TRUE(second->read_only());
  InodeAttr root;
  EXPECT_OK(second->meta()->GetInode(kRootInode, &root));
  second.reset();

  // Closing the first releases the lock.
  first.reset();
  EXPECT_OK(OpenStore(path(), StoreOptions(), &second));
}

TEST_F(StoreTest, LockIsHeldAgainstOtherProcesses) {
  ASSERT_OK(CreateStore(path(), MkfsOptions()));
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenStore(path(), StoreOptions(), &store));
  // flock(1) from util-linux is the independent observer, if installed.
  std::string out;
  int rc = test::RunCommand(
      "command -v flock >/dev/null || exit 77; flock -n " + path() + "/LOCK true; echo $?", &out);
  if (rc == 77) GTEST_SKIP() << "flock(1) not installed";
  EXPECT_EQ(out, "1\n");
  store.reset();
  rc = test::RunCommand("flock -n " + path() + "/LOCK true; echo $?", &out);
  EXPECT_EQ(out, "0\n");
}

TEST_F(StoreTest, ReopenKeepsCommittedChanges) {
  ASSERT_OK(CreateStore(path(), MkfsOptions()));
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenStore(path(), StoreOptions(), &store));
  std::string uuid = store->superblock().uuid;
  auto b = store->meta()->NewBatch();
  InodeAttr f;
  f.ino = 2;
  f.mode = S_IFREG | 0644;
  f.nlink = 1;
  f.chunk_bytes = kDefaultChunkBytes;
  b->PutInode(f);
  b->PutDirEntry(kRootInode, DirEntry{"f", 2, S_IFREG});
  b->PutLastInode(2);
  ASSERT_OK(store->meta()->Commit(b.get(), true));
  store.reset();
  ASSERT_OK(OpenStore(path(), StoreOptions(), &store));
  EXPECT_EQ(store->superblock().uuid, uuid);
  DirEntry e;
  ASSERT_OK(store->meta()->Lookup(kRootInode, "f", &e));
  EXPECT_EQ(e.ino, 2u);
}

TEST_F(StoreTest, MissingPathIsNotFound) {
  std::unique_ptr<Store> store;
  Status s = OpenStore(path(), StoreOptions(), &store);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
}

TEST_F(StoreTest, DirectoryThatIsNotAStoreIsRefusedClearly) {
  fs::create_directory(path());
  std::unique_ptr<Store> store;
  Status s = OpenStore(path(), StoreOptions(), &store);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("not a qatqfs store"), std::string::npos) << s.ToString();

  // An index without a superblock (mkfs died before its commit).
  fs::create_directory(fs::path(path()) / "index");
  {
    std::unique_ptr<MetadataStore> meta;
    MetadataStoreOptions o;
    o.create_if_missing = true;
    ASSERT_OK(OpenRocksDbMetadataStore(path() + "/index", o, &meta));
  }
  s = OpenStore(path(), StoreOptions(), &store);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("no superblock"), std::string::npos) << s.ToString();

  // A regular file.
  test::WriteFileOrDie(dir_.path() / "file", "x");
  s = OpenStore((dir_.path() / "file").string(), StoreOptions(), &store);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
}

TEST_F(StoreTest, OtherFormatVersionIsNotSupported) {
  ASSERT_OK(CreateStore(path(), MkfsOptions()));
  {
    std::unique_ptr<MetadataStore> meta;
    ASSERT_OK(OpenRocksDbMetadataStore(path() + "/index", MetadataStoreOptions(), &meta));
    Superblock sb;
    ASSERT_OK(meta->GetSuperblock(&sb));
    sb.format_version = 7;
    auto b = meta->NewBatch();
    b->PutSuperblock(sb);
    ASSERT_OK(meta->Commit(b.get(), true));
  }
  std::unique_ptr<Store> store;
  Status s = OpenStore(path(), StoreOptions(), &store);
  ASSERT_TRUE(s.IsNotSupported()) << s.ToString();
  EXPECT_NE(s.message().find("format version 7"), std::string::npos) << s.ToString();
  // The refusal released the lock.
  std::string out;
  test::RunCommand("flock -n " + path() + "/LOCK true; echo $?", &out);
  EXPECT_EQ(out, "0\n");
}

TEST_F(StoreTest, ReadOnlyStoreRefusesWrites) {
  ASSERT_OK(CreateStore(path(), MkfsOptions()));
  StoreOptions ro;
  ro.read_only = true;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenStore(path(), ro, &store));
  auto b = store->meta()->NewBatch();
  b->PutOrphan(9);
  EXPECT_FALSE(store->meta()->Commit(b.get(), true).ok());
  EXPECT_FALSE(store->chunks()->Put(ChunkId::OfRaw("a"), "a").ok());
}

TEST_F(StoreTest, ChunkStoreCanBeWrappedForFaultInjection) {
  ASSERT_OK(CreateStore(path(), MkfsOptions()));
  FaultInjectionChunkStore* faults = nullptr;
  StoreOptions so;
  so.wrap_chunks = [&](std::unique_ptr<ChunkStore> base) {
    auto w = std::make_unique<FaultInjectionChunkStore>(std::move(base));
    faults = w.get();
    return std::unique_ptr<ChunkStore>(std::move(w));
  };
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenStore(path(), so, &store));
  ASSERT_NE(faults, nullptr);
  EXPECT_EQ(store->chunks(), faults);
  faults->FailNth(ChunkStoreOp::kPut, 1, ENOSPC);
  EXPECT_EQ(store->chunks()->Put(ChunkId::OfRaw("a"), "a").posix_errno(), ENOSPC);
  EXPECT_OK(store->chunks()->Put(ChunkId::OfRaw("a"), "a"));
}

TEST_F(StoreTest, CopiedStoreOpensAtTheNewPlace) {
  ASSERT_OK(CreateStore(path(), MkfsOptions()));
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenStore(path(), StoreOptions(), &store));
    ASSERT_OK(store->chunks()->Put(ChunkId::OfRaw("c"), "rec"));
    ASSERT_OK(store->chunks()->Sync());
    auto b = store->meta()->NewBatch();
    b->SetChunkRefcount(ChunkId::OfRaw("c"), 1);
    ASSERT_OK(store->meta()->Commit(b.get(), true));
  }
  std::string copy = (dir_.path() / "copy").string();
  ASSERT_EQ(test::RunCommand("cp -a " + path() + " " + copy), 0);
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenStore(copy, StoreOptions(), &store));
  uint64_t count;
  ASSERT_OK(store->meta()->GetChunkRefcount(ChunkId::OfRaw("c"), &count));
  EXPECT_EQ(count, 1u);
  std::string rec;
  ASSERT_OK(store->chunks()->Get(ChunkId::OfRaw("c"), &rec));
  EXPECT_EQ(rec, "rec");
}

}  // namespace
}  // namespace qatq
