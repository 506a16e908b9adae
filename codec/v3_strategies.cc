#include "codec/v3_strategies.h"

#include <htscodecs/rANS_static4x16.h>
#include <zstd.h>
#include <lz4.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "codec/endian.h"
#include "codec/rans.h"
#include "codec/v3_huffman.h"
#include "codec/v3_transpose.h"

namespace qatq::v3 {

static_assert(std::endian::native == std::endian::little,
              "v3 strategies load little-endian elements with memcpy");

namespace {

constexpr size_t kFieldsHeaderSize = 9;  // transform, flags, 2 reserved, stride, nstreams
constexpr size_t kStreamHeaderSize = 5;  // coder, u32 length
constexpr size_t kWidenedHeaderSize = 4;
constexpr uint8_t kFlagTransposed = 0x01;

// ---------------------------------------------------------------------------
// Element layouts. A "kind" is the element width plus how it splits into
// byte streams; see docs/FORMAT-v3.md, "Fields".

int StreamCount(DType dtype) { return static_cast<int>(DTypeWidth(dtype)); }

// Position of element i in every stream: identity, or column order of a
// rows x stride matrix with the incomplete last row left at the end.
struct Layout {
  size_t n = 0;
  size_t stride = 1;
  size_t rows = 0;
  bool transposed = false;
};

template <typename W>
W Zigzag(W d) {
  constexpr int kBits = sizeof(W) * 8;
  return static_cast<W>(static_cast<W>(d << 1) ^ static_cast<W>(W{0} - static_cast<W>(d >> (kBits - 1))));
}
template <typename W>
W Unzigzag(W z) {
  return static_cast<W>((z >> 1) ^ static_cast<W>(W{0} - static_cast<W>(z & 1)));
}

// Splits word t into stream bytes out[0..width) for `dtype`; exponent
// aligned unless `planes` (plain byte planes, most significant first).
inline void SplitWord(DType dtype, bool planes, uint32_t t, uint8_t* out) {
  switch (dtype) {
    case DType::kBytes:
      out[0] = static_cast<uint8_t>(t);
      return;
    case DType::kF16:
      out[0] = static_cast<uint8_t>(t >> 8);
      out[1] = static_cast<uint8_t>(t);
      return;
    case DType::kBF16:
      if (planes) {
        out[0] = static_cast<uint8_t>(t >> 8);
        out[1] = static_cast<uint8_t>(t);
      } else {
        out[0] = static_cast<uint8_t>(t >> 7);
        out[1] = static_cast<uint8_t>(((t >> 8) & 0x80) | (t & 0x7f));
      }
      return;
    case DType::kF32:
      if (planes) {
        out[0] = static_cast<uint8_t>(t >> 24);
        out[1] = static_cast<uint8_t>(t >> 16);
      } else {
        out[0] = static_cast<uint8_t>(t >> 23);
        out[1] = static_cast<uint8_t>(((t >> 24) & 0x80) | ((t >> 16) & 0x7f));
      }
      out[2] = static_cast<uint8_t>(t >> 8);
      out[3] = static_cast<uint8_t>(t);
      return;
  }
}

inline uint32_t MergeWord(DType dtype, bool planes, const uint8_t* in) {
  switch (dtype) {
    case DType::kBytes:
      return in[0];
    case DType::kF16:
      return (uint32_t{in[0]} << 8) | in[1];
    case DType::kBF16:
      if (planes) return (uint32_t{in[0]} << 8) | in[1];
      return ((uint32_t{in[1]} & 0x80) << 8) | (uint32_t{in[0]} << 7) | (in[1] & 0x7f);
    case DType::kF32:
      if (planes)
        return (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) | (uint32_t{in[2]} << 8) | in[3];
      return ((uint32_t{in[1]} & 0x80) << 24) | (uint32_t{in[0]} << 23) |
             ((uint32_t{in[1]} & 0x7f) << 16) | (uint32_t{in[2]} << 8) | in[3];
  }
  return 0;
}

template <typename W>
W LoadW(const char* p) {
  W w;
  std::memcpy(&w, p, sizeof(W));
  return w;
}

// Calls fn(i, pos) for every element i, with pos its index in the streams.
// Element i - stride is always visited before element i (decoders read it):
// natural order, or for the transposed layout column by column, which also
// walks the streams sequentially. Without a full row every element is in the
// tail, so the order is natural: walking `stride` empty columns would cost up
// to 2^32 steps for a hostile stride on a short chunk.
template <typename Fn>
inline void ForEachElement(const Layout& lay, Fn&& fn) {
  if (!lay.transposed || lay.stride <= 1 || lay.rows == 0) {
    for (size_t i = 0; i < lay.n; ++i) fn(i, i);
    return;
  }
  const size_t rows = lay.rows, stride = lay.stride;
  size_t pos = 0;
  for (size_t c = 0; c < stride; ++c)
    for (size_t i = c; i < rows * stride; i += stride, ++pos) fn(i, pos);
  for (size_t i = rows * stride; i < lay.n; ++i) fn(i, i);
}

// Transposes the rows x stride word matrix at the front of src into column
// order in dst (the tail of incomplete rows is copied as is), or back.
// Neither pointer needs alignment.
template <typename W>
void TransposeWords(const void* src, const Layout& lay, void* dst, bool to_columns) {
  const size_t rows = lay.rows, stride = lay.stride, full = rows * stride;
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  if (to_columns) TransposeMatrix<sizeof(W)>(s, rows, stride, d);
  else TransposeMatrix<sizeof(W)>(s, stride, rows, d);
  std::memcpy(d + full * sizeof(W), s + full * sizeof(W), (lay.n - full) * sizeof(W));
}

// Splits words[0, n) into the streams: exponent-aligned fields, or byte
// planes (most significant first) with kPlanes. Straight loops over restrict
// pointers that the compiler vectorises.
template <typename W, DType D, bool kPlanes>
void SplitWords(const W* __restrict words, size_t n, uint8_t* const* s) {
  uint8_t* __restrict s0 = s[0];
  if constexpr (D == DType::kBytes) {
    std::memcpy(s0, words, n);
  } else if constexpr (sizeof(W) == 2 && (kPlanes || D == DType::kF16)) {
    uint8_t* __restrict s1 = s[1];
    for (size_t i = 0; i < n; ++i) {
      s0[i] = static_cast<uint8_t>(words[i] >> 8);
      s1[i] = static_cast<uint8_t>(words[i]);
    }
  } else if constexpr (sizeof(W) == 2) {
    uint8_t* __restrict s1 = s[1];
    for (size_t i = 0; i < n; ++i) {
      const uint32_t w = words[i];
      s0[i] = static_cast<uint8_t>(w >> 7);
      s1[i] = static_cast<uint8_t>(((w >> 8) & 0x80) | (w & 0x7f));
    }
  } else {
    uint8_t* __restrict s1 = s[1];
    uint8_t* __restrict s2 = s[2];
    uint8_t* __restrict s3 = s[3];
    for (size_t i = 0; i < n; ++i) {
      const uint32_t w = words[i];
      if constexpr (kPlanes) {
        s0[i] = static_cast<uint8_t>(w >> 24);
        s1[i] = static_cast<uint8_t>(w >> 16);
      } else {
        s0[i] = static_cast<uint8_t>(w >> 23);
        s1[i] = static_cast<uint8_t>(((w >> 24) & 0x80) | ((w >> 16) & 0x7f));
      }
      s2[i] = static_cast<uint8_t>(w >> 8);
      s3[i] = static_cast<uint8_t>(w);
    }
  }
}

// Transform none: the words as they are (or transposed), then one
// vectorised split.
template <typename W, DType D>
void SplitNone(std::string_view raw, const Layout& lay, uint8_t* const* s) {
  const size_t n = lay.n;
  thread_local std::vector<W> buf;
  const W* words;
  const bool aligned = reinterpret_cast<uintptr_t>(raw.data()) % alignof(W) == 0;
  if (lay.transposed && lay.stride > 1) {
    buf.resize(n);
    TransposeWords<W>(raw.data(), lay, buf.data(), true);
    words = buf.data();
  } else if (aligned) {
    words = reinterpret_cast<const W*>(raw.data());  // the usual case: no copy
  } else {
    buf.resize(n);
    std::memcpy(buf.data(), raw.data(), n * sizeof(W));
    words = buf.data();
  }
  SplitWords<W, D, false>(words, n, s);
}

// Transforms xor and delta without the transposed layout: the transformed
// words in one vectorised pass (rows of `stride` do not overlap), then the
// split.
template <typename W, DType D, Transform T>
void SplitTransformed(std::string_view raw, const Layout& lay, uint8_t* const* s) {
  const size_t n = lay.n, stride = lay.stride;
  thread_local std::vector<W> buf;
  buf.resize(2 * n);
  W* __restrict v = buf.data();
  W* __restrict t = buf.data() + n;
  std::memcpy(v, raw.data(), n * sizeof(W));  // raw may be unaligned
  const size_t head = std::min(stride, n);
  for (size_t i = 0; i < head; ++i) {
    if constexpr (T == Transform::kDelta) t[i] = Zigzag<W>(v[i]);
    else t[i] = v[i];
  }
  for (size_t i = head; i < n; ++i) {
    if constexpr (T == Transform::kDelta) t[i] = Zigzag<W>(static_cast<W>(v[i] - v[i - stride]));
    else t[i] = static_cast<W>(v[i] ^ v[i - stride]);
  }
  SplitWords<W, D, T == Transform::kDelta>(t, n, s);
}

// Reassembles the words of the streams into words[0, n) (exponent-aligned
// fields, or byte planes with kPlanes).
template <typename W, DType D, bool kPlanes>
void GatherWords(const uint8_t* const* s, size_t n, W* __restrict words) {
  const uint8_t* __restrict s0 = s[0];
  if constexpr (D == DType::kBytes) {
    std::memcpy(words, s0, n);
  } else if constexpr (sizeof(W) == 2 && (kPlanes || D == DType::kF16)) {
    const uint8_t* __restrict s1 = s[1];
    for (size_t i = 0; i < n; ++i) words[i] = static_cast<W>((s0[i] << 8) | s1[i]);
  } else if constexpr (sizeof(W) == 2) {
    const uint8_t* __restrict s1 = s[1];
    for (size_t i = 0; i < n; ++i)
      words[i] = static_cast<W>(((s1[i] & 0x80) << 8) | (s0[i] << 7) | (s1[i] & 0x7f));
  } else if constexpr (kPlanes) {
    const uint8_t* __restrict s1 = s[1];
    const uint8_t* __restrict s2 = s[2];
    const uint8_t* __restrict s3 = s[3];
    for (size_t i = 0; i < n; ++i)
      words[i] = static_cast<W>((uint32_t{s0[i]} << 24) | (uint32_t{s1[i]} << 16) |
                                (uint32_t{s2[i]} << 8) | s3[i]);
  } else {
    const uint8_t* __restrict s1 = s[1];
    const uint8_t* __restrict s2 = s[2];
    const uint8_t* __restrict s3 = s[3];
    for (size_t i = 0; i < n; ++i)
      words[i] = static_cast<W>((uint32_t{s1[i] & 0x80u} << 24) | (uint32_t{s0[i]} << 23) |
                                (uint32_t{s1[i] & 0x7fu} << 16) | (uint32_t{s2[i]} << 8) | s3[i]);
  }
}

// Transforms xor and delta without the transposed layout: words first,
// then the inverse transform one row of `stride` at a time (rows do not
// overlap, so the inner loop vectorises).
template <typename W, DType D, Transform T>
void MergeTransformed(const uint8_t* const* s, const Layout& lay, char* dst) {
  const size_t n = lay.n, stride = lay.stride;
  // In place when dst is aligned (the usual case): a staging buffer would
  // end in one large copy, which glibc may do with non-temporal stores,
  // and the checksum pass that follows would then read dst from memory.
  thread_local std::vector<W> buf;
  const bool aligned = reinterpret_cast<uintptr_t>(dst) % alignof(W) == 0;
  W* __restrict v;
  if (aligned) {
    v = reinterpret_cast<W*>(dst);
  } else {
    buf.resize(n);
    v = buf.data();
  }
  GatherWords<W, D, T == Transform::kDelta>(s, n, v);
  if constexpr (T == Transform::kDelta)
    for (size_t i = 0; i < std::min(stride, n); ++i) v[i] = Unzigzag<W>(v[i]);
  for (size_t i = stride; i < n; i += stride) {
    const size_t m = std::min(stride, n - i);
    const W* __restrict prev = v + i - stride;
    W* __restrict cur = v + i;
    for (size_t j = 0; j < m; ++j) {
      if constexpr (T == Transform::kDelta) cur[j] = static_cast<W>(Unzigzag<W>(cur[j]) + prev[j]);
      else cur[j] = static_cast<W>(cur[j] ^ prev[j]);
    }
  }
  if (!aligned) std::memcpy(dst, v, n * sizeof(W));
}

template <typename W, DType D>
void MergeNone(const uint8_t* const* s, const Layout& lay, char* dst) {
  const size_t n = lay.n;
  thread_local std::vector<W> buf;
  const bool transposed = lay.transposed && lay.stride > 1;
  const bool aligned = reinterpret_cast<uintptr_t>(dst) % alignof(W) == 0;
  W* __restrict words;
  if (!transposed && aligned) {
    words = reinterpret_cast<W*>(dst);  // the usual case: no copy
  } else {
    buf.resize(n);
    words = buf.data();
  }
  const uint8_t* __restrict s0 = s[0];
  if constexpr (D == DType::kBytes) {
    std::memcpy(words, s0, n);
  } else if constexpr (D == DType::kF16) {
    const uint8_t* __restrict s1 = s[1];
    for (size_t i = 0; i < n; ++i) words[i] = static_cast<W>((s0[i] << 8) | s1[i]);
  } else if constexpr (D == DType::kBF16) {
    const uint8_t* __restrict s1 = s[1];
    for (size_t i = 0; i < n; ++i)
      words[i] = static_cast<W>(((s1[i] & 0x80) << 8) | (s0[i] << 7) | (s1[i] & 0x7f));
  } else {
    const uint8_t* __restrict s1 = s[1];
    const uint8_t* __restrict s2 = s[2];
    const uint8_t* __restrict s3 = s[3];
    for (size_t i = 0; i < n; ++i)
      words[i] = static_cast<W>((uint32_t{s1[i] & 0x80u} << 24) | (uint32_t{s0[i]} << 23) |
                                (uint32_t{s1[i] & 0x7fu} << 16) | (uint32_t{s2[i]} << 8) | s3[i]);
  }
  if (transposed) {
    TransposeWords<W>(words, lay, dst, false);  // dst may be unaligned
  } else if (!aligned) {
    std::memcpy(dst, words, n * sizeof(W));
  }
}

template <typename W, DType D, Transform T>
void SplitImpl(std::string_view raw, const Layout& lay, uint8_t* const* s) {
  constexpr int kStreams = static_cast<int>(sizeof(W));
  constexpr bool kPlanes = T == Transform::kDelta;
  const size_t stride = lay.stride;
  const char* src = raw.data();
  if constexpr (T == Transform::kNone) {
    SplitNone<W, D>(raw, lay, s);
    return;
  } else {
    if (!lay.transposed || lay.stride <= 1) {
      SplitTransformed<W, D, T>(raw, lay, s);
      return;
    }
  }
  ForEachElement(lay, [&](size_t i, size_t pos) {
    const W v = LoadW<W>(src + i * sizeof(W));
    W t = v;
    if constexpr (T == Transform::kXor) {
      if (i >= stride) t = static_cast<W>(v ^ LoadW<W>(src + (i - stride) * sizeof(W)));
    } else if constexpr (T == Transform::kDelta) {
      const W p = i >= stride ? LoadW<W>(src + (i - stride) * sizeof(W)) : W{0};
      t = Zigzag<W>(static_cast<W>(v - p));
    }
    uint8_t b[4] = {};
    SplitWord(D, kPlanes, t, b);
    for (int k = 0; k < kStreams; ++k) s[k][pos] = b[k];
  });
}

template <typename W, DType D, Transform T>
void MergeImpl(const uint8_t* const* s, const Layout& lay, char* dst) {
  constexpr int kStreams = static_cast<int>(sizeof(W));
  constexpr bool kPlanes = T == Transform::kDelta;
  const size_t stride = lay.stride;
  if constexpr (T == Transform::kNone) {
    MergeNone<W, D>(s, lay, dst);
    return;
  } else {
    if (!lay.transposed || lay.stride <= 1) {
      MergeTransformed<W, D, T>(s, lay, dst);
      return;
    }
  }
  ForEachElement(lay, [&](size_t i, size_t pos) {
    uint8_t b[4] = {};
    for (int k = 0; k < kStreams; ++k) b[k] = s[k][pos];
    const W t = static_cast<W>(MergeWord(D, kPlanes, b));
    W v = t;
    if constexpr (T == Transform::kXor) {
      if (i >= stride) v = static_cast<W>(t ^ LoadW<W>(dst + (i - stride) * sizeof(W)));
    } else if constexpr (T == Transform::kDelta) {
      v = Unzigzag<W>(t);
      if (i >= stride) v = static_cast<W>(v + LoadW<W>(dst + (i - stride) * sizeof(W)));
    }
    std::memcpy(dst + i * sizeof(W), &v, sizeof(W));
  });
}

template <typename W, DType D>
void SplitT(std::string_view raw, Transform transform, const Layout& lay, uint8_t* const* s) {
  switch (transform) {
    case Transform::kNone: return SplitImpl<W, D, Transform::kNone>(raw, lay, s);
    case Transform::kXor: return SplitImpl<W, D, Transform::kXor>(raw, lay, s);
    case Transform::kDelta: return SplitImpl<W, D, Transform::kDelta>(raw, lay, s);
  }
}

template <typename W, DType D>
void MergeT(const uint8_t* const* s, Transform transform, const Layout& lay, char* dst) {
  switch (transform) {
    case Transform::kNone: return MergeImpl<W, D, Transform::kNone>(s, lay, dst);
    case Transform::kXor: return MergeImpl<W, D, Transform::kXor>(s, lay, dst);
    case Transform::kDelta: return MergeImpl<W, D, Transform::kDelta>(s, lay, dst);
  }
}

// Applies `transform` and splits the chunk into width streams of n bytes.
void Split(DType dtype, std::string_view raw, Transform transform, const Layout& lay,
           std::vector<std::string>* streams) {
  const int ns = StreamCount(dtype);
  // Reuses the caller's buffers: no allocation or zero fill per chunk.
  streams->resize(ns);
  for (auto& st : *streams) st.resize(lay.n);
  uint8_t* s[4] = {};
  for (int k = 0; k < ns; ++k) s[k] = reinterpret_cast<uint8_t*>((*streams)[k].data());
  switch (dtype) {
    case DType::kBytes: return SplitT<uint8_t, DType::kBytes>(raw, transform, lay, s);
    case DType::kF16: return SplitT<uint16_t, DType::kF16>(raw, transform, lay, s);
    case DType::kBF16: return SplitT<uint16_t, DType::kBF16>(raw, transform, lay, s);
    case DType::kF32: return SplitT<uint32_t, DType::kF32>(raw, transform, lay, s);
  }
}

void Merge(DType dtype, const uint8_t* const* s, Transform transform, const Layout& lay,
           char* dst) {
  switch (dtype) {
    case DType::kBytes: return MergeT<uint8_t, DType::kBytes>(s, transform, lay, dst);
    case DType::kF16: return MergeT<uint16_t, DType::kF16>(s, transform, lay, dst);
    case DType::kBF16: return MergeT<uint16_t, DType::kBF16>(s, transform, lay, dst);
    case DType::kF32: return MergeT<uint32_t, DType::kF32>(s, transform, lay, dst);
  }
}

// ---------------------------------------------------------------------------
// Stream coders.

struct StreamChoice {
  StreamCoder coder = StreamCoder::kRans;
  int rans_order = 0;
  int zstd_level = 3;
  // zstd's match finder for the stream (0 = the level's own).
  int zstd_strategy = 0;
  // Choose Huffman or rANS order 0 from the histogram (coder ignored).
  bool automatic = false;
  // With `automatic`: also try rANS order 1 and keep the smaller.
  bool try_order1 = false;
  // With `automatic`: probe whether LZ (zstd) beats order-0 on this stream.
  bool lz_probe = false;
  // With `lz_probe`: try zstd without probing (an earlier stream chose it).
  bool lz_force = false;
  // With `automatic`: code order-0 streams with Huffman instead of rANS
  // (the fast efforts: faster both ways, ~1% larger on exponent streams).
  bool prefer_huffman = false;
  // With `automatic` and fallback: a stream whose estimated coding saves
  // less than this fraction is stored raw (no encode, and a free decode).
  double min_gain = 0.005;
};

constexpr int kFastestEffortWithHuffman = 2;

int RansOrderFor(size_t n) { return n >= 16384 ? RANS_ORDER_X32 : 0; }

double EntropyBits(const uint32_t* hist, size_t total);

bool AllBytesEqual(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) { return c == s[0]; });
}

// zstd contexts are large (hundreds of KiB); one per thread, reused, instead
// of one per call.
struct ZstdContexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
ZstdContexts& ThreadZstd() {
  thread_local ZstdContexts ctx;
  return ctx;
}
ZSTD_CCtx* ThreadCCtx() { return ThreadZstd().c; }
ZSTD_DCtx* ThreadDCtx() { return ThreadZstd().d; }

Status ZstdEncode(std::string_view in, int level, std::string* out, int strategy = 0) {
  out->resize(ZSTD_compressBound(in.size()));
  size_t n;
  if (strategy == 0) {
    n = ZSTD_compressCCtx(ThreadCCtx(), out->data(), out->size(), in.data(), in.size(), level);
  } else {
    ZSTD_CCtx* c = ThreadCCtx();
    ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_strategy, strategy);
    n = ZSTD_compress2(c, out->data(), out->size(), in.data(), in.size());
  }
  if (ZSTD_isError(n)) return Status::IOError(std::string("zstd: ") + ZSTD_getErrorName(n));
  out->resize(n);
  return Status::OK();
}

// Size of `part` compressed by LZ4 (<= 0 on failure): a cheap probe for
// repeats. Acceleration 16 skips ahead faster where nothing matches (most
// of a tensor's bytes) and still finds the long repeats the probes look
// for: on the corpus it changed two files' v3 size by under 0.002% and
// made encoding 5-20% faster.
int Lz4Size(std::string_view part) {
  constexpr int kAcceleration = 16;
  thread_local std::string lz4;
  lz4.resize(LZ4_compressBound(static_cast<int>(part.size())));
  return LZ4_compress_fast(part.data(), lz4.data(), static_cast<int>(part.size()),
                           static_cast<int>(lz4.size()), kAcceleration);
}

// The `len` bytes in the middle of `s` (all of it if shorter): the probes'
// window.
std::string_view Middle(std::string_view s, size_t len) {
  return s.substr((s.size() - std::min(s.size(), len)) / 2, len);
}

// True if LZ4 alone codes `part` in under `fraction` of its bytes.
bool Lz4Below(std::string_view part, double fraction) {
  const int size = Lz4Size(part);
  return size > 0 && size < fraction * static_cast<double>(part.size());
}

// The size a zstd frame must undercut to replace a stream of n bytes now
// coded as `coder` in `coded` bytes: over raw, zstd must save 1% (raw
// streams decode for free).
double ZstdMustUndercut(StreamCoder coder, size_t coded, size_t n) {
  return coder == StreamCoder::kRaw ? 0.99 * static_cast<double>(n) : static_cast<double>(coded);
}

// Appends a stream header (coder byte, LE32 length) and its bytes.
void AppendCodedStream(StreamCoder coder, std::string_view bytes, std::string* body) {
  char h[kStreamHeaderSize];
  h[0] = static_cast<char>(coder);
  PutLE32(h + 1, static_cast<uint32_t>(bytes.size()));
  body->append(h, sizeof h);
  body->append(bytes);
}

// Appends one coded stream (coder byte, length, payload). With `fallback`,
// raw or constant replace the coder when they are no larger.
Status AppendStream(std::string_view s, const StreamChoice& choice, bool fallback,
                    std::string* body) {
  StreamCoder coder = choice.coder;
  int rans_order = choice.rans_order;
  thread_local std::string payload_buf;
  std::string& payload = payload_buf;
  payload.clear();
  std::string_view out;  // what gets appended
  bool encoded = false;
  uint32_t hist[256];
  bool have_hist = false;
  // Without an order-1 trial the estimates only choose between raw,
  // constant and rANS order 0. A histogram of four slices (a quarter of the
  // stream), with the Miller-Madow correction for the entropy a sample
  // misses, settles clear cases without a full count: noise (mantissa
  // streams) is stored raw, and streams well below 8 bits a byte that are
  // not constant (the sample already holds two symbols) are rANS coded.
  bool incompressible = false, compressible = false;
  if (choice.automatic && fallback && !choice.try_order1 && s.size() >= 65536) {
    constexpr size_t kSlice = 4096;
    uint32_t sh[256] = {};
    for (int k = 0; k < 4; ++k) {
      uint32_t part[256];
      ByteHistogram(s.substr((s.size() - kSlice) * k / 3, kSlice), part);
      for (int v = 0; v < 256; ++v) sh[v] += part[v];
    }
    int used = 0;
    for (int v = 0; v < 256; ++v) used += sh[v] != 0;
    const double bits = EntropyBits(sh, 4 * kSlice) + (used - 1) / (2 * std::log(2.0));
    incompressible = bits >= 0.997 * 8 * 4 * kSlice;
    compressible = used > 1 && bits < 0.95 * 8 * 4 * kSlice;
  }
  if (incompressible) {
    coder = StreamCoder::kRaw;
  } else if (compressible) {
    coder = choice.prefer_huffman ? StreamCoder::kHuffman : StreamCoder::kRans;
    rans_order = RansOrderFor(s.size());
  } else if (choice.automatic && !s.empty()) {
    ByteHistogram(s, hist);
    have_hist = true;
    int used = 0;
    for (int v = 0; v < 256; ++v) used += hist[v] != 0;
    const double huff = static_cast<double>(HuffmanEstimate(hist));
    const double rans = EntropyBits(hist, s.size()) / 8 + used * 1.5 + 64 +
                        (s.size() >= 16384 ? 128 : 16);
    // rANS unless the effort asks for speed: Huffman codes exponent streams
    // ~1% larger (docs/FORMAT-v3.md, section 4).
    coder = choice.prefer_huffman ? StreamCoder::kHuffman : StreamCoder::kRans;
    rans_order = RansOrderFor(s.size());
    const double best = std::min(huff, rans);
    if (used == 1) {
      coder = StreamCoder::kConstant;
    } else if (choice.try_order1) {
      // Order 1 was predicted to win; keep it unless it loses to the
      // order-0 estimate, and only then pay for an order-0 encode.
      QATQ_RETURN_IF_ERROR(RansEncode(s, 1 | RansOrderFor(s.size()), &payload));
      if (payload.size() <= best) {
        coder = StreamCoder::kRans;
        encoded = true;
      }
    } else if (fallback && best >= (1 - choice.min_gain) * static_cast<double>(s.size())) {
      coder = StreamCoder::kRaw;  // incompressible: do not spend an encode
    }
  }
  // Repetitive streams (periodic or repeated tensors, KV caches): a zstd -1
  // probe on the middle 16 KiB against their order-0 entropy decides whether
  // a zstd pass over the whole stream is worth its time.
  constexpr size_t kProbe = 16384;
  thread_local std::string z;
  bool have_z = false;
  if (choice.automatic && choice.lz_probe && s.size() >= 8192 &&
      coder != StreamCoder::kConstant) {
    // Two probes: a 4 KiB prefix (strongly repetitive streams) and the
    // middle 16 KiB (repeats at longer distances).
    auto lz_wins = [&](std::string_view part, double threshold, bool* wins) {
      // LZ4 finds the repeats zstd -1 would (shorter ones, too) at a tenth
      // of its cost. Where it saves under 0.1%, or leaves more than twice
      // the order-0 entropy (few repeats between many literals), zstd does
      // not undercut the entropy coder: on the corpus the zstd probes that
      // won had LZ4 output of at most 0.995 of the input and 1.43 x the
      // entropy.
      const int lz4_size = Lz4Size(part);
      *wins = false;
      if (lz4_size <= 0 || lz4_size >= 0.999 * static_cast<double>(part.size())) return Status::OK();
      uint32_t ph[256];
      ByteHistogram(part, ph);
      const double entropy_bytes = EntropyBits(ph, part.size()) / 8;
      if (lz4_size > 2.0 * entropy_bytes) return Status::OK();
      thread_local std::string probe;
      QATQ_RETURN_IF_ERROR(ZstdEncode(part, 1, &probe));
      *wins = probe.size() < threshold * entropy_bytes;
      return Status::OK();
    };
    bool wins = choice.lz_force;
    if (!wins) QATQ_RETURN_IF_ERROR(lz_wins(s.substr(0, 4096), 0.8, &wins));
    if (!wins && s.size() >= 2 * kProbe) QATQ_RETURN_IF_ERROR(lz_wins(Middle(s, kProbe), 1.0, &wins));
    if (!wins && s.size() >= 2 * kProbe && coder == StreamCoder::kRaw) {
      // A stream no order-0 coder shrinks (mantissas) whose repeats lie
      // farther apart than the probes see (KV caches: a sequence repeated
      // later in the chunk): LZ4 over all of it is cheap at acceleration
      // 16, and what it saves can only be repeats. zstd must save 1% over
      // raw (below) and saves a little more than LZ4 does (0.2-0.4% on the
      // CNN f16 mantissas): LZ4 must save 1.2%.
      wins = Lz4Below(s, 0.988);
    }
    if (wins) {
      QATQ_RETURN_IF_ERROR(ZstdEncode(s, choice.zstd_level, &z, choice.zstd_strategy));
      have_z = true;
    }
  }
  // An order-0 coder cannot undercut the order-0 entropy of the stream: a
  // zstd frame below it wins without the rANS encode being spent.
  if (have_z && !encoded && coder == StreamCoder::kRans) {
    if (!have_hist) {
      ByteHistogram(s, hist);
      have_hist = true;
    }
    if (static_cast<double>(z.size()) < EntropyBits(hist, s.size()) / 8) {
      coder = StreamCoder::kZstd;
      payload.swap(z);
      have_z = false;
      encoded = true;
    }
  }
  if (!encoded) {
    thread_local std::string alt_buf;
    std::string& alt = alt_buf;
    alt.clear();
    switch (coder) {
      case StreamCoder::kRaw:
        break;
      case StreamCoder::kConstant:
        if (!AllBytesEqual(s)) return Status::InvalidArgument("stream is not constant");
        break;
      case StreamCoder::kRans:
        if (s.empty()) {
          coder = StreamCoder::kRaw;
          break;
        }
        QATQ_RETURN_IF_ERROR(RansEncode(s, rans_order, &alt));
        break;
      case StreamCoder::kZstd:
        QATQ_RETURN_IF_ERROR(ZstdEncode(s, choice.zstd_level, &alt, choice.zstd_strategy));
        break;
      case StreamCoder::kHuffman:
        if (have_hist) {
          QATQ_RETURN_IF_ERROR(HuffmanEncode(s, hist, &alt));
        } else {
          QATQ_RETURN_IF_ERROR(HuffmanEncode(s, &alt));
        }
        break;
    }
    // A failed order-1 attempt may still be the smaller one.
    if (!payload.empty() && coder != StreamCoder::kRaw && coder != StreamCoder::kConstant &&
        payload.size() < alt.size()) {
      coder = StreamCoder::kRans;
    } else {
      payload.swap(alt);
    }
  }
  if (have_z) {
    if (static_cast<double>(z.size()) < ZstdMustUndercut(coder, payload.size(), s.size())) {
      coder = StreamCoder::kZstd;
      payload.swap(z);
    }
  }
  if (fallback && coder != StreamCoder::kRaw && coder != StreamCoder::kConstant &&
      payload.size() >= s.size()) {
    coder = StreamCoder::kRaw;
  }
  if (coder == StreamCoder::kRaw) out = s;
  else if (coder == StreamCoder::kConstant) out = s.substr(0, 1);
  else out = payload;
  AppendCodedStream(coder, out, body);
  return Status::OK();
}

// Decodes one stream of exactly n bytes from the front of *body; *data
// points into the body (raw streams) or into *out.
// The headers of fields and widened bodies, parsed once for the decoder and
// for DescribeBody (qatq inspect).
struct FieldsHeader {
  Transform transform = Transform::kNone;
  bool transposed = false;
  uint32_t stride = 1;
  int streams = 0;
};

// Parses the fields header at the front of *body and removes it.
Status ReadFieldsHeader(std::string_view* body, FieldsHeader* h) {
  if (body->size() < kFieldsHeaderSize) return Status::Corruption("fields body truncated");
  const auto* b = reinterpret_cast<const uint8_t*>(body->data());
  if (b[0] > static_cast<uint8_t>(Transform::kDelta))
    return Status::Corruption("fields body has an unknown transform");
  if ((b[1] & ~kFlagTransposed) != 0 || b[2] != 0 || b[3] != 0)
    return Status::Corruption("fields body reserved bits are not zero");
  h->transform = static_cast<Transform>(b[0]);
  h->transposed = (b[1] & kFlagTransposed) != 0;
  h->stride = GetLE32(body->data() + 4);
  if (h->stride == 0) return Status::Corruption("fields body stride is zero");
  h->streams = b[8];
  body->remove_prefix(kFieldsHeaderSize);
  return Status::OK();
}

// Removes the next stream (header and stored bytes) from the front of *body.
Status NextStream(std::string_view* body, StreamCoder* coder, std::string_view* bytes) {
  if (body->size() < kStreamHeaderSize) return Status::Corruption("fields body truncated");
  *coder = static_cast<StreamCoder>((*body)[0]);
  const uint32_t len = GetLE32(body->data() + 1);
  body->remove_prefix(kStreamHeaderSize);
  if (len > body->size()) return Status::Corruption("fields stream truncated");
  *bytes = body->substr(0, len);
  body->remove_prefix(len);
  return Status::OK();
}

// Parses the widened header at the front of *body and removes it.
Status ReadWidenedHeader(std::string_view* body, DType* from, uint8_t* inner) {
  if (body->size() < kWidenedHeaderSize) return Status::Corruption("widened body truncated");
  const auto* b = reinterpret_cast<const uint8_t*>(body->data());
  if (b[2] != 0 || b[3] != 0) return Status::Corruption("widened body reserved bytes are not zero");
  if (b[0] != static_cast<uint8_t>(DType::kBF16) && b[0] != static_cast<uint8_t>(DType::kF16))
    return Status::Corruption("widened body names an invalid narrow dtype");
  if (b[1] == kStrategyWidened) return Status::Corruption("widened body may not nest");
  *from = static_cast<DType>(b[0]);
  *inner = b[1];
  body->remove_prefix(kWidenedHeaderSize);
  return Status::OK();
}

Status ReadStream(std::string_view* body, size_t n, std::string* out, const uint8_t** data) {
  StreamCoder coder = StreamCoder::kRaw;
  std::string_view p;
  QATQ_RETURN_IF_ERROR(NextStream(body, &coder, &p));
  if (coder == StreamCoder::kRaw) {
    if (p.size() != n) return Status::Corruption("raw stream length mismatch");
    *data = reinterpret_cast<const uint8_t*>(p.data());
    return Status::OK();
  }
  if (out->size() < n) out->resize(n);
  *data = reinterpret_cast<const uint8_t*>(out->data());
  switch (coder) {
    case StreamCoder::kRaw:
      return Status::OK();
    case StreamCoder::kConstant:
      if (p.size() != 1) return Status::Corruption("constant stream must hold one byte");
      std::memset(out->data(), p[0], n);
      return Status::OK();
    case StreamCoder::kRans:
      return RansDecode(p, reinterpret_cast<uint8_t*>(out->data()), n);
    case StreamCoder::kZstd: {
      unsigned long long content = ZSTD_getFrameContentSize(p.data(), p.size());
      if (content != n) return Status::Corruption("zstd stream size does not match");
      size_t got = ZSTD_decompressDCtx(ThreadDCtx(), out->data(), n, p.data(), p.size());
      if (ZSTD_isError(got) || got != n) return Status::Corruption("zstd stream does not decode");
      return Status::OK();
    }
    case StreamCoder::kHuffman:
      return HuffmanDecode(p, reinterpret_cast<uint8_t*>(out->data()), n);
  }
  return Status::Corruption("unknown stream coder " + std::to_string(static_cast<int>(coder)));
}

// ---------------------------------------------------------------------------
// The fields strategy.

struct FieldsPlan {
  Transform transform = Transform::kNone;
  uint32_t stride = 1;
  bool transposed = false;
  std::vector<StreamChoice> streams;  // one per stream; missing = default
  bool fallback = true;
};

Status AssembleFields(const FieldsPlan& plan, const std::vector<std::string>& streams,
                      std::string* body);

Status EncodeFields(DType dtype, std::string_view raw, const FieldsPlan& plan, std::string* body) {
  const size_t n = raw.size() / DTypeWidth(dtype);
  if (plan.stride == 0) return Status::InvalidArgument("stride must be positive");
  Layout lay{n, plan.stride, n / plan.stride, plan.transposed};
  std::vector<std::string> streams;
  Split(dtype, raw, plan.transform, lay, &streams);
  return AssembleFields(plan, streams, body);
}

// Writes the fields body of already split streams.
Status AssembleFields(const FieldsPlan& plan, const std::vector<std::string>& streams,
                      std::string* body) {
  body->clear();
  char h[kFieldsHeaderSize] = {};
  h[0] = static_cast<char>(plan.transform);
  h[1] = static_cast<char>(plan.transposed ? kFlagTransposed : 0);
  PutLE32(h + 4, plan.stride);
  h[8] = static_cast<char>(streams.size());
  body->append(h, sizeof h);
  if (streams.size() > 4) return Status::InvalidArgument("more than 4 streams");
  auto choice = [&](size_t k) { return k < plan.streams.size() ? plan.streams[k] : StreamChoice{}; };
  auto coder_at = [&](size_t at) { return static_cast<StreamCoder>((*body)[at]); };
  size_t starts[4] = {};  // offset of each stream's header in *body
  size_t lz_from = streams.size();  // first stream that went to LZ by a probe
  for (size_t k = 0; k < streams.size(); ++k) {
    StreamChoice c = choice(k);
    // Exact repeats (e.g. KV cache rows shared by sequences) repeat in every
    // stream, but the noisy mantissa streams hide them from the probe.
    if (lz_from < k) c.lz_force = true;
    starts[k] = body->size();
    QATQ_RETURN_IF_ERROR(AppendStream(streams[k], c, plan.fallback, body));
    if (lz_from == streams.size() && c.lz_probe && coder_at(starts[k]) == StreamCoder::kZstd)
      lz_from = k;
  }
  // The same holds backwards: repeats the probes found only in a later
  // stream (often the mantissas, whose whole length LZ4 scans) are in the
  // earlier ones too, which are then coded again with zstd where LZ4 on
  // their middle 16 KiB comes within 1.6 x its order-0 entropy: long
  // repeats. On the corpus such streams (f16 KV cache and CNN weights, LZ4
  // at 1.31-1.43 x) came out 1.6-16% smaller; at 2.0 x and above (the bf16
  // and f32 KV caches' exponents: LZ4 finds the short matches of any
  // low-entropy stream) zstd saved 3% at most or lost. Repeats farther
  // apart than that window (a sequence repeated half a chunk later) show
  // in the later stream: where zstd took a fifth off it, LZ4 runs over the
  // whole earlier stream instead. Not in the column layout, which cuts
  // such repeats into short pieces, nor where every stream tried LZ
  // already (effort >= 7).
  if (lz_from == streams.size() || lz_from == 0 || plan.transposed || choice(0).lz_force)
    return Status::OK();
  const size_t lz_end = lz_from + 1 < streams.size() ? starts[lz_from + 1] : body->size();
  const bool far_repeats =
      static_cast<double>(lz_end - starts[lz_from] - kStreamHeaderSize) <
      0.8 * static_cast<double>(streams[lz_from].size());
  thread_local std::string z, rebuilt;
  rebuilt.assign(*body, 0, starts[0]);
  for (size_t k = 0; k < streams.size(); ++k) {
    const size_t end = k + 1 < streams.size() ? starts[k + 1] : body->size();
    const std::string_view old(body->data() + starts[k], end - starts[k]);
    const StreamCoder was = coder_at(starts[k]);
    const std::string_view s = streams[k];
    if (k < lz_from && was != StreamCoder::kZstd && was != StreamCoder::kConstant) {
      constexpr size_t kProbe = 16384;
      const std::string_view part = s.size() < 2 * kProbe || far_repeats ? s : Middle(s, kProbe);
      uint32_t hist[256];
      ByteHistogram(part, hist);
      const int lz4_size = Lz4Size(part);
      if (lz4_size > 0 && lz4_size < 1.6 * EntropyBits(hist, part.size()) / 8) {
        const StreamChoice c = choice(k);
        QATQ_RETURN_IF_ERROR(ZstdEncode(s, c.zstd_level, &z, c.zstd_strategy));
        if (static_cast<double>(z.size()) <
            ZstdMustUndercut(was, old.size() - kStreamHeaderSize, s.size())) {
          AppendCodedStream(StreamCoder::kZstd, z, &rebuilt);
          continue;
        }
      }
    }
    rebuilt.append(old);
  }
  body->swap(rebuilt);
  return Status::OK();
}

Status DecodeFields(DType dtype, std::string_view body, char* dst, uint32_t raw_len) {
  FieldsHeader fh;
  QATQ_RETURN_IF_ERROR(ReadFieldsHeader(&body, &fh));
  const int ns = fh.streams;
  if (ns != StreamCount(dtype)) return Status::Corruption("fields body has a wrong stream count");
  const size_t n = raw_len / DTypeWidth(dtype);
  // Scratch for decoded streams, reused across chunks on this thread.
  thread_local std::string scratch[4];
  const uint8_t* streams[4] = {};
  for (int k = 0; k < ns; ++k)
    QATQ_RETURN_IF_ERROR(ReadStream(&body, n, &scratch[k], &streams[k]));
  if (!body.empty()) return Status::Corruption("fields body has trailing bytes");
  Layout lay{n, fh.stride, n / fh.stride, fh.transposed};
  Merge(dtype, streams, fh.transform, lay, dst);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Widened f32.

uint32_t F16ToF32Bits(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t e = (h >> 10) & 0x1f;
  uint32_t m = h & 0x3ff;
  if (e == 0x1f) return sign | 0x7f800000u | (m << 13);
  if (e != 0) return sign | ((e + 112) << 23) | (m << 13);
  if (m == 0) return sign;
  int shift = 0;  // normalise the subnormal
  while ((m & 0x400) == 0) {
    m <<= 1;
    ++shift;
  }
  return sign | (static_cast<uint32_t>(113 - shift) << 23) | ((m & 0x3ff) << 13);
}

// True (and *h set) if f32 bits `f` are exactly an f16 value widened.
bool F32ToF16Exact(uint32_t f, uint16_t* h) {
  const uint32_t sign = (f >> 16) & 0x8000;
  const int e = static_cast<int>((f >> 23) & 0xff);
  const uint32_t m = f & 0x7fffff;
  uint32_t out;
  if (e == 0xff) {
    if (m & 0x1fff) return false;
    if (m != 0 && (m >> 13) == 0) return false;
    out = sign | 0x7c00 | (m >> 13);
  } else if (e == 0) {
    if (m != 0) return false;
    out = sign;
  } else {
    const int E = e - 127;
    if (E > 15 || E < -24) return false;
    if (E >= -14) {
      if (m & 0x1fff) return false;
      out = sign | (static_cast<uint32_t>(E + 15) << 10) | (m >> 13);
    } else {
      const int shift = -E - 1;  // 14..23
      const uint32_t full = 0x800000u | m;
      if (full & ((1u << shift) - 1)) return false;
      out = sign | (full >> shift);
    }
  }
  *h = static_cast<uint16_t>(out);
  return F16ToF32Bits(*h) == f;
}

// Narrows f32 raw to `from` if every element is exactly representable.
bool NarrowExact(std::string_view raw, DType from, std::string* narrow) {
  const size_t n = raw.size() / 4;
  narrow->resize(n * 2);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t f = LoadW<uint32_t>(raw.data() + i * 4);
    uint16_t h;
    if (from == DType::kBF16) {
      if (f & 0xffff) return false;
      h = static_cast<uint16_t>(f >> 16);
    } else if (!F32ToF16Exact(f, &h)) {
      return false;
    }
    std::memcpy(narrow->data() + i * 2, &h, 2);
  }
  return true;
}

Status DecodeWidened(std::string_view body, char* dst, uint32_t raw_len) {
  DType from;
  uint8_t inner;
  QATQ_RETURN_IF_ERROR(ReadWidenedHeader(&body, &from, &inner));
  const size_t n = raw_len / 4;
  std::string narrow(n * 2, '\0');
  QATQ_RETURN_IF_ERROR(
      DecodeBody(inner, from, body, narrow.data(), static_cast<uint32_t>(n * 2)));
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = LoadW<uint16_t>(narrow.data() + i * 2);
    const uint32_t f =
        from == DType::kBF16 ? uint32_t{h} << 16 : F16ToF32Bits(h);
    std::memcpy(dst + i * 4, &f, 4);
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Selection.

bool AllElementsEqual(std::string_view raw, size_t width) {
  if (raw.size() < width) return false;
  // Equal to itself shifted by one element <=> periodic with the element.
  return std::memcmp(raw.data(), raw.data() + width, raw.size() - width) == 0;
}

// log2 of small counts from a table: estimates run per chunk and libm's
// log2 dominated them.
constexpr uint32_t kLogTableSize = 1u << 16;
const float* Log2Table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(kLogTableSize);
    for (uint32_t i = 1; i < kLogTableSize; ++i) t[i] = static_cast<float>(std::log2(double(i)));
    return t;
  }();
  return table.data();
}
// With the table fetched once per loop (`lg`), the sums stay in registers:
// a lookup through the function-local static spilled them to memory.
inline double Log2Count(const float* lg, uint32_t c) {
  return c < kLogTableSize ? lg[c] : std::log2(static_cast<double>(c));
}

// Order-0 entropy in bits of a byte histogram.
double EntropyBits(const uint32_t* hist, size_t total) {
  if (total == 0) return 0;
  double bits = 0;
  const double lt = std::log2(static_cast<double>(total));
  const float* lg = Log2Table();
  for (int i = 0; i < 256; ++i)
    if (hist[i]) bits += hist[i] * (lt - Log2Count(lg, hist[i]));
  return bits;
}

// Estimated bits of a stream from its histogram: order-0 entropy plus a
// table cost per used symbol, capped by raw storage.
double StreamBits(const uint32_t* hist, size_t total) {
  int used = 0;
  for (int s = 0; s < 256; ++s) used += hist[s] != 0;
  return std::min(EntropyBits(hist, total) + used * 12.0, total * 8.0);
}

// The sample of a chunk that estimates run on: up to 4 blocks of 1024
// elements spread over the chunk, each starting at least `skip` elements in
// so every stride candidate has a predecessor.
struct Sample {
  size_t begin[4];
  size_t len = 0;
  int blocks = 0;
};

Sample MakeSample(size_t n, size_t skip) {
  Sample s;
  if (n <= skip) return s;
  const size_t span = n - skip;
  const size_t block = std::min<size_t>(1024, span);
  const int blocks = span >= 2 * block ? 2 : 1;
  for (int b = 0; b < blocks; ++b) s.begin[b] = skip + (span - block) * b / std::max(1, blocks - 1);
  s.len = block;
  s.blocks = blocks;
  return s;
}

// Estimated bits of all streams of `T` at `stride` over the sample.
template <typename W, DType D, Transform T>
double EstimateImpl(std::string_view raw, size_t stride, const Sample& sample,
                    double* first_stream_bits, double* first_block_first_bits) {
  constexpr int kStreams = static_cast<int>(sizeof(W));
  constexpr bool kPlanes = T == Transform::kDelta;
  uint32_t hist[kStreams][256] = {};
  const char* src = raw.data();
  for (int blk = 0; blk < sample.blocks; ++blk) {
    for (size_t i = sample.begin[blk]; i < sample.begin[blk] + sample.len; ++i) {
      const W v = LoadW<W>(src + i * sizeof(W));
      W t = v;
      if constexpr (T != Transform::kNone) {
        const W p = LoadW<W>(src + (i - stride) * sizeof(W));
        t = T == Transform::kXor ? static_cast<W>(v ^ p) : Zigzag<W>(static_cast<W>(v - p));
      }
      uint8_t b[4] = {};
      SplitWord(D, kPlanes, t, b);
      for (int k = 0; k < kStreams; ++k) ++hist[k][b[k]];
    }
    if (blk == 0 && first_block_first_bits)
      *first_block_first_bits = StreamBits(hist[0], sample.len);
  }
  const size_t total = sample.len * sample.blocks;
  double bits = 0;
  for (int k = 0; k < kStreams; ++k) {
    const double b = StreamBits(hist[k], total);
    if (k == 0 && first_stream_bits) *first_stream_bits = b;
    bits += b;
  }
  return bits;
}

// As EstimateImpl for the first stream only (the cheap ranking pass), for
// xor and delta at once: one pass over the elements feeds both histograms.
template <typename W, DType D>
void EstimateFirstImpl(std::string_view raw, size_t stride, const Sample& sample,
                       double* xor_bits, double* delta_bits) {
  uint32_t hx[256] = {}, hd[256] = {};
  const char* src = raw.data();
  for (int blk = 0; blk < sample.blocks; ++blk) {
    for (size_t i = sample.begin[blk]; i < sample.begin[blk] + sample.len; ++i) {
      const W v = LoadW<W>(src + i * sizeof(W));
      const W p = LoadW<W>(src + (i - stride) * sizeof(W));
      uint8_t bx[4] = {}, bd[4] = {};
      SplitWord(D, false, static_cast<W>(v ^ p), bx);
      SplitWord(D, true, Zigzag<W>(static_cast<W>(v - p)), bd);
      ++hx[bx[0]];
      ++hd[bd[0]];
    }
  }
  *xor_bits = StreamBits(hx, sample.len * sample.blocks);
  *delta_bits = StreamBits(hd, sample.len * sample.blocks);
}

void EstimateFirst(DType dtype, std::string_view raw, size_t stride, const Sample& sample,
                   double* xor_bits, double* delta_bits) {
  switch (dtype) {
    case DType::kBytes:
      return EstimateFirstImpl<uint8_t, DType::kBytes>(raw, stride, sample, xor_bits, delta_bits);
    case DType::kF16:
      return EstimateFirstImpl<uint16_t, DType::kF16>(raw, stride, sample, xor_bits, delta_bits);
    case DType::kBF16:
      return EstimateFirstImpl<uint16_t, DType::kBF16>(raw, stride, sample, xor_bits, delta_bits);
    case DType::kF32:
      return EstimateFirstImpl<uint32_t, DType::kF32>(raw, stride, sample, xor_bits, delta_bits);
  }
}

template <typename W, DType D>
double EstimateT(std::string_view raw, Transform t, size_t stride, const Sample& sample,
                 double* first, double* block0_first) {
  switch (t) {
    case Transform::kNone:
      return EstimateImpl<W, D, Transform::kNone>(raw, stride, sample, first, block0_first);
    case Transform::kXor:
      return EstimateImpl<W, D, Transform::kXor>(raw, stride, sample, first, block0_first);
    case Transform::kDelta:
      return EstimateImpl<W, D, Transform::kDelta>(raw, stride, sample, first, block0_first);
  }
  return 0;
}

// Estimated bits of all streams of `t` at `stride` over `sample`; *first
// gets those of the first stream and *block0_first those of the first
// stream over the first sample block alone.
double Estimate(DType dtype, std::string_view raw, Transform t, size_t stride, const Sample& sample,
                double* first = nullptr, double* block0_first = nullptr) {
  switch (dtype) {
    case DType::kBytes:
      return EstimateT<uint8_t, DType::kBytes>(raw, t, stride, sample, first, block0_first);
    case DType::kF16:
      return EstimateT<uint16_t, DType::kF16>(raw, t, stride, sample, first, block0_first);
    case DType::kBF16:
      return EstimateT<uint16_t, DType::kBF16>(raw, t, stride, sample, first, block0_first);
    case DType::kF32:
      return EstimateT<uint32_t, DType::kF32>(raw, t, stride, sample, first, block0_first);
  }
  return 0;
}

double ContextBitsAt(std::string_view s, size_t from, size_t stride, double table_bits,
                     double* o0_bits);

// Order-1 estimates of symbols [from, size) of s with the symbol `stride`
// before as context, for several strides: the order-0 statistics they share
// are counted once.
class ContextModel {
 public:
  ContextModel(std::string_view s, size_t from, double table_bits);
  // Order-0 bits plus a table cost per used symbol.
  double o0_bits() const { return o0_bits_; }
  // As ContextBitsAt. REQUIRES: stride <= from.
  double Bits(size_t stride) const;

 private:
  const uint8_t* p_;
  size_t n_, from_;
  double table_bits_;
  double o0_bits_ = 0;
  uint8_t id_[256];    // dense ids of the symbols of [from, n)
  bool present_[256];  // symbol occurs in [from, n)
  int d0_ = 0;         // symbols in [from, n)
};

struct Candidate {
  Transform transform = Transform::kNone;
  uint32_t stride = 1;
  // The stride whose predecessor predicts the first stream best: the
  // context distance for order-1 coding (0 = none found).
  uint32_t context_stride = 0;
};

// Picks the transform and stride with the lowest estimated size on a sample
// of the chunk.
Candidate ChooseTransform(DType dtype, std::string_view raw, const ChunkEncodeOptions& options) {
  const size_t n = raw.size() / DTypeWidth(dtype);
  std::vector<uint32_t> strides;
  if (options.stride_hint > 0) strides.push_back(options.stride_hint);
  if (options.stride_hint == 0 || options.effort >= 6) {
    for (uint32_t s : {1u, 2u, 4u, 8u, 16u, 32u, 64u, 128u, 256u, 512u})
      if (std::find(strides.begin(), strides.end(), s) == strides.end()) strides.push_back(s);
  }
  Candidate best;
  if (options.effort <= 0 || n < 256) return best;
  size_t max_stride = 1;
  for (uint32_t s : strides)
    if (s < n / 4) max_stride = std::max<size_t>(max_stride, s);
  const Sample sample = MakeSample(n, max_stride);
  if (sample.len < 64) return best;
  // Stage 1 ranks every (transform, stride) by the first stream alone on
  // the first sample block; stage 2 estimates all streams for the best two.
  double none_first = 0, none_first_block = 0;
  double best_bits =
      Estimate(dtype, raw, Transform::kNone, 1, sample, &none_first, &none_first_block);
  Sample first_block = sample;
  first_block.blocks = 1;
  struct Ranked {
    double first;
    Transform t;
    uint32_t s;
  };
  Ranked top[2] = {{none_first_block, Transform::kNone, 1}, {none_first_block, Transform::kNone, 1}};
  for (uint32_t s : strides) {
    if (s > max_stride) continue;
    double firsts[2] = {0, 0};
    EstimateFirst(dtype, raw, s, first_block, &firsts[0], &firsts[1]);
    for (Transform t : {Transform::kXor, Transform::kDelta}) {
      const double first = firsts[t == Transform::kDelta];
      if (first < top[0].first) {
        top[1] = top[0];
        top[0] = {first, t, s};
      } else if (first < top[1].first) {
        top[1] = {first, t, s};
      }
    }
  }
  for (const Ranked& r : top) {
    if (r.t == Transform::kNone) continue;
    const double bits = Estimate(dtype, raw, r.t, r.s, sample);
    // A transform must win clearly: the estimate is noisy.
    if (bits < best_bits * 0.98) {
      best_bits = bits;
      best.transform = r.t;
      best.stride = r.s;
    }
  }
  if (best.transform != Transform::kNone || options.effort < 3) return best;
  // Context distance for order-1 coding of the first stream: the stride
  // whose predecessor leaves the least conditional entropy on the sample.
  // First-stream bytes of [begin - max_stride, begin + len) per block.
  std::vector<std::string> first(sample.blocks);
  const size_t w = DTypeWidth(dtype);
  // One block is enough to find the context distance.
  const int ctx_blocks = 1;
  for (int blk = 0; blk < ctx_blocks; ++blk) {
    const size_t lo = sample.begin[blk] - max_stride;
    const size_t hi = sample.begin[blk] + sample.len;
    first[blk].resize(hi - lo);
    for (size_t i = lo; i < hi; ++i) {
      uint32_t v = 0;
      std::memcpy(&v, raw.data() + i * w, w);
      uint8_t b[4] = {};
      SplitWord(dtype, false, v, b);
      first[blk][i - lo] = static_cast<char>(b[0]);
    }
  }
  const double table_bits = 12.0 * sample.len * ctx_blocks / n;
  std::vector<ContextModel> models;
  for (int blk = 0; blk < ctx_blocks; ++blk) models.emplace_back(first[blk], max_stride, table_bits);
  double best_ctx = 0;
  for (uint32_t s : strides) {
    if (s > max_stride || s < 2) continue;
    double bits = 0, o0_total = 0;
    for (int blk = 0; blk < ctx_blocks; ++blk) {
      bits += models[blk].Bits(s);
      o0_total += models[blk].o0_bits();
    }
    if (bits < o0_total * 0.99 && (best.context_stride == 0 || bits < best_ctx)) {
      best_ctx = bits;
      best.context_stride = s;
    }
  }
  return best;
}

// Entropy in bits of stream `s` coded with the previous symbol of its own
// column (the element `stride` before) as context, plus a table cost per
// used (context, symbol) pair. Sets *o0_bits to the order-0 estimate.

// ContextBitsAt's sum for short inputs, where clearing and scanning a
// d x d matrix would cost more than counting: only touched cells are read.
double SparseContextBits(const uint8_t* p, size_t from, size_t n, size_t stride,
                         const uint8_t* id, int d, double table_bits) {
  // bits = sum_ctx c log c - sum_pairs k log k.
  thread_local uint32_t pair_storage[96 * 96];
  thread_local uint32_t ctx_storage[96];
  thread_local uint16_t touched_storage[96 * 96];
  uint32_t* const pair = pair_storage;
  uint32_t* const ctx = ctx_storage;
  uint16_t* const touched_cells = touched_storage;
  size_t touched_count = 0;
  for (size_t i = from; i < n; ++i) {
    const uint32_t c = id[p[i - stride]];
    const uint32_t cell = c * 96 + id[p[i]];
    touched_cells[touched_count] = static_cast<uint16_t>(cell);
    touched_count += pair[cell]++ == 0;
    ++ctx[c];
  }
  const std::span<const uint16_t> touched(touched_cells, touched_count);
  const float* lg = Log2Table();
  double bits = 0;
  for (int c = 0; c < d; ++c) {
    if (ctx[c]) bits += ctx[c] * Log2Count(lg, ctx[c]);
    ctx[c] = 0;
  }
  for (uint16_t cell : touched) {
    bits -= pair[cell] * Log2Count(lg, pair[cell]);
    pair[cell] = 0;
  }
  return bits + touched.size() * table_bits;
}

ContextModel::ContextModel(std::string_view s, size_t from, double table_bits)
    : p_(reinterpret_cast<const uint8_t*>(s.data())),
      n_(s.size()),
      from_(from),
      table_bits_(table_bits) {
  uint32_t hist[256] = {};
  for (size_t i = from; i < n_; ++i) ++hist[p_[i]];
  int used0 = 0;
  for (int v = 0; v < 256; ++v) used0 += hist[v] != 0;
  o0_bits_ = EntropyBits(hist, n_ - from) + used0 * table_bits;
  for (int v = 0; v < 256; ++v) {
    present_[v] = hist[v] != 0;
    id_[v] = hist[v] ? static_cast<uint8_t>(d0_++) : 0;
  }
}

double ContextBitsAt(std::string_view s, size_t from, size_t stride, double table_bits,
                     double* o0_bits) {
  const ContextModel model(s, from, table_bits);
  *o0_bits = model.o0_bits();
  return model.Bits(stride);
}

double ContextModel::Bits(size_t stride) const {
  const uint8_t* p = p_;
  const size_t n = n_, from = from_;
  const double table_bits = table_bits_;
  uint8_t id[256];
  bool present[256];
  std::memcpy(id, id_, sizeof id);
  std::memcpy(present, present_, sizeof present);
  int d = d0_;
  for (size_t i = from - stride; i < from; ++i)
    if (!present[p[i]]) id[p[i]] = static_cast<uint8_t>(d++), present[p[i]] = true;
  if (d > 96 || n <= from) return o0_bits_;  // too many contexts to pay off
  const size_t cells = static_cast<size_t>(d) * d;
  if (n - from < 4 * cells) return SparseContextBits(p, from, n, stride, id, d, table_bits);
  // bits = sum_ctx c log c - sum_pairs k log k over a d x d count matrix.
  // Two matrices (even and odd positions) keep runs of one cell from
  // serialising on store-to-load forwarding; one scan at the end replaces
  // per-symbol bookkeeping of touched cells.
  thread_local std::vector<uint32_t> storage;
  storage.assign(2 * cells, 0);
  uint32_t* __restrict even = storage.data();
  uint32_t* __restrict odd = even + cells;
  uint32_t row[256], col[256];
  for (int v = 0; v < 256; ++v) {
    col[v] = id[v];
    row[v] = id[v] * static_cast<uint32_t>(d);
  }
  size_t i = from;
  for (; i + 2 <= n; i += 2) {
    ++even[row[p[i - stride]] + col[p[i]]];
    ++odd[row[p[i + 1 - stride]] + col[p[i + 1]]];
  }
  if (i < n) ++even[row[p[i - stride]] + col[p[i]]];
  const float* lg = Log2Table();
  double bits = 0;
  size_t used = 0;
  for (size_t c = 0; c < cells; c += d) {
    uint32_t ctx = 0;
    for (size_t v = c; v < c + d; ++v) {
      const uint32_t k = even[v] + odd[v];
      if (k == 0) continue;
      bits -= k * Log2Count(lg, k);
      ctx += k;
      ++used;
    }
    if (ctx) bits += ctx * Log2Count(lg, ctx);
  }
  return bits + used * table_bits;
}

// The first (exponent-aligned) stream bytes of elements [0, m) of raw, as
// Split with Transform::kNone and the natural layout would write them.
template <typename W, DType D>
void FirstStreamT(const char* raw, size_t m, uint8_t* __restrict out) {
  for (size_t i = 0; i < m; ++i) {
    const W w = LoadW<W>(raw + i * sizeof(W));
    if constexpr (D == DType::kBF16) out[i] = static_cast<uint8_t>(w >> 7);
    else if constexpr (D == DType::kF16) out[i] = static_cast<uint8_t>(w >> 8);
    else if constexpr (D == DType::kF32) out[i] = static_cast<uint8_t>(w >> 23);
    else out[i] = static_cast<uint8_t>(w);
  }
}

void FirstStream(DType dtype, std::string_view raw, size_t m, uint8_t* out) {
  switch (dtype) {
    case DType::kBytes: return FirstStreamT<uint8_t, DType::kBytes>(raw.data(), m, out);
    case DType::kF16: return FirstStreamT<uint16_t, DType::kF16>(raw.data(), m, out);
    case DType::kBF16: return FirstStreamT<uint16_t, DType::kBF16>(raw.data(), m, out);
    case DType::kF32: return FirstStreamT<uint32_t, DType::kF32>(raw.data(), m, out);
  }
}

// True if LZ4 shrinks the middle 16 KiB of the chunk as it is below 0.87:
// repeats enough to outweigh order 1. On the corpus the natural layout won
// every chunk probed at <= 0.83 (KV caches) and lost every one at >= 0.889
// (CNN weights, whose low-entropy exponent bytes give LZ4 short matches);
// a synthetic tensor's norm rows probed at 0.97-0.98 and lost too, each try
// costing a second encode of the chunk.
bool RepeatsInNaturalOrder(std::string_view raw) { return Lz4Below(Middle(raw, 16384), 0.87); }

// For a plan with a transform (delta or XOR against a previous row): true
// if LZ4 alone, on the first or the middle 16 KiB of the chunk as it is,
// comes out below 0.87 of the plan's coded ratio. The transform was chosen
// by order-0 estimates, which do not see repeats; where LZ4 without an
// entropy stage already beats the plan, the plain plan's LZ streams will.
// On the corpus: the LLM weights' token embeddings (first 16 KiB at 0.25
// and 0.64 of their bytes, plain plan 8.1% and 2.9% smaller) and never the
// Kokoro voices, whose transform wins by 60% or more while LZ4 probes the
// natural order at 0.30 and above.
bool RepeatsBeatTransform(std::string_view raw, double plan_ratio) {
  constexpr size_t kProbe = 16384;
  return Lz4Below(raw.substr(0, kProbe), 0.87 * plan_ratio) ||
         (raw.size() >= 2 * kProbe && Lz4Below(Middle(raw, kProbe), 0.87 * plan_ratio));
}

Status EncodeBest(DType dtype, std::string_view raw, const ChunkEncodeOptions& options,
                  bool allow_widened, uint8_t* strategy, std::string* body) {
  const size_t width = DTypeWidth(dtype);
  const size_t n = raw.size() / width;
  if (AllElementsEqual(raw, width)) {
    *strategy = static_cast<uint8_t>(Strategy::kConstant);
    body->assign(raw.data(), width);
    return Status::OK();
  }
  if (dtype == DType::kF32 && allow_widened && n > 0) {
    std::string narrow;
    for (DType from : {DType::kBF16, DType::kF16}) {
      if (!NarrowExact(raw, from, &narrow)) continue;
      uint8_t inner = 0;
      std::string inner_body;
      QATQ_RETURN_IF_ERROR(EncodeBest(from, narrow, options, false, &inner, &inner_body));
      body->assign(kWidenedHeaderSize, '\0');
      (*body)[0] = static_cast<char>(from);
      (*body)[1] = static_cast<char>(inner);
      body->append(inner_body);
      *strategy = kStrategyWidened;
      return Status::OK();
    }
  }

  std::string* const best_body = body;  // the fields body, once written
  best_body->clear();
  uint8_t best_strategy = static_cast<uint8_t>(Strategy::kRaw);
  if (n > 0) {
    FieldsPlan plan;
    StreamChoice automatic;
    automatic.automatic = true;
    automatic.lz_probe = options.effort >= 4;
    // Effort 7 and up try LZ on every stream instead of probing (as the v2
    // encoder does on every plane): the probes miss moderate LZ gains.
    automatic.lz_force = options.effort >= 7;
    // Level 3 with the greedy parser instead of its double-fast one finds
    // the long repeats of KV caches that plain level 3 misses (a kv.f16
    // chunk: 97 KB against 109 KB): on the 64 KiB f16 streams of the KV
    // cache 2.3% smaller than level 3 and 0.1% smaller than level 5 (the
    // first lazy level), at 273 MB/s against 174 for level 5 and 935 for
    // plain level 3.
    automatic.zstd_level = options.effort >= 7 ? 9 : 3;
    if (options.effort < 7) automatic.zstd_strategy = ZSTD_greedy;
    if (options.effort <= kFastestEffortWithHuffman) {
      // Fast efforts: Huffman, and mantissa-like streams (a few percent
      // of gain, but one symbol per table lookup) stay raw.
      automatic.prefer_huffman = true;
      automatic.min_gain = 0.03;
    }
    plan.streams.assign(width, automatic);
    Candidate c;
    if (dtype != DType::kBytes) c = ChooseTransform(dtype, raw, options);
    plan.transform = c.transform;
    plan.stride = c.stride;
    thread_local std::vector<std::string> streams;
    if (c.transform == Transform::kNone && c.context_stride > 1 && options.effort >= 3 &&
        n >= 4 * size_t{c.context_stride}) {
      // Order-1 coding of the first (exponent) stream in column order: its
      // context is then the same column's previous element.
      // The first half of the chunk confirms the sample (table cost scaled);
      // only its first-stream bytes are extracted, so that the chunk is
      // split once, in the layout chosen.
      thread_local std::string first_half;
      first_half.resize(n / 2);
      FirstStream(dtype, raw, n / 2, reinterpret_cast<uint8_t*>(first_half.data()));
      double o0 = 0;
      const double o1 = ContextBitsAt(first_half, c.context_stride, c.context_stride, 6.0, &o0);
      if (o1 < o0 * 0.98) {
        plan.stride = c.context_stride;
        plan.transposed = true;
        plan.streams[0].try_order1 = true;
      }
    }
    Split(dtype, raw, plan.transform, Layout{n, plan.stride, n / plan.stride, plan.transposed},
          &streams);
    // Written straight into *body (a reused buffer): no copies per chunk.
    body->reserve(raw.size() + 64);
    QATQ_RETURN_IF_ERROR(AssembleFields(plan, streams, body));
    best_strategy = kStrategyFields;
    // The column layout cuts repeats of the natural order (KV caches whose
    // sequences share prefixes) into pieces too short for LZ to match, and
    // a transform chosen by order-0 estimates can hide repeats as well: the
    // plain plan (natural layout, no transform, no order 1) with LZ on its
    // streams may be the smaller. It is also coded, and the smaller kept,
    // where LZ4 finds repeats in a column-layout chunk, and at effort >= 7
    // whenever the plan is not already plain.
    const bool plain = !plan.transposed && plan.transform == Transform::kNone;
    const double plan_ratio = static_cast<double>(body->size()) / static_cast<double>(raw.size());
    if (!plain &&
        (options.effort >= 7 ||
         (options.effort >= 4 && plan.transposed && RepeatsInNaturalOrder(raw)) ||
         (options.effort >= 4 && plan.transform != Transform::kNone &&
          RepeatsBeatTransform(raw, plan_ratio)))) {
      FieldsPlan natural = plan;
      natural.transform = Transform::kNone;
      natural.stride = 1;
      natural.transposed = false;
      natural.streams[0].try_order1 = false;
      Split(dtype, raw, Transform::kNone, Layout{n, 1, n, false}, &streams);
      thread_local std::string alt;
      alt.clear();
      QATQ_RETURN_IF_ERROR(AssembleFields(natural, streams, &alt));
      if (alt.size() < body->size()) body->swap(alt);
    }
  }
  // LZ for repetitive chunks: a cheap probe decides whether a full zstd
  // pass can beat the entropy coder. The fields body already has LZ on its
  // streams where they repeat, so whole-chunk zstd must look clearly
  // better: on the corpus every attempt with a probe above 0.887 of the
  // fields ratio lost (30 of 30, KV caches), each costing a zstd -3 pass.
  constexpr double kWholeZstdProbeGain = 0.85;
  if (options.effort >= 1 && n > 0) {
    const size_t probe_len = std::min<size_t>(raw.size(), 8192);
    const size_t probe_off = (raw.size() - probe_len) / 2;
    thread_local std::string probe;
    QATQ_RETURN_IF_ERROR(ZstdEncode(raw.substr(probe_off, probe_len), 1, &probe));
    const double fields_ratio = static_cast<double>(best_body->size()) / raw.size();
    if (dtype == DType::kBytes ||
        static_cast<double>(probe.size()) / probe_len < kWholeZstdProbeGain * fields_ratio) {
      const int level = options.effort >= 9 ? 19 : options.effort >= 7 ? 12 : 3;
      thread_local std::string z;
      QATQ_RETURN_IF_ERROR(ZstdEncode(raw, level, &z));
      if (z.size() < best_body->size()) {
        best_body->swap(z);
        best_strategy = static_cast<uint8_t>(Strategy::kZstd);
      }
    }
  }
  if (best_body->size() >= raw.size() || n == 0) {
    *strategy = static_cast<uint8_t>(Strategy::kRaw);
    body->assign(raw);
    return Status::OK();
  }
  *strategy = best_strategy;
  return Status::OK();
}

}  // namespace

Status EncodeBody(DType dtype, std::string_view raw, const ChunkEncodeOptions& options,
                  uint8_t* strategy, std::string* body) {
  if (raw.size() % DTypeWidth(dtype) != 0)
    return Status::InvalidArgument("chunk size is not a multiple of the dtype width");
  return EncodeBest(dtype, raw, options, true, strategy, body);
}

Status EncodeBodyForced(DType dtype, std::string_view raw, const ForcedPlan& plan,
                        std::string* body) {
  const size_t width = DTypeWidth(dtype);
  if (raw.size() % width != 0)
    return Status::InvalidArgument("chunk size is not a multiple of the dtype width");
  switch (plan.strategy) {
    case static_cast<uint8_t>(Strategy::kRaw):
      body->assign(raw);
      return Status::OK();
    case static_cast<uint8_t>(Strategy::kConstant):
      if (!AllElementsEqual(raw, width)) return Status::InvalidArgument("chunk is not constant");
      body->assign(raw.data(), width);
      return Status::OK();
    case static_cast<uint8_t>(Strategy::kZstd):
      return ZstdEncode(raw, plan.zstd_level, body);
    case kStrategyFields: {
      FieldsPlan fp;
      fp.transform = plan.transform;
      fp.stride = plan.stride;
      fp.transposed = plan.transposed;
      fp.fallback = false;
      fp.streams.assign(width, StreamChoice{plan.coder, plan.rans_order, plan.zstd_level});
      return EncodeFields(dtype, raw, fp, body);
    }
    case kStrategyWidened: {
      if (dtype != DType::kF32) return Status::InvalidArgument("widened needs f32 input");
      std::string narrow;
      if (!NarrowExact(raw, plan.widened_from, &narrow))
        return Status::InvalidArgument("f32 values are not exactly widened");
      ForcedPlan inner = plan;
      inner.strategy = kStrategyFields;
      std::string inner_body;
      QATQ_RETURN_IF_ERROR(EncodeBodyForced(plan.widened_from, narrow, inner, &inner_body));
      body->assign(kWidenedHeaderSize, '\0');
      (*body)[0] = static_cast<char>(plan.widened_from);
      (*body)[1] = static_cast<char>(kStrategyFields);
      body->append(inner_body);
      return Status::OK();
    }
  }
  return Status::InvalidArgument("unknown strategy");
}

Status DecodeBody(uint8_t strategy, DType dtype, std::string_view body, char* dst,
                  uint32_t raw_len) {
  const size_t width = DTypeWidth(dtype);
  if (raw_len % width != 0) return Status::Corruption("raw length is not a multiple of the width");
  switch (strategy) {
    case static_cast<uint8_t>(Strategy::kRaw):
      if (body.size() != raw_len) return Status::Corruption("raw body length mismatch");
      if (raw_len) std::memcpy(dst, body.data(), raw_len);
      return Status::OK();
    case static_cast<uint8_t>(Strategy::kConstant):
      if (body.size() != width || raw_len == 0)
        return Status::Corruption("constant body must hold exactly one element");
      for (uint32_t i = 0; i < raw_len; i += width) std::memcpy(dst + i, body.data(), width);
      return Status::OK();
    case static_cast<uint8_t>(Strategy::kZstd): {
      unsigned long long content = ZSTD_getFrameContentSize(body.data(), body.size());
      if (content != raw_len) return Status::Corruption("zstd frame size does not match raw length");
      size_t n = ZSTD_decompressDCtx(ThreadDCtx(), dst, raw_len, body.data(), body.size());
      if (ZSTD_isError(n) || n != raw_len) return Status::Corruption("zstd frame does not decode");
      return Status::OK();
    }
    case kStrategyFields:
      return DecodeFields(dtype, body, dst, raw_len);
    case kStrategyWidened:
      if (dtype != DType::kF32) return Status::Corruption("widened strategy on a non-f32 chunk");
      return DecodeWidened(body, dst, raw_len);
  }
  return Status::NotSupported("unknown strategy " + std::to_string(strategy));
}

std::string StrategyName(uint8_t strategy) {
  switch (strategy) {
    case static_cast<uint8_t>(Strategy::kRaw): return "raw";
    case static_cast<uint8_t>(Strategy::kConstant): return "constant";
    case static_cast<uint8_t>(Strategy::kZstd): return "zstd";
    case kStrategyFields: return "fields";
    case kStrategyWidened: return "widened";
  }
  return "unknown-" + std::to_string(strategy);
}

Status DescribeBody(uint8_t strategy, std::string_view body, std::string* out) {
  out->clear();
  if (strategy == kStrategyWidened) {
    DType from;
    uint8_t inner;
    QATQ_RETURN_IF_ERROR(ReadWidenedHeader(&body, &from, &inner));
    std::string inner_text;
    QATQ_RETURN_IF_ERROR(DescribeBody(inner, body, &inner_text));
    *out = "from " + std::string(DTypeName(from)) + ": " + StrategyName(inner);
    if (!inner_text.empty()) *out += " " + inner_text;
    return Status::OK();
  }
  if (strategy != kStrategyFields) return Status::OK();
  FieldsHeader fh;
  QATQ_RETURN_IF_ERROR(ReadFieldsHeader(&body, &fh));
  static const char* const kTransforms[] = {"none", "xor", "delta"};
  *out = std::string(kTransforms[static_cast<int>(fh.transform)]) + "/" +
         std::to_string(fh.stride) + (fh.transposed ? " columns:" : " rows:");
  for (int k = 0; k < fh.streams; ++k) {
    StreamCoder coder = StreamCoder::kRaw;
    std::string_view bytes;
    QATQ_RETURN_IF_ERROR(NextStream(&body, &coder, &bytes));
    std::string name;
    switch (coder) {
      case StreamCoder::kRaw: name = "raw"; break;
      case StreamCoder::kConstant: name = "constant"; break;
      case StreamCoder::kZstd: name = "zstd"; break;
      case StreamCoder::kHuffman: name = "huffman"; break;
      case StreamCoder::kRans:
        name = !bytes.empty() && (static_cast<uint8_t>(bytes[0]) & 1) ? "rans-o1" : "rans-o0";
        break;
      default: name = "coder-" + std::to_string(static_cast<int>(coder));
    }
    *out += (k ? ", " : " ") + name + " " + std::to_string(bytes.size());
  }
  if (!body.empty()) return Status::Corruption("fields body has trailing bytes");
  return Status::OK();
}

Status EncodeExponentOnly(DType dtype, std::string_view raw, std::string* body) {
  FieldsPlan plan;
  const size_t width = DTypeWidth(dtype);
  plan.streams.assign(width, StreamChoice{StreamCoder::kRaw, 0, 0});
  plan.streams[0] = StreamChoice{StreamCoder::kRans, 0, 0};
  if (raw.empty()) {
    body->clear();
    return Status::OK();
  }
  return EncodeFields(dtype, raw, plan, body);
}

Status DecodeExponentOnly(DType dtype, std::string_view body, char* dst, uint32_t raw_len) {
  if (raw_len == 0) return body.empty() ? Status::OK() : Status::Corruption("trailing bytes");
  return DecodeFields(dtype, body, dst, raw_len);
}

}  // namespace qatq::v3
