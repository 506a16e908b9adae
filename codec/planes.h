// Byte-plane transposition of little-endian words, with the word predictors
// of the QATC v2 strategies (spec 1.3). Plane 0 holds the most significant
// byte of every word ("canonical", big-endian order), plane width-1 the
// least significant.
//
// Thread-safety: pure functions.
#ifndef QATQ_CODEC_PLANES_H_
#define QATQ_CODEC_PLANES_H_

#include <cstddef>
#include <cstdint>

namespace qatq {

// Predictor applied to the words before they are split into planes.
enum class WordTransform : uint8_t {
  kNone,       // d[i] = w[i]
  kXorStride,  // d[i] = w[i] ^ w[i - s] for i >= s, else w[i]  (s = 1: adjacent)
  kSubPrev,    // d[i] = (w[i] - w[i - 1]) mod 2^bits, w[-1] = 0
};

// Splits n words of `width` (2 or 4) bytes at `le` into `width` planes of n
// bytes each at `planes`, after applying `t` (with stride `s` for kXorStride).
// REQUIRES: planes has room for n * width bytes; s >= 1 for kXorStride.
void SplitPlanes(const char* le, size_t n, size_t width, WordTransform t, size_t s, char* planes);

// Inverse of SplitPlanes: rebuilds the little-endian words at `le`.
void MergePlanes(const char* planes, size_t n, size_t width, WordTransform t, size_t s, char* le);

// Byte-swaps n words of `width` bytes between little-endian and canonical
// (big-endian) order. `in` and `out` must not overlap.
void SwapWords(const char* in, size_t n, size_t width, char* out);

}  // namespace qatq

#endif  // QATQ_CODEC_PLANES_H_
