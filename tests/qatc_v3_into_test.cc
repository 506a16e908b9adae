// DecodeQatcV3Into: the in-place whole-file decode gives the bytes of the
// sink form, and refuses outputs of the wrong size or damaged files. And the
// threaded encode/decode pipeline: output independent of the thread count,
// chunks delivered in order, a failing sink stops it cleanly.
#include <gtest/gtest.h>

#include <string>

#include "codec/qatc_v3.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

std::string Encode(DType dtype, const std::string& raw, uint32_t chunk_elements,
                   int threads = 1) {
  QatcV3Options opt;
  opt.chunk_elements = chunk_elements;
  opt.threads = threads;
  std::string out;
  Status s = EncodeQatcV3(dtype, raw, opt, [&](std::string_view b) {
    out.append(b);
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// bf16-like words: a few exponents, noisy mantissas.
std::string TensorLike(size_t bytes, uint64_t seed) {
  std::string r = test::RandomBytes(bytes, seed);
  for (size_t i = 1; i < r.size(); i += 2) r[i] = static_cast<char>(0x3c + (r[i] & 3));
  return r;
}

TEST(QatcV3DecodeInto, MatchesTheInputForEveryChunkLayout) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kBytes}) {
    const size_t w = DTypeWidth(dtype);
    const uint32_t ce = 1000;
    for (size_t elems : {size_t{0}, size_t{1}, size_t{ce}, size_t{3 * ce + 7}}) {
      const std::string raw = TensorLike(elems * w, elems + w);
      const std::string file = Encode(dtype, raw, ce);
      for (int threads : {1, 2, 3}) {
        std::string back(raw.size(), '\x55');
        ASSERT_OK(DecodeQatcV3Into(file, back.data(), back.size(), threads));
        EXPECT_EQ(back, raw) << DTypeName(dtype) << " elements " << elems << " threads "
                             << threads;
      }
    }
  }
}

TEST(QatcV3DecodeInto, RejectsAnOutputOfAnotherSize) {
  const std::string raw = TensorLike(2 * 5000, 1);
  const std::string file = Encode(DType::kBF16, raw, 1024);
  std::string out(raw.size() + 2, '\0');
  EXPECT_TRUE(DecodeQatcV3Into(file, out.data(), raw.size() - 2).IsInvalidArgument());
  EXPECT_TRUE(DecodeQatcV3Into(file, out.data(), raw.size() + 2).IsInvalidArgument());
}

TEST(QatcV3DecodeInto, RejectsADamagedFileBeforeWriting) {
  const std::string raw = TensorLike(2 * 5000, 2);
  std::string file = Encode(DType::kBF16, raw, 1024);
  file[file.size() / 2] ^= 0x10;  // inside a record: the file checksum fails
  std::string out(raw.size(), '\x55');
  EXPECT_FALSE(DecodeQatcV3Into(file, out.data(), out.size()).ok());
  EXPECT_EQ(out, std::string(raw.size(), '\x55'));
}

TEST(QatcV3Pipeline, EncodedBytesDoNotDependOnTheThreadCount) {
  const std::string raw = TensorLike(2 * 100 * 57 + 2 * 33, 3);  // 57 full chunks and a short one
  const std::string one = Encode(DType::kBF16, raw, 100, 1);
  for (int threads : {2, 3, 8}) EXPECT_EQ(Encode(DType::kBF16, raw, 100, threads), one);
}

TEST(QatcV3Pipeline, DecodeDeliversChunksInOrderAndStopsAtASinkError) {
  const std::string raw = TensorLike(2 * 100 * 40, 4);
  const std::string file = Encode(DType::kBF16, raw, 100);
  for (int threads : {1, 2, 4}) {
    std::string out;
    int calls = 0;
    Status s = DecodeQatcV3(
        file,
        [&](std::string_view b) {
          if (++calls == 7) return Status::IOError("disk full");
          out.append(b);
          return Status::OK();
        },
        threads);
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_EQ(calls, 7);
    EXPECT_EQ(out, raw.substr(0, 6 * 200));
  }
}

TEST(QatcV3Pipeline, EncodeStopsAtASinkError) {
  const std::string raw = TensorLike(2 * 100 * 40, 5);
  for (int threads : {1, 2, 4}) {
    QatcV3Options opt;
    opt.chunk_elements = 100;
    opt.threads = threads;
    int calls = 0;
    Status s = EncodeQatcV3(DType::kBF16, raw, opt, [&](std::string_view) {
      return ++calls == 5 ? Status::IOError("disk full") : Status::OK();
    });
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_EQ(calls, 5);
  }
}

}  // namespace
}  // namespace qatq
