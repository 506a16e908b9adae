// The SIMD tiles of codec/v3_transpose.h against a word-by-word transpose,
// and fields round trips whose transposed layout mixes whole tiles with
// ragged edges and a tail of incomplete rows.
#include "codec/v3_transpose.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "codec/v3_strategies.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

template <size_t kW>
std::string NaiveTranspose(const std::string& src, size_t rows, size_t cols) {
  std::string dst(rows * cols * kW, '\0');
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c)
      std::memcpy(&dst[(c * rows + r) * kW], &src[(r * cols + c) * kW], kW);
  return dst;
}

template <size_t kW>
void CheckAllShapes() {
  const size_t dims[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 33, 64, 100};
  for (size_t rows : dims) {
    for (size_t cols : dims) {
      // Offset by one byte: neither side may rely on alignment.
      const std::string src = test::RandomBytes(rows * cols * kW + 1, rows * 131 + cols);
      std::string dst(rows * cols * kW + 1, '\0');
      v3::TransposeMatrix<kW>(src.data() + 1, rows, cols, dst.data() + 1);
      EXPECT_EQ(dst.substr(1), NaiveTranspose<kW>(src.substr(1), rows, cols))
          << "width " << kW << " rows " << rows << " cols " << cols;
    }
  }
}

TEST(V3Transpose, MatchesWordByWordTransposeForEveryShape) {
  CheckAllShapes<1>();
  CheckAllShapes<2>();
  CheckAllShapes<4>();
}

TEST(V3Transpose, EmptyShapesMoveNothing) {
  char src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  char dst[8] = {};
  // A hostile stride makes a 2^32 x 0 matrix: it must not walk its rows.
  v3::TransposeMatrix<1>(src, size_t{0xffffffff}, 0, dst);
  v3::TransposeMatrix<2>(src, size_t{0xffffffff}, 0, dst);
  v3::TransposeMatrix<4>(src, 0, size_t{0xffffffff}, dst);
  EXPECT_EQ(std::string(dst, 8), std::string(8, '\0'));
}

// Encodes `raw` with `plan` and decodes it into a buffer at byte offset
// `out_offset` (to exercise unaligned output); returns the decoded bytes.
std::string ForcedRoundTrip(DType dtype, std::string_view raw, const v3::ForcedPlan& plan,
                            size_t out_offset = 0) {
  std::string body;
  Status s = v3::EncodeBodyForced(dtype, raw, plan, &body);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::string back(raw.size() + out_offset, '\0');
  s = v3::DecodeBody(v3::kStrategyFields, dtype, body, back.data() + out_offset,
                     static_cast<uint32_t>(raw.size()));
  EXPECT_TRUE(s.ok()) << s.ToString();
  return back.substr(out_offset);
}

TEST(V3Transpose, TransposedStrideBeyondTheChunkRoundTrips) {
  for (DType dtype : {DType::kBF16, DType::kF32}) {
    const size_t w = DTypeWidth(dtype);
    const std::string raw = test::RandomBytes(100 * w, 9);
    for (uint32_t stride : {101u, 0x01000000u, 0xffffffffu}) {
      v3::ForcedPlan plan;
      plan.strategy = v3::kStrategyFields;
      plan.stride = stride;
      plan.transposed = true;
      plan.coder = v3::StreamCoder::kRaw;
      EXPECT_EQ(ForcedRoundTrip(dtype, raw, plan), raw) << DTypeName(dtype) << " stride " << stride;
    }
  }
}

TEST(V3Transpose, TransposedFieldsRoundTripAcrossTileEdges) {
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32}) {
    const size_t w = DTypeWidth(dtype);
    for (uint32_t stride : {2u, 4u, 8u, 9u, 16u, 24u, 64u}) {
      for (size_t n : {size_t{8}, size_t{65}, size_t{1000}, size_t{4099}}) {
        const std::string raw = test::RandomBytes(n * w, stride * 7 + n);
        for (v3::Transform t : {v3::Transform::kNone, v3::Transform::kXor, v3::Transform::kDelta}) {
          v3::ForcedPlan plan;
          plan.strategy = v3::kStrategyFields;
          plan.transform = t;
          plan.stride = stride;
          plan.transposed = true;
          plan.coder = v3::StreamCoder::kRaw;
          EXPECT_EQ(ForcedRoundTrip(dtype, raw, plan, 1), raw)
              << DTypeName(dtype) << " stride " << stride << " n " << n << " transform "
              << static_cast<int>(t);
        }
      }
    }
  }
}

TEST(V3Transpose, UntransposedTransformsRoundTripFromUnalignedInput) {
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32, DType::kBytes}) {
    const size_t w = DTypeWidth(dtype);
    for (uint32_t stride : {1u, 3u, 256u, 5000u}) {
      const size_t n = 4099;
      const std::string buf = test::RandomBytes(n * w + 1, stride);
      const std::string_view raw = std::string_view(buf).substr(1);
      for (v3::Transform t : {v3::Transform::kXor, v3::Transform::kDelta}) {
        v3::ForcedPlan plan;
        plan.strategy = v3::kStrategyFields;
        plan.transform = t;
        plan.stride = stride;
        plan.coder = v3::StreamCoder::kRaw;
        EXPECT_EQ(ForcedRoundTrip(dtype, raw, plan), raw)
            << DTypeName(dtype) << " stride " << stride;
      }
    }
  }
}

}  // namespace
}  // namespace qatq
