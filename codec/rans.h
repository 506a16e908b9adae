// rANS 4x16 stream coding through libhtscodecs (the CRAM 3.1 rANS-Nx16
// codec), as QATC v3 stream coder 1 stores it: one self-describing frame
// (order byte, size, body) per stream.
//
// Thread-safety: all functions may be called concurrently.
#ifndef QATQ_CODEC_RANS_H_
#define QATQ_CODEC_RANS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace qatq {

// Encodes `in` as one frame with htscodecs order flags `order` (bit 0 =
// order 1, RANS_ORDER_X32 = 32-way interleaving), replacing *out.
// REQUIRES: in.size() < 2^31.
Status RansEncode(std::string_view in, int order, std::string* out);

// Decodes one frame into out[0, n): Corruption unless it holds exactly n
// bytes. Never writes past out + n, whatever the frame holds.
Status RansDecode(std::string_view frame, uint8_t* out, size_t n);

// Same, always through the library's own entry point (tests compare the
// two; see RansDecode's fast path in rans.cc).
Status RansDecodeViaLibrary(std::string_view frame, uint8_t* out, size_t n);

// True if RansDecode calls the library's 32-way decoders directly (x86-64
// with a libhtscodecs that exports them, as Debian 12's does).
bool RansDirectDecodeAvailable();

}  // namespace qatq

#endif  // QATQ_CODEC_RANS_H_
