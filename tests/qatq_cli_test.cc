// The qatq command line, end to end through the built binary (and once
// in-process through qatq_tools).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <string>

#include "tests/testutil.h"
#include "tools/cli.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out;  // stdout + stderr unless redirected by the command
};

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// Runs `qatq ARGS`, stderr captured into *err.
int Qatq(const std::string& args, std::string* err = nullptr, std::string* out = nullptr) {
  test::TempDir scratch;
  const fs::path errf = scratch.path() / "stderr";
  std::string cmd = Quote(test::BinaryPath("qatq").string()) + " " + args + " 2>" +
                    Quote(errf.string());
  std::string o;
  int rc = test::RunCommand(cmd, &o);
  if (out) *out = o;
  if (err) *err = test::ReadFileOrDie(errf);
  return rc;
}

// Files in `dir` other than the ones named.
std::vector<std::string> Leftovers(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class QatqCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::BinaryPath("qatq"))) GTEST_SKIP() << "qatq binary not built";
  }
  fs::path P(const std::string& name) const { return dir_.path() / name; }
  std::string Q(const std::string& name) const { return Quote(P(name).string()); }
  test::TempDir dir_;
};

TEST_F(QatqCli, GoldenFilesDecodeToTheirRawTwins) {
  QATQ_REQUIRE_SHARED(shared);
  const fs::path g = shared / "qatc-v2-golden";
  int n = 0;
  for (const char* sub : {"containers", "payloads"}) {
    for (const auto& e : fs::directory_iterator(g / sub)) {
      const std::string ext = e.path().extension().string();
      if (ext != ".qatc" && ext != ".qatq") continue;
      std::string err;
      int rc = Qatq("decode " + Quote(e.path().string()) + " " + Q("out.raw"), &err);
      if (e.path().filename() == "strategy00-f32.qatq") {
        EXPECT_EQ(rc, 1);
        EXPECT_NE(err.find("unsupported strategy 0"), std::string::npos) << err;
        EXPECT_FALSE(fs::exists(P("out.raw")));
        continue;
      }
      ASSERT_EQ(rc, 0) << e.path() << ": " << err;
      fs::path twin = e.path();
      if (ext == ".qatc") {
        twin.replace_extension("");
        twin += "le";
      } else {
        for (const char* s : {".f32le", ".f16le", ".bf16le"}) {
          fs::path t = e.path();
          t.replace_extension(s);
          if (fs::exists(t)) twin = t;
        }
      }
      EXPECT_TRUE(test::ReadFileOrDie(P("out.raw")) == test::ReadFileOrDie(twin)) << e.path();
      fs::remove(P("out.raw"));
      ++n;
    }
  }
  EXPECT_GE(n, 30);
}

TEST_F(QatqCli, InvalidFilesFailCleanlyAndLeaveOutputsAlone) {
  QATQ_REQUIRE_SHARED(shared);
  const std::map<std::string, std::string> expected = {
      {"bad-dtype-tag.qatc", "invalid dtype tag"},
      {"bad-magic.qatc", "bad magic"},
      {"chunk-length-overrun.qatc", "overruns"},
      {"empty-file.qatc", "empty file"},
      {"flipped-byte-aggregate-checksum.qatc", "aggregate checksum mismatch"},
      {"flipped-byte-chunk-checksum.qatc", "checksum mismatch in chunk 0"},
      {"mode-lossy.qatc", "unsupported mode 1"},
      {"reserved-nonzero.qatc", "reserved"},
      {"total-mismatch.qatc", "element total mismatch"},
      {"trailing-garbage.qatc", "trailing bytes after last chunk"},
      {"truncated-header.qatc", "truncated header"},
      {"truncated-last-byte.qatc", "overruns"},
      {"version-1.qatc", "unsupported container version 1"},
      {"version-3.qatc", "unsupported container version 3"},
      {"zero-chunks.qatc", "chunk count 0"},
  };
  for (const auto& e : fs::directory_iterator(shared / "qatc-v2-golden" / "invalid")) {
    const std::string name = e.path().filename().string();
    const std::string in = Quote(e.path().string());
    // No output file at all afterwards.
    std::string err;
    EXPECT_EQ(Qatq("decode " + in + " " + Q("new.raw"), &err), 1) << name;
    EXPECT_FALSE(fs::exists(P("new.raw"))) << name;
    // Exactly one line naming the file and the problem.
    ASSERT_FALSE(err.empty()) << name;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_EQ(err.rfind("qatq: " + e.path().string() + ": ", 0), 0u) << err;
    auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << name << ": " << err;
    EXPECT_NE(err.find(it->second), std::string::npos) << name << ": " << err;
    // An existing output is untouched, and no temp file is left behind.
    test::WriteFileOrDie(P("old.raw"), "precious");
    EXPECT_EQ(Qatq("decode " + in + " " + Q("old.raw")), 1) << name;
    EXPECT_EQ(test::ReadFileOrDie(P("old.raw")), "precious") << name;
    EXPECT_EQ(Qatq("convert --format v3 " + in + " " + Q("old.raw")), 1) << name;
    EXPECT_EQ(test::ReadFileOrDie(P("old.raw")), "precious") << name;
    EXPECT_EQ(Leftovers(dir_.path()), std::vector<std::string>{"old.raw"}) << name;
  }
}

TEST_F(QatqCli, EncodeDecodeRoundTripsInEveryFormat) {
  const std::string raw = test::RandomBytes(100001 * 2, 3);
  test::WriteFileOrDie(P("t.bf16le"), raw);
  std::string err;
  // Single payload, dtype from the suffix.
  ASSERT_EQ(Qatq("encode " + Q("t.bf16le") + " " + Q("t.qatq"), &err), 0) << err;
  ASSERT_EQ(Qatq("decode " + Q("t.qatq") + " " + Q("a.raw"), &err), 0) << err;
  EXPECT_TRUE(test::ReadFileOrDie(P("a.raw")) == raw);
  // v2 and v3 containers, options in any order.
  ASSERT_EQ(Qatq("encode-chunked --format v2 " + Q("t.bf16le") + " --max-values-per-chunk 4096 " +
                     Q("t.v2") + " --threads 2 --dtype bf16 --mode qatq-exact",
                 &err),
            0)
      << err;
  ASSERT_EQ(Qatq("encode-chunked " + Q("t.bf16le") + " " + Q("t.v3"), &err), 0) << err;
  for (const char* f : {"t.v2", "t.v3"}) {
    ASSERT_EQ(Qatq("decode --threads 1 " + Q(f) + " " + Q("b.raw"), &err), 0) << err;
    EXPECT_TRUE(test::ReadFileOrDie(P("b.raw")) == raw) << f;
  }
  std::string out;
  ASSERT_EQ(Qatq("inspect " + Q("t.v2"), &err, &out), 0) << err;
  EXPECT_NE(out.find("qatc-v2"), std::string::npos);
  EXPECT_NE(out.find("chunks:      25"), std::string::npos) << out;
  ASSERT_EQ(Qatq("inspect --json " + Q("t.v3"), &err, &out), 0) << err;
  EXPECT_NE(out.find("\"format\":\"qatc-v3\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"elements\":100001"), std::string::npos) << out;
  ASSERT_EQ(Qatq("inspect --json " + Q("t.qatq"), &err, &out), 0) << err;
  EXPECT_NE(out.find("\"format\":\"qatq-payload\""), std::string::npos) << out;
}

// Weight-like bf16 (normal values): fields chunks, whose layout and stream
// coders inspect names per chunk.
TEST_F(QatqCli, InspectNamesEachChunksLayoutAndStreams) {
  test::WriteFileOrDie(P("w.bf16le"), test::NormalBf16(100000, 0.02f, 5));
  std::string err, out;
  ASSERT_EQ(Qatq("encode-chunked " + Q("w.bf16le") + " " + Q("w.v3"), &err), 0) << err;
  ASSERT_EQ(Qatq("inspect --json " + Q("w.v3"), &err, &out), 0) << err;
  EXPECT_NE(out.find("\"strategy_name\":\"fields\",\"layout\":\"none/"), std::string::npos)
      << out;
  ASSERT_EQ(Qatq("inspect " + Q("w.v3"), &err, &out), 0) << err;
  // Exponents entropy-coded, sign and mantissa stored raw.
  EXPECT_NE(out.find(" rans-o"), std::string::npos) << out;
  EXPECT_NE(out.find(", raw 65536"), std::string::npos) << out;
}

TEST_F(QatqCli, ConvertsBetweenV2AndV3Losslessly) {
  const std::string raw = test::RandomBytes(50000 * 4, 8);
  test::WriteFileOrDie(P("t.f32le"), raw);
  std::string err;
  ASSERT_EQ(Qatq("encode-chunked --format v2 --max-values-per-chunk 5000 " + Q("t.f32le") + " " +
                     Q("t.v2"),
                 &err),
            0)
      << err;
  ASSERT_EQ(Qatq("convert " + Q("t.v2") + " " + Q("t.v3") + " --format v3", &err), 0) << err;
  ASSERT_EQ(Qatq("convert --format v2 " + Q("t.v3") + " " + Q("t2.v2"), &err), 0) << err;
  std::string out;
  ASSERT_EQ(Qatq("inspect --json " + Q("t.v3"), &err, &out), 0);
  EXPECT_NE(out.find("\"chunk_elements\":5000"), std::string::npos) << out;  // kept
  ASSERT_EQ(Qatq("decode " + Q("t2.v2") + " " + Q("c.raw"), &err), 0) << err;
  EXPECT_TRUE(test::ReadFileOrDie(P("c.raw")) == raw);
  EXPECT_EQ(test::ReadFileOrDie(P("t2.v2")), test::ReadFileOrDie(P("t.v2")));
}

// A random 32 KiB block repeated: only the LZ passes (effort >= 4) see it.
TEST_F(QatqCli, EffortChoosesTheEncoderAndConvertHonoursIt) {
  const std::string block = test::RandomBytes(32768, 21);
  std::string raw;
  for (int i = 0; i < 16; ++i) raw += block;
  test::WriteFileOrDie(P("t.bf16le"), raw);
  std::string err;
  ASSERT_EQ(Qatq("encode-chunked --effort 0 " + Q("t.bf16le") + " " + Q("e0"), &err), 0) << err;
  ASSERT_EQ(Qatq("encode-chunked " + Q("t.bf16le") + " " + Q("e5"), &err), 0) << err;
  ASSERT_EQ(Qatq("convert --format v3 --effort 0 " + Q("e5") + " " + Q("c0"), &err), 0) << err;
  for (const char* f : {"e0", "e5", "c0"}) {
    ASSERT_EQ(Qatq("decode " + Q(f) + " " + Q("back"), &err), 0) << err;
    EXPECT_TRUE(test::ReadFileOrDie(P("back")) == raw) << f;
  }
  const auto e0 = fs::file_size(P("e0")), e5 = fs::file_size(P("e5"));
  EXPECT_GT(e0, raw.size() * 9 / 10);
  EXPECT_LT(e5, raw.size() * 3 / 10);  // each 128 KiB chunk holds the block 4 times
  EXPECT_EQ(test::ReadFileOrDie(P("c0")), test::ReadFileOrDie(P("e0")));
}

TEST_F(QatqCli, StdinAndStdout) {
  const std::string raw = test::RandomBytes(3000 * 2, 4);
  test::WriteFileOrDie(P("t.raw"), raw);
  std::string err;
  std::string cmd = "cat " + Q("t.raw") + " | " + Quote(test::BinaryPath("qatq").string()) +
                    " encode-chunked --format v2 --dtype f16 - - | " +
                    Quote(test::BinaryPath("qatq").string()) + " decode - - > " + Q("back.raw");
  ASSERT_EQ(test::RunCommand(cmd), 0);
  EXPECT_TRUE(test::ReadFileOrDie(P("back.raw")) == raw);
}

TEST_F(QatqCli, UsageErrorsExitTwo) {
  test::WriteFileOrDie(P("t.bf16le"), "abcd");
  test::WriteFileOrDie(P("noext"), "abcd");
  const std::string in = Q("t.bf16le"), out = Q("o");
  for (const std::string& args : std::vector<std::string>
       {std::string(""), std::string("frobnicate"), "encode " + in,
        "encode --bogus " + in + " " + out, "encode --dtype f64 " + in + " " + out,
        "encode " + Q("noext") + " " + out, "encode --mode lossy " + in + " " + out,
        "encode-chunked --format v4 " + in + " " + out,
        "encode-chunked --max-values-per-chunk 0 " + in + " " + out,
        "encode-chunked --threads x " + in + " " + out, "convert " + in + " " + out,
        "decode " + in, std::string("inspect"), "encode --stride-elements " + in + " " + out,
        "encode-chunked --effort 10 " + in + " " + out,
        "encode-chunked --format v2 --effort 0 " + in + " " + out,
        "convert --format v2 --effort 0 " + in + " " + out}) {
    std::string err;
    EXPECT_EQ(Qatq(args, &err), 2) << args << ": " << err;
    EXPECT_LE(std::count(err.begin(), err.end(), '\n'), 12) << args;
    EXPECT_FALSE(fs::exists(P("o"))) << args;
  }
}

TEST_F(QatqCli, HelpAndVersion) {
  std::string out;
  for (const char* c : {"encode", "encode-chunked", "decode", "convert", "inspect"}) {
    EXPECT_EQ(Qatq(std::string(c) + " --help", nullptr, &out), 0) << c;
    EXPECT_NE(out.find("usage: qatq " + std::string(c)), std::string::npos) << out;
  }
  EXPECT_EQ(Qatq("--help", nullptr, &out), 0);
  EXPECT_EQ(Qatq("--version", nullptr, &out), 0);
  EXPECT_EQ(out.rfind("qatq ", 0), 0u);
}

TEST_F(QatqCli, BadDataExitsOne) {
  std::string err;
  // Odd-size input.
  test::WriteFileOrDie(P("odd.bf16le"), "abc");
  EXPECT_EQ(Qatq("encode " + Q("odd.bf16le") + " " + Q("o"), &err), 1);
  EXPECT_NE(err.find("not a multiple of 2"), std::string::npos) << err;
  EXPECT_NE(err.find("odd.bf16le"), std::string::npos) << err;
  EXPECT_EQ(Qatq("encode-chunked --format v2 " + Q("odd.bf16le") + " " + Q("o"), &err), 1);
  test::WriteFileOrDie(P("odd.f32le"), "abcdef");
  EXPECT_EQ(Qatq("encode-chunked " + Q("odd.f32le") + " " + Q("o"), &err), 1);
  EXPECT_NE(err.find("not a multiple of 4"), std::string::npos) << err;
  // Missing input; output in a missing directory.
  EXPECT_EQ(Qatq("decode " + Q("missing") + " " + Q("o"), &err), 1);
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
  test::WriteFileOrDie(P("t.bf16le"), "abcd");
  EXPECT_EQ(Qatq("encode " + Q("t.bf16le") + " " + Q("nodir/o"), &err), 1);
  // Not a codec file.
  EXPECT_EQ(Qatq("decode " + Q("t.bf16le") + " " + Q("o"), &err), 1);
  EXPECT_NE(err.find("bad magic"), std::string::npos) << err;
  EXPECT_EQ(Qatq("inspect " + Q("t.bf16le"), &err), 1);
  EXPECT_FALSE(fs::exists(P("o")));
  // v2 cannot hold bytes.
  EXPECT_EQ(Qatq("encode-chunked --format v2 --dtype bytes " + Q("t.bf16le") + " " + Q("o"), &err),
            2);
}

TEST_F(QatqCli, EncodeOverwritesAtomicallyAndKeepsNoTempFiles) {
  test::WriteFileOrDie(P("t.f16le"), test::RandomBytes(2000, 1));
  test::WriteFileOrDie(P("out.qatq"), "old");
  std::string err;
  ASSERT_EQ(Qatq("encode " + Q("t.f16le") + " " + Q("out.qatq"), &err), 0) << err;
  EXPECT_NE(test::ReadFileOrDie(P("out.qatq")), "old");
  EXPECT_EQ(Leftovers(dir_.path()), (std::vector<std::string>{"out.qatq", "t.f16le"}));
  struct stat st;
  ASSERT_EQ(stat(P("out.qatq").c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 0044, 0u);  // not the 0600 of a raw mkstemp file (umask 022)
}

TEST(QatqCliInProcess, RunQatqReturnsExitCodes) {
  EXPECT_EQ(RunQatq({"--version"}), kExitOk);
  EXPECT_EQ(RunQatq({"nope"}), kExitUsage);
  test::TempDir dir;
  const std::string in = (dir.path() / "x.f32le").string();
  test::WriteFileOrDie(in, std::string(4000, '\0'));
  const std::string out = (dir.path() / "x.qatc").string();
  EXPECT_EQ(RunQatq({"encode-chunked", "--format", "v2", "--quiet", in, out}), kExitOk);
  EXPECT_EQ(RunQatq({"decode", out, (dir.path() / "y").string()}), kExitOk);
  EXPECT_EQ(test::ReadFileOrDie(dir.path() / "y"), std::string(4000, '\0'));
  EXPECT_EQ(RunQatq({"decode", in, (dir.path() / "z").string()}), kExitDataError);
}

}  // namespace
}  // namespace qatq
