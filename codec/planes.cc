#include "codec/planes.h"

#include <cstring>

namespace qatq {
namespace {

template <typename W>
inline W LoadLE(const char* p) {
  W v;
  std::memcpy(&v, p, sizeof(W));  // the project targets little-endian hosts
  return v;
}

template <typename W>
inline void StoreLE(char* p, W v) {
  std::memcpy(p, &v, sizeof(W));
}

// Writes plane bytes of word v at index i. Plane 0 = most significant byte.
template <typename W>
inline void Scatter(W v, size_t i, size_t n, unsigned char* planes) {
  constexpr size_t kW = sizeof(W);
  for (size_t b = 0; b < kW; ++b) {
    planes[b * n + i] = static_cast<unsigned char>(v >> (8 * (kW - 1 - b)));
  }
}

template <typename W>
inline W Gather(const unsigned char* planes, size_t i, size_t n) {
  constexpr size_t kW = sizeof(W);
  W v = 0;
  for (size_t b = 0; b < kW; ++b) v = static_cast<W>(v | (W{planes[b * n + i]} << (8 * (kW - 1 - b))));
  return v;
}

template <typename W>
void SplitT(const char* le, size_t n, WordTransform t, size_t s, char* out) {
  unsigned char* planes = reinterpret_cast<unsigned char*>(out);
  constexpr size_t kW = sizeof(W);
  switch (t) {
    case WordTransform::kNone:
      for (size_t i = 0; i < n; ++i) Scatter<W>(LoadLE<W>(le + i * kW), i, n, planes);
      break;
    case WordTransform::kXorStride: {
      size_t head = s < n ? s : n;
      for (size_t i = 0; i < head; ++i) Scatter<W>(LoadLE<W>(le + i * kW), i, n, planes);
      for (size_t i = head; i < n; ++i) {
        W d = LoadLE<W>(le + i * kW) ^ LoadLE<W>(le + (i - s) * kW);
        Scatter<W>(d, i, n, planes);
      }
      break;
    }
    case WordTransform::kSubPrev: {
      W prev = 0;
      for (size_t i = 0; i < n; ++i) {
        W w = LoadLE<W>(le + i * kW);
        Scatter<W>(static_cast<W>(w - prev), i, n, planes);
        prev = w;
      }
      break;
    }
  }
}

template <typename W>
void MergeT(const char* in, size_t n, WordTransform t, size_t s, char* le) {
  const unsigned char* planes = reinterpret_cast<const unsigned char*>(in);
  constexpr size_t kW = sizeof(W);
  switch (t) {
    case WordTransform::kNone:
      for (size_t i = 0; i < n; ++i) StoreLE<W>(le + i * kW, Gather<W>(planes, i, n));
      break;
    case WordTransform::kXorStride: {
      for (size_t i = 0; i < n; ++i) StoreLE<W>(le + i * kW, Gather<W>(planes, i, n));
      // Undo the predictor in place: w[i] = d[i] ^ w[i - s], in increasing i.
      for (size_t i = s; i < n; ++i) {
        StoreLE<W>(le + i * kW, LoadLE<W>(le + i * kW) ^ LoadLE<W>(le + (i - s) * kW));
      }
      break;
    }
    case WordTransform::kSubPrev: {
      W prev = 0;
      for (size_t i = 0; i < n; ++i) {
        prev = static_cast<W>(prev + Gather<W>(planes, i, n));
        StoreLE<W>(le + i * kW, prev);
      }
      break;
    }
  }
}

}  // namespace

void SplitPlanes(const char* le, size_t n, size_t width, WordTransform t, size_t s, char* planes) {
  if (width == 4) {
    SplitT<uint32_t>(le, n, t, s, planes);
  } else {
    SplitT<uint16_t>(le, n, t, s, planes);
  }
}

void MergePlanes(const char* planes, size_t n, size_t width, WordTransform t, size_t s, char* le) {
  if (width == 4) {
    MergeT<uint32_t>(planes, n, t, s, le);
  } else {
    MergeT<uint16_t>(planes, n, t, s, le);
  }
}

void SwapWords(const char* in, size_t n, size_t width, char* out) {
  if (width == 4) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, in + 4 * i, 4);
      v = __builtin_bswap32(v);
      std::memcpy(out + 4 * i, &v, 4);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, in + 2 * i, 2);
      v = __builtin_bswap16(v);
      std::memcpy(out + 2 * i, &v, 2);
    }
  }
}

}  // namespace qatq
