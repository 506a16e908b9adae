// The exact strategies of QATC v3 chunk records: how a chunk's raw bytes
// become a record body and back. chunk_record.cc frames and checksums; this
// module chooses and runs strategies. Ids: codec/chunk_record.h (Strategy)
// and docs/FORMAT-v3.md, which also gives every body layout.
//
// Thread-safety: all functions are pure; safe to call concurrently.
#ifndef QATQ_CODEC_V3_STRATEGIES_H_
#define QATQ_CODEC_V3_STRATEGIES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "codec/chunk_record.h"
#include "codec/dtype.h"

namespace qatq::v3 {

// Strategy ids beyond those of codec/chunk_record.h. DO NOT CHANGE.
inline constexpr uint8_t kStrategyFields = 3;   // transform + field split + entropy-coded streams
inline constexpr uint8_t kStrategyWidened = 4;  // f32 that are exactly widened bf16/f16
inline constexpr uint8_t kMaxStrategy = 4;

// Transforms of kStrategyFields (body byte 0). DO NOT CHANGE.
enum class Transform : uint8_t {
  kNone = 0,   // exponent-aligned fields of the elements
  kXor = 1,    // element XOR the element `stride` before it; exponent-aligned fields
  kDelta = 2,  // element minus the element `stride` before it (mod 2^bits), zigzag, byte planes
};

// Stream coders of kStrategyFields. DO NOT CHANGE.
enum class StreamCoder : uint8_t {
  kRaw = 0,       // the stream bytes
  kRans = 1,      // one htscodecs rANS 4x16 block (self-describing order/flags)
  kZstd = 2,      // one zstd frame
  kConstant = 3,  // one byte, repeated
  kHuffman = 4,   // home-made 4-stream canonical Huffman (v3_huffman.h)
};

// Chooses a strategy for `raw` and writes its body to *body (replaced).
// Never fails for valid input: kRaw is always available.
// REQUIRES: raw.size() % DTypeWidth(dtype) == 0.
Status EncodeBody(DType dtype, std::string_view raw, const ChunkEncodeOptions& options,
                  uint8_t* strategy, std::string* body);

// Decodes `body` written by `strategy` into exactly dst[0, raw_len).
// Corruption if the body is malformed or does not produce raw_len bytes;
// NotSupported for an unknown strategy. Every allocation is bounded by raw_len.
Status DecodeBody(uint8_t strategy, DType dtype, std::string_view body, char* dst,
                  uint32_t raw_len);

// "raw", "constant", "zstd", ...; "unknown-N" for ids this build lacks.
std::string StrategyName(uint8_t strategy);

// How a body is laid out, from its headers alone (no decode), for `qatq
// inspect`: for kStrategyFields the transform, stride, layout and every
// stream's coder and stored size, e.g. "delta/64 rows: rans-o0 23473, raw
// 65536" ("columns" for the transposed layout); for kStrategyWidened "from
// bf16: " and the inner body's; "" for the others. Corruption if a header
// is malformed or its streams overrun the body.
Status DescribeBody(uint8_t strategy, std::string_view body, std::string* out);

// Internal: a fully specified encoding, for tests and benchmarks that must
// exercise one strategy. Fields that do not apply to `strategy` are ignored.
struct ForcedPlan {
  uint8_t strategy = 0;
  Transform transform = Transform::kNone;
  uint32_t stride = 1;      // elements; used by kXor/kDelta and `transposed`
  bool transposed = false;  // streams in column order of rows of `stride`
  StreamCoder coder = StreamCoder::kRans;
  int rans_order = 0;       // htscodecs order byte for kRans
  int zstd_level = 3;       // kStrategyZstd and StreamCoder::kZstd
  DType widened_from = DType::kBF16;  // kStrategyWidened: the narrow dtype
};

// Encodes with exactly `plan` (no fallback). InvalidArgument if the plan
// cannot represent `raw` (e.g. kConstant on varying data, kStrategyWidened on
// f32 values that are not exactly widened).
Status EncodeBodyForced(DType dtype, std::string_view raw, const ForcedPlan& plan,
                        std::string* body);

// Internal: the exponent-only baseline of the ZipNN method for `qatq bench`:
// the exponent field entropy-coded (rANS order 0), sign and mantissa stored
// raw. Returns the encoded size; *body gets a self-contained encoding that
// DecodeExponentOnly reverses.
Status EncodeExponentOnly(DType dtype, std::string_view raw, std::string* body);
Status DecodeExponentOnly(DType dtype, std::string_view body, char* dst, uint32_t raw_len);

}  // namespace qatq::v3

#endif  // QATQ_CODEC_V3_STRATEGIES_H_
