#include "index/metadata_store.h"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>

#include "index/keys.h"
#include "index/rocksdb_metadata_store.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

// Fails every WAL append while armed: the write path of a full or failing
// disk, seen by RocksDB.
class FailingWalFs : public rocksdb::FileSystemWrapper {
 public:
  explicit FailingWalFs(std::shared_ptr<rocksdb::FileSystem> base)
      : rocksdb::FileSystemWrapper(std::move(base)) {}
  const char* Name() const override { return "FailingWalFs"; }

  std::atomic<bool> fail{false};
  std::atomic<bool> no_space{false};  // fail as ENOSPC instead of EIO

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, &file, dbg);
    if (!s.ok()) return s;
    if (f.ends_with(".log")) {
      r->reset(new FailingFile(std::move(file), &fail, this));
    } else {
      *r = std::move(file);
    }
    return s;
  }

 private:
  class FailingFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    FailingFile(std::unique_ptr<rocksdb::FSWritableFile> f, std::atomic<bool>* fail,
                const FailingWalFs* owner)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), fail_(fail), owner_(owner) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (*fail_) return Injected();
      return target()->Append(data, o, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (*fail_) return Injected();
      return target()->Append(data, o, info, dbg);
    }

   private:
    rocksdb::IOStatus Injected() const {
      if (owner_->no_space) return rocksdb::IOStatus::NoSpace("injected WAL failure");
      return rocksdb::IOStatus::IOError("injected WAL failure");
    }
    std::atomic<bool>* fail_;
    const FailingWalFs* owner_;
  };
};

class MetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(Open(false)); }

  Status Open(bool read_only) {
    db_.reset();
    MetadataStoreOptions o;
    o.create_if_missing = !read_only;
    o.read_only = read_only;
    return OpenRocksDbMetadataStore(dir_.path() / "index", o, &db_);
  }

  static InodeAttr File(InodeId ino, uint64_t size) {
    InodeAttr a;
    a.ino = ino;
    a.mode = S_IFREG | 0644;
    a.nlink = 1;
    a.size = size;
    a.chunk_bytes = 1 << 20;
    return a;
  }

  static ChunkRef Ref(std::string_view raw) {
    ChunkRef r;
    r.id = ChunkId::OfRaw(raw);
    r.raw_len = static_cast<uint32_t>(raw.size());
    r.stored_len = static_cast<uint32_t>(raw.size()) + 32;
    return r;
  }

  Status Commit(const std::function<void(MetaBatch*)>& fill, bool sync = false) {
    auto b = db_->NewBatch();
    fill(b.get());
    return db_->Commit(b.get(), sync);
  }

  test::TempDir dir_;
  std::unique_ptr<MetadataStore> db_;
};

TEST_F(MetadataStoreTest, MissingKeysAreNotFoundOrZero) {
  InodeAttr a;
  EXPECT_TRUE(db_->GetInode(7, &a).IsNotFound());
  DirEntry e;
  EXPECT_TRUE(db_->Lookup(1, "x", &e).IsNotFound());
  std::string v;
  EXPECT_TRUE(db_->GetXattr(1, "user.x", &v).IsNotFound());
  Superblock sb;
  EXPECT_TRUE(db_->GetSuperblock(&sb).IsNotFound());
  InodeId last = 99;
  ASSERT_OK(db_->GetLastInode(&last));
  EXPECT_EQ(last, 0u);
  uint64_t count = 99;
  ASSERT_OK(db_->GetChunkRefcount(ChunkId::OfRaw("x"), &count));
  EXPECT_EQ(count, 0u);
}

TEST_F(MetadataStoreTest, CommittedBatchIsVisible) {
  ASSERT_OK(Commit(
      [&](MetaBatch* b) {
        EXPECT_TRUE(b->empty());
        b->PutInode(File(5, 10));
        b->PutDirEntry(1, DirEntry{"f", 5, S_IFREG});
        b->PutXattr(5, "user.qatq.dtype", "bf16");
        b->PutLastInode(5);
        b->SetChunkRefcount(ChunkId::OfRaw("a"), 3);
        EXPECT_FALSE(b->empty());
      },
      /*sync=*/true));
  InodeAttr a;
  ASSERT_OK(db_->GetInode(5, &a));
  EXPECT_EQ(a.size, 10u);
  DirEntry e;
  ASSERT_OK(db_->Lookup(1, "f", &e));
  EXPECT_EQ(e.ino, 5u);
  std::string v;
  ASSERT_OK(db_->GetXattr(5, "user.qatq.dtype", &v));
  EXPECT_EQ(v, "bf16");
  InodeId last;
  ASSERT_OK(db_->GetLastInode(&last));
  EXPECT_EQ(last, 5u);
  uint64_t count;
  ASSERT_OK(db_->GetChunkRefcount(ChunkId::OfRaw("a"), &count));
  EXPECT_EQ(count, 3u);

  // Deletes, and a zero count removes the record.
  ASSERT_OK(Commit([&](MetaBatch* b) {
    b->DeleteInode(5);
    b->DeleteDirEntry(1, "f");
    b->DeleteXattr(5, "user.qatq.dtype");
    b->SetChunkRefcount(ChunkId::OfRaw("a"), 0);
  }));
  EXPECT_TRUE(db_->GetInode(5, &a).IsNotFound());
  EXPECT_TRUE(db_->Lookup(1, "f", &e).IsNotFound());
  EXPECT_TRUE(db_->GetXattr(5, "user.qatq.dtype", &v).IsNotFound());
  bool any = false;
  ASSERT_OK(db_->ForEachChunkRefcount([&](const ChunkId&, uint64_t) {
    any = true;
    return Status::OK();
  }));
  EXPECT_FALSE(any);
}

TEST_F(MetadataStoreTest, ListDirPagesInNameOrder) {
  std::vector<std::string> names;
  for (int i = 0; i < 25; ++i) names.push_back("n" + std::to_string(100 + i));
  ASSERT_OK(Commit([&](MetaBatch* b) {
    for (size_t i = 0; i < names.size(); ++i) {
      b->PutDirEntry(2, DirEntry{names[i], 10 + i, S_IFREG});
    }
    // Neighbouring directories must not leak into the listing.
    b->PutDirEntry(1, DirEntry{"zz", 3, S_IFDIR});
    b->PutDirEntry(3, DirEntry{"a", 4, S_IFREG});
  }));
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  for (;;) {
    std::vector<DirEntry> page;
    ASSERT_OK(db_->ListDir(2, after, 10, &page));
    if (page.empty()) break;
    ++pages;
    EXPECT_LE(page.size(), 10u);
    for (const auto& e : page) seen.push_back(e.name);
    after = page.back().name;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, names);  // already in bytewise order

  std::vector<DirEntry> page;
  ASSERT_OK(db_->ListDir(2, "n110", 2, &page));
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].name, "n111");
  // start_after need not exist.
  ASSERT_OK(db_->ListDir(2, "n1105", 1, &page));
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].name, "n111");
  ASSERT_OK(db_->ListDir(2, "", 0, &page));
  EXPECT_TRUE(page.empty());

  bool has = false;
  ASSERT_OK(db_->DirHasEntries(2, &has));
  EXPECT_TRUE(has);
  ASSERT_OK(db_->DirHasEntries(4, &has));
  EXPECT_FALSE(has);
}

TEST_F(MetadataStoreTest, ChunkRefRangeScansAreInclusiveAndOrdered) {
  ASSERT_OK(Commit([&](MetaBatch* b) {
    for (uint64_t i : {0, 1, 2, 5, 255, 256, 1000}) b->PutChunkRef(7, i, Ref(std::to_string(i)));
    b->PutChunkRef(6, 3, Ref("other file"));
    b->PutChunkRef(8, 0, Ref("other file 2"));
    b->PutChunkRef(9, UINT64_MAX, Ref("last"));
  }));
  std::vector<std::pair<uint64_t, ChunkRef>> refs;
  ASSERT_OK(db_->GetChunkRefs(7, 1, 256, &refs));
  std::vector<uint64_t> idx;
  for (auto& [i, r] : refs) {
    idx.push_back(i);
    EXPECT_EQ(r.id, ChunkId::OfRaw(std::to_string(i)));
  }
  EXPECT_EQ(idx, (std::vector<uint64_t>{1, 2, 5, 255, 256}));
  ASSERT_OK(db_->GetChunkRefs(7, 0, UINT64_MAX, &refs));
  EXPECT_EQ(refs.size(), 7u);
  ASSERT_OK(db_->GetChunkRefs(7, 3, 4, &refs));  // a hole
  EXPECT_TRUE(refs.empty());
  ASSERT_OK(db_->GetChunkRefs(7, 5, 2, &refs));  // empty range
  EXPECT_TRUE(refs.empty());
  ASSERT_OK(db_->GetChunkRefs(9, 0, UINT64_MAX, &refs));
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].first, UINT64_MAX);

  ASSERT_OK(Commit([&](MetaBatch* b) { b->DeleteChunkRef(7, 5); }));
  ASSERT_OK(db_->GetChunkRefs(7, 5, 5, &refs));
  EXPECT_TRUE(refs.empty());

  std::vector<std::tuple<InodeId, uint64_t>> all;
  ASSERT_OK(db_->ForEachChunkRef([&](InodeId ino, uint64_t i, const ChunkRef&) {
    all.emplace_back(ino, i);
    return Status::OK();
  }));
  EXPECT_EQ(all.size(), 9u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
}

TEST_F(MetadataStoreTest, OrphansAndXattrsList) {
  ASSERT_OK(Commit([&](MetaBatch* b) {
    b->PutOrphan(300);
    b->PutOrphan(12);
    b->PutOrphan(70000);
    b->PutXattr(5, "user.b", "2");
    b->PutXattr(5, "user.a", "1");
    b->PutXattr(6, "user.c", "3");
  }));
  std::vector<InodeId> orphans;
  ASSERT_OK(db_->ListOrphans(&orphans));
  EXPECT_EQ(orphans, (std::vector<InodeId>{12, 300, 70000}));
  ASSERT_OK(Commit([&](MetaBatch* b) { b->DeleteOrphan(300); }));
  ASSERT_OK(db_->ListOrphans(&orphans));
  EXPECT_EQ(orphans, (std::vector<InodeId>{12, 70000}));

  std::vector<std::string> names;
  ASSERT_OK(db_->ListXattrs(5, &names));
  EXPECT_EQ(names, (std::vector<std::string>{"user.a", "user.b"}));
  ASSERT_OK(db_->ListXattrs(7, &names));
  EXPECT_TRUE(names.empty());
}

TEST_F(MetadataStoreTest, ScansStopWhenTheCallbackFails) {
  ASSERT_OK(Commit([&](MetaBatch* b) {
    for (InodeId i = 1; i <= 5; ++i) b->PutInode(File(i, i));
  }));
  int calls = 0;
  Status s = db_->ForEachInode([&](const InodeAttr&) {
    ++calls;
    return calls == 2 ? Status::Corruption("stop here") : Status::OK();
  });
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(calls, 2);
}

TEST_F(MetadataStoreTest, ReopenKeepsCommittedData) {
  Superblock sb;
  sb.default_chunk_bytes = 1 << 20;
  sb.uuid = "u-1";
  ASSERT_OK(Commit(
      [&](MetaBatch* b) {
        b->PutSuperblock(sb);
        b->PutInode(File(9, 77));
        b->PutChunkRef(9, 0, Ref("zero"));
      },
      /*sync=*/true));
  ASSERT_OK(Commit([&](MetaBatch* b) { b->PutOrphan(9); }, /*sync=*/false));
  ASSERT_OK(db_->Flush());
  ASSERT_OK(Open(false));
  Superblock back;
  ASSERT_OK(db_->GetSuperblock(&back));
  EXPECT_EQ(back.uuid, "u-1");
  InodeAttr a;
  ASSERT_OK(db_->GetInode(9, &a));
  EXPECT_EQ(a.size, 77u);
  std::vector<InodeId> orphans;
  ASSERT_OK(db_->ListOrphans(&orphans));
  EXPECT_EQ(orphans, std::vector<InodeId>{9});

  // Unsynced, unflushed commits survive a clean close (WAL + memtable flush).
  ASSERT_OK(Commit([&](MetaBatch* b) { b->PutInode(File(10, 1)); }));
  ASSERT_OK(Open(false));
  ASSERT_OK(db_->GetInode(10, &a));
}

TEST_F(MetadataStoreTest, EmptySyncedCommitSucceeds) {
  ASSERT_OK(Commit([&](MetaBatch* b) { b->PutInode(File(3, 1)); }, /*sync=*/false));
  auto b = db_->NewBatch();
  EXPECT_OK(db_->Commit(b.get(), /*sync=*/true));
  EXPECT_OK(db_->Commit(b.get(), /*sync=*/false));
  InodeAttr a;
  EXPECT_OK(db_->GetInode(3, &a));
}

TEST_F(MetadataStoreTest, ReadOnlyOpenReadsButRefusesCommits) {
  ASSERT_OK(Commit([&](MetaBatch* b) { b->PutInode(File(3, 1)); }, true));
  ASSERT_OK(Open(/*read_only=*/true));
  InodeAttr a;
  ASSERT_OK(db_->GetInode(3, &a));
  Status s = Commit([&](MetaBatch* b) { b->PutInode(File(4, 1)); });
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.posix_errno(), EROFS);
  EXPECT_TRUE(db_->GetInode(4, &a).IsNotFound());
  EXPECT_OK(db_->Flush());
}

TEST_F(MetadataStoreTest, SecondWriterIsBusy) {
  std::unique_ptr<MetadataStore> second;
  MetadataStoreOptions o;
  Status s = OpenRocksDbMetadataStore(dir_.path() / "index", o, &second);
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  // Readers are allowed beside the writer.
  o.read_only = true;
  EXPECT_OK(OpenRocksDbMetadataStore(dir_.path() / "index", o, &second));
}

TEST_F(MetadataStoreTest, ForeignBatchIsRejected) {
  class OtherBatch : public MetaBatch {
   public:
    void PutSuperblock(const Superblock&) override {}
    void PutInode(const InodeAttr&) override {}
    void DeleteInode(InodeId) override {}
    void PutDirEntry(InodeId, const DirEntry&) override {}
    void DeleteDirEntry(InodeId, std::string_view) override {}
    void PutChunkRef(InodeId, uint64_t, const ChunkRef&) override {}
    void DeleteChunkRef(InodeId, uint64_t) override {}
    void PutXattr(InodeId, std::string_view, std::string_view) override {}
    void DeleteXattr(InodeId, std::string_view) override {}
    void SetChunkRefcount(const ChunkId&, uint64_t) override {}
    void PutOrphan(InodeId) override {}
    void DeleteOrphan(InodeId) override {}
    void PutLastInode(InodeId) override {}
    bool empty() const override { return false; }
  } other;
  EXPECT_TRUE(db_->Commit(&other, false).IsInvalidArgument());
}

TEST_F(MetadataStoreTest, CorruptValueIsReportedWithItsKey) {
  // The encoder writes whatever it is given; a dentry naming inode 0 is
  // invalid on disk and must be refused when read, naming the key.
  auto b = db_->NewBatch();
  b->PutDirEntry(1, DirEntry{"bad", 0, S_IFREG});
  ASSERT_OK(db_->Commit(b.get(), false));
  DirEntry e;
  Status s = db_->Lookup(1, "bad", &e);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("dentry 1/bad"), std::string::npos) << s.ToString();
  std::vector<DirEntry> page;
  EXPECT_TRUE(db_->ListDir(1, "", 10, &page).IsCorruption());
}

TEST(RocksDbStatusMapping, NoSpaceKeepsEnospcAndLocksAreBusy) {
  Status s = FromRocksDb(rocksdb::Status::NoSpace("disk full"), "ctx");
  EXPECT_TRUE(s.IsIOError());
  EXPECT_EQ(s.posix_errno(), ENOSPC);
  EXPECT_NE(s.message().find("ctx"), std::string::npos);
  s = FromRocksDb(
      rocksdb::Status::IOError("While lock file: /x/LOCK", "Resource temporarily unavailable"),
      "open");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_TRUE(FromRocksDb(rocksdb::Status::Corruption("bad block"), "read").IsCorruption());
  EXPECT_TRUE(FromRocksDb(rocksdb::Status::NotFound(), "get").IsNotFound());
  EXPECT_OK(FromRocksDb(rocksdb::Status::OK(), "x"));
}

// ---- Atomicity under an injected write failure ----------------------------

TEST(MetadataStoreAtomicity, FailedCommitAppliesNothing) {
  test::TempDir dir;
  auto fs = std::make_shared<FailingWalFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  std::unique_ptr<MetadataStore> db;
  MetadataStoreOptions o;
  o.create_if_missing = true;
  ASSERT_OK(OpenRocksDbMetadataStoreWithEnv(dir.path() / "index", o, env.get(), &db));

  auto b = db->NewBatch();
  InodeAttr a;
  a.ino = 2;
  a.mode = S_IFREG | 0600;
  b->PutInode(a);
  ASSERT_OK(db->Commit(b.get(), true));

  fs->fail = true;
  b = db->NewBatch();
  a.ino = 3;
  b->PutInode(a);
  b->PutDirEntry(1, DirEntry{"three", 3, S_IFREG});
  b->SetChunkRefcount(ChunkId::OfRaw("c"), 1);
  b->DeleteInode(2);
  Status s = db->Commit(b.get(), true);
  ASSERT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();

  InodeAttr got;
  EXPECT_TRUE(db->GetInode(3, &got).IsNotFound());
  DirEntry e;
  EXPECT_TRUE(db->Lookup(1, "three", &e).IsNotFound());
  uint64_t count;
  ASSERT_OK(db->GetChunkRefcount(ChunkId::OfRaw("c"), &count));
  EXPECT_EQ(count, 0u);
  EXPECT_OK(db->GetInode(2, &got));  // the delete did not apply either

  // Once the disk works again the next commit succeeds (the store reopens
  // RocksDB underneath), and the failed batch stays unapplied.
  fs->fail = false;
  b = db->NewBatch();
  a.ino = 4;
  b->PutInode(a);
  EXPECT_OK(db->Commit(b.get(), true));
  EXPECT_OK(db->GetInode(4, &got));
  EXPECT_TRUE(db->GetInode(3, &got).IsNotFound());
  EXPECT_OK(db->GetInode(2, &got));

  // After a restart nothing of the failed batch appears.
  db.reset();
  ASSERT_OK(OpenRocksDbMetadataStoreWithEnv(dir.path() / "index", o, env.get(), &db));
  EXPECT_TRUE(db->GetInode(3, &got).IsNotFound());
  EXPECT_TRUE(db->Lookup(1, "three", &e).IsNotFound());
  EXPECT_OK(db->GetInode(2, &got));
  EXPECT_OK(db->GetInode(4, &got));
}

TEST(MetadataStoreAtomicity, NoSpaceIsReportedAsEnospc) {
  test::TempDir dir;
  auto fs = std::make_shared<FailingWalFs>(rocksdb::FileSystem::Default());
  fs->no_space = true;
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  std::unique_ptr<MetadataStore> db;
  MetadataStoreOptions o;
  o.create_if_missing = true;
  ASSERT_OK(OpenRocksDbMetadataStoreWithEnv(dir.path() / "index", o, env.get(), &db));
  fs->fail = true;
  auto b = db->NewBatch();
  b->PutOrphan(5);
  Status s = db->Commit(b.get(), true);
  ASSERT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(s.posix_errno(), ENOSPC) << s.ToString();
  std::vector<InodeId> orphans;
  ASSERT_OK(db->ListOrphans(&orphans));
  EXPECT_TRUE(orphans.empty());
  // While the disk stays full, commits keep failing with ENOSPC ...
  s = db->Commit(b.get(), true);
  EXPECT_EQ(s.posix_errno(), ENOSPC) << s.ToString();
  // ... and once space is free they work again without a remount.
  fs->fail = false;
  ASSERT_OK(db->Commit(b.get(), true));
  ASSERT_OK(db->ListOrphans(&orphans));
  EXPECT_EQ(orphans, std::vector<InodeId>{5});
}

}  // namespace
}  // namespace qatq
