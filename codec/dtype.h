// Element types of tensor bytes. Inputs and outputs are raw little-endian
// element bytes; `kBytes` marks opaque data (text, JSON) that only gets a byte
// codec.
#ifndef QATQ_CODEC_DTYPE_H_
#define QATQ_CODEC_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace qatq {

// DO NOT CHANGE THESE VALUES: they are the dtype byte of QATC v3 headers and
// chunk records (docs/FORMAT-v3.md) and of the store's inode records.
enum class DType : uint8_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kBytes = 3,
};

// Bytes per element: 4, 2, 2, 1.
constexpr size_t DTypeWidth(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kBytes: return 1;
  }
  return 1;
}

// "f32", "f16", "bf16", "bytes".
constexpr std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kBytes: return "bytes";
  }
  return "?";
}

// Inverse of DTypeName; nullopt for anything else.
inline std::optional<DType> ParseDType(std::string_view s) {
  if (s == "f32") return DType::kF32;
  if (s == "f16") return DType::kF16;
  if (s == "bf16") return DType::kBF16;
  if (s == "bytes") return DType::kBytes;
  return std::nullopt;
}

// Validates a dtype byte read from untrusted input.
inline std::optional<DType> DTypeFromByte(uint8_t b) {
  if (b <= static_cast<uint8_t>(DType::kBytes)) return static_cast<DType>(b);
  return std::nullopt;
}

}  // namespace qatq

#endif  // QATQ_CODEC_DTYPE_H_
