// Shared helpers for the unit and mount tests.
#ifndef QATQ_TESTS_TESTUTIL_H_
#define QATQ_TESTS_TESTUTIL_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

#define ASSERT_OK(expr)                                  \
  do {                                                   \
    ::qatq::Status _st = (expr);                         \
    ASSERT_TRUE(_st.ok()) << _st.ToString();             \
  } while (0)
#define EXPECT_OK(expr)                                  \
  do {                                                   \
    ::qatq::Status _st = (expr);                         \
    EXPECT_TRUE(_st.ok()) << _st.ToString();             \
  } while (0)

namespace qatq::test {

// ../shared beside the source tree (or $QATQ_SHARED_DIR), if it exists.
std::optional<std::filesystem::path> SharedDir();

// Skips the current test with a message when ../shared is absent.
#define QATQ_REQUIRE_SHARED(var)                                                      \
  auto var##_opt = ::qatq::test::SharedDir();                                         \
  if (!var##_opt) GTEST_SKIP() << "../shared not found (set QATQ_SHARED_DIR); skipped"; \
  const std::filesystem::path var = *var##_opt

std::string ReadFileOrDie(const std::filesystem::path& p);
void WriteFileOrDie(const std::filesystem::path& p, const std::string& data);

// Deterministic pseudo-random bytes.
std::string RandomBytes(size_t n, uint64_t seed);

// n bf16 values (little-endian bytes) of N(0, sigma), truncated from f32:
// weight-like exponent and mantissa statistics.
std::string NormalBf16(size_t n, float sigma, uint32_t seed);

// A fresh directory under $TMPDIR, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Path of a built binary (qatq, qatqfs) in the build tree.
std::filesystem::path BinaryPath(const std::string& name);

// Runs `cmd` with /bin/sh; returns the exit status (or -1), stdout in *out.
int RunCommand(const std::string& cmd, std::string* out = nullptr);
// `s` quoted for /bin/sh (single quotes).
std::string ShellQuote(const std::string& s);

}  // namespace qatq::test

#endif  // QATQ_TESTS_TESTUTIL_H_
