#include "codec/chunk_record.h"

#include <xxhash.h>

#include <cstring>

#include "codec/endian.h"
#include "codec/v3_strategies.h"
#include "codec/xxh3_fast.h"

namespace qatq {

namespace {

uint64_t RecordChecksum(std::string_view header24, std::string_view body) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  Xxh3Update(st, header24.data(), header24.size());
  Xxh3Update(st, body.data(), body.size());
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

}  // namespace

Status EncodeChunkRecord(DType dtype, std::string_view raw, const ChunkEncodeOptions& options,
                         std::string* record) {
  const size_t width = DTypeWidth(dtype);
  if (raw.size() % width != 0)
    return Status::InvalidArgument("chunk size is not a multiple of the dtype width");
  if (raw.size() > kMaxChunkRawBytes) return Status::InvalidArgument("chunk too large");
  uint8_t strategy = 0;
  thread_local std::string body;  // reused: bodies are up to a chunk large
  QATQ_RETURN_IF_ERROR(v3::EncodeBody(dtype, raw, options, &strategy, &body));
  return FrameChunkRecord(dtype, strategy, raw, body, record);
}

Status FrameChunkRecord(DType dtype, uint8_t strategy, std::string_view raw,
                        std::string_view body, std::string* record) {
  if (raw.size() % DTypeWidth(dtype) != 0 || raw.size() > kMaxChunkRawBytes ||
      body.size() > UINT32_MAX)
    return Status::InvalidArgument("chunk record: bad raw or body size");
  record->clear();
  record->reserve(kChunkRecordHeaderSize + body.size());
  char h[kChunkRecordHeaderSize] = {};
  std::memcpy(h, kChunkRecordMagic, 4);
  h[4] = static_cast<char>(strategy);
  h[5] = static_cast<char>(dtype);
  PutLE32(h + 8, static_cast<uint32_t>(raw.size()));
  PutLE32(h + 12, static_cast<uint32_t>(body.size()));
  PutLE64(h + 16, Xxh3(raw.data(), raw.size()));
  PutLE64(h + 24, RecordChecksum(std::string_view(h, 24), body));
  record->append(h, sizeof h);
  record->append(body);
  return Status::OK();
}

Status ParseChunkRecordHeader(std::string_view record, ChunkRecordInfo* info) {
  if (record.size() < kChunkRecordHeaderSize)
    return Status::Corruption("chunk record truncated: shorter than its 32-byte header");
  const char* h = record.data();
  if (std::memcmp(h, kChunkRecordMagic, 4) != 0)
    return Status::Corruption("not a chunk record (bad magic)");
  if (h[6] != 0 || h[7] != 0) return Status::Corruption("chunk record reserved bytes are not zero");
  auto dtype = DTypeFromByte(static_cast<uint8_t>(h[5]));
  if (!dtype) return Status::Corruption("chunk record has an unknown dtype");
  ChunkRecordInfo r;
  r.strategy = static_cast<uint8_t>(h[4]);
  r.dtype = *dtype;
  r.raw_len = GetLE32(h + 8);
  r.body_len = GetLE32(h + 12);
  r.raw_checksum = GetLE64(h + 16);
  r.record_checksum = GetLE64(h + 24);
  if (r.raw_len > kMaxChunkRawBytes) return Status::Corruption("chunk record raw length too large");
  if (r.raw_len % DTypeWidth(r.dtype) != 0)
    return Status::Corruption("chunk record raw length is not a multiple of the dtype width");
  if (record.size() - kChunkRecordHeaderSize != r.body_len)
    return Status::Corruption(record.size() - kChunkRecordHeaderSize < r.body_len
                                  ? "chunk record truncated"
                                  : "chunk record has trailing bytes");
  *info = r;
  return Status::OK();
}

Status VerifyChunkRecord(std::string_view record, ChunkRecordInfo* info) {
  ChunkRecordInfo r;
  QATQ_RETURN_IF_ERROR(ParseChunkRecordHeader(record, &r));
  if (RecordChecksum(record.substr(0, 24), record.substr(kChunkRecordHeaderSize)) !=
      r.record_checksum)
    return Status::Corruption("chunk record checksum mismatch");
  *info = r;
  return Status::OK();
}

namespace {

// Decodes the body of `record`, whose header `r` was parsed and checksum
// verified, into dst[0, r.raw_len).
Status DecodeVerifiedRecord(std::string_view record, const ChunkRecordInfo& r, char* dst,
                            ChunkRecordInfo* info) {
  QATQ_RETURN_IF_ERROR(
      v3::DecodeBody(r.strategy, r.dtype, record.substr(kChunkRecordHeaderSize), dst, r.raw_len));
  if (Xxh3(dst, r.raw_len) != r.raw_checksum)
    return Status::Corruption("chunk checksum mismatch after decoding");
  if (info) *info = r;
  return Status::OK();
}

}  // namespace

Status DecodeChunkRecord(std::string_view record, char* dst, size_t dst_capacity,
                         ChunkRecordInfo* info) {
  ChunkRecordInfo r;
  QATQ_RETURN_IF_ERROR(VerifyChunkRecord(record, &r));
  if (dst_capacity < r.raw_len) return Status::InvalidArgument("decode buffer too small");
  return DecodeVerifiedRecord(record, r, dst, info);
}

Status DecodeChunkRecord(std::string_view record, std::string* raw, ChunkRecordInfo* info) {
  // Checksum first: the header's raw length is trusted (up to 64 MiB
  // allocated and zeroed) only once the record is known to be intact.
  ChunkRecordInfo r;
  QATQ_RETURN_IF_ERROR(VerifyChunkRecord(record, &r));
  raw->resize(r.raw_len);
  return DecodeVerifiedRecord(record, r, raw->data(), info);
}

std::string StrategyName(uint8_t strategy) { return v3::StrategyName(strategy); }

}  // namespace qatq
