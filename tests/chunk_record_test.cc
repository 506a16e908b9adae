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

}  // namespace
}  // namespace qatq
