// The qatq progress bar (tools/cli_io.h Progress): drawn on stderr with
// throughput and ETA when stderr is a terminal, never on a pipe or a file,
// never with --quiet. The terminal is a pseudo-terminal from forkpty(3);
// QATQ_PROGRESS_DELAY_MS=0 makes the bar appear from the first block of
// work, so the tests do not depend on how fast the machine is.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/testutil.h"

extern char** environ;

namespace qatq {
namespace {

namespace fs = std::filesystem;

struct PtyRun {
  int exit_status = -1;  // -1: did not exit normally
  std::string terminal;  // everything written to the terminal (stderr)
};

// Runs `args` (args[0] is the binary) with stderr, and stdin, on a new
// pseudo-terminal and stdout on /dev/null, with `env_extra` added to the
// environment.
PtyRun RunOnPty(const std::vector<std::string>& args, const std::vector<std::string>& env_extra) {
  PtyRun result;
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> env_strings(env_extra);
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args_copy(args);
  for (auto& s : args_copy) argv.push_back(s.data());
  argv.push_back(nullptr);
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devnull < 0) {
    ADD_FAILURE() << "open /dev/null: " << strerror(errno);
    return result;
  }

  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) {
    ADD_FAILURE() << "forkpty: " << strerror(errno);
    close(devnull);
    return result;
  }
  if (pid == 0) {
    dup2(devnull, STDOUT_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(devnull);
  char buf[4096];
  for (;;) {
    ssize_t n = read(master, buf, sizeof buf);
    if (n > 0) {
      result.terminal.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EIO once the child has closed the terminal, or EOF
    }
  }
  close(master);
  int st;
  if (waitpid(pid, &st, 0) == pid && WIFEXITED(st)) result.exit_status = WEXITSTATUS(st);
  return result;
}

const std::vector<std::string> kDrawAtOnce = {"QATQ_PROGRESS_DELAY_MS=0"};

class CliProgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(test::BinaryPath("qatq"))) GTEST_SKIP() << "qatq binary not built";
    int probe = posix_openpt(O_RDWR | O_NOCTTY);
    if (probe < 0) GTEST_SKIP() << "no pseudo-terminals here (/dev/ptmx): " << strerror(errno);
    close(probe);
    input_ = dir_.path() / "in.bf16le";
    // 4 MiB: 32 chunks of 65536 bf16 elements, so the bar is updated many
    // times. Random bytes encode fast and decode to themselves.
    raw_ = test::RandomBytes(4 << 20, 7);
    test::WriteFileOrDie(input_, raw_);
  }

  std::string Qatq() const { return test::BinaryPath("qatq").string(); }

  test::TempDir dir_;
  fs::path input_;
  std::string raw_;
};

// The bar of `label` as it ends: at 100 %, with a rate and an ETA, erased.
void ExpectCompleteBar(const std::string& terminal, const std::string& label) {
  EXPECT_NE(terminal.find("\rqatq: " + label + " ["), std::string::npos) << terminal;
  EXPECT_NE(terminal.find("[####################] 100.0%"), std::string::npos) << terminal;
  EXPECT_NE(terminal.find(" MB/s ETA "), std::string::npos) << terminal;
  // Erased when done: carriage return, erase to end of line.
  ASSERT_GE(terminal.size(), 4u);
  EXPECT_EQ(terminal.substr(terminal.size() - 4), "\r\033[K") << terminal;
}

TEST_F(CliProgressTest, EncodeChunkedDrawsBarWithThroughputAndEtaOnATerminal) {
  const fs::path out = dir_.path() / "out.qatc";
  PtyRun r = RunOnPty({Qatq(), "encode-chunked", "--threads", "1", input_.string(), out.string()},
                      kDrawAtOnce);
  EXPECT_EQ(r.exit_status, 0) << r.terminal;
  ExpectCompleteBar(r.terminal, "encode");
  EXPECT_TRUE(fs::exists(out));
}

TEST_F(CliProgressTest, EncodeChunkedV2DrawsBarOnATerminal) {
  const fs::path out = dir_.path() / "out2.qatc";
  PtyRun r = RunOnPty(
      {Qatq(), "encode-chunked", "--format", "v2", "--threads", "1", input_.string(), out.string()},
      kDrawAtOnce);
  EXPECT_EQ(r.exit_status, 0) << r.terminal;
  ExpectCompleteBar(r.terminal, "encode");
}

TEST_F(CliProgressTest, DecodeDrawsBarWithThroughputAndEtaOnATerminal) {
  const fs::path packed = dir_.path() / "packed.qatc";
  const fs::path back = dir_.path() / "back.bf16le";
  ASSERT_EQ(test::RunCommand("'" + Qatq() + "' encode-chunked --quiet '" + input_.string() + "' '" +
                             packed.string() + "'"),
            0);
  PtyRun r = RunOnPty({Qatq(), "decode", packed.string(), back.string()}, kDrawAtOnce);
  EXPECT_EQ(r.exit_status, 0) << r.terminal;
  ExpectCompleteBar(r.terminal, "decode");
  EXPECT_TRUE(test::ReadFileOrDie(back) == raw_);
}

TEST_F(CliProgressTest, ConvertDrawsBarOnATerminal) {
  const fs::path v2 = dir_.path() / "v2.qatc";
  ASSERT_EQ(test::RunCommand("'" + Qatq() + "' encode-chunked --quiet --format v2 '" +
                             input_.string() + "' '" + v2.string() + "'"),
            0);
  PtyRun r = RunOnPty(
      {Qatq(), "convert", "--format", "v3", v2.string(), (dir_.path() / "v3.qatc").string()},
      kDrawAtOnce);
  EXPECT_EQ(r.exit_status, 0) << r.terminal;
  ExpectCompleteBar(r.terminal, "convert");
}

TEST_F(CliProgressTest, QuietDrawsNothingOnATerminal) {
  const fs::path out = dir_.path() / "out.qatc";
  PtyRun r =
      RunOnPty({Qatq(), "encode-chunked", "--quiet", input_.string(), out.string()}, kDrawAtOnce);
  EXPECT_EQ(r.exit_status, 0) << r.terminal;
  EXPECT_EQ(r.terminal, "");
  r = RunOnPty({Qatq(), "decode", "-q", out.string(), (dir_.path() / "back").string()},
               kDrawAtOnce);
  EXPECT_EQ(r.exit_status, 0) << r.terminal;
  EXPECT_EQ(r.terminal, "");
}

// The control for the tests above: the same commands, with stderr a pipe
// or a file instead of a terminal, print nothing at all.
TEST_F(CliProgressTest, NothingOnStderrWhenItIsAPipeOrAFile) {
  const std::string env = "QATQ_PROGRESS_DELAY_MS=0 ";
  const fs::path out = dir_.path() / "out.qatc";
  const fs::path err_file = dir_.path() / "stderr.txt";
  ASSERT_EQ(test::RunCommand(env + "'" + Qatq() + "' encode-chunked '" + input_.string() + "' '" +
                             out.string() + "' 2>'" + err_file.string() + "'"),
            0);
  EXPECT_EQ(test::ReadFileOrDie(err_file), "");
  // stdout to /dev/null, stderr into the pipe RunCommand reads.
  std::string piped = "unset";
  ASSERT_EQ(test::RunCommand(env + "'" + Qatq() + "' decode '" + out.string() + "' '" +
                                 (dir_.path() / "back").string() + "' 2>&1 >/dev/null",
                             &piped),
            0);
  EXPECT_EQ(piped, "");
}

}  // namespace
}  // namespace qatq
