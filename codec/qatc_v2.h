// QATC v2 and QATQ exact payloads: the interchange format written by the
// existing QATQ tools (../shared/spec/qatc-v2.md, restated in docs/FORMATS.md).
// All integers are big-endian; tensor bytes in and out are little-endian.
//
// Thread-safety: all functions are pure; safe to call concurrently.
#ifndef QATQ_CODEC_QATC_V2_H_
#define QATQ_CODEC_QATC_V2_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "codec/dtype.h"
#include "codec/qatc_v3.h"  // ByteSink

namespace qatq {

inline constexpr size_t kPayloadHeaderSize = 36;  // envelope (28) + QEX1 prefix (8)
inline constexpr size_t kContainerHeaderSize = 32;
inline constexpr uint64_t kMaxPayloadElements = uint64_t{1} << 26;
inline constexpr uint64_t kMaxContainerElements = uint64_t{1} << 32;
inline constexpr uint32_t kMaxContainerChunks = uint32_t{1} << 20;

// The v2 strategy ids (spec table 1.3). DO NOT CHANGE.
enum class V2Strategy : uint8_t {
  kPredictorXor = 0,
  kRawBits = 1,
  kByteRle = 2,
  kBytePlaneRle = 3,
  kDeltaXorBytePlaneRle = 4,
  kBytePlaneBlocks = 5,
  kBytePlanePackedRle = 6,
  kBytePlaneZstd = 7,
  kQuaternionChainZstd = 8,
  kAdjacentXorBytePlaneZstd = 9,
  kStridedXorBytePlaneZstd = 10,
};

struct PayloadInfo {
  DType dtype = DType::kF32;  // never kBytes
  uint64_t element_count = 0;
  uint8_t strategy = 0;
  uint32_t stride = 0;  // strategy 10 only
  uint64_t checksum = 0;
};

struct PayloadEncodeOptions {
  // Preferred stride (row length, in elements) for strategy 10 (f16/bf16),
  // tried beside the fixed power-of-two strides; 0 = none given.
  // Default: 0
  uint32_t stride_elements = 0;
  // When stride_elements is 0, search the chunk for its row length (a
  // sample-based scan of strides up to 1024) in addition to the fixed
  // power-of-two candidates. Default: true
  bool detect_stride = true;
  // Compress both zstd candidates (plain planes and the best predictor) in
  // full instead of first trying them on an 8192-element sample and keeping
  // only those within `estimate_margin` of the best trial. Slower; used to
  // check the sampling. Default: false
  bool exhaustive = false;
  // Relative slack of the sample trial (see above). Default: 0.05
  double estimate_margin = 0.05;
  // Write exactly this strategy (1..10, valid for the dtype) instead of
  // choosing; for tests and interoperability checks. Default: -1 (choose)
  int force_strategy = -1;
};

// True if `prefix` starts with the payload magic "QATQ" / container "QATC" v2.
bool LooksLikePayload(std::string_view prefix);
bool LooksLikeQatcV2(std::string_view prefix);

// Encodes one exact payload into *payload (replacing its contents),
// choosing the smallest body among the strategies considered (see
// docs/FORMATS.md, "How the encoder chooses"). InvalidArgument if
// raw.size() is not a multiple of the dtype width, dtype is kBytes, there
// are more than kMaxPayloadElements elements, or force_strategy is not
// valid for the dtype. Uses per-thread scratch buffers of O(raw.size()).
Status EncodePayload(DType dtype, std::string_view raw, const PayloadEncodeOptions& options,
                     std::string* payload);

// Parses the 36-byte prefix (all header rules of spec 1.1/1.2) and, for
// strategy 10, the stride that follows it (0 < stride < n). Does not look
// at the rest of the body.
Status ParsePayloadHeader(std::string_view payload, PayloadInfo* info);

// Decodes a complete payload into *raw (little-endian), verifying the
// checksum. Corruption/NotSupported with a message naming the problem.
// *raw is resized only after the body has been checked against the element
// count, so allocation is bounded by what the payload bytes can describe.
Status DecodePayload(std::string_view payload, std::string* raw, PayloadInfo* info = nullptr);

// As DecodePayload, into dst[0, dst_len). On error dst holds unspecified
// bytes. REQUIRES: dst_len == element count * width (from ParsePayloadHeader).
Status DecodePayloadTo(std::string_view payload, char* dst, size_t dst_len,
                       PayloadInfo* info = nullptr);

struct ContainerChunkInfo {
  uint64_t offset = 0;  // of the payload (after its u32 length)
  uint32_t length = 0;
  PayloadInfo payload;
};

struct ContainerInfo {
  DType dtype = DType::kF32;
  uint64_t element_count = 0;
  uint64_t aggregate_checksum = 0;
  std::vector<ContainerChunkInfo> chunks;
};

// Checks 1-4 of spec 2.3 (header, walk, end, aggregate checksum); fills *info.
// `any_version` skips the version check only, so a caller can tell a v2
// layout mislabelled with another version from a file of another format.
Status ReadQatcV2Structure(std::string_view file, ContainerInfo* info, bool any_version = false);

// Checks 1-3 only (no aggregate checksum: no pass over the whole file), for
// callers that decode next (DecodeQatcV2 verifies the checksum itself).
Status ReadQatcV2Layout(std::string_view file, ContainerInfo* info);

// Called on the calling thread with the number of input bytes done so far.
using ProgressFn = std::function<void(uint64_t done_bytes)>;

// Encodes a v2 container of chunks of `max_values_per_chunk` elements,
// chunk-parallel on `threads` workers (0 = all cores). The output does not
// depend on `threads`. The aggregate checksum precedes the body, so encoded
// chunks are held until the end: memory is O(output) + O(threads * chunk),
// and `sink` is called only after every chunk has been encoded.
// InvalidArgument for odd input sizes, dtype kBytes, or limits exceeded.
Status EncodeQatcV2(DType dtype, std::string_view raw, uint32_t max_values_per_chunk,
                    const PayloadEncodeOptions& options, int threads, const ByteSink& sink,
                    const ProgressFn& progress = nullptr);

// Decodes a v2 container. Checks 1-4 of spec 2.3 pass before the first call
// to `sink`; each chunk's own checksum (check 5) is verified before that
// chunk's bytes are passed on. On a check-5 failure earlier chunks have been
// delivered: callers stage output in a temp file and discard it on error
// (spec 2.3, last paragraph), as the qatq CLI does. Chunks decode on
// `threads` workers (0 = all cores) and reach `sink` in order, on the calling
// thread; memory is O(threads * chunk). With more than one thread the
// aggregate checksum is hashed beside the first chunk decodes. Errors in
// chunk k read "<problem> in chunk k" (k from 0).
Status DecodeQatcV2(std::string_view file, const ByteSink& sink, int threads = 0);

}  // namespace qatq

#endif  // QATQ_CODEC_QATC_V2_H_
