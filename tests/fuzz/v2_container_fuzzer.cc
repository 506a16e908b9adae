// libFuzzer: QATC v2 container decoding on arbitrary bytes. Checks 1-4 must
// hold before any output; nothing may crash or over-allocate.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "codec/endian.h"
#include "codec/fnv.h"
#include "codec/qatc_v2.h"

namespace {

// A valid layout may declare up to 2^32 elements whose chunk payloads hold
// a few bytes each (constant byte planes): decoding those costs seconds per
// input under ASan and exercises no code a small container does not. The
// golden containers decode to at most 64 KiB.
constexpr uint64_t kMaxDecodedBytes = 256 << 10;

void DecodeOne(std::string_view in, int threads) {
  qatq::ContainerInfo layout;
  if (qatq::ReadQatcV2Layout(in, &layout).ok() &&
      layout.element_count * qatq::DTypeWidth(layout.dtype) > kMaxDecodedBytes)
    return;
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
      threads);
  if (s.ok() && delivered != info.element_count * qatq::DTypeWidth(info.dtype)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  DecodeOne(in, 1 + static_cast<int>(size % 2));
  // Mutations almost always break the aggregate checksum; also decode a
  // copy with it repaired so the walk and the chunk decoders get exercised.
  if (size >= 32) {
    std::string fixed(in);
    qatq::PutBE64(fixed.data() + 24, qatq::Fnv1a64(fixed.data() + 32, fixed.size() - 32));
    DecodeOne(fixed, 1);
  }
  return 0;
}
