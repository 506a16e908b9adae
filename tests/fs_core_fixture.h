// The filesystem-core test fixture: a real store (RocksDB index, file
// chunk store) in a temp directory, driven through fs/filesystem.h with no
// kernel involved. Shared by the fs_*_test.cc files.
#ifndef QATQ_TESTS_FS_CORE_FIXTURE_H_
#define QATQ_TESTS_FS_CORE_FIXTURE_H_

#include <filesystem>
#include <memory>
#include <string>

#include "fs/filesystem.h"
#include "index/store.h"
#include "tests/testutil.h"

namespace qatq {

namespace stdfs = std::filesystem;
constexpr uint32_t kChunk = 64u << 10;

class FsCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_path_ = (dir_.path() / "store").string();
    MkfsOptions mo;
    mo.chunk_bytes = kChunk;
    mo.root_uid = 0;
    mo.root_gid = 0;
    ASSERT_OK(CreateStore(store_path_, mo));
    Open();
  }
  void TearDown() override {
    if (fs_) EXPECT_OK(fs_->Shutdown());
    fs_.reset();
  }

  void Open(FilesystemOptions o = {}) {
    std::unique_ptr<Store> st;
    StoreOptions so;
    so.read_only = o.read_only;
    ASSERT_OK(OpenStore(store_path_, so, &st));
    ASSERT_OK(Filesystem::Open(WrapStore(std::move(st)), o, &fs_));
  }
  // Lets a test put a layer (fault injection) between the core and the store.
  virtual std::unique_ptr<Store> WrapStore(std::unique_ptr<Store> store) { return store; }
  // Clean unmount and mount again.
  void Remount(FilesystemOptions o = {}) {
    ASSERT_OK(fs_->Shutdown());
    fs_.reset();
    Open(o);
  }
  // The daemon dies: nothing uncommitted survives.
  void Crash() {
    fs_.reset();
    Open();
  }

  InodeId Create(const std::string& name, uint64_t* fh, InodeId parent = kRootInode,
                 OpenFlags flags = OpenFlags{true, false, false, false}) {
    InodeAttr a;
    Status s = fs_->Create(ctx_, parent, name, 0644, flags, &a, fh);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return a.ino;
  }
  InodeId WriteFile(const std::string& name, const std::string& data, InodeId parent = kRootInode) {
    uint64_t fh;
    InodeId ino = Create(name, &fh, parent);
    EXPECT_OK(fs_->Write(ino, fh, 0, data));
    EXPECT_OK(fs_->Release(ino, fh));
    return ino;
  }
  std::string ReadAll(InodeId ino) {
    InodeAttr a;
    EXPECT_OK(fs_->GetAttr(ino, &a));
    std::string out;
    EXPECT_OK(fs_->Read(ino, 0, 0, a.size, &out));
    return out;
  }
  InodeId LookupIno(const std::string& name, InodeId parent = kRootInode) {
    InodeAttr a;
    Status s = fs_->Lookup(parent, name, &a);
    return s.ok() ? a.ino : 0;
  }
  // What the kernel does when it drops an inode from its cache.
  void KernelForgets(InodeId ino) { fs_->Forget(ino, 1u << 30); }
  size_t ObjectCount() {
    size_t n = 0;
    for (auto& e : stdfs::recursive_directory_iterator(stdfs::path(store_path_) / "chunks")) {
      if (e.is_regular_file() && e.path().parent_path().filename() != "tmp") ++n;
    }
    return n;
  }
  // Flips a byte in the body of every chunk object.
  void CorruptEveryObject() {
    for (auto& e : stdfs::recursive_directory_iterator(stdfs::path(store_path_) / "chunks")) {
      if (!e.is_regular_file() || e.path().parent_path().filename() == "tmp") continue;
      std::string rec = test::ReadFileOrDie(e.path());
      rec[rec.size() - 1] ^= 0x40;
      stdfs::permissions(e.path(), stdfs::perms::owner_write, stdfs::perm_options::add);
      test::WriteFileOrDie(e.path(), rec);
    }
  }
  std::string Xattr(InodeId ino, const std::string& name) {
    std::string v;
    Status s = fs_->GetXattr(ino, name, &v);
    EXPECT_TRUE(s.ok()) << name << ": " << s.ToString();
    return v;
  }

  test::TempDir dir_;
  std::string store_path_;
  std::unique_ptr<Filesystem> fs_;
  CallerContext ctx_{0, 0};
};

}  // namespace qatq

#endif  // QATQ_TESTS_FS_CORE_FIXTURE_H_
