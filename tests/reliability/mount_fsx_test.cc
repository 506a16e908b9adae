// qatq-fsx self-tests (plain directory) and the fsx run on a real qatqfs
// mount with remounts (docs/RELIABILITY.md).
//
// Environment (long runs): QATQ_FSX_OPS (default 100000), QATQ_FSX_SEED
// (default 20261204), QATQ_FSX_REMOUNTS (default 4), QATQ_FSX_MAXLEN
// (default 8M), QATQ_FSX_TIMEOUT_S (default 480), QATQ_FSX_ARGS (extra
// qatq-fsx arguments, e.g. "--mapwrite").
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/reliability/mount_util.h"
#include "tests/testutil.h"

namespace qatq::test {
namespace {

namespace fs = std::filesystem;

uint64_t EnvOr(const char* name, uint64_t def) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : def;
}

std::string Fsx() { return ToolPath("qatq-fsx").string(); }

// Runs qatq-fsx with `args`; returns the exit code and the combined output.
int RunFsx(const std::vector<std::string>& args, std::string* out, int timeout_ms = 120000) {
  std::vector<std::string> argv = {Fsx()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunWithTimeout(argv, timeout_ms, out);
}

#define REQUIRE_FSX() \
  if (access(Fsx().c_str(), X_OK) != 0) GTEST_SKIP() << "qatq-fsx not built"

TEST(FsxSelfTest, PassesOnLocalDirectory) {
  REQUIRE_FSX();
  TempDir tmp;
  std::string out;
  int rc = RunFsx({"--file", (tmp.path() / "f").string(), "--ops", "3000", "--seed", "3",
                   "--maxlen", "4M", "--huge-max", "64G"},
                  &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("3000 ops ok"), std::string::npos) << out;
}

TEST(FsxSelfTest, DetectsInjectedCorruption) {
  REQUIRE_FSX();
  TempDir tmp;
  std::string out;
  int rc = RunFsx({"--file", (tmp.path() / "f").string(), "--ops", "2000", "--seed", "5",
                   "--maxlen", "2M", "--huge-max", "0", "--inject-corruption", "500"},
                  &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("mismatch at offset"), std::string::npos) << out;
  EXPECT_NE(out.find("last "), std::string::npos) << "no operation log tail:\n" << out;
}

TEST(FsxSelfTest, SameSeedSameOperations) {
  REQUIRE_FSX();
  TempDir tmp;
  auto run = [&](const char* seed) {
    std::string out;
    int rc = RunFsx({"--file", (tmp.path() / "f").string(), "--ops", "500", "--seed", seed,
                     "--maxlen", "1M", "-v"},
                    &out);
    EXPECT_EQ(rc, 0) << out;
    return out;
  };
  std::string a = run("11"), b = run("11"), c = run("12");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(FsxSelfTest, RemountCommandRunsBetweenOperations) {
  REQUIRE_FSX();
  TempDir tmp;
  fs::path marker = tmp.path() / "remounts";
  std::string out;
  int rc =
      RunFsx({"--file", (tmp.path() / "f").string(), "--ops", "1000", "--maxlen", "1M",
              "--remount-every", "250", "--remount-cmd", "echo x >> '" + marker.string() + "'"},
             &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(ReadFileOrDie(marker), "x\nx\nx\nx\n");
  rc = RunFsx({"--file", (tmp.path() / "g").string(), "--ops", "100", "--remount-every", "50",
               "--remount-cmd", "false"},
              &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("remount command failed"), std::string::npos) << out;
}

// The CI size: 100000 operations on an 8 MiB file in a store with 64 KiB
// chunks (every fourth write straddles a chunk boundary), remounting four
// times; every remount is a full unmount (daemon commits and exits 0) and
// a fresh daemon, after which fsx reads the whole file back.
TEST(MountFsx, RandomOperationsWithRemountsMatchModel) {
  QATQ_REQUIRE_MOUNT();
  const uint64_t ops = EnvOr("QATQ_FSX_OPS", 100000);
  const uint64_t seed = EnvOr("QATQ_FSX_SEED", 20261204);
  const uint64_t remounts = EnvOr("QATQ_FSX_REMOUNTS", 4);
  const std::string maxlen = std::getenv("QATQ_FSX_MAXLEN") ? std::getenv("QATQ_FSX_MAXLEN") : "8M";
  const int timeout_ms = static_cast<int>(EnvOr("QATQ_FSX_TIMEOUT_S", 480) * 1000);

  QatqfsMount m;
  std::string err;
  ASSERT_TRUE(m.Mkfs({"--chunk-size", "64K"}, &err)) << err;
  ASSERT_TRUE(m.Mount(&err)) << err;
  RemountServer server(&m, m.dir());
  std::vector<std::string> argv = {Fsx(),
                                   "--file",
                                   (m.mnt() / "fsx.bin").string(),
                                   "--ops",
                                   std::to_string(ops),
                                   "--seed",
                                   std::to_string(seed),
                                   "--maxlen",
                                   maxlen,
                                   "--maxop",
                                   "2M",
                                   "--progress",
                                   "10000"};
  // Extra qatq-fsx arguments for long runs, e.g. "--mapwrite --huge-max 4T".
  if (const char* extra = std::getenv("QATQ_FSX_ARGS")) {
    std::istringstream words(extra);
    for (std::string w; words >> w;) argv.push_back(w);
  }
  if (remounts > 0) {
    argv.insert(argv.end(), {"--remount-every", std::to_string(ops / (remounts + 1) + 1),
                             "--remount-cmd", server.Command()});
  }
  fs::path log = m.dir() / "fsx.log";
  pid_t pid = Spawn(argv, log);
  ASSERT_GT(pid, 0);
  int status = 0, served = 0;
  bool exited = server.Serve(pid, timeout_ms, &status, &served, &err);
  std::string fsx_out;
  ReadWholeFile(log, &fsx_out);
  if (fsx_out.size() > 12000) fsx_out = "..." + fsx_out.substr(fsx_out.size() - 12000);
  ASSERT_TRUE(exited) << "qatq-fsx did not finish within " << timeout_ms << " ms (hang?)\n"
                      << fsx_out << "\ndaemon log:\n"
                      << m.LogTail();
  EXPECT_TRUE(err.empty()) << err;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "qatq-fsx: " << DescribeStatus(status) << "\n"
      << fsx_out << "\ndaemon log:\n"
      << m.LogTail();
  EXPECT_EQ(served, static_cast<int>(remounts));
  std::cout << fsx_out.substr(
                   fsx_out.rfind("qatq-fsx:") == std::string::npos ? 0 : fsx_out.rfind("qatq-fsx:"))
            << " (" << served << " remounts)\n";
  // The file's chunks are all released when it is deleted.
  ASSERT_EQ(unlink((m.mnt() / "fsx.bin").c_str()), 0) << strerror(errno);
  ASSERT_TRUE(m.Unmount(&err)) << err;
  EXPECT_EQ(StoreStat(m.store(), "chunk_refs", &err), 0) << err;
  EXPECT_EQ(StoreStat(m.store(), "unique_chunks", &err), 0) << err;
}

}  // namespace
}  // namespace qatq::test
