#include "codec/qatc_v3.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "codec/chunk_record.h"
#include "codec/endian.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

std::string Encode(DType dtype, const std::string& raw, uint32_t chunk_elements, int threads = 2) {
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

Status Decode(const std::string& file, std::string* raw, int threads = 2) {
  raw->clear();
  return DecodeQatcV3(
      file,
      [&](std::string_view b) {
        raw->append(b);
        return Status::OK();
      },
      threads);
}

// Smooth bf16-like data: a slowly varying exponent with noisy mantissas.
std::string SmoothData(size_t bytes, uint64_t seed) {
  std::string r = test::RandomBytes(bytes, seed);
  for (size_t i = 1; i < r.size(); i += 2) r[i] = static_cast<char>(0x3c + (r[i] & 1));
  return r;
}

TEST(QatcV3, RoundTripsEverySizeAroundChunkBoundaries) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kBytes}) {
    const size_t w = DTypeWidth(dtype);
    const uint32_t ce = 1000;
    for (size_t elems : {size_t{0}, size_t{1}, size_t{ce - 1}, size_t{ce}, size_t{ce + 1},
                         size_t{3 * ce - 1}, size_t{3 * ce}, size_t{3 * ce + 1}}) {
      std::string raw = SmoothData(elems * w, elems + w);
      std::string file = Encode(dtype, raw, ce);
      ASSERT_TRUE(LooksLikeQatcV3(file));
      QatcV3Index index;
      ASSERT_OK(ReadQatcV3Index(file, &index));
      EXPECT_EQ(index.dtype, dtype);
      EXPECT_EQ(index.element_count, elems);
      EXPECT_EQ(index.chunks.size(), (elems + ce - 1) / ce);
      std::string back;
      ASSERT_OK(Decode(file, &back));
      ASSERT_EQ(back, raw) << DTypeName(dtype) << " " << elems;
    }
  }
}

TEST(QatcV3, OutputDoesNotDependOnThreadCount) {
  std::string raw = SmoothData(200000, 7);
  EXPECT_EQ(Encode(DType::kBF16, raw, 4096, 1), Encode(DType::kBF16, raw, 4096, 3));
}

TEST(QatcV3, DecodesSingleChunksByIndex) {
  std::string raw = SmoothData(10000 * 2, 3);
  std::string file = Encode(DType::kF16, raw, 1024);
  QatcV3Index index;
  ASSERT_OK(ReadQatcV3Index(file, &index));
  for (size_t k = 0; k < index.chunks.size(); ++k) {
    std::string chunk;
    ASSERT_OK(DecodeQatcV3Chunk(file, index, k, &chunk));
    EXPECT_EQ(chunk, raw.substr(k * 2048, 2048));
  }
  std::string chunk;
  EXPECT_FALSE(DecodeQatcV3Chunk(file, index, index.chunks.size(), &chunk).ok());
}

TEST(QatcV3, VersionByteIsThreeAtOffsetFour) {
  std::string file = Encode(DType::kBF16, SmoothData(64, 1), 16);
  EXPECT_EQ(file.substr(0, 4), "QATC");
  EXPECT_EQ(file[4], 3);
}

TEST(QatcV3, RejectsEveryTruncation) {
  std::string raw = SmoothData(3000, 5);
  std::string file = Encode(DType::kBF16, raw, 500);
  for (size_t n = 0; n < file.size(); ++n) {
    QatcV3Index index;
    EXPECT_FALSE(ReadQatcV3Index(std::string_view(file).substr(0, n), &index).ok()) << n;
  }
}

TEST(QatcV3, RejectsEveryFlippedByte) {
  std::string raw = SmoothData(3000, 5);
  std::string file = Encode(DType::kBF16, raw, 500);
  for (size_t i = 0; i < file.size(); ++i) {
    std::string bad = file;
    bad[i] ^= 0x10;
    std::string back;
    EXPECT_FALSE(Decode(bad, &back).ok()) << i;
  }
}

TEST(QatcV3, RejectsOtherVersions) {
  std::string file = Encode(DType::kBF16, SmoothData(64, 1), 16);
  file[4] = 2;
  QatcV3Index index;
  Status s = ReadQatcV3Index(file, &index);
  EXPECT_FALSE(s.ok());
}

TEST(QatcV3Builder, RebuildsTheSameFileFromRecords) {
  std::string raw = SmoothData(5000 * 2, 11);
  std::string file = Encode(DType::kBF16, raw, 2000);
  QatcV3Index index;
  ASSERT_OK(ReadQatcV3Index(file, &index));
  std::string rebuilt;
  QatcV3Builder b(DType::kBF16, 2000, [&](std::string_view s) {
    rebuilt.append(s);
    return Status::OK();
  });
  for (const auto& ref : index.chunks) ASSERT_OK(b.AddRecord(file.substr(ref.offset, ref.record_len)));
  ASSERT_OK(b.Finish());
  EXPECT_EQ(rebuilt, file);
}

TEST(QatcV3Builder, RejectsShortRecordBeforeTheLast) {
  std::string rec_short, rec_full;
  ASSERT_OK(EncodeChunkRecord(DType::kBF16, SmoothData(100, 1), {}, &rec_short));
  ASSERT_OK(EncodeChunkRecord(DType::kBF16, SmoothData(200, 2), {}, &rec_full));
  QatcV3Builder b(DType::kBF16, 100, [](std::string_view) { return Status::OK(); });
  ASSERT_OK(b.AddRecord(rec_short));
  EXPECT_FALSE(b.AddRecord(rec_full).ok());
}

TEST(QatcV3Builder, RejectsRecordOfAnotherDtype) {
  std::string rec;
  ASSERT_OK(EncodeChunkRecord(DType::kF16, SmoothData(200, 2), {}, &rec));
  QatcV3Builder b(DType::kBF16, 100, [](std::string_view) { return Status::OK(); });
  EXPECT_FALSE(b.AddRecord(rec).ok());
}

TEST(QatcV3Builder, EmptyFileDecodesToNothing) {
  std::string file;
  QatcV3Builder b(DType::kF32, 100, [&](std::string_view s) {
    file.append(s);
    return Status::OK();
  });
  ASSERT_OK(b.Finish());
  std::string back = "x";
  ASSERT_OK(Decode(file, &back));
  EXPECT_TRUE(back.empty());
}

// DecodeQatcV3Into: the in-place whole-file decode gives the bytes of the
// sink form, and refuses outputs of the wrong size or damaged files. And the
// threaded encode/decode pipeline: output independent of the thread count,
// chunks delivered in order, a failing sink stops it cleanly.

TEST(QatcV3DecodeInto, MatchesTheInputForEveryChunkLayout) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kBytes}) {
    const size_t w = DTypeWidth(dtype);
    const uint32_t ce = 1000;
    for (size_t elems : {size_t{0}, size_t{1}, size_t{ce}, size_t{3 * ce + 7}}) {
      const std::string raw = SmoothData(elems * w, elems + w);
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
  const std::string raw = SmoothData(2 * 5000, 1);
  const std::string file = Encode(DType::kBF16, raw, 1024);
  std::string out(raw.size() + 2, '\0');
  EXPECT_TRUE(DecodeQatcV3Into(file, out.data(), raw.size() - 2).IsInvalidArgument());
  EXPECT_TRUE(DecodeQatcV3Into(file, out.data(), raw.size() + 2).IsInvalidArgument());
}

TEST(QatcV3DecodeInto, RejectsADamagedFileBeforeWriting) {
  const std::string raw = SmoothData(2 * 5000, 2);
  std::string file = Encode(DType::kBF16, raw, 1024);
  file[file.size() / 2] ^= 0x10;  // inside a record: the file checksum fails
  std::string out(raw.size(), '\x55');
  EXPECT_FALSE(DecodeQatcV3Into(file, out.data(), out.size()).ok());
  EXPECT_EQ(out, std::string(raw.size(), '\x55'));
}

TEST(QatcV3Pipeline, EncodedBytesDoNotDependOnTheThreadCount) {
  const std::string raw = SmoothData(2 * 100 * 57 + 2 * 33, 3);  // 57 full chunks and a short one
  const std::string one = Encode(DType::kBF16, raw, 100, 1);
  for (int threads : {2, 3, 8}) EXPECT_EQ(Encode(DType::kBF16, raw, 100, threads), one);
}

TEST(QatcV3Pipeline, DecodeDeliversChunksInOrderAndStopsAtASinkError) {
  const std::string raw = SmoothData(2 * 100 * 40, 4);
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
  const std::string raw = SmoothData(2 * 100 * 40, 5);
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
