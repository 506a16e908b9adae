// `qatqfs fsck` (RunFsckCommand): exit codes, problems named by file path,
// repair, refusal of a store in use.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "codec/chunk_record.h"
#include "fs/filesystem.h"
#include "index/store.h"
#include "tests/testutil.h"
#include "tools/qatqfs_admin.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

constexpr uint32_t kChunk = 64 << 10;

class AdminFsck : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = (tmp_.path() / "store").string();
    MkfsOptions mo;
    mo.chunk_bytes = kChunk;
    ASSERT_OK(CreateStore(store_, mo));
    std::unique_ptr<Store> st;
    ASSERT_OK(OpenStore(store_, StoreOptions(), &st));
    std::unique_ptr<Filesystem> fsys;
    ASSERT_OK(Filesystem::Open(std::move(st), FilesystemOptions(), &fsys));
    CallerContext ctx;
    InodeAttr dir, a;
    ASSERT_OK(fsys->Mkdir(ctx, kRootInode, "models", 0755, &dir));
    uint64_t fh;
    ASSERT_OK(fsys->Create(ctx, dir.ino, "a.bf16le", 0644, OpenFlags{true}, &a, &fh));
    ASSERT_OK(fsys->Write(a.ino, fh, 0, test::RandomBytes(3 * kChunk + 100, 7)));
    ASSERT_OK(fsys->Release(a.ino, fh));
    file_ino_ = a.ino;
    ASSERT_OK(fsys->Shutdown());
  }

  // Runs fsck; stdout in *out, stderr in *err.
  int Fsck(std::vector<std::string> args, std::string* out = nullptr, std::string* err = nullptr) {
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    int rc = RunFsckCommand(args);
    std::string o = testing::internal::GetCapturedStdout();
    std::string e = testing::internal::GetCapturedStderr();
    if (out) *out = o;
    if (err) *err = e;
    return rc;
  }

  std::vector<fs::path> Objects() const {
    std::vector<fs::path> v;
    for (auto& e : fs::recursive_directory_iterator(fs::path(store_) / "chunks")) {
      if (e.is_regular_file() && e.path().parent_path().filename() != "tmp") v.push_back(e.path());
    }
    std::sort(v.begin(), v.end());
    return v;
  }

  void FlipByte(const fs::path& p, size_t offset) {
    std::string data = test::ReadFileOrDie(p);
    ASSERT_LT(offset, data.size());
    data[offset] ^= 0x40;
    test::WriteFileOrDie(p, data);
  }

  TempDir tmp_;
  std::string store_;
  InodeId file_ino_ = 0;
};

TEST_F(AdminFsck, CleanStoreExitsZero) {
  std::string out;
  EXPECT_EQ(Fsck({store_}, &out), kFsckClean) << out;
  EXPECT_NE(out.find("clean"), std::string::npos) << out;
  EXPECT_NE(out.find("checked 1 files"), std::string::npos) << out;
}

TEST_F(AdminFsck, CorruptObjectNamesTheFilePath) {
  auto objects = Objects();
  ASSERT_FALSE(objects.empty());
  FlipByte(objects[0], kChunkRecordHeaderSize + 5);
  std::string out;
  EXPECT_EQ(Fsck({store_}, &out), kFsckUnrepaired) << out;
  EXPECT_NE(out.find("corrupt-object"), std::string::npos) << out;
  EXPECT_NE(out.find("unrecoverable /models/a.bf16le"), std::string::npos) << out;
  // Repair never touches a damaged file's data: still unrepaired.
  EXPECT_EQ(Fsck({store_, "--repair"}, &out), kFsckUnrepaired) << out;
}

TEST_F(AdminFsck, InodeProblemsCarryThePath) {
  {
    std::unique_ptr<Store> st;
    ASSERT_OK(OpenStore(store_, StoreOptions(), &st));
    InodeAttr a;
    ASSERT_OK(st->meta()->GetInode(file_ino_, &a));
    a.nlink = 5;
    auto b = st->meta()->NewBatch();
    b->PutInode(a);
    ASSERT_OK(st->meta()->Commit(b.get(), true));
  }
  std::string out;
  EXPECT_EQ(Fsck({store_}, &out), kFsckUnrepaired) << out;
  EXPECT_NE(out.find("wrong-nlink: /models/a.bf16le: "), std::string::npos) << out;
  EXPECT_EQ(Fsck({store_, "--json"}, &out), kFsckUnrepaired) << out;
  EXPECT_NE(out.find("\"path\":\"/models/a.bf16le\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"exit_code\":4"), std::string::npos) << out;
  EXPECT_EQ(Fsck({store_, "--repair"}, &out), kFsckRepaired) << out;
  EXPECT_NE(out.find("repaired wrong-nlink"), std::string::npos) << out;
  EXPECT_EQ(Fsck({store_}, &out), kFsckClean) << out;
}

TEST_F(AdminFsck, RepairRemovesOrphanObjects) {
  std::string record;
  const std::string raw = test::RandomBytes(4096, 99);
  ASSERT_OK(EncodeChunkRecord(DType::kBytes, raw, {}, &record));
  const std::string hex = ChunkId::OfRaw(raw).ToHex();
  const fs::path orphan = fs::path(store_) / "chunks" / hex.substr(0, 2) / hex;
  fs::create_directories(orphan.parent_path());
  test::WriteFileOrDie(orphan, record);
  std::string out;
  EXPECT_EQ(Fsck({store_}, &out), kFsckUnrepaired) << out;
  EXPECT_NE(out.find("orphan-object"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(orphan));
  EXPECT_EQ(Fsck({store_, "--repair"}, &out), kFsckRepaired) << out;
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_EQ(Fsck({store_}, &out), kFsckClean) << out;
}

TEST_F(AdminFsck, DeepFindsAValidRecordOfOtherBytes) {
  // A well-formed record of the right length but other content: only a
  // decode and a hash against the id can tell.
  auto objects = Objects();
  ASSERT_FALSE(objects.empty());
  ChunkRecordInfo info;
  ASSERT_OK(ParseChunkRecordHeader(test::ReadFileOrDie(objects[0]), &info));
  std::string record;
  ASSERT_OK(EncodeChunkRecord(DType::kBytes, test::RandomBytes(info.raw_len, 1234), {}, &record));
  test::WriteFileOrDie(objects[0], record);
  std::string out;
  EXPECT_EQ(Fsck({store_}, &out), kFsckClean) << out;
  EXPECT_EQ(Fsck({store_, "--deep"}, &out), kFsckUnrepaired) << out;
  EXPECT_NE(out.find("unrecoverable /models/a.bf16le"), std::string::npos) << out;
}

TEST_F(AdminFsck, RefusesAStoreInUse) {
  std::unique_ptr<Store> held;  // what a mounted daemon holds
  ASSERT_OK(OpenStore(store_, StoreOptions(), &held));
  std::string err;
  EXPECT_EQ(Fsck({store_}, nullptr, &err), kFsckOperationalError);
  EXPECT_NE(err.find("unmount it first"), std::string::npos) << err;
  EXPECT_EQ(Fsck({store_, "--repair"}, nullptr, &err), kFsckOperationalError);
  // A read-only check takes no lock and changes nothing.
  std::string out;
  EXPECT_EQ(Fsck({store_, "--read-only"}, &out, &err), kFsckClean) << out << err;
  EXPECT_NE(out.find("read-only check"), std::string::npos) << out;
}

TEST_F(AdminFsck, OperationalAndUsageErrors) {
  std::string err;
  EXPECT_EQ(Fsck({(tmp_.path() / "nope").string()}, nullptr, &err), kFsckOperationalError);
  EXPECT_NE(err.find("qatqfs fsck: "), std::string::npos) << err;
  EXPECT_EQ(Fsck({}, nullptr, &err), kFsckUsage);
  EXPECT_EQ(Fsck({store_, "--bogus"}, nullptr, &err), kFsckUsage);
  EXPECT_EQ(Fsck({store_, "--repair", "--read-only"}, nullptr, &err), kFsckUsage);
}

}  // namespace
}  // namespace qatq
