// libFuzzer: QATC v2 container decoding on arbitrary bytes. Checks 1-4 must
// hold before any output; nothing may crash or over-allocate.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "codec/qatc_v2.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  qatq::ContainerInfo info;
  const bool structure_ok = qatq::ReadQatcV2Structure(in, &info).ok();
  uint64_t delivered = 0;
  qatq::Status s = qatq::DecodeQatcV2(
      in,
      [&](std::string_view b) {
        if (!structure_ok) std::abort();  // output before checks 1-4 passed
        delivered += b.size();
        return qatq::Status::OK();
      },
      1 + static_cast<int>(size % 2));
  if (s.ok() && delivered != info.element_count * qatq::DTypeWidth(info.dtype)) std::abort();
  return 0;
}
