// Regressions from fuzzing the v3 decoders (tests/fuzz/v3_decode_fuzzer.cc):
// inputs on which a decoder did work or allocation out of proportion to the
// bytes it was given. See docs/RELIABILITY.md, "Fuzzing".
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "codec/chunk_record.h"
#include "codec/endian.h"
#include "codec/v3_strategies.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

// A fields body for kBytes holding one raw stream of `values`.
std::string BytesFieldsBody(v3::Transform transform, bool transposed, uint32_t stride,
                            const std::string& values) {
  std::string body(9, '\0');
  body[0] = static_cast<char>(transform);
  body[1] = static_cast<char>(transposed ? 1 : 0);
  PutLE32(body.data() + 4, stride);
  body[8] = 1;  // one stream per byte of the element
  char stream[5] = {static_cast<char>(v3::StreamCoder::kRaw)};
  PutLE32(stream + 1, static_cast<uint32_t>(values.size()));
  body.append(stream, sizeof stream);
  body.append(values);
  return body;
}

// Fuzzer input UUMAAgEAAAAAAO4BAAAAAAA= (15 s per run): a transposed layout
// whose stride exceeds the element count has no full row, and the decoder
// used to walk all `stride` empty columns anyway.
TEST(V3HostileDecode, TransposedStrideBeyondChunkDecodesInNaturalOrder) {
  const std::string values = "abc";
  for (auto transform : {v3::Transform::kNone, v3::Transform::kXor, v3::Transform::kDelta}) {
    for (uint32_t stride : {4u, 0x01000000u, 0xee000000u, 0xffffffffu}) {
      SCOPED_TRACE(stride);
      const std::string body = BytesFieldsBody(transform, true, stride, values);
      std::string dst(values.size(), '\0');
      ASSERT_OK(v3::DecodeBody(v3::kStrategyFields, DType::kBytes, body, dst.data(),
                               static_cast<uint32_t>(dst.size())));
      // No element has one `stride` before it: every transform is the
      // identity, except delta's zigzag.
      if (transform != v3::Transform::kDelta) {
        EXPECT_EQ(values, dst);
      }
    }
  }
  const std::string empty_body = BytesFieldsBody(v3::Transform::kXor, true, 0xee000000u, "");
  EXPECT_OK(v3::DecodeBody(v3::kStrategyFields, DType::kBytes, empty_body, nullptr, 0));
}

TEST(V3HostileDecode, TransposedStrideBeyondChunkRoundTrips) {
  const std::string raw = test::RandomBytes(4 * 5, 11);
  for (auto transform : {v3::Transform::kNone, v3::Transform::kXor, v3::Transform::kDelta}) {
    v3::ForcedPlan plan;
    plan.strategy = v3::kStrategyFields;
    plan.transform = transform;
    plan.stride = 0xffffffffu;
    plan.transposed = true;
    plan.coder = v3::StreamCoder::kRaw;
    std::string body;
    ASSERT_OK(v3::EncodeBodyForced(DType::kF32, raw, plan, &body));
    std::string back(raw.size(), '\0');
    ASSERT_OK(v3::DecodeBody(v3::kStrategyFields, DType::kF32, body, back.data(),
                             static_cast<uint32_t>(back.size())));
    EXPECT_EQ(raw, back);
  }
}

// A record header may declare up to 64 MiB of raw bytes; the string decoder
// used to allocate and zero that much before checking the record checksum.
TEST(V3HostileDecode, RecordWithBadChecksumAllocatesNothing) {
  std::string rec;
  ASSERT_OK(EncodeChunkRecord(DType::kBytes, "xyz", {}, &rec));
  PutLE32(rec.data() + 8, kMaxChunkRawBytes);  // raw_len; checksum now wrong
  ChunkRecordInfo info;
  ASSERT_OK(ParseChunkRecordHeader(rec, &info));
  ASSERT_EQ(info.raw_len, kMaxChunkRawBytes);
  std::string back;
  EXPECT_FALSE(DecodeChunkRecord(rec, &back).ok());
  EXPECT_LT(back.capacity(), size_t{1} << 20);
}

}  // namespace
}  // namespace qatq
