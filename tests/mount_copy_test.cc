// copy_file_range and cp inside one qatqfs mount share the stored chunks:
// the copy reads back exactly, and no chunk object is added.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/mount/fixture.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

namespace stdfs = std::filesystem;
using test::RunCommand;
using test::ShellQuote;

constexpr size_t kMiB = 1u << 20;

class MountCopyTest : public test::MountedStoreTest {
 protected:
  void SetUp() override {
    QATQ_REQUIRE_MOUNT();
    m_ = std::make_unique<test::QatqfsMount>();
    ASSERT_TRUE(m_->Mkfs());
    ASSERT_TRUE(m_->Mount("log_level=debug"));
  }
  std::string Path(const std::string& name) { return m_->mnt() + "/" + name; }
  size_t ObjectCount() {
    size_t n = 0;
    for (auto& e : stdfs::recursive_directory_iterator(stdfs::path(m_->store()) / "chunks")) {
      if (e.is_regular_file() && e.path().parent_path().filename() != "tmp") ++n;
    }
    return n;
  }
  void WriteFileOrDie(const std::string& path, const std::string& data) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(fsync(fd), 0);
    ASSERT_EQ(close(fd), 0);
  }
};

TEST_F(MountCopyTest, CpOfAFileSharesItsChunks) {
  std::string data = test::RandomBytes(24 * kMiB + 4567, 1);
  WriteFileOrDie(Path("src"), data);
  size_t objects = ObjectCount();
  ASSERT_EQ(objects, 25u);
  std::string out;
  // coreutils cp copies with copy_file_range(2) when it can.
  ASSERT_EQ(RunCommand("cp " + ShellQuote(Path("src")) + " " + ShellQuote(Path("dst")) + " 2>&1",
                       &out),
            0)
      << out;
  EXPECT_EQ(ObjectCount(), objects);
  EXPECT_EQ(test::ReadFileOrDie(Path("dst")), data);
  // Identical bytes would dedup to the same objects anyway; the daemon's
  // log says whether the chunks were shared without a decode.
  EXPECT_NE(m_->Log().find("src -> dst: 25170391 bytes, 25 chunks shared"), std::string::npos)
      << m_->Log();
  Remount();
  ASSERT_EQ(unlink(Path("src").c_str()), 0);
  EXPECT_EQ(test::ReadFileOrDie(Path("dst")), data);
  EXPECT_EQ(ObjectCount(), objects);
}

TEST_F(MountCopyTest, CopyFileRangeOfPartsReadsBackExactly) {
  std::string src = test::RandomBytes(6 * kMiB, 2);
  std::string dst = test::RandomBytes(5 * kMiB, 3);
  WriteFileOrDie(Path("src"), src);
  WriteFileOrDie(Path("dst"), dst);
  int in = open(Path("src").c_str(), O_RDONLY);
  int out = open(Path("dst").c_str(), O_WRONLY);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  // Read dst first so the kernel caches pages the copy must invalidate.
  EXPECT_EQ(test::ReadFileOrDie(Path("dst")), dst);
  struct Piece {
    off_t in, out;
    size_t len;
  } pieces[] = {
      {0, 0, 2 * kMiB},                      // whole chunks: shared
      {kMiB / 2, 3 * kMiB + kMiB / 2, kMiB},  // same offset in chunk: edges copied
      {12345, 4 * kMiB + 7, kMiB},             // unaligned: bytes
  };
  for (const Piece& p : pieces) {
    off_t io = p.in, oo = p.out;
    size_t left = p.len;
    while (left > 0) {
      ssize_t n = copy_file_range(in, &io, out, &oo, left, 0);
      ASSERT_GT(n, 0) << strerror(errno);
      left -= static_cast<size_t>(n);
    }
    dst.replace(p.out, p.len, src.substr(p.in, p.len));
  }
  // Past the source's end: nothing to copy.
  off_t io = 6 * kMiB, oo = 0;
  EXPECT_EQ(copy_file_range(in, &io, out, &oo, 100, 0), 0);
  close(in);
  close(out);
  EXPECT_EQ(test::ReadFileOrDie(Path("dst")), dst);
  Remount();
  EXPECT_EQ(test::ReadFileOrDie(Path("dst")), dst);
  EXPECT_EQ(test::ReadFileOrDie(Path("src")), src);
}

}  // namespace
}  // namespace qatq
