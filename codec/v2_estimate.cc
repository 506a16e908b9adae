#include "codec/v2_estimate.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <vector>

namespace qatq {
namespace {

// c * log2(c) for the counts of small samples, the common case.
constexpr size_t kTableSize = 16385;
const float* CLogCTable() {
  static const float* table = [] {
    float* t = new float[kTableSize];
    t[0] = 0;
    for (size_t c = 1; c < kTableSize; ++c) t[c] = static_cast<float>(c * std::log2(double(c)));
    return t;
  }();
  return table;
}

double CLogC(uint32_t c) {
  return c < kTableSize ? CLogCTable()[c] : c * std::log2(static_cast<double>(c));
}

// Order-0 entropy in bytes: (N log N - sum c log c) / 8.
double HistogramEntropyBytes(const uint32_t* hist, size_t total) {
  if (total == 0) return 0;
  double sum = 0;
  for (int i = 0; i < 256; ++i) sum += CLogC(hist[i]);
  return (total * std::log2(static_cast<double>(total)) - sum) / 8;
}

template <typename W>
inline W Load(const char* le, size_t i) {
  W v;
  std::memcpy(&v, le + i * sizeof(W), sizeof(W));
  return v;
}

template <typename W>
double EstimateT(const char* le, size_t n, WordTransform t, size_t s, size_t begin, size_t end) {
  (void)n;
  constexpr size_t kW = sizeof(W);
  uint32_t hist[kW][256];
  std::memset(hist, 0, sizeof hist);
  for (size_t i = begin; i < end; ++i) {
    W w = Load<W>(le, i);
    W d;
    switch (t) {
      case WordTransform::kNone: d = w; break;
      case WordTransform::kXorStride: d = i >= s ? static_cast<W>(w ^ Load<W>(le, i - s)) : w; break;
      default: d = static_cast<W>(w - (i >= 1 ? Load<W>(le, i - 1) : W{0})); break;
    }
    for (size_t b = 0; b < kW; ++b) ++hist[b][static_cast<uint8_t>(d >> (8 * b))];
  }
  double total = 0;
  for (size_t b = 0; b < kW; ++b) total += HistogramEntropyBytes(hist[b], end - begin);
  return total;
}

}  // namespace

double EstimatePlaneEntropy(const char* le, size_t n, size_t width, WordTransform t, size_t s,
                            size_t begin, size_t end) {
  if (width == 4) return EstimateT<uint32_t>(le, n, t, s, begin, end);
  return EstimateT<uint16_t>(le, n, t, s, begin, end);
}

uint32_t DetectStride16(const char* le, size_t n, uint32_t max_stride) {
  constexpr size_t kSample = 2048;
  if (n < 8) return 0;
  max_stride = static_cast<uint32_t>(std::min<size_t>(max_stride, n / 2));
  if (max_stride < 2) return 0;
  // One contiguous sample in the middle, with max_stride words of history.
  size_t len = std::min(kSample, n - max_stride);
  size_t begin = max_stride + (n - max_stride - len) / 2;
  std::vector<uint16_t> w(len + max_stride);
  std::memcpy(w.data(), le + 2 * (begin - max_stride), 2 * w.size());
  const uint16_t* cur = w.data() + max_stride;
  auto cost = [&](size_t s) {
    // Significant bits of the residual: 16 - clz, summed (as 32-bit clz).
    uint64_t bits = 0;
    const uint16_t* prev = cur - s;
    for (size_t i = 0; i < len; ++i) {
      uint32_t x = static_cast<uint32_t>(cur[i] ^ prev[i]);
      bits += x ? 32 - __builtin_clz(x) : 0;
    }
    return bits;
  };
  const uint64_t adjacent = cost(1);
  uint64_t best_cost = adjacent;
  uint32_t best = 0;
  for (uint32_t s = 2; s <= max_stride; ++s) {
    uint64_t c = cost(s);
    // Require a clear gain so noise does not pick a random stride.
    if (c < best_cost && c * 100 < adjacent * 98) {
      best_cost = c;
      best = s;
    }
  }
  return best;
}

}  // namespace qatq
