// Everyday tools on a qatqfs mount: cp/cmp of the shared corpus, rsync,
// tar, numpy (save/load/memmap), sha256 across remounts, qatqfs stats.
#include <string>

#include "tests/mount/fixture.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

using test::QatqfsMount;
using test::RunCommand;
using test::ShellQuote;

class MountToolsTest : public test::MountedStoreTest {
 protected:
  // Runs `cmd` and expects exit 0; returns its output (stderr included).
  std::string Sh(const std::string& cmd) {
    std::string out;
    int rc = RunCommand("(" + cmd + ") 2>&1", &out);
    EXPECT_EQ(rc, 0) << cmd << "\n" << out;
    return out;
  }
};

TEST_F(MountToolsTest, CopyCorpusThenCompareAndSha256AcrossRemount) {
  QATQ_REQUIRE_SHARED(shared);
  std::string corpus = ShellQuote((shared / "corpus").string());
  std::string mnt = ShellQuote(m_->mnt());
  Sh("cd " + corpus + " && for f in *; do [ -f \"$f\" ] || continue; cp \"$f\" " + mnt +
     "/ && cmp \"$f\" " + mnt + "/\"$f\" || exit 1; done");
  std::string before = Sh("cd " + mnt + " && sha256sum * | sort");
  std::string expect =
      Sh("cd " + corpus + " && for f in *; do [ -f \"$f\" ] && sha256sum \"$f\"; done | sort");
  EXPECT_EQ(before, expect);
  Remount();
  EXPECT_EQ(Sh("cd " + mnt + " && sha256sum * | sort"), expect);
  // Name hints chose the dtypes.
  EXPECT_EQ(Sh("getfattr --absolute-names --only-values -n user.qatq.dtype " + mnt +
               "/llm-stories260k-weights.bf16le"),
            "bf16");
  std::string stats = Sh(ShellQuote(test::BinaryPath("qatqfs").string()) + " stats " + mnt);
  EXPECT_NE(stats.find("Processed"), std::string::npos) << stats;
  std::string json =
      Sh(ShellQuote(test::BinaryPath("qatqfs").string()) + " stats " + mnt + " --json");
  EXPECT_NE(json.find("\"stored_bytes\""), std::string::npos) << json;
}

TEST_F(MountToolsTest, RsyncInAndOutThenNothingToTransfer) {
  std::string src = (m_->root() / "src").string();
  std::string out = (m_->root() / "out").string();
  Sh("mkdir -p " + src + "/sub/deeper && head -c 3000000 /dev/urandom > " + src +
     "/sub/rand.bin && seq 1 200000 > " + src + "/numbers.txt && ln " + src + "/numbers.txt " +
     src + "/hardlink.txt && ln -s sub/rand.bin " + src +
     "/link && setfattr -n user.tag -v hello " + src + "/numbers.txt && chmod 0640 " + src +
     "/sub/rand.bin && touch -d 2001-02-03 " + src + "/sub/deeper");
  std::string mnt = ShellQuote(m_->mnt());
  Sh("rsync -aHAX " + src + "/ " + mnt + "/tree/");
  Sh("rsync -aHAX " + mnt + "/tree/ " + out + "/");
  Sh("diff -r " + src + " " + out);
  EXPECT_EQ(Sh("getfattr --absolute-names --only-values -n user.tag " + out + "/numbers.txt"),
            "hello");
  EXPECT_EQ(Sh("stat -c %h " + out + "/hardlink.txt"), "2\n");
  std::string again = Sh("rsync -aHAX --itemize-changes " + src + "/ " + mnt + "/tree/");
  EXPECT_EQ(again, "") << "second rsync transferred something";
  Remount();
  again = Sh("rsync -aHAX --itemize-changes " + src + "/ " + mnt + "/tree/");
  EXPECT_EQ(again, "") << "rsync after remount transferred something";
}

TEST_F(MountToolsTest, TarRoundTrip) {
  std::string src = (m_->root() / "src").string();
  Sh("mkdir -p " + src + "/a/b && head -c 2500000 /dev/urandom > " + src +
     "/a/b/r && seq 1 100000 > " + src + "/a/n && ln -s b/r " + src + "/a/l");
  std::string mnt = ShellQuote(m_->mnt());
  Sh("tar -C " + src + " -cf - . | tar -C " + mnt + " -xf -");
  std::string back = (m_->root() / "back").string();
  Sh("mkdir -p " + back + " && tar -C " + mnt + " -cf - . | tar -C " + back + " -xf -");
  Sh("diff -r " + src + " " + back);
}

TEST_F(MountToolsTest, NumpySaveLoadAndMemmap) {
  if (RunCommand("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with numpy not available";
  }
  std::string script = (m_->root() / "np.py").string();
  test::WriteFileOrDie(script, R"PY(
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
a = rng.standard_normal((512, 1024)).astype(np.float32)
np.save(d + "/a.npy", a)
b = np.load(d + "/a.npy")
assert np.array_equal(a, b)
h = a.astype(np.float16)
h.tofile(d + "/h.f16")
m = np.memmap(d + "/h.f16", dtype=np.float16, mode="r", shape=h.shape)
idx = rng.integers(0, h.shape[0], 200)
for i in idx:
    assert np.array_equal(m[i], h[i])
w = np.memmap(d + "/w.bin", dtype=np.float32, mode="w+", shape=(300000,))
w[:] = np.arange(300000, dtype=np.float32)
w.flush()
del w
r = np.fromfile(d + "/w.bin", dtype=np.float32)
assert np.array_equal(r, np.arange(300000, dtype=np.float32))
print("ok")
)PY");
  EXPECT_EQ(Sh("/usr/bin/python3 " + script + " " + ShellQuote(m_->mnt())), "ok\n");
  Remount();
  EXPECT_EQ(Sh("/usr/bin/python3 -c \"import numpy as np; a=np.load('" + m_->mnt() +
               "/a.npy'); print(a.shape)\""),
            "(512, 1024)\n");
}

}  // namespace
}  // namespace qatq
