// qatqfs export / import / fsck against a live mount (tests/mount/fixture.h):
// export decodes to the file's bytes, import reads back identical and
// rejects corrupt input without touching the target, and a damaged chunk
// object gives EIO for its range only and is named by fsck.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "index/types.h"
#include "tests/mount/fixture.h"
#include "tests/testutil.h"
#include "tools/cli.h"
#include "tools/qatqfs_admin.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;
using test::QatqfsMount;
using test::ShellQuote;

constexpr size_t kChunk = 64 << 10;  // mkfs --chunk-size of these stores

struct Captured {
  int rc;
  std::string out, err;
};

template <typename Fn>
Captured Capture(Fn fn) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  Captured c;
  c.rc = fn();
  c.out = testing::internal::GetCapturedStdout();
  c.err = testing::internal::GetCapturedStderr();
  return c;
}

Captured Export(std::vector<std::string> args) {
  return Capture([&] { return RunExportCommand(args); });
}
Captured Import(std::vector<std::string> args) {
  return Capture([&] { return RunImportCommand(args); });
}
Captured Fsck(std::vector<std::string> args) {
  return Capture([&] { return RunFsckCommand(args); });
}

int Qatq(const std::string& args, std::string* out = nullptr) {
  return test::RunCommand(ShellQuote(test::BinaryPath("qatq").string()) + " " + args + " 2>&1",
                          out);
}

// bf16-looking data: random mantissas under a few exponents, so chunks differ.
std::string TensorBytes(size_t n, uint64_t seed) {
  std::string b = test::RandomBytes(n, seed);
  for (size_t i = 1; i < n; i += 2) b[i] = static_cast<char>(0x3c + (b[i] & 3));
  return b;
}

class MountAdmin : public ::testing::Test {
 protected:
  void SetUp() override {
    QATQ_REQUIRE_MOUNT();
    ASSERT_TRUE(m_.Mkfs("--chunk-size " + std::to_string(kChunk)));
    ASSERT_TRUE(m_.Mount());
    work_ = m_.root() / "work";
    fs::create_directories(work_);
  }

  QatqfsMount m_;
  fs::path work_;
};

TEST_F(MountAdmin, ExportV3DecodesToTheFileBytes) {
  // Data, then a hole of two chunks, then a short tail.
  std::string data = TensorBytes(kChunk + 1000, 1);
  data.resize(3 * kChunk + 5000, '\0');
  std::string tail = TensorBytes(5000, 2);
  data.replace(3 * kChunk, tail.size(), tail);
  fs::create_directories(m_.path("d"));
  test::WriteFileOrDie(m_.path("d/t.bf16le"), data);

  const std::string out = (work_ / "t.qatc").string();
  Captured c = Export({m_.path("d/t.bf16le"), out});
  ASSERT_EQ(c.rc, kExitOk) << c.err;
  EXPECT_NE(c.out.find("0 re-encoded"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("holes"), std::string::npos) << c.out;
  std::string log;
  ASSERT_EQ(Qatq("decode " + ShellQuote(out) + " " + ShellQuote((work_ / "t.raw").string()), &log),
            0)
      << log;
  EXPECT_TRUE(test::ReadFileOrDie(work_ / "t.raw") == data);
  // The artefact is a plain v3 file of the file's dtype and chunk size.
  ASSERT_EQ(Qatq("inspect --json " + ShellQuote(out), &log), 0) << log;
  EXPECT_NE(log.find("\"chunk_elements\":32768"), std::string::npos) << log;

  const std::string out2 = (work_ / "t2.qatc").string();
  c = Export({m_.path("d/t.bf16le"), out2, "--format", "v2"});
  ASSERT_EQ(c.rc, kExitOk) << c.err;
  ASSERT_EQ(
      Qatq("decode " + ShellQuote(out2) + " " + ShellQuote((work_ / "t2.raw").string()), &log), 0)
      << log;
  EXPECT_TRUE(test::ReadFileOrDie(work_ / "t2.raw") == data);
}

TEST_F(MountAdmin, ExportReencodesOnlyChunksStoredWithAnotherDType) {
  const std::string data = TensorBytes(2 * kChunk + 64, 8);
  test::WriteFileOrDie(m_.path("w.f32le"), data);  // stored as f32
  ASSERT_EQ(
      test::RunCommand("setfattr -n user.qatq.dtype -v bf16 " + ShellQuote(m_.path("w.f32le"))), 0);
  const std::string out = (work_ / "w.qatc").string();
  Captured c = Export({m_.path("w.f32le"), out});
  ASSERT_EQ(c.rc, kExitOk) << c.err;
  EXPECT_NE(c.out.find("bf16, 3 chunks: 0 copied, 3 re-encoded"), std::string::npos) << c.out;
  std::string log;
  ASSERT_EQ(Qatq("decode " + ShellQuote(out) + " " + ShellQuote((work_ / "w.raw").string()), &log),
            0)
      << log;
  EXPECT_TRUE(test::ReadFileOrDie(work_ / "w.raw") == data);
}

TEST_F(MountAdmin, ExportFromAnUnmountedStore) {
  const std::string data = TensorBytes(2 * kChunk + 6, 3);
  test::WriteFileOrDie(m_.path("x.bf16le"), data);
  ASSERT_EQ(m_.Unmount(), 0);
  const std::string out = (work_ / "x.qatc").string();
  Captured c = Export({"--store", m_.store(), "/x.bf16le", out});
  ASSERT_EQ(c.rc, kExitOk) << c.err;
  std::string log;
  ASSERT_EQ(Qatq("decode " + ShellQuote(out) + " " + ShellQuote((work_ / "x.raw").string()), &log),
            0)
      << log;
  EXPECT_TRUE(test::ReadFileOrDie(work_ / "x.raw") == data);
  c = Export({"--store", m_.store(), "/missing", out});
  EXPECT_EQ(c.rc, kExitDataError);
  EXPECT_NE(c.err.find("not found"), std::string::npos) << c.err;
}

TEST_F(MountAdmin, ImportReadsBackIdentical) {
  const std::string data = TensorBytes(3 * kChunk + 222, 4);
  test::WriteFileOrDie(work_ / "in.bf16le", data);
  const std::string in = ShellQuote((work_ / "in.bf16le").string());
  std::string log;
  // Store-sized chunks (stored as they are), default chunks, and v2.
  ASSERT_EQ(Qatq("encode-chunked --dtype bf16 --max-values-per-chunk 32768 " + in + " " +
                     ShellQuote((work_ / "same.qatc").string()),
                 &log),
            0)
      << log;
  ASSERT_EQ(Qatq("encode-chunked --dtype bf16 --max-values-per-chunk 1000 " + in + " " +
                     ShellQuote((work_ / "other.qatc").string()),
                 &log),
            0)
      << log;
  ASSERT_EQ(Qatq("encode-chunked --dtype bf16 --format v2 " + in + " " +
                     ShellQuote((work_ / "v2.qatc").string()),
                 &log),
            0)
      << log;
  fs::create_directories(m_.path("imp"));
  // An existing target is replaced, keeping its permission bits.
  test::WriteFileOrDie(m_.path("imp/a"), "old");
  fs::permissions(m_.path("imp/a"), fs::perms(0640));
  Captured c = Import({(work_ / "same.qatc").string(), m_.path("imp/a")});
  ASSERT_EQ(c.rc, kExitOk) << c.err;
  EXPECT_NE(c.out.find("4 chunk records stored as they are"), std::string::npos) << c.out;
  c = Import({(work_ / "other.qatc").string(), m_.path("imp/b")});
  ASSERT_EQ(c.rc, kExitOk) << c.err;
  c = Import({(work_ / "v2.qatc").string(), m_.path("imp/c")});
  ASSERT_EQ(c.rc, kExitOk) << c.err;
  for (const char* name : {"imp/a", "imp/b", "imp/c"}) {
    EXPECT_TRUE(test::ReadFileOrDie(m_.path(name)) == data) << name;
  }
  EXPECT_EQ(fs::status(m_.path("imp/a")).permissions(), fs::perms(0640));
  std::string dtype;
  ASSERT_EQ(test::RunCommand("getfattr --only-values -n user.qatq.dtype " +
                                 ShellQuote(m_.path("imp/a")) + " 2>/dev/null",
                             &dtype),
            0);
  EXPECT_EQ(dtype, "bf16");
  // Nothing left behind: no temp files, and after unmount the store is clean.
  for (auto& e : fs::directory_iterator(m_.path("imp"))) {
    EXPECT_EQ(e.path().filename().string().find(".qatq-import"), std::string::npos) << e.path();
  }
  ASSERT_EQ(m_.Unmount(), 0);
  c = Fsck({m_.store()});
  EXPECT_EQ(c.rc, kFsckClean) << c.out << c.err;
}

TEST_F(MountAdmin, CorruptImportIsRejectedAndTheTargetUntouched) {
  const std::string data = TensorBytes(2 * kChunk, 5);
  test::WriteFileOrDie(work_ / "in.bf16le", data);
  std::string log;
  const std::string qatc = (work_ / "in.qatc").string();
  ASSERT_EQ(Qatq("encode-chunked --dtype bf16 --max-values-per-chunk 32768 " +
                     ShellQuote((work_ / "in.bf16le").string()) + " " + ShellQuote(qatc),
                 &log),
            0)
      << log;
  std::string bytes = test::ReadFileOrDie(qatc);
  bytes[bytes.size() / 2] ^= 0x01;
  test::WriteFileOrDie(qatc, bytes);
  test::WriteFileOrDie(m_.path("target"), "old contents");
  Captured c = Import({qatc, m_.path("target")});
  EXPECT_EQ(c.rc, kExitDataError);
  EXPECT_NE(c.err.find("nothing was written"), std::string::npos) << c.err;
  EXPECT_EQ(test::ReadFileOrDie(m_.path("target")), "old contents");
  size_t entries = 0;
  for (auto& e : fs::directory_iterator(m_.mnt())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
  c = Import({(work_ / "in.bf16le").string(), m_.path("target")});
  EXPECT_EQ(c.rc, kExitDataError);
  EXPECT_NE(c.err.find("not a QATC"), std::string::npos) << c.err;
}

TEST_F(MountAdmin, FlippedObjectByteGivesEioForItsRangeAndFsckNamesTheFile) {
  const std::string data = TensorBytes(3 * kChunk, 6);
  fs::create_directories(m_.path("models"));
  test::WriteFileOrDie(m_.path("models/w.bf16le"), data);
  ASSERT_EQ(m_.Unmount(), 0);  // drops the daemon's decoded-chunk cache
  const std::string hex = ChunkId::OfRaw(std::string_view(data).substr(kChunk, kChunk)).ToHex();
  const fs::path object = fs::path(m_.store()) / "chunks" / hex.substr(0, 2) / hex;
  ASSERT_TRUE(fs::exists(object)) << object;
  std::string rec = test::ReadFileOrDie(object);
  rec[rec.size() - 10] ^= 0x04;
  test::WriteFileOrDie(object, rec);
  ASSERT_TRUE(m_.Mount());

  int fd = ::open(m_.path("models/w.bf16le").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string buf(kChunk, '\0');
  errno = 0;
  EXPECT_EQ(::pread(fd, buf.data(), 4096, kChunk + 4096), -1);
  EXPECT_EQ(errno, EIO);
  for (size_t k : {0, 2}) {
    ASSERT_EQ(::pread(fd, buf.data(), kChunk, k * kChunk), static_cast<ssize_t>(kChunk));
    EXPECT_TRUE(buf == data.substr(k * kChunk, kChunk)) << "chunk " << k;
  }
  ::close(fd);

  // Mounted read-write: refused, unless asked for a read-only check.
  Captured c = Fsck({m_.store()});
  EXPECT_EQ(c.rc, kFsckOperationalError);
  EXPECT_NE(c.err.find("unmount it first"), std::string::npos) << c.err;
  c = Fsck({m_.mnt(), "--read-only"});  // the mount point names its store
  EXPECT_EQ(c.rc, kFsckUnrepaired) << c.out << c.err;
  EXPECT_NE(c.out.find("unrecoverable /models/w.bf16le"), std::string::npos) << c.out;
  // Export refuses to copy a corrupt record.
  c = Export({m_.path("models/w.bf16le"), (work_ / "w.qatc").string()});
  EXPECT_EQ(c.rc, kExitDataError);
  EXPECT_NE(c.err.find("corrupt"), std::string::npos) << c.err;
  EXPECT_FALSE(fs::exists(work_ / "w.qatc"));

  ASSERT_EQ(m_.Unmount(), 0);
  c = Fsck({m_.store()});
  EXPECT_EQ(c.rc, kFsckUnrepaired) << c.out << c.err;
  EXPECT_NE(c.out.find("unrecoverable /models/w.bf16le"), std::string::npos) << c.out;

  // A read-only mount gets a read-only check; repair is refused.
  ASSERT_TRUE(m_.Mount("ro"));
  c = Fsck({m_.store()});
  EXPECT_EQ(c.rc, kFsckUnrepaired) << c.out << c.err;
  EXPECT_NE(c.out.find("read-only check"), std::string::npos) << c.out;
  c = Fsck({m_.store(), "--repair"});
  EXPECT_EQ(c.rc, kFsckOperationalError);
  EXPECT_NE(c.err.find("mounted read-only"), std::string::npos) << c.err;
}

}  // namespace
}  // namespace qatq
