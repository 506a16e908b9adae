#include <sys/stat.h>

#include <filesystem>

#include "codec/chunk_record.h"
#include "index/fsck.h"
#include "index/keys.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kChunk = 64 << 10;

class FsckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MkfsOptions mk;
    mk.chunk_bytes = kChunk;
    ASSERT_OK(CreateStore(path(), mk));
    ASSERT_OK(OpenStore(path(), StoreOptions(), &store_));
    // /dir/file (3 chunks, one of them shared with /same), /same, /dir/link
    ASSERT_OK(AddDir(kRootInode, "dir", 2));
    file_data_ = test::RandomBytes(2 * kChunk + 1000, 9);
    ASSERT_OK(AddFile(2, "file", 3, file_data_));
    ASSERT_OK(AddFile(kRootInode, "same", 4, file_data_.substr(0, kChunk)));
    ASSERT_OK(Link(2, "link", 4));
  }

  std::string path() const { return (dir_.path() / "store").string(); }
  MetadataStore* meta() { return store_->meta(); }
  ChunkStore* chunks() { return store_->chunks(); }

  Status Bump(MetaBatch* b, InodeId ino) {
    InodeId last;
    QATQ_RETURN_IF_ERROR(meta()->GetLastInode(&last));
    if (ino > last) b->PutLastInode(ino);
    return Status::OK();
  }

  Status AddDir(InodeId parent, const std::string& name, InodeId ino) {
    auto b = meta()->NewBatch();
    InodeAttr a;
    a.ino = ino;
    a.mode = S_IFDIR | 0755;
    a.nlink = 2;
    b->PutInode(a);
    b->PutDirEntry(parent, DirEntry{name, ino, S_IFDIR});
    InodeAttr p;
    QATQ_RETURN_IF_ERROR(meta()->GetInode(parent, &p));
    ++p.nlink;
    b->PutInode(p);
    QATQ_RETURN_IF_ERROR(Bump(b.get(), ino));
    return meta()->Commit(b.get(), true);
  }

  // Writes the chunks (objects first, then one batch), as the filesystem does.
  Status AddFile(InodeId parent, const std::string& name, InodeId ino, const std::string& data) {
    auto b = meta()->NewBatch();
    std::map<ChunkId, uint64_t> counts;
    for (uint64_t i = 0; i * kChunk < data.size(); ++i) {
      std::string raw = data.substr(i * kChunk, kChunk);
      std::string rec;
      QATQ_RETURN_IF_ERROR(EncodeChunkRecord(DType::kBytes, raw, ChunkEncodeOptions(), &rec));
      ChunkRef ref;
      ref.id = ChunkId::OfRaw(raw);
      ref.raw_len = static_cast<uint32_t>(raw.size());
      ref.stored_len = static_cast<uint32_t>(rec.size());
      QATQ_RETURN_IF_ERROR(chunks()->Put(ref.id, rec));
      b->PutChunkRef(ino, i, ref);
      if (!counts.count(ref.id)) {
        QATQ_RETURN_IF_ERROR(meta()->GetChunkRefcount(ref.id, &counts[ref.id]));
      }
      ++counts[ref.id];
    }
    QATQ_RETURN_IF_ERROR(chunks()->Sync());
    for (auto& [id, n] : counts) b->SetChunkRefcount(id, n);
    InodeAttr a;
    a.ino = ino;
    a.mode = S_IFREG | 0644;
    a.nlink = 1;
    a.size = data.size();
    a.chunk_bytes = kChunk;
    b->PutInode(a);
    b->PutDirEntry(parent, DirEntry{name, ino, S_IFREG});
    QATQ_RETURN_IF_ERROR(Bump(b.get(), ino));
    return meta()->Commit(b.get(), true);
  }

  Status Link(InodeId parent, const std::string& name, InodeId ino) {
    InodeAttr a;
    QATQ_RETURN_IF_ERROR(meta()->GetInode(ino, &a));
    ++a.nlink;
    auto b = meta()->NewBatch();
    b->PutInode(a);
    b->PutDirEntry(parent, DirEntry{name, ino, a.mode & S_IFMT});
    return meta()->Commit(b.get(), true);
  }

  Status Mutate(const std::function<void(MetaBatch*)>& fn) {
    auto b = meta()->NewBatch();
    fn(b.get());
    return meta()->Commit(b.get(), true);
  }

  FsckReport Check(bool repair, bool deep = false) {
    FsckOptions o;
    o.repair = repair;
    o.deep = deep;
    FsckReport r;
    Status s = CheckStore(store_.get(), o, &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }

  static int Count(const FsckReport& r, FsckProblemKind kind) {
    int n = 0;
    for (const auto& p : r.problems) n += p.kind == kind;
    return n;
  }

  fs::path ObjectPath(const ChunkId& id) const {
    std::string hex = id.ToHex();
    return fs::path(path()) / "chunks" / hex.substr(0, 2) / hex;
  }

  ChunkId FileChunk(uint64_t index) const {
    return ChunkId::OfRaw(std::string_view(file_data_).substr(index * kChunk, kChunk));
  }

  test::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::string file_data_;
};

TEST_F(FsckTest, HealthyStoreIsClean) {
  FsckReport r = Check(false, /*deep=*/true);
  EXPECT_TRUE(r.clean()) << r.Summary();
  EXPECT_EQ(r.inodes, 4u);
  EXPECT_EQ(r.directories, 2u);
  EXPECT_EQ(r.regular_files, 2u);
  EXPECT_EQ(r.dir_entries, 4u);
  EXPECT_EQ(r.chunk_refs, 4u);
  EXPECT_EQ(r.objects, 3u);  // chunk 0 is shared
  EXPECT_EQ(r.objects_verified, 3u);
  EXPECT_NE(r.Summary().find("clean"), std::string::npos);
}

TEST_F(FsckTest, OrphanObjectIsFoundAndRemoved) {
  std::string rec;
  ASSERT_OK(EncodeChunkRecord(DType::kBytes, "lost", ChunkEncodeOptions(), &rec));
  ChunkId lost = ChunkId::OfRaw("lost");
  ASSERT_OK(chunks()->Put(lost, rec));  // a crash before the commit

  FsckReport r = Check(false);
  EXPECT_EQ(r.problem_count, 1u) << r.Summary();
  EXPECT_EQ(Count(r, FsckProblemKind::kOrphanObject), 1);
  EXPECT_TRUE(fs::exists(ObjectPath(lost)));  // no repair without asking

  r = Check(true);
  EXPECT_EQ(r.repaired_count, 1u) << r.Summary();
  EXPECT_FALSE(fs::exists(ObjectPath(lost)));
  EXPECT_TRUE(Check(false).clean());
}

TEST_F(FsckTest, WrongReferenceCountsAreRecomputed) {
  ASSERT_OK(Mutate([&](MetaBatch* b) {
    b->SetChunkRefcount(FileChunk(0), 7);  // really 2 (file and same)
    b->SetChunkRefcount(FileChunk(1), 0);  // really 1
    b->SetChunkRefcount(ChunkId::OfRaw("nobody"), 3);
  }));
  FsckReport r = Check(true);
  EXPECT_EQ(Count(r, FsckProblemKind::kWrongRefcount), 3) << r.Summary();
  EXPECT_EQ(r.unrepaired(), 0u);
  uint64_t n;
  ASSERT_OK(meta()->GetChunkRefcount(FileChunk(0), &n));
  EXPECT_EQ(n, 2u);
  ASSERT_OK(meta()->GetChunkRefcount(FileChunk(1), &n));
  EXPECT_EQ(n, 1u);
  ASSERT_OK(meta()->GetChunkRefcount(ChunkId::OfRaw("nobody"), &n));
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(Check(false).clean());
}

TEST_F(FsckTest, MissingObjectMakesTheFileUnrecoverable) {
  fs::remove(ObjectPath(FileChunk(1)));
  FsckReport r = Check(true);
  EXPECT_EQ(Count(r, FsckProblemKind::kMissingObject), 1) << r.Summary();
  ASSERT_EQ(r.damaged_files.size(), 1u);
  EXPECT_EQ(r.damaged_files[0].ino, 3u);
  EXPECT_EQ(r.damaged_files[0].path, "/dir/file");
  EXPECT_EQ(r.damaged_files[0].bad_chunks, 1u);
  EXPECT_EQ(r.unrepaired(), 1u);
  // Repair keeps the reference: the file is not silently changed.
  std::vector<std::pair<uint64_t, ChunkRef>> refs;
  ASSERT_OK(meta()->GetChunkRefs(3, 1, 1, &refs));
  EXPECT_EQ(refs.size(), 1u);
  EXPECT_NE(r.Summary().find("unrecoverable /dir/file"), std::string::npos) << r.Summary();
}

TEST_F(FsckTest, CorruptObjectIsDetectedByItsChecksum) {
  // Chunk 0 is shared: both names of both files are damaged.
  fs::path obj = ObjectPath(FileChunk(0));
  std::string bytes = test::ReadFileOrDie(obj);
  bytes[bytes.size() / 2] ^= 0x40;
  test::WriteFileOrDie(obj, bytes);
  FsckReport r = Check(false);
  EXPECT_EQ(Count(r, FsckProblemKind::kCorruptObject), 1) << r.Summary();
  ASSERT_EQ(r.damaged_files.size(), 2u);
  EXPECT_EQ(r.damaged_files[0].ino, 3u);
  EXPECT_EQ(r.damaged_files[1].ino, 4u);
}

TEST_F(FsckTest, DeepCheckFindsAValidRecordUnderTheWrongId) {
  // A well-formed record whose bytes are not what the id promises (e.g. a
  // misplaced file): only decoding and rehashing can tell.
  std::string other = test::RandomBytes(kChunk, 77);
  std::string rec;
  ASSERT_OK(EncodeChunkRecord(DType::kBytes, other, ChunkEncodeOptions(), &rec));
  test::WriteFileOrDie(ObjectPath(FileChunk(0)), rec);
  EXPECT_TRUE(Check(false).clean());
  FsckReport r = Check(false, /*deep=*/true);
  EXPECT_EQ(Count(r, FsckProblemKind::kCorruptObject), 1) << r.Summary();
}

TEST_F(FsckTest, DanglingEntriesAreRemoved) {
  ASSERT_OK(Mutate([&](MetaBatch* b) {
    b->PutDirEntry(kRootInode, DirEntry{"ghost", 99, S_IFREG});
    b->PutDirEntry(55, DirEntry{"in-missing-dir", 3, S_IFREG});
    b->PutXattr(98, "user.x", "v");
    b->PutOrphan(97);
    b->PutChunkRef(96, 0, ChunkRef{FileChunk(2), 1000, 1100, 0});
  }));
  FsckReport r = Check(true);
  EXPECT_EQ(Count(r, FsckProblemKind::kDanglingDirEntry), 1) << r.Summary();
  EXPECT_EQ(Count(r, FsckProblemKind::kDirEntryInBadParent), 1) << r.Summary();
  EXPECT_EQ(Count(r, FsckProblemKind::kDanglingXattr), 1) << r.Summary();
  EXPECT_EQ(Count(r, FsckProblemKind::kBadOrphan), 1) << r.Summary();
  EXPECT_EQ(Count(r, FsckProblemKind::kDanglingChunkMap), 1) << r.Summary();
  EXPECT_EQ(r.unrepaired(), 0u) << r.Summary();
  DirEntry e;
  EXPECT_TRUE(meta()->Lookup(kRootInode, "ghost", &e).IsNotFound());
  FsckReport again = Check(false);
  EXPECT_TRUE(again.clean()) << again.Summary();
}

TEST_F(FsckTest, NlinkAndDentryTypesAreFixed) {
  InodeAttr a;
  ASSERT_OK(meta()->GetInode(4, &a));
  ASSERT_EQ(a.nlink, 2u);  // "same" and "dir/link"
  a.nlink = 5;
  InodeAttr root;
  ASSERT_OK(meta()->GetInode(kRootInode, &root));
  root.nlink = 2;  // really 3: it has one subdirectory
  ASSERT_OK(Mutate([&](MetaBatch* b) {
    b->PutInode(a);
    b->PutInode(root);
    b->PutDirEntry(2, DirEntry{"file", 3, S_IFLNK});
  }));
  FsckReport r = Check(true);
  EXPECT_EQ(Count(r, FsckProblemKind::kWrongNlink), 2) << r.Summary();
  EXPECT_EQ(Count(r, FsckProblemKind::kDirEntryTypeMismatch), 1) << r.Summary();
  ASSERT_OK(meta()->GetInode(4, &a));
  EXPECT_EQ(a.nlink, 2u);
  ASSERT_OK(meta()->GetInode(kRootInode, &root));
  EXPECT_EQ(root.nlink, 3u);
  DirEntry e;
  ASSERT_OK(meta()->Lookup(2, "file", &e));
  EXPECT_EQ(e.type, static_cast<uint32_t>(S_IFREG));
  EXPECT_TRUE(Check(false).clean());
}

TEST_F(FsckTest, UnreachableInodesBecomeOrphans) {
  // Cut "dir" off the tree: dir and dir/file become unreachable; "same"
  // keeps one name.
  ASSERT_OK(Mutate([&](MetaBatch* b) { b->DeleteDirEntry(kRootInode, "dir"); }));
  FsckReport r = Check(true);
  EXPECT_EQ(Count(r, FsckProblemKind::kUnreachableInode), 2) << r.Summary();
  std::vector<InodeId> orphans;
  ASSERT_OK(meta()->ListOrphans(&orphans));
  EXPECT_EQ(orphans, (std::vector<InodeId>{2, 3}));
  InodeAttr a;
  ASSERT_OK(meta()->GetInode(4, &a));
  EXPECT_EQ(a.nlink, 1u);  // dir/link is gone with its directory
  FsckReport again = Check(false);
  EXPECT_TRUE(again.clean()) << again.Summary();
}

TEST_F(FsckTest, OpenUnlinkedFilesAreNotProblems) {
  // What the filesystem commits for an unlinked but open file.
  InodeAttr a;
  ASSERT_OK(meta()->GetInode(3, &a));
  a.nlink = 0;
  ASSERT_OK(Mutate([&](MetaBatch* b) {
    b->DeleteDirEntry(2, "file");
    b->PutInode(a);
    b->PutOrphan(3);
  }));
  FsckReport r = Check(false);
  EXPECT_TRUE(r.clean()) << r.Summary();
}

TEST_F(FsckTest, ChunksBeyondEofAreDropped) {
  ASSERT_OK(Mutate([&](MetaBatch* b) {
    b->PutChunkRef(4, 5, ChunkRef{FileChunk(2), 1000, 1100, 0});
    b->SetChunkRefcount(FileChunk(2), 2);
  }));
  FsckReport r = Check(true);
  EXPECT_EQ(Count(r, FsckProblemKind::kChunkBeyondEof), 1) << r.Summary();
  EXPECT_EQ(Count(r, FsckProblemKind::kWrongRefcount), 1) << r.Summary();
  std::vector<std::pair<uint64_t, ChunkRef>> refs;
  ASSERT_OK(meta()->GetChunkRefs(4, 0, UINT64_MAX, &refs));
  EXPECT_EQ(refs.size(), 1u);
  uint64_t n;
  ASSERT_OK(meta()->GetChunkRefcount(FileChunk(2), &n));
  EXPECT_EQ(n, 1u);
  EXPECT_TRUE(Check(false).clean());
}

TEST_F(FsckTest, LastInodeBelowExistingInodesIsRaised) {
  ASSERT_OK(Mutate([&](MetaBatch* b) { b->PutLastInode(2); }));
  FsckReport r = Check(true);
  EXPECT_EQ(Count(r, FsckProblemKind::kLastInodeTooLow), 1) << r.Summary();
  InodeId last;
  ASSERT_OK(meta()->GetLastInode(&last));
  EXPECT_EQ(last, 4u);
}

TEST_F(FsckTest, UndecodableEntriesAreReportedAndTheScanGoesOn) {
  // Values the decoders refuse: a dentry naming inode 0, and a directory
  // inode with an impossible chunk size. The subtree under the unreadable
  // directory must not be cut off and orphaned by repair.
  InodeAttr d;
  ASSERT_OK(meta()->GetInode(2, &d));
  d.chunk_bytes = 3;
  ASSERT_OK(Mutate([&](MetaBatch* b) {
    b->PutDirEntry(kRootInode, DirEntry{"bad", 0, S_IFREG});
    b->PutInode(d);
  }));
  FsckReport r = Check(true);
  EXPECT_EQ(Count(r, FsckProblemKind::kCorruptEntry), 2) << r.Summary();
  EXPECT_EQ(Count(r, FsckProblemKind::kUnreachableInode), 0) << r.Summary();
  EXPECT_EQ(r.unrepaired(), 2u) << r.Summary();
  std::vector<InodeId> orphans;
  ASSERT_OK(meta()->ListOrphans(&orphans));
  EXPECT_TRUE(orphans.empty());
  EXPECT_EQ(r.chunk_refs, 4u);  // the rest of the index was still read
}

TEST_F(FsckTest, RepairNeedsAWritableStore) {
  store_.reset();
  StoreOptions ro;
  ro.read_only = true;
  ASSERT_OK(OpenStore(path(), ro, &store_));
  FsckOptions o;
  o.repair = true;
  FsckReport r;
  EXPECT_TRUE(CheckStore(store_.get(), o, &r).IsInvalidArgument());
  o.repair = false;
  EXPECT_OK(CheckStore(store_.get(), o, &r));
  EXPECT_TRUE(r.clean()) << r.Summary();
}

TEST_F(FsckTest, ProblemListIsBoundedButCounted) {
  for (int i = 0; i < 20; ++i) {
    std::string raw = "orphan " + std::to_string(i);
    std::string rec;
    ASSERT_OK(EncodeChunkRecord(DType::kBytes, raw, ChunkEncodeOptions(), &rec));
    ASSERT_OK(chunks()->Put(ChunkId::OfRaw(raw), rec));
  }
  FsckOptions o;
  o.max_problems = 5;
  FsckReport r;
  ASSERT_OK(CheckStore(store_.get(), o, &r));
  EXPECT_EQ(r.problem_count, 20u);
  EXPECT_EQ(r.problems.size(), 5u);
  EXPECT_NE(r.Summary().find("and 15 more"), std::string::npos);
}

}  // namespace
}  // namespace qatq
