// libFuzzer: QATQ exact payload decoding on arbitrary bytes. Must never
// crash, read out of bounds or allocate beyond what the input can describe;
// whatever decodes must re-encode and decode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "codec/qatc_v2.h"

namespace {

// A few body bytes may legitimately describe up to 2^26 elements (constant
// byte planes, long runs); decoding those cost ~1 s per input under ASan, so
// the corpus filled with them and runs slowed to a few thousand per second
// while exercising no code a small payload does not. The golden payloads
// decode to at most 128 KiB.
constexpr uint64_t kMaxDecodedBytes = 256 << 10;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  qatq::PayloadInfo header;
  if (qatq::ParsePayloadHeader(in, &header).ok() &&
      header.element_count * qatq::DTypeWidth(header.dtype) > kMaxDecodedBytes)
    return 0;
  std::string raw;
  qatq::PayloadInfo info;
  if (!qatq::DecodePayload(in, &raw, &info).ok()) return 0;
  std::string again, back;
  if (!qatq::EncodePayload(info.dtype, raw, {}, &again).ok()) std::abort();
  if (!qatq::DecodePayload(again, &back).ok() || back != raw) std::abort();
  return 0;
}
