// Unit tests of the filesystem core (fs/filesystem.h), no kernel involved:
// a real store (RocksDB index, file chunk store) in a temp directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "codec/chunk_record.h"
#include "fs/errno_map.h"
#include "fs/filesystem.h"
#include "index/store.h"
#include "tests/fs_core_fixture.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

TEST_F(FsCoreTest, ReadsOwnWritesBeforeAndAfterCommit) {
  uint64_t fh;
  InodeId ino = Create("a", &fh);
  std::string data = test::RandomBytes(3 * kChunk + 123, 1);
  ASSERT_OK(fs_->Write(ino, fh, 0, data));
  EXPECT_EQ(ReadAll(ino), data);  // before any commit
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(ReadAll(ino), data);
  ASSERT_OK(fs_->Release(ino, fh));
  Remount();
  InodeId again = LookupIno("a");
  ASSERT_EQ(again, ino);
  EXPECT_EQ(ReadAll(ino), data);
}

TEST_F(FsCoreTest, ReadSlicesShareDecodedChunksWithoutCopying) {
  std::string data = test::RandomBytes(2 * kChunk, 40);
  uint64_t fh;
  InodeId ino = Create("f", &fh);
  ASSERT_OK(fs_->Write(ino, fh, 3 * kChunk, data));  // chunks 0-2: a hole
  ASSERT_OK(fs_->Release(ino, fh));
  Remount();
  ReadBuffer a, b;
  ASSERT_OK(fs_->ReadSlices(ino, 0, 3 * kChunk + 10, 1000, &a));
  ASSERT_OK(fs_->ReadSlices(ino, 0, 3 * kChunk + 500, 1000, &b));
  ASSERT_EQ(a.slices().size(), 1u);
  ASSERT_EQ(b.slices().size(), 1u);
  // Both point into the one cached decoded chunk.
  EXPECT_EQ(b.slices()[0].data(), a.slices()[0].data() + 490);
  EXPECT_EQ(a.slices()[0], std::string_view(data).substr(10, 1000));
  // A read across the hole's end: zeros, then data.
  ReadBuffer c;
  ASSERT_OK(fs_->ReadSlices(ino, 0, 3 * kChunk - 100, 300, &c));
  std::string got;
  c.CopyTo(&got);
  EXPECT_EQ(got, std::string(100, '\0') + data.substr(0, 200));
  EXPECT_EQ(c.size(), 300u);
}

TEST_F(FsCoreTest, SmallWritesAccumulateAcrossChunks) {
  uint64_t fh;
  InodeId ino = Create("s", &fh);
  std::string data = test::RandomBytes(5 * kChunk + 7, 2);
  for (size_t off = 0; off < data.size(); off += 4000) {
    ASSERT_OK(fs_->Write(ino, fh, off, std::string_view(data).substr(off, 4000)));
  }
  ASSERT_OK(fs_->Release(ino, fh));
  Remount();
  EXPECT_EQ(ReadAll(ino), data);
}

TEST_F(FsCoreTest, OverwriteInTheMiddleReadModifyWritesTheChunk) {
  std::string data = test::RandomBytes(2 * kChunk, 3);
  InodeId ino = WriteFile("o", data);
  Remount();
  uint64_t fh;
  bool keep;
  ASSERT_OK(fs_->OpenFile(ino, OpenFlags{true}, &fh, &keep));
  std::string patch(100, 'x');
  ASSERT_OK(fs_->Write(ino, fh, kChunk - 50, patch));  // spans the chunk boundary
  data.replace(kChunk - 50, 100, patch);
  EXPECT_EQ(ReadAll(ino), data);
  ASSERT_OK(fs_->Release(ino, fh));
  Remount();
  EXPECT_EQ(ReadAll(ino), data);
}

TEST_F(FsCoreTest, TruncateShrinksAndGrowsWithZeros) {
  std::string data = test::RandomBytes(3 * kChunk, 4);
  InodeId ino = WriteFile("t", data);
  InodeAttr a;
  SetAttrRequest r;
  r.size = kChunk + 10;
  ASSERT_OK(fs_->SetAttr(ino, r, &a));
  EXPECT_EQ(a.size, kChunk + 10);
  r.size = 3 * kChunk;
  ASSERT_OK(fs_->SetAttr(ino, r, &a));
  std::string expect = data.substr(0, kChunk + 10) + std::string(2 * kChunk - 10, '\0');
  EXPECT_EQ(ReadAll(ino), expect);
  Remount();
  EXPECT_EQ(ReadAll(ino), expect);
  EXPECT_EQ(Xattr(ino, "user.qatq.chunks"), "2");
}

TEST_F(FsCoreTest, TruncateToOneTebibyteStoresNothing) {
  uint64_t fh;
  InodeId ino = Create("big", &fh);
  InodeAttr a;
  SetAttrRequest r;
  r.size = 1ull << 40;
  ASSERT_OK(fs_->SetAttr(ino, r, &a));
  std::string out;
  ASSERT_OK(fs_->Read(ino, fh, (1ull << 40) - 4096, 8192, &out));
  EXPECT_EQ(out, std::string(4096, '\0'));
  ASSERT_OK(fs_->Write(ino, fh, 1ull << 39, "hello"));
  ASSERT_OK(fs_->Release(ino, fh));
  Remount();
  ASSERT_OK(fs_->GetAttr(ino, &a));
  EXPECT_EQ(a.size, 1ull << 40);
  EXPECT_EQ(Xattr(ino, "user.qatq.chunks"), "1");
  ASSERT_OK(fs_->Read(ino, 0, (1ull << 39) - 2, 9, &out));
  EXPECT_EQ(out, std::string("\0\0hello\0\0", 9));
}

TEST_F(FsCoreTest, ZeroChunksAreHoles) {
  std::string data = std::string(2 * kChunk, '\0') + "tail";
  InodeId ino = WriteFile("z", data);
  EXPECT_EQ(Xattr(ino, "user.qatq.chunks"), "1");
  EXPECT_EQ(ReadAll(ino), data);
}

TEST_F(FsCoreTest, AppendHandlesWriteAtEndOfFile) {
  uint64_t fh1, fh2;
  InodeId ino = Create("log", &fh1);
  bool keep;
  ASSERT_OK(fs_->OpenFile(ino, OpenFlags{true, true}, &fh2, &keep));
  uint64_t fh3;
  ASSERT_OK(fs_->OpenFile(ino, OpenFlags{true, true}, &fh3, &keep));
  for (int i = 0; i < 100; ++i) {
    // Stale offsets (0) must not matter for O_APPEND handles.
    ASSERT_OK(fs_->Write(ino, fh2, 0, "aaaa"));
    ASSERT_OK(fs_->Write(ino, fh3, 0, "bb"));
  }
  std::string all = ReadAll(ino);
  EXPECT_EQ(all.size(), 600u);
  EXPECT_EQ(std::count(all.begin(), all.end(), 'a'), 400);
  for (uint64_t fh : {fh1, fh2, fh3}) ASSERT_OK(fs_->Release(ino, fh));
}

TEST_F(FsCoreTest, OpenWithTruncateEmptiesTheFile) {
  InodeId ino = WriteFile("f", test::RandomBytes(kChunk * 2, 5));
  uint64_t fh;
  bool keep;
  ASSERT_OK(fs_->OpenFile(ino, OpenFlags{true, false, true}, &fh, &keep));
  ASSERT_OK(fs_->Write(ino, fh, 0, "new"));
  ASSERT_OK(fs_->Release(ino, fh));
  Remount();
  EXPECT_EQ(ReadAll(ino), "new");
}

TEST_F(FsCoreTest, CreateExistingFails) {
  WriteFile("x", "1");
  InodeAttr a;
  uint64_t fh;
  Status s = fs_->Create(ctx_, kRootInode, "x", 0644, OpenFlags{true, false, false, true}, &a, &fh);
  EXPECT_EQ(ToErrno(s), EEXIST);
}

TEST_F(FsCoreTest, RenameReplacesTargetAndFreesItsChunks) {
  InodeId a = WriteFile("a", test::RandomBytes(kChunk, 6));
  InodeId b = WriteFile("b", test::RandomBytes(kChunk, 7));
  size_t before = ObjectCount();
  ASSERT_OK(fs_->Rename(kRootInode, "a", kRootInode, "b", RenameFlags{}));
  EXPECT_EQ(LookupIno("a"), 0u);
  EXPECT_EQ(LookupIno("b"), a);
  // The replaced inode lives until the kernel forgets it.
  EXPECT_EQ(ObjectCount(), before);
  KernelForgets(b);
  EXPECT_EQ(ObjectCount(), before - 1);
}

TEST_F(FsCoreTest, RenameNoReplaceAndExchange) {
  InodeId a = WriteFile("a", "A");
  InodeId b = WriteFile("b", "B");
  RenameFlags nr;
  nr.noreplace = true;
  EXPECT_EQ(ToErrno(fs_->Rename(kRootInode, "a", kRootInode, "b", nr)), EEXIST);
  RenameFlags ex;
  ex.exchange = true;
  ASSERT_OK(fs_->Rename(kRootInode, "a", kRootInode, "b", ex));
  EXPECT_EQ(LookupIno("a"), b);
  EXPECT_EQ(LookupIno("b"), a);
  Remount();
  EXPECT_EQ(ReadAll(LookupIno("a")), "B");
}

TEST_F(FsCoreTest, DirectoriesRenameAndRmdir) {
  InodeAttr d, e;
  ASSERT_OK(fs_->Mkdir(ctx_, kRootInode, "d", 0755, &d));
  ASSERT_OK(fs_->Mkdir(ctx_, kRootInode, "e", 0755, &e));
  WriteFile("f", "data", d.ino);
  EXPECT_EQ(ToErrno(fs_->Rmdir(kRootInode, "d")), ENOTEMPTY);
  EXPECT_EQ(ToErrno(fs_->Rename(kRootInode, "e", kRootInode, "d", RenameFlags{})), ENOTEMPTY);
  ASSERT_OK(fs_->Rename(kRootInode, "d", e.ino, "d2", RenameFlags{}));
  InodeId f = LookupIno("f", LookupIno("d2", e.ino));
  EXPECT_EQ(ReadAll(f), "data");
  EXPECT_EQ(ToErrno(fs_->Unlink(e.ino, "d2")), EISDIR);
  ASSERT_OK(fs_->Unlink(LookupIno("d2", e.ino), "f"));
  ASSERT_OK(fs_->Rmdir(e.ino, "d2"));
  Remount();
  uint64_t dh;
  ASSERT_OK(fs_->OpenDir(e.ino, &dh));
  std::vector<DirEntry> entries;
  ASSERT_OK(fs_->ReadDir(e.ino, dh, 0, 100, &entries));
  fs_->ReleaseDir(dh);
  EXPECT_EQ(entries.size(), 2u);  // . and ..
}

TEST_F(FsCoreTest, UnlinkedOpenFileStaysReadableUntilReleased) {
  std::string data = test::RandomBytes(2 * kChunk + 5, 8);
  uint64_t fh;
  InodeId ino = Create("u", &fh);
  ASSERT_OK(fs_->Write(ino, fh, 0, data));
  ASSERT_OK(fs_->Flush(ino));
  size_t objects = ObjectCount();
  EXPECT_GE(objects, 3u);
  ASSERT_OK(fs_->Unlink(kRootInode, "u"));
  EXPECT_EQ(LookupIno("u"), 0u);
  std::string out;
  ASSERT_OK(fs_->Read(ino, fh, 0, data.size(), &out));
  EXPECT_EQ(out, data);
  ASSERT_OK(fs_->Write(ino, fh, 0, "more"));
  ASSERT_OK(fs_->Release(ino, fh));
  KernelForgets(ino);
  EXPECT_EQ(ObjectCount(), 0u);
  InodeAttr a;
  EXPECT_EQ(ToErrno(fs_->GetAttr(ino, &a)), ENOENT);
}

TEST_F(FsCoreTest, OrphanOfACrashIsReclaimedAtNextMount) {
  uint64_t fh;
  InodeId ino = Create("orphan", &fh);
  ASSERT_OK(fs_->Write(ino, fh, 0, test::RandomBytes(kChunk, 9)));
  ASSERT_OK(fs_->Flush(ino));
  ASSERT_OK(fs_->Unlink(kRootInode, "orphan"));
  EXPECT_EQ(ObjectCount(), 1u);
  Crash();
  EXPECT_EQ(ObjectCount(), 0u);
}

TEST_F(FsCoreTest, HardLinksShareDataAndCountLinks) {
  InodeId ino = WriteFile("h", "shared");
  InodeAttr a;
  ASSERT_OK(fs_->Link(ino, kRootInode, "h2", &a));
  EXPECT_EQ(a.nlink, 2u);
  ASSERT_OK(fs_->Unlink(kRootInode, "h"));
  Remount();
  ASSERT_EQ(LookupIno("h2"), ino);
  EXPECT_EQ(ReadAll(ino), "shared");
  ASSERT_OK(fs_->GetAttr(ino, &a));
  EXPECT_EQ(a.nlink, 1u);
}

TEST_F(FsCoreTest, SymlinkStoresTarget) {
  InodeAttr a;
  ASSERT_OK(fs_->Symlink(ctx_, kRootInode, "l", "../some/where", &a));
  EXPECT_TRUE(S_ISLNK(a.mode));
  Remount();
  std::string t;
  ASSERT_OK(fs_->Readlink(LookupIno("l"), &t));
  EXPECT_EQ(t, "../some/where");
}

TEST_F(FsCoreTest, IdenticalChunksAreStoredOnceAndFreedWithTheLastReference) {
  std::string data = test::RandomBytes(3 * kChunk, 10);
  WriteFile("one", data);
  size_t n = ObjectCount();
  EXPECT_EQ(n, 3u);
  WriteFile("two", data);
  EXPECT_EQ(ObjectCount(), n);
  ASSERT_OK(fs_->Unlink(kRootInode, "one"));
  EXPECT_EQ(ObjectCount(), n);
  Remount();
  InodeId two = LookupIno("two");
  EXPECT_EQ(ReadAll(two), data);
  ASSERT_OK(fs_->Unlink(kRootInode, "two"));
  KernelForgets(two);
  EXPECT_EQ(ObjectCount(), 0u);
}

TEST_F(FsCoreTest, OverwriteDropsTheOldObject) {
  InodeId ino = WriteFile("w", test::RandomBytes(kChunk, 11));
  EXPECT_EQ(ObjectCount(), 1u);
  uint64_t fh;
  bool keep;
  ASSERT_OK(fs_->OpenFile(ino, OpenFlags{true}, &fh, &keep));
  ASSERT_OK(fs_->Write(ino, fh, 10, "changed"));
  ASSERT_OK(fs_->Release(ino, fh));
  EXPECT_EQ(ObjectCount(), 1u);
}

TEST_F(FsCoreTest, DropWithoutFlushKeepsCommittedData) {
  std::string committed = test::RandomBytes(kChunk + 100, 12);
  InodeId ino = WriteFile("c", committed);
  uint64_t fh;
  bool keep;
  ASSERT_OK(fs_->OpenFile(ino, OpenFlags{true}, &fh, &keep));
  ASSERT_OK(fs_->Write(ino, fh, 5, "uncommitted"));
  Crash();
  EXPECT_EQ(ReadAll(LookupIno("c")), committed);
}

TEST_F(FsCoreTest, CorruptChunkReadsAsEioNeverWrongBytes) {
  InodeId ino = WriteFile("bad", test::RandomBytes(2 * kChunk, 13));
  Remount();
  CorruptEveryObject();
  std::string out;
  EXPECT_EQ(ToErrno(fs_->Read(ino, 0, 0, 100, &out)), EIO);
  EXPECT_EQ(ToErrno(fs_->Read(ino, 0, kChunk, 100, &out)), EIO);
}

TEST_F(FsCoreTest, PreStoredRecordIsAdoptedInsteadOfEncoding) {
  // What `qatqfs import` relies on: a verified record already in the chunk
  // store is referenced as it is (here one encoded as plain bytes, at the
  // lowest effort), not encoded again for the file's dtype.
  std::string data(kChunk, '\0');
  for (size_t i = 0; i < data.size(); i += 2) data[i + 1] = static_cast<char>(0x3f);
  for (size_t i = 0; i < data.size(); i += 64) data[i] = static_cast<char>(i >> 6);
  std::string record;
  ASSERT_OK(EncodeChunkRecord(DType::kBytes, data, ChunkEncodeOptions{0, 0}, &record));
  {
    std::unique_ptr<ChunkStore> cs;
    ASSERT_OK(OpenFileChunkStore((stdfs::path(store_path_) / "chunks").string(), &cs));
    ASSERT_OK(cs->Put(ChunkId::OfRaw(data), record));
    ASSERT_OK(cs->Sync());
  }
  InodeId ino = WriteFile("adopted.bf16le", data);
  EXPECT_EQ(ObjectCount(), 1u);
  EXPECT_EQ(Xattr(ino, "user.qatq.stored_bytes"), std::to_string(record.size()));
  Remount();
  EXPECT_EQ(ReadAll(LookupIno("adopted.bf16le")), data);
}

TEST_F(FsCoreTest, DamagedStoredObjectIsReplacedNotAdopted) {
  std::string data = test::RandomBytes(kChunk, 21);
  InodeId first = WriteFile("first", data);
  Remount();
  for (auto& e : stdfs::recursive_directory_iterator(stdfs::path(store_path_) / "chunks")) {
    if (!e.is_regular_file() || e.path().parent_path().filename() == "tmp") continue;
    std::string rec = test::ReadFileOrDie(e.path());
    rec[rec.size() / 2] ^= 0x01;  // same size, wrong bytes
    stdfs::permissions(e.path(), stdfs::perms::owner_write, stdfs::perm_options::add);
    test::WriteFileOrDie(e.path(), rec);
  }
  std::string out;
  EXPECT_EQ(ToErrno(fs_->Read(first, 0, 0, 100, &out)), EIO);
  WriteFile("second", data);
  Remount();
  EXPECT_EQ(ReadAll(LookupIno("second")), data);
  EXPECT_EQ(ReadAll(LookupIno("first")), data);  // healed: same content, fresh object
}

TEST_F(FsCoreTest, UserXattrsOnlyAndBounded) {
  InodeId ino = WriteFile("x", "1");
  ASSERT_OK(fs_->SetXattr(ino, "user.note", "hello", 0));
  EXPECT_EQ(Xattr(ino, "user.note"), "hello");
  EXPECT_EQ(ToErrno(fs_->SetXattr(ino, "user.note", "x", XATTR_CREATE)), EEXIST);
  EXPECT_EQ(ToErrno(fs_->SetXattr(ino, "user.other", "x", XATTR_REPLACE)), ENODATA);
  EXPECT_EQ(ToErrno(fs_->SetXattr(ino, "trusted.x", "1", 0)), EOPNOTSUPP);
  EXPECT_EQ(ToErrno(fs_->SetXattr(ino, "user.big", std::string(kMaxXattrValue + 1, 'v'), 0)),
            E2BIG);
  EXPECT_EQ(ToErrno(fs_->SetXattr(ino, "user.qatq.ratio", "9", 0)), EPERM);
  std::vector<std::string> names;
  ASSERT_OK(fs_->ListXattr(ino, &names));
  EXPECT_EQ(names, std::vector<std::string>{"user.note"});
  Remount();
  EXPECT_EQ(Xattr(ino, "user.note"), "hello");
  ASSERT_OK(fs_->RemoveXattr(ino, "user.note"));
  std::string v;
  EXPECT_EQ(ToErrno(fs_->GetXattr(ino, "user.note", &v)), ENODATA);
}

TEST_F(FsCoreTest, StatisticsXattrsDescribeStoredData) {
  std::string data(4 * kChunk, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i / 1000) % 7);
  InodeId ino = WriteFile("stats.bin", data);
  EXPECT_EQ(Xattr(ino, "user.qatq.chunks"), "4");
  uint64_t stored = std::stoull(Xattr(ino, "user.qatq.stored_bytes"));
  EXPECT_GT(stored, 0u);
  EXPECT_LT(stored, data.size());
  EXPECT_GT(std::stod(Xattr(ino, "user.qatq.ratio")), 1.0);
  EXPECT_FALSE(Xattr(ino, "user.qatq.strategies").empty());
  EXPECT_FALSE(Xattr(ino, "user.qatq.dtype").empty());
}

TEST_F(FsCoreTest, DTypeFromNameXattrAndDirectory) {
  InodeId f = WriteFile("w.bf16le", test::RandomBytes(1000, 14));
  EXPECT_EQ(Xattr(f, "user.qatq.dtype"), "bf16");
  InodeAttr d;
  ASSERT_OK(fs_->Mkdir(ctx_, kRootInode, "dir", 0755, &d));
  ASSERT_OK(fs_->SetXattr(d.ino, "user.qatq.dtype", "f32", 0));
  InodeId g = WriteFile("plain", test::RandomBytes(1000, 15), d.ino);
  EXPECT_EQ(Xattr(g, "user.qatq.dtype"), "f32");
  ASSERT_OK(fs_->SetXattr(g, "user.qatq.dtype", "f16", 0));
  Remount();
  EXPECT_EQ(Xattr(g, "user.qatq.dtype"), "f16");
  EXPECT_EQ(ToErrno(fs_->SetXattr(g, "user.qatq.dtype", "f64", 0)), EINVAL);
}

TEST_F(FsCoreTest, ReadOnlyRefusesChanges) {
  InodeId ino = WriteFile("r", "data");
  FilesystemOptions o;
  o.read_only = true;
  Remount(o);
  InodeAttr a;
  uint64_t fh;
  EXPECT_EQ(ToErrno(fs_->Mkdir(ctx_, kRootInode, "d", 0755, &a)), EROFS);
  EXPECT_EQ(ToErrno(fs_->Create(ctx_, kRootInode, "n", 0644, OpenFlags{true}, &a, &fh)), EROFS);
  EXPECT_EQ(ToErrno(fs_->Unlink(kRootInode, "r")), EROFS);
  EXPECT_EQ(ReadAll(ino), "data");
}

TEST_F(FsCoreTest, NewFilesTakeCallerIdsAndSetgidGroup) {
  InodeAttr d;
  ASSERT_OK(fs_->Mkdir(ctx_, kRootInode, "g", 02775, &d));
  SetAttrRequest r;
  r.gid = 777;
  ASSERT_OK(fs_->SetAttr(d.ino, r, &d));
  InodeAttr f;
  uint64_t fh;
  CallerContext user{1000, 1000};
  ASSERT_OK(fs_->Create(user, d.ino, "f", 0644, OpenFlags{true}, &f, &fh));
  ASSERT_OK(fs_->Release(f.ino, fh));
  EXPECT_EQ(f.uid, 1000u);
  EXPECT_EQ(f.gid, 777u);
}

TEST_F(FsCoreTest, StatfsReportsRealNumbers) {
  WriteFile("s", test::RandomBytes(kChunk, 16));
  FsStatfs st;
  ASSERT_OK(fs_->Statfs(&st));
  EXPECT_GT(st.blocks, 0u);
  EXPECT_GT(st.blocks_free, 0u);
  EXPECT_GE(st.blocks, st.blocks_free + kChunk / st.block_size);
}

TEST_F(FsCoreTest, ManyDirtyChunksCommitUnderPressure) {
  Remount();
  FilesystemOptions o;
  o.inode_commit_bytes = 2 * kChunk;
  o.max_dirty_bytes = 4 * kChunk;
  Remount(o);
  uint64_t fh;
  InodeId ino = Create("p", &fh);
  std::string data = test::RandomBytes(20 * kChunk + 1, 17);
  for (size_t off = 0; off < data.size(); off += 10000) {
    ASSERT_OK(fs_->Write(ino, fh, off, std::string_view(data).substr(off, 10000)));
  }
  // Full chunks were committed while writing: a crash keeps a prefix.
  Crash();
  InodeAttr a;
  ASSERT_OK(fs_->GetAttr(ino, &a));
  EXPECT_GE(a.size, 10 * kChunk);
  std::string got = ReadAll(ino);
  EXPECT_EQ(got, data.substr(0, got.size()));
}

TEST_F(FsCoreTest, AWriteOverTheDirtyLimitCommitsFilesDownToHalfOfIt) {
  FilesystemOptions o;
  o.max_dirty_bytes = 1u << 20;
  Remount(o);
  const size_t kFile = 40u << 10;  // below a chunk: nothing commits on its own
  // 26 x 40 KiB: the last write crosses the 1 MiB limit.
  std::vector<std::pair<InodeId, std::string>> files;
  for (int i = 0; i < 26; ++i) {
    uint64_t fh;
    InodeId ino = Create("f" + std::to_string(i), &fh);
    std::string data = test::RandomBytes(kFile, 500 + i);
    ASSERT_OK(fs_->Write(ino, fh, 0, data));
    files.emplace_back(ino, data);
  }
  Crash();  // nothing was closed or flushed
  // What was committed is complete; at most half the limit stayed dirty
  // (committing only the writer's own file would leave 25 files dirty).
  size_t complete = 0;
  for (auto& [ino, data] : files) {
    std::string got = ReadAll(ino);
    EXPECT_TRUE(got.empty() || got == data);
    complete += got == data;
  }
  EXPECT_GE(complete, files.size() - (o.max_dirty_bytes / 2) / kFile) << complete;
}

TEST_F(FsCoreTest, ConcurrentWritersReadersAndFlushes) {
  uint64_t shared_fh;
  InodeId shared = Create("shared", &shared_fh);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      uint64_t fh;
      InodeAttr a;
      if (!fs_->Create(ctx_, kRootInode, "t" + std::to_string(t), 0644, OpenFlags{true}, &a, &fh)
               .ok()) {
        failures++;
        return;
      }
      std::string data = test::RandomBytes(3 * kChunk + 100 * t, 50 + t);
      for (size_t off = 0; off < data.size(); off += 5000) {
        std::string_view part = std::string_view(data).substr(off, 5000);
        if (!fs_->Write(a.ino, fh, off, part).ok()) failures++;
        // Each thread owns one region of the shared file.
        if (!fs_->Write(shared, shared_fh, t * 4 * kChunk + off, part).ok()) failures++;
        if (off % 40000 == 0 && !fs_->Flush(shared).ok()) failures++;
        std::string back;
        if (!fs_->Read(shared, shared_fh, t * 4 * kChunk + off, part.size(), &back).ok() ||
            back != part) {
          failures++;
        }
      }
      if (!fs_->Release(a.ino, fh).ok()) failures++;
      std::string all;
      if (!fs_->Read(a.ino, 0, 0, data.size(), &all).ok() || all != data) failures++;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK(fs_->Release(shared, shared_fh));
  Remount();
  for (int t = 0; t < 4; ++t) {
    std::string data = test::RandomBytes(3 * kChunk + 100 * t, 50 + t);
    EXPECT_EQ(ReadAll(LookupIno("t" + std::to_string(t))), data);
    std::string part;
    ASSERT_OK(fs_->Read(shared, 0, t * 4 * kChunk, data.size(), &part));
    EXPECT_EQ(part, data);
  }
}

TEST_F(FsCoreTest, SampledDTypeForTensorWithoutHints) {
  QATQ_REQUIRE_SHARED(shared);
  std::string data = test::ReadFileOrDie(shared / "corpus" / "llm-stories260k-weights.bf16le");
  InodeId ino = WriteFile("weights.bin", data);
  EXPECT_EQ(Xattr(ino, "user.qatq.dtype"), "bf16");
  InodeId txt = WriteFile("notes.txt", std::string(100000, 'a') + "text\n");
  EXPECT_EQ(Xattr(txt, "user.qatq.dtype"), "bytes");
  Remount();
  EXPECT_EQ(ReadAll(ino), data);
}

TEST_F(FsCoreTest, OpenKeepsTheKernelPageCacheEvenAfterWrites) {
  // Writes all come through the kernel, so its cache is current; dropping it
  // at an open would race with writes in flight through other descriptors.
  InodeId ino = WriteFile("k", "v1");
  uint64_t fh, wfh;
  bool keep = false;
  ASSERT_OK(fs_->OpenFile(ino, OpenFlags{}, &fh, &keep));
  EXPECT_TRUE(keep);
  ASSERT_OK(fs_->OpenFile(ino, OpenFlags{true}, &wfh, &keep));
  ASSERT_OK(fs_->Write(ino, wfh, 0, "v2"));
  keep = false;
  uint64_t fh2;
  ASSERT_OK(fs_->OpenFile(ino, OpenFlags{}, &fh2, &keep));
  EXPECT_TRUE(keep);
  for (uint64_t h : {fh, wfh, fh2}) ASSERT_OK(fs_->Release(ino, h));
}

// Writers own disjoint slots that straddle chunk boundaries, so neighbours
// read-modify-write the same chunk while commits (flush, fsync, the
// per-inode back-pressure) encode and replace it. Each writer reads its
// bytes back after every write, and every byte survives a remount.
TEST_F(FsCoreTest, ConcurrentWritersOfOneChunkNeverLoseUpdatesAcrossCommits) {
  FilesystemOptions o;
  o.inode_commit_bytes = 3 * kChunk;  // commits from inside writes too
  Remount(o);
  constexpr int kWriters = 3, kSlotsPerWriter = 8, kWritesPerWriter = 250;
  constexpr size_t kSlot = 40u << 10, kPiece = 4u << 10;
  constexpr size_t kSize = kWriters * kSlotsPerWriter * kSlot;
  uint64_t fh0;
  InodeId ino = Create("shared", &fh0);
  ASSERT_OK(fs_->Write(ino, fh0, kSize - 1, std::string(1, '\0')));
  // Piece p of slot s at version v: 4 KiB of one byte value.
  auto piece = [](size_t slot, size_t p, int v) {
    return std::string(kPiece, static_cast<char>(1 + (slot * 31 + p * 7 + v) % 251));
  };
  std::vector<std::string> model(kWriters * kSlotsPerWriter, std::string(kSlot, '\0'));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      uint64_t fh;
      bool keep;
      if (!fs_->OpenFile(ino, OpenFlags{true}, &fh, &keep).ok()) {
        failures++;
        return;
      }
      uint64_t r = 0x9e3779b97f4a7c15ull * (t + 1);
      for (int i = 1; i <= kWritesPerWriter && failures == 0; ++i) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        size_t slot = (r >> 33) % kSlotsPerWriter * kWriters + t;
        size_t first = (r >> 20) % (kSlot / kPiece);
        size_t count = 1 + (r >> 8) % (kSlot / kPiece - first);
        std::string data;
        for (size_t p = first; p < first + count; ++p) data += piece(slot, p, i);
        uint64_t off = slot * kSlot + first * kPiece;
        std::string back;
        if (!fs_->Write(ino, fh, off, data).ok() ||
            !fs_->Read(ino, fh, off, data.size(), &back).ok() || back != data) {
          failures++;
          ADD_FAILURE() << "writer " << t << " slot " << slot << " write " << i
                        << ": read-back differs";
        }
        model[slot].replace(first * kPiece, data.size(), data);
      }
      EXPECT_OK(fs_->Release(ino, fh));
    });
  }
  std::thread committer([&] {
    for (int i = 0; !stop; ++i) {
      Status s = i % 20 == 0 ? fs_->Fsync(ino) : fs_->Flush(ino);
      if (!s.ok()) {
        failures++;
        ADD_FAILURE() << s.ToString();
      }
    }
  });
  for (auto& th : threads) th.join();
  stop = true;
  committer.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_OK(fs_->Release(ino, fh0));
  std::string want;
  for (auto& m : model) want += m;
  EXPECT_TRUE(ReadAll(ino) == want);
  Remount();
  EXPECT_TRUE(ReadAll(ino) == want) << "differs after a remount";
}

TEST_F(FsCoreTest, SafetensorsChunksTakeTheDTypeOfTheirTensor) {
  // 5 chunks of f32 then 3 of bf16 (kChunk = 64 KiB), the header padded to
  // 8 bytes as the safetensors writers do.
  const uint64_t f32_bytes = 5 * kChunk, bf16_bytes = 3 * kChunk;
  std::string json = R"({"__metadata__":{"dtype":"BF16 in a string"},"a":{"dtype":"F32","shape":[)" +
                     std::to_string(f32_bytes / 4) + R"(],"data_offsets":[0,)" +
                     std::to_string(f32_bytes) + R"(]},"b":{"dtype":"BF16","shape":[)" +
                     std::to_string(bf16_bytes / 2) + R"(],"data_offsets":[)" +
                     std::to_string(f32_bytes) + "," + std::to_string(f32_bytes + bf16_bytes) +
                     "]}}";
  json.append((8 - (8 + json.size()) % 8) % 8, ' ');
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  file += json;
  uint32_t x = 12345;
  auto next = [&] { return (x = x * 1103515245u + 12345u) >> 8; };
  for (uint64_t i = 0; i < f32_bytes / 4; ++i) {
    float v = (static_cast<float>(next() % 20001) - 10000.0f) * 1e-5f;
    char b[4];
    std::memcpy(b, &v, 4);
    file.append(b, 4);
  }
  for (uint64_t i = 0; i < bf16_bytes / 2; ++i) {
    float v = (static_cast<float>(next() % 20001) - 10000.0f) * 1e-3f;
    char b[4];
    std::memcpy(b, &v, 4);
    file.append(b + 2, 2);  // the high half of an f32 is its bf16
  }
  InodeId ino = WriteFile("mixed.safetensors", file);
  std::map<DType, int> records;
  for (auto& e : stdfs::recursive_directory_iterator(stdfs::path(store_path_) / "chunks")) {
    if (!e.is_regular_file() || e.path().parent_path().filename() == "tmp") continue;
    ChunkRecordInfo info;
    ASSERT_OK(ParseChunkRecordHeader(test::ReadFileOrDie(e.path()), &info));
    records[info.dtype]++;
  }
  // The first chunk holds the header and f32 bytes: f32 by majority.
  EXPECT_EQ(records[DType::kF32], 5);
  EXPECT_EQ(records[DType::kBF16], 4);  // the last 3 and the partial tail one
  EXPECT_EQ(Xattr(ino, "user.qatq.dtype"), "f32");
  Remount();
  EXPECT_EQ(ReadAll(ino), file);
}

TEST_F(FsCoreTest, SafetensorsHeaderChoosesTheDType) {
  std::string json =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[65536],"data_offsets":[0,262144]}})";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  file += json;
  std::string floats(262144, '\0');
  for (size_t i = 0; i < floats.size(); i += 4) {
    float v = 0.01f * static_cast<float>((i / 4) % 113) - 0.5f;
    std::memcpy(&floats[i], &v, 4);
  }
  file += floats;
  InodeId ino = WriteFile("model.safetensors", file);
  EXPECT_EQ(Xattr(ino, "user.qatq.dtype"), "f32");
  Remount();
  EXPECT_EQ(ReadAll(ino), file);
}

TEST_F(FsCoreTest, OpenRacingRenameOverKeepsTheInodeUntilForget) {
  // The kernel resolved "n" to the old inode, then a rename replaced "n",
  // then the kernel's OPEN for the old inode arrives.
  InodeId old = WriteFile("n", "old contents");
  InodeId seen = LookupIno("n");
  ASSERT_EQ(seen, old);
  WriteFile("tmp", "new contents");
  ASSERT_OK(fs_->Rename(kRootInode, "tmp", kRootInode, "n", RenameFlags{}));
  uint64_t fh;
  bool keep;
  ASSERT_OK(fs_->OpenFile(old, OpenFlags{}, &fh, &keep));
  InodeAttr a;
  ASSERT_OK(fs_->GetAttr(old, &a));
  EXPECT_EQ(a.nlink, 0u);
  std::string out;
  ASSERT_OK(fs_->Read(old, fh, 0, 100, &out));
  EXPECT_EQ(out, "old contents");
  ASSERT_OK(fs_->Release(old, fh));
  KernelForgets(old);
  EXPECT_EQ(ToErrno(fs_->GetAttr(old, &a)), ENOENT);
  EXPECT_EQ(ReadAll(LookupIno("n")), "new contents");
}

TEST_F(FsCoreTest, RemovedDirectoryAnswersGetattrUntilTheKernelForgetsIt) {
  // A process's cwd removed by another process: stat(".") still works (as
  // on ext4), with link count 0, until the kernel's last reference goes.
  InodeAttr d;
  ASSERT_OK(fs_->Mkdir(ctx_, kRootInode, "d", 0755, &d));  // one kernel reference
  ASSERT_OK(fs_->Rmdir(kRootInode, "d"));
  EXPECT_EQ(LookupIno("d"), 0u);
  InodeAttr a;
  ASSERT_OK(fs_->GetAttr(d.ino, &a));
  EXPECT_EQ(a.nlink, 0u);
  EXPECT_TRUE(S_ISDIR(a.mode));
  InodeAttr f;
  EXPECT_EQ(ToErrno(fs_->Mkdir(ctx_, d.ino, "sub", 0755, &f)), ENOENT);
  KernelForgets(d.ino);
  EXPECT_EQ(ToErrno(fs_->GetAttr(d.ino, &a)), ENOENT);
}

TEST_F(FsCoreTest, RemovedDirectoryStillReferencedIsReclaimedAfterACrash) {
  InodeAttr d;
  ASSERT_OK(fs_->Mkdir(ctx_, kRootInode, "d", 0755, &d));
  ASSERT_OK(fs_->Rmdir(kRootInode, "d"));
  Crash();
  InodeAttr a;
  EXPECT_EQ(ToErrno(fs_->GetAttr(d.ino, &a)), ENOENT);
}

}  // namespace
}  // namespace qatq
