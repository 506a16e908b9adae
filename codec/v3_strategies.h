// The exact strategies of QATC v3 chunk records: how a chunk's raw bytes
// become a record body and back. chunk_record.cc frames and checksums; this
// module chooses and runs strategies. Ids: codec/chunk_record.h (Strategy)
// and docs/FORMAT-v3.md.
#ifndef QATQ_CODEC_V3_STRATEGIES_H_
#define QATQ_CODEC_V3_STRATEGIES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "codec/chunk_record.h"
#include "codec/dtype.h"

namespace qatq::v3 {

// Chooses a strategy for `raw` and writes its body to *body (replaced).
// Never fails for valid input: kRaw is always available.
// REQUIRES: raw.size() % DTypeWidth(dtype) == 0.
Status EncodeBody(DType dtype, std::string_view raw, const ChunkEncodeOptions& options,
                  uint8_t* strategy, std::string* body);

// Decodes `body` written by `strategy` into exactly dst[0, raw_len).
// Corruption if the body is malformed or does not produce raw_len bytes.
Status DecodeBody(uint8_t strategy, DType dtype, std::string_view body, char* dst,
                  uint32_t raw_len);

// "raw", "constant", "zstd", ...; "unknown-N" for ids this build lacks.
std::string StrategyName(uint8_t strategy);

}  // namespace qatq::v3

#endif  // QATQ_CODEC_V3_STRATEGIES_H_
