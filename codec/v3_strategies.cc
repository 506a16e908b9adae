#include "codec/v3_strategies.h"

#include <zstd.h>

#include <cstring>

namespace qatq::v3 {

namespace {

bool AllElementsEqual(std::string_view raw, size_t width) {
  if (raw.size() < width) return false;
  for (size_t i = width; i < raw.size(); i += width) {
    if (std::memcmp(raw.data(), raw.data() + i, width) != 0) return false;
  }
  return true;
}

Status EncodeZstd(std::string_view raw, int level, std::string* body) {
  body->resize(ZSTD_compressBound(raw.size()));
  size_t n = ZSTD_compress(body->data(), body->size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) return Status::IOError(std::string("zstd: ") + ZSTD_getErrorName(n));
  body->resize(n);
  return Status::OK();
}

}  // namespace

Status EncodeBody(DType dtype, std::string_view raw, const ChunkEncodeOptions& options,
                  uint8_t* strategy, std::string* body) {
  const size_t width = DTypeWidth(dtype);
  if (AllElementsEqual(raw, width)) {
    *strategy = static_cast<uint8_t>(Strategy::kConstant);
    body->assign(raw.data(), width);
    return Status::OK();
  }
  std::string z;
  QATQ_RETURN_IF_ERROR(EncodeZstd(raw, options.effort >= 7 ? 19 : 3, &z));
  if (z.size() < raw.size()) {
    *strategy = static_cast<uint8_t>(Strategy::kZstd);
    *body = std::move(z);
  } else {
    *strategy = static_cast<uint8_t>(Strategy::kRaw);
    body->assign(raw);
  }
  return Status::OK();
}

Status DecodeBody(uint8_t strategy, DType dtype, std::string_view body, char* dst,
                  uint32_t raw_len) {
  const size_t width = DTypeWidth(dtype);
  switch (static_cast<Strategy>(strategy)) {
    case Strategy::kRaw:
      if (body.size() != raw_len) return Status::Corruption("raw body length mismatch");
      std::memcpy(dst, body.data(), raw_len);
      return Status::OK();
    case Strategy::kConstant:
      if (body.size() != width || raw_len == 0)
        return Status::Corruption("constant body must hold exactly one element");
      for (uint32_t i = 0; i < raw_len; i += width) std::memcpy(dst + i, body.data(), width);
      return Status::OK();
    case Strategy::kZstd: {
      unsigned long long content = ZSTD_getFrameContentSize(body.data(), body.size());
      if (content != raw_len) return Status::Corruption("zstd frame size does not match raw length");
      size_t n = ZSTD_decompress(dst, raw_len, body.data(), body.size());
      if (ZSTD_isError(n) || n != raw_len) return Status::Corruption("zstd frame does not decode");
      return Status::OK();
    }
  }
  return Status::NotSupported("unknown strategy " + std::to_string(strategy));
}

std::string StrategyName(uint8_t strategy) {
  switch (static_cast<Strategy>(strategy)) {
    case Strategy::kRaw: return "raw";
    case Strategy::kConstant: return "constant";
    case Strategy::kZstd: return "zstd";
  }
  return "unknown-" + std::to_string(strategy);
}

}  // namespace qatq::v3
