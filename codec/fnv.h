// FNV-1a 64, the checksum of QATQ exact payloads and QATC v2 containers
// (spec sections 1.4 and 2.1).
#ifndef QATQ_CODEC_FNV_H_
#define QATQ_CODEC_FNV_H_

#include <cstddef>
#include <cstdint>

// The hash loops have no branch worth steering a fuzzer by, yet coverage
// instrumentation of their per-byte loop compare made hashing the largest
// cost of the v2 container fuzzer. Kept out of line so callers' instrumented
// code does not inline the loop back in.
#if defined(__clang__)
#define QATQ_FNV_NO_COVERAGE __attribute__((noinline, no_sanitize("coverage")))
#else
#define QATQ_FNV_NO_COVERAGE
#endif

namespace qatq {

inline constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnvPrime = 0x100000001b3ull;

// Continues an FNV-1a 64 hash `h` over data[0, n). Start with kFnvOffsetBasis.
QATQ_FNV_NO_COVERAGE inline uint64_t Fnv1a64(uint64_t h, const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnvPrime;
  return h;
}

inline uint64_t Fnv1a64(const void* data, size_t n) { return Fnv1a64(kFnvOffsetBasis, data, n); }

// FNV-1a 64 over the big-endian (canonical) bytes of `n` little-endian
// 32-bit words at `le`, without materialising the byte-swapped copy.
QATQ_FNV_NO_COVERAGE inline uint64_t Fnv1a64CanonicalWords32(const void* le, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(le);
  uint64_t h = kFnvOffsetBasis;
  for (size_t i = 0; i < n; ++i, p += 4) {
    h = (h ^ p[3]) * kFnvPrime;
    h = (h ^ p[2]) * kFnvPrime;
    h = (h ^ p[1]) * kFnvPrime;
    h = (h ^ p[0]) * kFnvPrime;
  }
  return h;
}

}  // namespace qatq

#endif  // QATQ_CODEC_FNV_H_
