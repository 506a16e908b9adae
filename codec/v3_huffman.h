// A small order-0 canonical Huffman coder for the byte streams of QATC v3
// (StreamCoder::kHuffman). Codes are at most 11 bits; the input is cut into
// four segments coded as independent bit streams so the decoder can work on
// them in parallel. Layout: docs/FORMAT-v3.md, "Huffman streams".
//
// Measured against htscodecs rANS (docs/FORMAT-v3.md, section 4): faster
// both ways, but ~1% larger on exponent streams, so the encoder does not
// choose this coder; it remains a valid stream coder of the format.
//
// Thread-safety: pure functions.
#ifndef QATQ_CODEC_V3_HUFFMAN_H_
#define QATQ_CODEC_V3_HUFFMAN_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace qatq::v3 {

inline constexpr int kHuffmanMaxBits = 11;

// Encodes `in` (non-empty) into *out (replaced).
// REQUIRES: in.size() < 2^32.
Status HuffmanEncode(std::string_view in, std::string* out);
// As above with the byte histogram of `in` already computed.
Status HuffmanEncode(std::string_view in, const uint32_t hist[256], std::string* out);

// Decodes exactly n bytes into dst. Corruption on malformed input; never
// reads outside `in` or writes outside dst[0, n).
Status HuffmanDecode(std::string_view in, uint8_t* dst, size_t n);

// Byte histogram of `in` (fast path shared by the estimators).
void ByteHistogram(std::string_view in, uint32_t hist[256]);

// Size in bytes HuffmanEncode would produce for a stream with byte
// histogram `hist` (exact up to per-segment byte rounding).
size_t HuffmanEstimate(const uint32_t hist[256]);

}  // namespace qatq::v3

#endif  // QATQ_CODEC_V3_HUFFMAN_H_
