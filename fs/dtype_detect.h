// How the filesystem picks the element type a file's chunks are encoded
// with. The choice only steers compression: every dtype decodes to the same
// bytes, so a wrong guess costs ratio, never correctness.
//
// Thread-safety: all functions are pure.
#ifndef QATQ_FS_DTYPE_DETECT_H_
#define QATQ_FS_DTYPE_DETECT_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "codec/dtype.h"

namespace qatq {

// Name hints: ".bf16le"/".bf16" -> bf16, ".f16le"/".f16" -> f16,
// ".f32le"/".f32" -> f32. nullopt otherwise.
std::optional<DType> DTypeFromName(std::string_view name);

bool IsSafetensorsName(std::string_view name);

struct SafetensorsLayout {
  // End of the header region: 8 + the JSON length.
  uint64_t header_end = 0;
  // The dtype holding the most tensor bytes (kBytes for dtypes the codec
  // has no model of, e.g. I64, U8, F64).
  DType dominant = DType::kBytes;
};

// Parses the safetensors header from the first bytes of a file (u64 LE
// length, then JSON). Works on a prefix shorter than the header: tensors
// described in the prefix vote. InvalidArgument if it is not safetensors.
Status ParseSafetensorsHeader(std::string_view prefix, SafetensorsLayout* layout);

// Guesses the dtype of `sample` (typically the first chunk) from the entropy
// of the exponent field under each hypothesis; text and random-looking
// bytes give kBytes.
DType DetectDType(std::string_view sample);

}  // namespace qatq

#endif  // QATQ_FS_DTYPE_DETECT_H_
