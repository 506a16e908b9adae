// copy_file_range in the filesystem core: chunks covered whole are shared
// (reference counts), everything else is copied as bytes, and either way the
// destination reads back exactly the source's bytes.
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "fs/filesystem.h"
#include "index/fsck.h"
#include "index/store.h"
#include "tests/fs_core_fixture.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

class FsCopyTest : public FsCoreTest {
 protected:
  InodeId EmptyFile(const std::string& name) {
    uint64_t fh;
    InodeId ino = Create(name, &fh);
    EXPECT_OK(fs_->Release(ino, fh));
    return ino;
  }
  uint64_t Copy(InodeId src, uint64_t src_off, InodeId dst, uint64_t dst_off, uint64_t len) {
    uint64_t copied = ~0ull;
    Status s = fs_->CopyFileRange(src, src_off, dst, dst_off, len, &copied);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return copied;
  }
  // The store after a clean shutdown: no problem at all, orphans included.
  void ExpectStoreClean() {
    ASSERT_OK(fs_->Shutdown());
    fs_.reset();
    std::unique_ptr<Store> st;
    StoreOptions so;
    so.read_only = true;
    ASSERT_OK(OpenStore(store_path_, so, &st));
    FsckReport r;
    ASSERT_OK(CheckStore(st.get(), FsckOptions{}, &r));
    EXPECT_TRUE(r.clean()) << r.problem_count << " problems";
    st.reset();
    Open();
  }
};

std::string Data(size_t n, uint32_t seed) { return test::RandomBytes(n, seed); }

TEST_F(FsCopyTest, WholeFileCopySharesEveryChunk) {
  std::string data = Data(5 * kChunk + 1234, 1);
  InodeId src = WriteFile("src", data);
  size_t objects = ObjectCount();
  InodeId dst = EmptyFile("dst");
  EXPECT_EQ(Copy(src, 0, dst, 0, data.size()), data.size());
  EXPECT_EQ(ObjectCount(), objects);  // nothing new stored, the tail included
  EXPECT_EQ(ReadAll(dst), data);
  Remount();
  EXPECT_EQ(ReadAll(LookupIno("dst")), data);
  // The source's objects now have two references: removing it frees nothing.
  ASSERT_OK(fs_->Unlink(kRootInode, "src"));
  EXPECT_EQ(ObjectCount(), objects);
  EXPECT_EQ(ReadAll(LookupIno("dst")), data);
  ExpectStoreClean();
  ASSERT_OK(fs_->Unlink(kRootInode, "dst"));
  EXPECT_EQ(ObjectCount(), 0u);
}

TEST_F(FsCopyTest, SharedChunksAreNeitherDecodedNorVerified) {
  // Byte copying would have to decode, and fail on, the damaged objects.
  InodeId src = WriteFile("src", Data(3 * kChunk, 16));
  Remount();
  CorruptEveryObject();
  InodeId dst = EmptyFile("dst");
  EXPECT_EQ(Copy(src, 0, dst, 0, 3 * kChunk), 3 * kChunk);
  std::string out;
  EXPECT_EQ(fs_->Read(dst, 0, 0, 100, &out).posix_errno(), EIO);
}

TEST_F(FsCopyTest, UncommittedSourceBytesAreCommittedThenShared) {
  uint64_t fh;
  InodeId src = Create("src", &fh);
  std::string data = Data(3 * kChunk, 2);
  ASSERT_OK(fs_->Write(src, fh, 0, data));  // still open, not flushed
  InodeId dst = EmptyFile("dst");
  EXPECT_EQ(Copy(src, 0, dst, 0, data.size()), data.size());
  EXPECT_EQ(ReadAll(dst), data);
  ASSERT_OK(fs_->Release(src, fh));
  Crash();  // the copy was committed without any flush of dst
  EXPECT_EQ(ReadAll(LookupIno("dst")), data);
}

TEST_F(FsCopyTest, UnalignedCopyCopiesBytes) {
  std::string data = Data(4 * kChunk + 99, 3);
  InodeId src = WriteFile("src", data);
  InodeId dst = EmptyFile("dst");
  EXPECT_EQ(Copy(src, 100, dst, 7, 3 * kChunk), 3 * kChunk);
  std::string want(7, '\0');
  want += data.substr(100, 3 * kChunk);
  EXPECT_EQ(ReadAll(dst), want);
  ExpectStoreClean();
}

TEST_F(FsCopyTest, SameOffsetInChunkSharesTheMiddleAndCopiesTheEdges) {
  std::string data = Data(6 * kChunk, 4);
  InodeId src = WriteFile("src", data);
  std::string old = Data(8 * kChunk, 5);
  InodeId dst = WriteFile("dst", old);
  size_t objects = ObjectCount();
  // From 1.5 chunks for 3 chunks, to 4.5 chunks in dst: head and tail half
  // chunks are bytes, two whole chunks are shared.
  const uint64_t so = kChunk + kChunk / 2, doff = 4 * kChunk + kChunk / 2, len = 3 * kChunk;
  EXPECT_EQ(Copy(src, so, dst, doff, len), len);
  std::string want = old;
  want.replace(doff, len, data.substr(so, len));
  EXPECT_EQ(ReadAll(dst), want);
  // Four chunks of dst are replaced: the two edge ones by new objects, the
  // two whole ones by the source's objects.
  EXPECT_EQ(ObjectCount(), objects - 2);
  Remount();
  EXPECT_EQ(ReadAll(LookupIno("dst")), want);
  ExpectStoreClean();
}

TEST_F(FsCopyTest, ShortSourceTailKeepsTheDestinationBytesAfterIt) {
  std::string data = Data(2 * kChunk + 100, 6);  // the last chunk holds 100 bytes
  InodeId src = WriteFile("src", data);
  std::string old = Data(4 * kChunk, 7);
  InodeId dst = WriteFile("dst", old);
  EXPECT_EQ(Copy(src, 0, dst, 0, data.size()), data.size());
  std::string want = old;
  want.replace(0, data.size(), data);
  EXPECT_EQ(ReadAll(dst), want);
  Remount();
  EXPECT_EQ(ReadAll(LookupIno("dst")), want);
}

TEST_F(FsCopyTest, HolesStayHolesAndPastEndOfFileCopiesNothing) {
  uint64_t fh;
  InodeId src = Create("src", &fh);
  std::string tail = Data(kChunk, 8);
  ASSERT_OK(fs_->Write(src, fh, 3 * kChunk, tail));  // chunks 0-2 are a hole
  ASSERT_OK(fs_->Release(src, fh));
  InodeId dst = WriteFile("dst", Data(2 * kChunk, 9));
  EXPECT_EQ(Copy(src, 0, dst, 0, 1ull << 40), 4 * kChunk);  // clamped to the source
  EXPECT_EQ(ReadAll(dst), std::string(3 * kChunk, '\0') + tail);
  EXPECT_EQ(ObjectCount(), 1u);  // dst's own chunks were replaced by holes
  EXPECT_EQ(Copy(src, 4 * kChunk, dst, 0, 10), 0u);
  EXPECT_EQ(Copy(src, 1ull << 40, dst, 0, 10), 0u);
}

TEST_F(FsCopyTest, CopyBeyondTheDestinationEndLeavesAHole) {
  std::string data = Data(kChunk, 10);
  InodeId src = WriteFile("src", data);
  InodeId dst = EmptyFile("dst");
  EXPECT_EQ(Copy(src, 0, dst, 3 * kChunk, kChunk), kChunk);
  InodeAttr a;
  ASSERT_OK(fs_->GetAttr(dst, &a));
  EXPECT_EQ(a.size, 4 * kChunk);
  EXPECT_EQ(ReadAll(dst), std::string(3 * kChunk, '\0') + data);
}

TEST_F(FsCopyTest, WithinOneFileNonOverlappingWorksOverlappingFails) {
  std::string data = Data(4 * kChunk, 11);
  InodeId f = WriteFile("f", data);
  EXPECT_EQ(Copy(f, 0, f, 2 * kChunk, 2 * kChunk), 2 * kChunk);
  std::string want = data;
  want.replace(2 * kChunk, 2 * kChunk, data.substr(0, 2 * kChunk));
  EXPECT_EQ(ReadAll(f), want);
  uint64_t copied;
  Status s = fs_->CopyFileRange(f, 0, f, kChunk, 2 * kChunk, &copied);
  EXPECT_EQ(s.posix_errno(), EINVAL) << s.ToString();
  ExpectStoreClean();
}

TEST_F(FsCopyTest, TruncatedDestinationGetsTheBytes) {
  std::string data = Data(3 * kChunk, 12);
  InodeId src = WriteFile("src", data);
  uint64_t fh;
  InodeId dst = Create("dst", &fh);
  ASSERT_OK(fs_->Write(dst, fh, 0, Data(6 * kChunk, 13)));
  ASSERT_OK(fs_->Flush(dst));
  SetAttrRequest tr;
  tr.size = 0;
  InodeAttr a;
  ASSERT_OK(fs_->SetAttr(dst, tr, &a));
  EXPECT_EQ(Copy(src, 0, dst, 0, data.size()), data.size());
  ASSERT_OK(fs_->Release(dst, fh));
  EXPECT_EQ(ReadAll(dst), data);
  Remount();
  EXPECT_EQ(ReadAll(LookupIno("dst")), data);
  ExpectStoreClean();
}

TEST_F(FsCopyTest, RefusesDirectoriesAndReadOnly) {
  InodeId src = WriteFile("src", Data(kChunk, 14));
  InodeAttr d;
  ASSERT_OK(fs_->Mkdir(ctx_, kRootInode, "d", 0755, &d));
  uint64_t copied;
  EXPECT_EQ(fs_->CopyFileRange(d.ino, 0, src, 0, 1, &copied).posix_errno(), EISDIR);
  EXPECT_EQ(fs_->CopyFileRange(src, 0, d.ino, 0, 1, &copied).posix_errno(), EISDIR);
  FilesystemOptions ro;
  ro.read_only = true;
  Remount(ro);
  EXPECT_EQ(fs_->CopyFileRange(src, 0, LookupIno("src"), 2 * kChunk, 1, &copied).posix_errno(),
            EROFS);
}

TEST_F(FsCopyTest, CopiedFileTakesTheSourceDType) {
  InodeId src = WriteFile("w.bf16", Data(2 * kChunk, 15));
  InodeId dst = EmptyFile("copy");
  EXPECT_EQ(Copy(src, 0, dst, 0, 2 * kChunk), 2 * kChunk);
  EXPECT_EQ(Xattr(dst, "user.qatq.dtype"), Xattr(src, "user.qatq.dtype"));
}

TEST_F(FsCopyTest, ConcurrentCopiesWritesAndTruncatesKeepReferenceCountsRight) {
  const std::string data = Data(8 * kChunk, 17);
  InodeId src = WriteFile("src", data);
  InodeId a = EmptyFile("a");
  InodeId b = EmptyFile("b");
  std::vector<std::thread> threads;
  threads.emplace_back([&] {  // overwrites chunks of the source
    for (int i = 0; i < 20; ++i) {
      EXPECT_OK(fs_->Write(src, 0, (i % 8) * kChunk, Data(kChunk, 100 + i)));
      if (i % 4 == 0) EXPECT_OK(fs_->Flush(src));
    }
  });
  threads.emplace_back([&] {  // copies the source whole, again and again
    for (int i = 0; i < 10; ++i) Copy(src, 0, a, 0, 8 * kChunk);
  });
  threads.emplace_back([&] {  // copies parts into b and truncates it
    for (int i = 0; i < 10; ++i) {
      Copy(src, (i % 3) * kChunk, b, (i % 2) * kChunk, 4 * kChunk);
      SetAttrRequest tr;
      tr.size = (i % 5) * kChunk / 2;
      InodeAttr attr;
      EXPECT_OK(fs_->SetAttr(b, tr, &attr));
    }
  });
  for (auto& t : threads) t.join();
  ASSERT_OK(fs_->Flush(src));
  // A final copy with nothing racing it must be exact.
  EXPECT_EQ(Copy(src, 0, a, 0, 8 * kChunk), 8 * kChunk);
  EXPECT_EQ(ReadAll(a), ReadAll(src));
  ExpectStoreClean();
}

}  // namespace
}  // namespace qatq
