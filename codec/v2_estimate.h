// Cheap size estimates that let the v2 encoder skip zstd-compressing
// candidate transforms that cannot win (see EncodePayload).
//
// Thread-safety: pure functions.
#ifndef QATQ_CODEC_V2_ESTIMATE_H_
#define QATQ_CODEC_V2_ESTIMATE_H_

#include <cstddef>
#include <cstdint>

#include "codec/planes.h"

namespace qatq {

// Order-0 entropy, in bytes, of the byte planes of the transformed words
// d[i] (i in [begin, end)) of the n little-endian words at `le`, summed over
// planes. Words before `begin` serve as predictor history.
// REQUIRES: begin <= end <= n; width 2 or 4; s >= 1 for kXorStride.
double EstimatePlaneEntropy(const char* le, size_t n, size_t width, WordTransform t, size_t s,
                            size_t begin, size_t end);

// The row length (in elements) whose xor predictor d[i] = w[i] ^ w[i - s]
// leaves the fewest significant bits, over a sample of `le`: the stride for
// strategy 10. Tries s in [2, max_stride]; returns 0 if n is too small or if
// no stride beats the adjacent predictor (s = 1). 16-bit words only.
uint32_t DetectStride16(const char* le, size_t n, uint32_t max_stride = 1024);

}  // namespace qatq

#endif  // QATQ_CODEC_V2_ESTIMATE_H_
