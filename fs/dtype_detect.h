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
#include <vector>

#include "base/status.h"
#include "codec/dtype.h"

namespace qatq {

// Name hints: ".bf16le"/".bf16" -> bf16, ".f16le"/".f16" -> f16,
// ".f32le"/".f32" -> f32. nullopt otherwise.
std::optional<DType> DTypeFromName(std::string_view name);

bool IsSafetensorsName(std::string_view name);

struct SafetensorsLayout {
  // One tensor's bytes, as absolute file offsets [begin, end).
  struct Tensor {
    uint64_t begin = 0;
    uint64_t end = 0;
    DType dtype = DType::kBytes;  // kBytes: a dtype the codec has no model of (I64, U8, F64...)
  };
  // End of the header region: 8 + the JSON length.
  uint64_t header_end = 0;
  // The dtype holding the most tensor bytes.
  DType dominant = DType::kBytes;
  // Sorted by begin.
  std::vector<Tensor> tensors;

  // The dtype covering most bytes of the file range [begin, end): the
  // header counts as kBytes; bytes no tensor covers do not vote; dominant
  // if nothing votes.
  DType DTypeOfRange(uint64_t begin, uint64_t end) const;
};

// Parses the safetensors header from the first bytes of a file (u64 LE
// length, then JSON, read with nlohmann::json's SAX parser). Works on a
// prefix shorter than the header: the tensors described in the prefix are
// kept. InvalidArgument if it is not safetensors.
Status ParseSafetensorsHeader(std::string_view prefix, SafetensorsLayout* layout);

// Guesses the dtype of `sample` (typically the first chunk) from the entropy
// of the exponent field under each hypothesis; text and random-looking
// bytes give kBytes.
DType DetectDType(std::string_view sample);

}  // namespace qatq

#endif  // QATQ_FS_DTYPE_DETECT_H_
