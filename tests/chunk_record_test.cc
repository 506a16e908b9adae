#include "codec/chunk_record.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace qatq {
namespace {

TEST(ChunkRecord, RoundTripsEachDtype) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kBytes}) {
    std::string raw = test::RandomBytes(4096, 7);
    std::string rec, back;
    ASSERT_OK(EncodeChunkRecord(t, raw, {}, &rec));
    ChunkRecordInfo info;
    ASSERT_OK(DecodeChunkRecord(rec, &back, &info));
    EXPECT_EQ(raw, back);
    EXPECT_EQ(info.raw_len, raw.size());
  }
}

TEST(ChunkRecord, ConstantChunkIsTiny) {
  std::string raw(1 << 20, '\0');
  std::string rec, back;
  ASSERT_OK(EncodeChunkRecord(DType::kBF16, raw, {}, &rec));
  EXPECT_LT(rec.size(), 64u);
  ASSERT_OK(DecodeChunkRecord(rec, &back));
  EXPECT_EQ(raw, back);
}

TEST(ChunkRecord, EmptyChunkRoundTrips) {
  std::string rec, back = "x";
  ASSERT_OK(EncodeChunkRecord(DType::kF32, "", {}, &rec));
  ASSERT_OK(DecodeChunkRecord(rec, &back));
  EXPECT_TRUE(back.empty());
}

TEST(ChunkRecord, RejectsTruncatedAndFlipped) {
  std::string raw = test::RandomBytes(10000, 3);
  std::string rec, back;
  ASSERT_OK(EncodeChunkRecord(DType::kF16, raw, {}, &rec));
  EXPECT_TRUE(DecodeChunkRecord(rec.substr(0, rec.size() - 1), &back).IsCorruption());
  EXPECT_TRUE(DecodeChunkRecord(rec.substr(0, 20), &back).IsCorruption());
  for (size_t i = 0; i < rec.size(); i += 97) {
    std::string bad = rec;
    bad[i] ^= 0x10;
    EXPECT_FALSE(DecodeChunkRecord(bad, &back).ok()) << "flip at " << i;
  }
}

TEST(ChunkRecord, RejectsReservedBytesUnknownDtypeAndHugeLengths) {
  std::string rec;
  ASSERT_OK(EncodeChunkRecord(DType::kBF16, test::RandomBytes(512, 1), {}, &rec));
  ChunkRecordInfo info;
  ASSERT_OK(ParseChunkRecordHeader(rec, &info));
  std::string bad = rec;
  bad[6] = 1;
  EXPECT_TRUE(ParseChunkRecordHeader(bad, &info).IsCorruption());
  bad = rec;
  bad[5] = 9;
  EXPECT_TRUE(ParseChunkRecordHeader(bad, &info).IsCorruption());
  bad = rec;
  bad[11] = 0x7f;  // raw_len far beyond kMaxChunkRawBytes
  EXPECT_TRUE(ParseChunkRecordHeader(bad, &info).IsCorruption());
  bad = rec;
  bad[8] ^= 1;  // odd raw_len for a 2-byte dtype
  EXPECT_TRUE(ParseChunkRecordHeader(bad, &info).IsCorruption());
  bad = rec + "x";
  EXPECT_TRUE(ParseChunkRecordHeader(bad, &info).IsCorruption());
}

TEST(ChunkRecord, VerifyChecksTheBodyWithoutDecoding) {
  std::string rec;
  ASSERT_OK(EncodeChunkRecord(DType::kF32, test::RandomBytes(4000, 2), {}, &rec));
  ChunkRecordInfo info;
  ASSERT_OK(VerifyChunkRecord(rec, &info));
  rec[rec.size() - 1] ^= 1;
  EXPECT_TRUE(VerifyChunkRecord(rec, &info).IsCorruption());
}

TEST(ChunkRecord, FramedBodyThatDecodesToOtherBytesIsRejected) {
  const std::string raw = test::RandomBytes(64, 5);
  std::string other = raw;
  other[3] ^= 1;
  std::string rec, back;
  ASSERT_OK(FrameChunkRecord(DType::kBytes, static_cast<uint8_t>(Strategy::kRaw), raw, other, &rec));
  ChunkRecordInfo info;
  ASSERT_OK(VerifyChunkRecord(rec, &info));  // the stored bytes are intact...
  EXPECT_TRUE(DecodeChunkRecord(rec, &back).IsCorruption());  // ...but not the data
}

TEST(ChunkRecord, DecodeIntoTooSmallBufferFails) {
  std::string rec;
  ASSERT_OK(EncodeChunkRecord(DType::kF16, test::RandomBytes(100, 9), {}, &rec));
  char small[50];
  EXPECT_TRUE(DecodeChunkRecord(rec, small, sizeof small).IsInvalidArgument());
}

TEST(ChunkRecord, RejectsUnalignedRawSize) {
  std::string rec;
  EXPECT_TRUE(EncodeChunkRecord(DType::kF32, "abc", {}, &rec).IsInvalidArgument());
}

TEST(ChunkRecord, StrategyNamesAreStable) {
  EXPECT_EQ(StrategyName(0), "raw");
  EXPECT_EQ(StrategyName(1), "constant");
  EXPECT_EQ(StrategyName(2), "zstd");
  EXPECT_EQ(StrategyName(3), "fields");
  EXPECT_EQ(StrategyName(4), "widened");
  EXPECT_EQ(StrategyName(77), "unknown-77");
}

}  // namespace
}  // namespace qatq
