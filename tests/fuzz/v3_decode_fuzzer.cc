// libFuzzer target: QATC v3 files and chunk records from arbitrary bytes.
// Decoders must reject or decode without crashing, leaking or reading out of
// bounds; a decode that succeeds must be reproducible.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/chunk_record.h"
#include "codec/qatc_v3.h"
#include "codec/v3_huffman.h"
#include "codec/v3_strategies.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  // Whole container.
  std::string out;
  qatq::Status s = qatq::DecodeQatcV3(
      in,
      [&](std::string_view b) {
        out.append(b);
        return qatq::Status::OK();
      },
      1);
  s.IgnoreError();

  // One chunk record.
  std::string raw;
  qatq::DecodeChunkRecord(in, &raw).IgnoreError();

  // A bare body under every strategy, with the first bytes choosing the
  // dtype and raw length (so bodies need no valid record checksum).
  if (size >= 3) {
    const uint8_t strategy = data[0] % 6;
    const auto dtype = static_cast<qatq::DType>(data[1] % 4);
    const uint32_t raw_len =
        static_cast<uint32_t>(data[2]) * 64 * static_cast<uint32_t>(qatq::DTypeWidth(dtype));
    std::string dst(raw_len, '\0');
    qatq::v3::DecodeBody(strategy, dtype, in.substr(3), dst.data(), raw_len).IgnoreError();
    std::string layout;  // qatq inspect's header parser
    qatq::v3::DescribeBody(data[0] % 6, in.substr(3), &layout).IgnoreError();
    if (raw_len > 0)
      qatq::v3::HuffmanDecode(in.substr(3), reinterpret_cast<uint8_t*>(dst.data()), raw_len)
          .IgnoreError();
  }
  return 0;
}
