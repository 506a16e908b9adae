// The systemd units: `systemd-analyze verify` accepts them, and, since CI
// has no systemd as PID 1, the template service's ExecStartPre/ExecStart/
// ExecStop lines are run by hand with the unit's own substitutions: the mount
// comes up, a write through it survives the stop, and a restart serves it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>

#include "tests/mount/fixture.h"
#include "tests/testutil.h"

namespace qatq::test {
namespace {

namespace stdfs = std::filesystem;

std::string UnitSource(const std::string& name) {
  return ReadFileOrDie(stdfs::path(QATQ_SOURCE_DIR) / "systemd" / name);
}

// The template as `cmake --install` writes it, naming the daemon in the build tree.
std::string ConfiguredService() {
  std::string s = UnitSource("qatqfs@.service");
  s = std::regex_replace(s, std::regex("@CMAKE_INSTALL_FULL_BINDIR@"),
                         BinaryPath("qatqfs").parent_path().string());
  return std::regex_replace(s, std::regex("@CMAKE_INSTALL_FULL_DATADIR@"), "/usr/local/share");
}

// Value of the first `key=` line of a unit.
std::string UnitLine(const std::string& unit, const std::string& key) {
  std::smatch m;
  std::regex re("(^|\n)" + key + "=([^\n]*)");
  return std::regex_search(unit, m, re) ? m[2].str() : std::string();
}

// Expands %f, %i and ${VAR} as systemd would for this instance.
std::string Expand(std::string cmd, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars) {
    size_t pos;
    while ((pos = cmd.find(k)) != std::string::npos) cmd.replace(pos, k.size(), v);
  }
  if (!cmd.empty() && cmd[0] == '-') cmd.erase(0, 1);  // "ignore failure" prefix
  return cmd;
}

TEST(SystemdUnits, VerifyCleanly) {
  if (RunCommand("command -v systemd-analyze >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "systemd-analyze not installed";
  if (!stdfs::exists(BinaryPath("qatqfs"))) GTEST_SKIP() << "qatqfs not built";
  TempDir dir;
  WriteFileOrDie(dir.path() / "qatqfs@mnt-tensors.service", ConfiguredService());
  WriteFileOrDie(dir.path() / "mnt-tensors.mount", UnitSource("mnt-tensors.mount"));
  for (const char* unit : {"qatqfs@mnt-tensors.service", "mnt-tensors.mount"}) {
    std::string out;
    int rc = RunCommand("cd " + ShellQuote(dir.path().string()) +
                            " && systemd-analyze verify --man=no ./" + unit + " 2>&1",
                        &out);
    EXPECT_EQ(rc, 0) << unit << ": " << out;
    EXPECT_EQ(out, "") << unit;
  }
}

TEST(MountSystemdUnit, ExecLinesMountCommitOnStopAndRemount) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;  // only for its temp dir, store path and teardown
  ASSERT_TRUE(m.Mkfs());
  const std::string unit = ConfiguredService();
  std::map<std::string, std::string> vars = {
      {"%f", m.mnt()},
      {"%i", "instance"},
      {"${QATQFS_STORE}", m.store()},
      {"${QATQFS_OPTIONS}", UnitLine(unit, "Environment").substr(strlen("QATQFS_OPTIONS="))},
  };
  const std::string pre = Expand(UnitLine(unit, "ExecStartPre"), vars);
  const std::string start = Expand(UnitLine(unit, "ExecStart"), vars);
  const std::string stop = Expand(UnitLine(unit, "ExecStop"), vars);
  ASSERT_NE(start.find(" -f"), std::string::npos) << "the service runs the daemon in the foreground";

  auto run_service = [&]() -> pid_t {
    EXPECT_EQ(RunCommand(pre), 0) << pre;
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", ("exec " + start + " >/dev/null 2>&1").c_str(), (char*)nullptr);
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!IsQatqfsMounted(m.mnt()) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return pid;
  };
  auto stop_service = [&](pid_t pid) {
    EXPECT_EQ(RunCommand("timeout 20 " + stop), 0) << stop;
    int st = -1;
    for (int i = 0; i < 1500 && waitpid(pid, &st, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (kill(pid, 0) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      ADD_FAILURE() << "daemon did not exit after ExecStop";
    }
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "exit status " << st;
  };

  std::string data = RandomBytes(3 << 20, 5);
  pid_t pid = run_service();
  ASSERT_TRUE(IsQatqfsMounted(m.mnt())) << "ExecStart did not mount: " << start;
  WriteFileOrDie(m.path("kv.bf16le"), data);
  stop_service(pid);
  EXPECT_FALSE(IsQatqfsMounted(m.mnt()));

  pid = run_service();
  ASSERT_TRUE(IsQatqfsMounted(m.mnt()));
  EXPECT_TRUE(ReadFileOrDie(m.path("kv.bf16le")) == data) << "content changed across stop/start";
  stop_service(pid);
}

}  // namespace
}  // namespace qatq::test
