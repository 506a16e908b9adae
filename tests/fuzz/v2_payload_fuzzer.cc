// libFuzzer: QATQ exact payload decoding on arbitrary bytes. Must never
// crash, read out of bounds or allocate beyond what the input can describe;
// whatever decodes must re-encode and decode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "codec/qatc_v2.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string raw;
  qatq::PayloadInfo info;
  if (!qatq::DecodePayload(in, &raw, &info).ok()) return 0;
  std::string again, back;
  if (!qatq::EncodePayload(info.dtype, raw, {}, &again).ok()) std::abort();
  if (!qatq::DecodePayload(again, &back).ok() || back != raw) std::abort();
  return 0;
}
