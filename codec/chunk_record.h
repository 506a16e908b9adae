// QATC v3 chunk records: one chunk of tensor bytes, compressed by one exact
// strategy, as a standalone object that verifies itself. QATC v3 files are a
// sequence of these plus an index (codec/qatc_v3.h); the filesystem stores
// exactly these records as its chunk objects. Layout: docs/FORMAT-v3.md.
//
// Thread-safety: all functions are pure; safe to call concurrently.
#ifndef QATQ_CODEC_CHUNK_RECORD_H_
#define QATQ_CODEC_CHUNK_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "codec/dtype.h"

namespace qatq {

// DO NOT CHANGE: on-disk constants of docs/FORMAT-v3.md.
inline constexpr size_t kChunkRecordHeaderSize = 32;
inline constexpr char kChunkRecordMagic[4] = {'Q', 'C', 'R', '3'};
// Largest raw chunk a record may describe. Bounds every allocation a decoder
// makes from header fields.
inline constexpr uint32_t kMaxChunkRawBytes = 64u << 20;

// Strategy ids of v3 records. DO NOT CHANGE existing values.
enum class Strategy : uint8_t {
  kRaw = 0,       // body = raw bytes
  kConstant = 1,  // body = one element; raw = that element repeated
  kZstd = 2,      // body = one zstd frame of the raw bytes
  // Further ids are defined in codec/v3_strategies.h.
};

struct ChunkRecordInfo {
  uint8_t strategy = 0;
  DType dtype = DType::kBytes;
  uint32_t raw_len = 0;    // bytes after decoding
  uint32_t body_len = 0;   // bytes after the 32-byte header
  uint64_t raw_checksum = 0;     // XXH3-64 of the raw bytes
  uint64_t record_checksum = 0;  // XXH3-64 of header[0,24) + body
  size_t record_len() const { return kChunkRecordHeaderSize + body_len; }
};

struct ChunkEncodeOptions {
  // Row length in elements (e.g. head_dim or a matrix row), used by
  // strided/context strategies. 0 = detect from the data.
  // Default: 0
  uint32_t stride_hint = 0;
  // 0 = fastest strategies only ... 9 = try everything (slow LZ levels).
  // Default: 5
  int effort = 5;
};

// Encodes `raw` (little-endian elements of `dtype`) as one record, replacing
// the contents of *record.
// REQUIRES: raw.size() is a multiple of DTypeWidth(dtype) and
//           raw.size() <= kMaxChunkRawBytes.
Status EncodeChunkRecord(DType dtype, std::string_view raw, const ChunkEncodeOptions& options,
                         std::string* record);

// Frames an already encoded `body` of `strategy` for `raw` as a record
// (checksums computed here). For tests, golden files and tools that force a
// strategy (v3::EncodeBodyForced); EncodeChunkRecord is the normal path.
// REQUIRES: body decodes to raw under strategy (not checked).
Status FrameChunkRecord(DType dtype, uint8_t strategy, std::string_view raw,
                        std::string_view body, std::string* record);

// Parses and checks the header only: magic, reserved bytes, dtype, lengths
// against kMaxChunkRawBytes and against record.size() (which must be exactly
// the record length). Does not read the body.
Status ParseChunkRecordHeader(std::string_view record, ChunkRecordInfo* info);

// ParseChunkRecordHeader plus the record checksum over header and body: the
// stored bytes are intact. Cheap (no decode); used by export and fsck.
Status VerifyChunkRecord(std::string_view record, ChunkRecordInfo* info);

// Verifies and decodes `record` into dst[0, info.raw_len), then checks the raw
// checksum. On error the contents of dst are unspecified but nothing past
// dst_capacity is touched.
// REQUIRES: dst_capacity >= the record's raw_len (check with
//           ParseChunkRecordHeader first) or the call fails.
Status DecodeChunkRecord(std::string_view record, char* dst, size_t dst_capacity,
                         ChunkRecordInfo* info = nullptr);

// Convenience: decode into *raw (resized to raw_len).
Status DecodeChunkRecord(std::string_view record, std::string* raw,
                         ChunkRecordInfo* info = nullptr);

// Human-readable strategy name ("raw", "zstd", ...); "unknown-N" otherwise.
std::string StrategyName(uint8_t strategy);

}  // namespace qatq

#endif  // QATQ_CODEC_CHUNK_RECORD_H_
