// Matrix transposition of 16- and 32-bit words for the transposed layout of
// QATC v3's fields strategy (streams in column order of rows of `stride`
// elements; docs/FORMAT-v3.md). A word-by-word loop cost as much as an
// entropy coder pass; 8x8 (16-bit) and 4x4 (32-bit) tiles moved through
// SSE2 registers cost a fraction of it. SSE2 is part of the x86-64
// baseline, so no run-time dispatch is needed; other targets take the
// portable loop, which gives the same bytes.
//
// Thread-safety: pure functions.
#ifndef QATQ_CODEC_V3_TRANSPOSE_H_
#define QATQ_CODEC_V3_TRANSPOSE_H_

#include <cstddef>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace qatq::v3 {

namespace transpose_internal {

// dst[c * rows + r] = src[r * cols + c] for r in [r0, r1), c in [c0, c1).
template <size_t kW>
inline void Block(const char* src, size_t rows, size_t cols, char* dst, size_t r0, size_t r1,
                  size_t c0, size_t c1) {
  for (size_t r = r0; r < r1; ++r)
    for (size_t c = c0; c < c1; ++c) std::memcpy(dst + (c * rows + r) * kW, src + (r * cols + c) * kW, kW);
}

#if defined(__SSE2__)
// One 8x8 tile of 16-bit words: rows at src (src_stride words apart) become
// columns at dst (dst_stride words apart).
inline void Tile8x8U16(const char* src, size_t src_stride, char* dst, size_t dst_stride) {
  const size_t ss = src_stride * 2, ds = dst_stride * 2;
  const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  const __m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + ss));
  const __m128i a2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * ss));
  const __m128i a3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 3 * ss));
  const __m128i a4 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 4 * ss));
  const __m128i a5 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 5 * ss));
  const __m128i a6 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 6 * ss));
  const __m128i a7 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 7 * ss));
  const __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
  const __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
  const __m128i b4 = _mm_unpacklo_epi16(a4, a5), b5 = _mm_unpackhi_epi16(a4, a5);
  const __m128i b6 = _mm_unpacklo_epi16(a6, a7), b7 = _mm_unpackhi_epi16(a6, a7);
  const __m128i c0 = _mm_unpacklo_epi32(b0, b2), c1 = _mm_unpackhi_epi32(b0, b2);
  const __m128i c2 = _mm_unpacklo_epi32(b1, b3), c3 = _mm_unpackhi_epi32(b1, b3);
  const __m128i c4 = _mm_unpacklo_epi32(b4, b6), c5 = _mm_unpackhi_epi32(b4, b6);
  const __m128i c6 = _mm_unpacklo_epi32(b5, b7), c7 = _mm_unpackhi_epi32(b5, b7);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_unpacklo_epi64(c0, c4));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + ds), _mm_unpackhi_epi64(c0, c4));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * ds), _mm_unpacklo_epi64(c1, c5));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 3 * ds), _mm_unpackhi_epi64(c1, c5));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 4 * ds), _mm_unpacklo_epi64(c2, c6));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 5 * ds), _mm_unpackhi_epi64(c2, c6));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 6 * ds), _mm_unpacklo_epi64(c3, c7));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 7 * ds), _mm_unpackhi_epi64(c3, c7));
}

// One 4x4 tile of 32-bit words.
inline void Tile4x4U32(const char* src, size_t src_stride, char* dst, size_t dst_stride) {
  const size_t ss = src_stride * 4, ds = dst_stride * 4;
  const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  const __m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + ss));
  const __m128i a2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * ss));
  const __m128i a3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 3 * ss));
  const __m128i t0 = _mm_unpacklo_epi32(a0, a1), t1 = _mm_unpacklo_epi32(a2, a3);
  const __m128i t2 = _mm_unpackhi_epi32(a0, a1), t3 = _mm_unpackhi_epi32(a2, a3);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_unpacklo_epi64(t0, t1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + ds), _mm_unpackhi_epi64(t0, t1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * ds), _mm_unpacklo_epi64(t2, t3));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 3 * ds), _mm_unpackhi_epi64(t2, t3));
}
#endif  // __SSE2__

}  // namespace transpose_internal

// Transposes the rows x cols matrix of kW-byte words at src into dst, which
// then holds cols x rows words: dst[c * rows + r] = src[r * cols + c].
// Neither pointer needs alignment. REQUIRES: src and dst do not overlap.
template <size_t kW>
inline void TransposeMatrix(const char* src, size_t rows, size_t cols, char* dst) {
  using transpose_internal::Block;
  // An empty side means nothing to move; returning here also keeps a
  // hostile 2^32 x 0 shape from walking its empty rows.
  if (rows == 0 || cols == 0) return;
  size_t tile = 0;
#if defined(__SSE2__)
  if constexpr (kW == 2) tile = 8;
  if constexpr (kW == 4) tile = 4;
#endif
  if (tile == 0 || rows < tile || cols < tile) {
    Block<kW>(src, rows, cols, dst, 0, rows, 0, cols);
    return;
  }
  const size_t rows_t = rows - rows % tile, cols_t = cols - cols % tile;
#if defined(__SSE2__)
  auto tile_at = [&](size_t r, size_t c) {
    const char* s = src + (r * cols + c) * kW;
    char* d = dst + (c * rows + r) * kW;
    if constexpr (kW == 2) transpose_internal::Tile8x8U16(s, cols, d, rows);
    if constexpr (kW == 4) transpose_internal::Tile4x4U32(s, cols, d, rows);
  };
  // The long side is walked in the inner loop, so that the tile rows on the
  // short side (often a power of two of bytes apart, which maps them to one
  // cache set) stay the same few lines for several tiles: the other order
  // measured 2-5x slower for strides of 16-64 words.
  if (rows >= cols) {
    for (size_t c = 0; c < cols_t; c += tile)
      for (size_t r = 0; r < rows_t; r += tile) tile_at(r, c);
  } else {
    for (size_t r = 0; r < rows_t; r += tile)
      for (size_t c = 0; c < cols_t; c += tile) tile_at(r, c);
  }
#endif
  Block<kW>(src, rows, cols, dst, 0, rows_t, cols_t, cols);  // right edge
  Block<kW>(src, rows, cols, dst, rows_t, rows, 0, cols);    // bottom rows
}

}  // namespace qatq::v3

#endif  // QATQ_CODEC_V3_TRANSPOSE_H_
