// The manual pages in docs/man: they render without a single groff warning,
// and they name every command and option the binaries' --help prints, so a
// new command or option cannot ship without its page being updated.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/testutil.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;

fs::path ManDir() { return fs::path(QATQ_SOURCE_DIR) / "docs" / "man"; }


bool HaveGroff() { return test::RunCommand("command -v groff >/dev/null 2>&1") == 0; }

// Runs groff as man(1) would for a lint (-ww: all warnings, -z: no output)
// in `cwd`; returns everything it printed on stderr, or why it failed.
std::string GroffDiagnostics(const fs::path& page, const fs::path& cwd) {
  std::string err;
  int rc = test::RunCommand("cd " + test::ShellQuote(cwd.string()) + " && groff -man -ww -z -Tutf8 " +
                                test::ShellQuote(page.string()) + " 2>&1 >/dev/null",
                            &err);
  if (rc != 0) err += "\n(groff exit status " + std::to_string(rc) + ")";
  return err;
}

// The page's text with the roff escapes it uses undone, so "\-\-json"
// matches "--json". Names are looked up in the source rather than in the
// rendered text, which hyphenates and breaks lines.
std::string PageText(const std::string& name) {
  std::string src = test::ReadFileOrDie(ManDir() / name);
  std::string out;
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] != '\\' || i + 1 >= src.size()) {
      out += src[i];
      continue;
    }
    char c = src[++i];
    if (c == '-') {
      out += '-';
    } else if (c == 'e') {
      out += '\\';
    } else if (c == 'f' && i + 1 < src.size()) {
      ++i;  // font change: \fB, \fI, \fR, \fP
    } else if (c == '(' && i + 2 < src.size()) {
      out += src.substr(i + 1, 2) == "aq" ? "'" : "?";
      i += 2;
    }
    // \& \| \c and others print nothing that matters here.
  }
  return out;
}

std::string Help(const std::string& binary, const std::string& args) {
  std::string out;
  int rc = test::RunCommand(test::ShellQuote(test::BinaryPath(binary).string()) + " " + args + " 2>&1", &out);
  EXPECT_EQ(rc, 0) << binary << " " << args << ": " << out;
  return out;
}

// Options in a --help text: "--name" and "-x" words, and the "name=" and
// snake_case mount options of "-o name=..." lines.
std::set<std::string> OptionsIn(const std::string& help) {
  std::set<std::string> opts;
  static const std::regex kFlag(R"((?:^|[\s\[(|])(--?[a-z][a-z0-9-]*))");
  for (std::sregex_iterator it(help.begin(), help.end(), kFlag), end; it != end; ++it) {
    opts.insert((*it)[1]);
  }
  static const std::regex kMountOpt(R"(-o ([a-z_]+))");
  for (std::sregex_iterator it(help.begin(), help.end(), kMountOpt), end; it != end; ++it) {
    opts.insert((*it)[1]);
  }
  static const std::regex kSnake(R"(\b([a-z]+_[a-z_]+)\b)");
  for (std::sregex_iterator it(help.begin(), help.end(), kSnake), end; it != end; ++it) {
    opts.insert((*it)[1]);
  }
  return opts;
}

#define REQUIRE_BINARY(name)                                                  \
  if (!fs::exists(test::BinaryPath(name))) GTEST_SKIP() << name " not built"; \
  static_assert(true)

TEST(ManPages, RenderWithoutWarnings) {
  if (!HaveGroff()) GTEST_SKIP() << "groff not installed";
  for (const char* page : {"qatq.1", "qatqfs.8"}) {
    SCOPED_TRACE(page);
    EXPECT_EQ(GroffDiagnostics(ManDir() / page, ManDir()), "");
  }
}

// The stub must resolve the way man(1) resolves it: relative to the root of
// a man hierarchy (man8/qatqfs.8), as installed.
TEST(ManPages, MountHelperPageIsAStubOfQatqfs) {
  EXPECT_EQ(test::ReadFileOrDie(ManDir() / "mount.fuse.qatqfs.8"), ".so man8/qatqfs.8\n");
  if (!HaveGroff()) GTEST_SKIP() << "groff not installed";
  test::TempDir root;
  fs::create_directory(root.path() / "man8");
  fs::copy_file(ManDir() / "qatqfs.8", root.path() / "man8" / "qatqfs.8");
  EXPECT_EQ(GroffDiagnostics(ManDir() / "mount.fuse.qatqfs.8", root.path()), "");
  std::string text;
  ASSERT_EQ(
      test::RunCommand("cd " + test::ShellQuote(root.path().string()) + " && groff -man -Tascii " +
                           test::ShellQuote((ManDir() / "mount.fuse.qatqfs.8").string()) + " 2>/dev/null",
                       &text),
      0);
  EXPECT_NE(text.find("QATQFS(8)"), std::string::npos) << text;
}

TEST(ManPages, Qatq1HasASectionForEveryCommandOfQatqHelp) {
  REQUIRE_BINARY("qatq");
  const std::string page = PageText("qatq.1");
  const std::string help = Help("qatq", "--help");
  // The command list: "  NAME   description" lines after "commands:".
  std::vector<std::string> commands;
  static const std::regex kCommandLine(R"(\n  ([a-z][a-z-]*) +\S)");
  size_t list = help.find("commands:");
  ASSERT_NE(list, std::string::npos) << help;
  std::string rest = help.substr(list);
  for (std::sregex_iterator it(rest.begin(), rest.end(), kCommandLine), end; it != end; ++it) {
    commands.push_back((*it)[1]);
  }
  ASSERT_GE(commands.size(), 6u) << help;
  for (const std::string& cmd : commands) {
    SCOPED_TRACE(cmd);
    EXPECT_NE(page.find(".SS \"qatq " + cmd + " "), std::string::npos) << "no section";
    EXPECT_NE(page.find(".B qatq " + cmd), std::string::npos) << "not in the synopsis";
  }
  EXPECT_NE(page.find("--version"), std::string::npos);
}

TEST(ManPages, Qatq1NamesEveryOptionOfEveryCommand) {
  REQUIRE_BINARY("qatq");
  const std::string page = PageText("qatq.1");
  for (const char* cmd : {"encode", "encode-chunked", "decode", "convert", "inspect", "bench"}) {
    for (const std::string& opt : OptionsIn(Help("qatq", std::string(cmd) + " --help"))) {
      EXPECT_NE(page.find(opt), std::string::npos) << "qatq " << cmd << " " << opt;
    }
  }
}

TEST(ManPages, Qatqfs8HasASectionForEverySubcommandOfQatqfsHelp) {
  REQUIRE_BINARY("qatqfs");
  const std::string page = PageText("qatqfs.8");
  const std::string help = Help("qatqfs", "--help");
  // Usage lines "qatqfs NAME ..." whose NAME is a word, not STORE or --version.
  std::set<std::string> commands;
  static const std::regex kUsage(R"((?:usage:|\n) +qatqfs ([a-z][a-z-]*) )");
  for (std::sregex_iterator it(help.begin(), help.end(), kUsage), end; it != end; ++it) {
    commands.insert((*it)[1]);
  }
  EXPECT_EQ(commands, (std::set<std::string>{"export", "fsck", "import", "mkfs", "stats"}))
      << "a new subcommand? document it in docs/man/qatqfs.8, then add it here";
  for (const std::string& cmd : commands) {
    SCOPED_TRACE(cmd);
    EXPECT_NE(page.find(".SS \"qatqfs " + cmd + " "), std::string::npos) << "no section";
    EXPECT_NE(page.find(".B qatqfs " + cmd), std::string::npos) << "not in the synopsis";
  }
  EXPECT_NE(page.find("--version"), std::string::npos);
}

TEST(ManPages, Qatqfs8NamesEveryOptionOfEveryHelp) {
  REQUIRE_BINARY("qatqfs");
  const std::string page = PageText("qatqfs.8");
  std::string help = Help("qatqfs", "--help");
  for (const char* cmd : {"fsck", "export", "import"}) {
    help += Help("qatqfs", std::string(cmd) + " --help");
  }
  const std::set<std::string> opts = OptionsIn(help);
  for (const char* expected : {"ro", "dtype", "cache_mb", "effort", "read_ahead_kb", "log_level",
                               "--chunk-size", "--repair", "--store", "--quiet"}) {
    EXPECT_TRUE(opts.count(expected)) << "the option scan misses " << expected << " in\n" << help;
  }
  for (const std::string& opt : opts) {
    EXPECT_NE(page.find(opt), std::string::npos) << opt;
  }
}

}  // namespace
}  // namespace qatq
