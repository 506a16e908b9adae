#include "codec/v3_huffman.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "codec/endian.h"

namespace qatq::v3 {

namespace {

constexpr int kTableBits = kHuffmanMaxBits;
constexpr uint32_t kTableSize = 1u << kTableBits;
constexpr int kSegments = 4;

// Code lengths (0 = unused) for `hist`, limited to kHuffmanMaxBits by
// flattening the histogram until the tree is shallow enough.
std::array<uint8_t, 256> CodeLengths(const uint32_t hist[256]) {
  std::array<uint8_t, 256> len{};
  std::vector<uint64_t> freq(hist, hist + 256);
  int used = 0;
  int last = 0;
  for (int s = 0; s < 256; ++s)
    if (freq[s]) ++used, last = s;
  if (used == 0) return len;
  if (used == 1) {
    len[last] = 1;
    return len;
  }
  for (;;) {
    // Two-queue Huffman over symbols sorted by frequency.
    std::vector<int> order;
    for (int s = 0; s < 256; ++s)
      if (freq[s]) order.push_back(s);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return freq[a] < freq[b]; });
    const int m = static_cast<int>(order.size());
    std::vector<uint64_t> w(2 * m);
    std::vector<int> parent(2 * m, -1);
    for (int i = 0; i < m; ++i) w[i] = freq[order[i]];
    int leaf = 0, inner = m, next = m;
    auto take = [&]() {
      if (leaf < m && (inner >= next || w[leaf] <= w[inner])) return leaf++;
      return inner++;
    };
    while (next < 2 * m - 1) {
      int a = take(), b = take();
      w[next] = w[a] + w[b];
      parent[a] = parent[b] = next;
      ++next;
    }
    std::vector<int> depth(2 * m, 0);
    int maxd = 0;
    for (int i = 2 * m - 3; i >= 0; --i) {
      depth[i] = depth[parent[i]] + 1;
      if (i < m) maxd = std::max(maxd, depth[i]);
    }
    if (maxd <= kHuffmanMaxBits) {
      for (int i = 0; i < m; ++i) len[order[i]] = static_cast<uint8_t>(depth[i]);
      return len;
    }
    for (auto& f : freq)
      if (f) f = (f >> 1) | 1;
  }
}

// Canonical codes, bit-reversed for LSB-first output.
void CanonicalCodes(const std::array<uint8_t, 256>& len, uint16_t codes[256]) {
  int count[kHuffmanMaxBits + 1] = {};
  for (int s = 0; s < 256; ++s) ++count[len[s]];
  count[0] = 0;
  uint32_t next[kHuffmanMaxBits + 2] = {};
  uint32_t code = 0;
  for (int l = 1; l <= kHuffmanMaxBits; ++l) {
    code = (code + count[l - 1]) << 1;
    next[l] = code;
  }
  for (int s = 0; s < 256; ++s) {
    const int l = len[s];
    if (l == 0) continue;
    uint32_t c = next[l]++;
    uint32_t r = 0;
    for (int b = 0; b < l; ++b) r |= ((c >> b) & 1) << (l - 1 - b);
    codes[s] = static_cast<uint16_t>(r);
  }
}

size_t SegmentSymbols(size_t n, int k) {
  const size_t q = (n + kSegments - 1) / kSegments;
  const size_t start = std::min(n, q * k);
  return std::min(q, n - start);
}

size_t TableBytes(const std::array<uint8_t, 256>& len) {
  int last = 0;
  for (int s = 0; s < 256; ++s)
    if (len[s]) last = s;
  return 1 + (last + 2) / 2;
}

inline void Store64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }

// entry[s] = code | length << 16.
void EncodeSegment(const uint8_t* in, size_t n, const uint32_t entry[256], std::string* out) {
  const size_t start = out->size();
  // Worst case 11 bits per symbol, plus 8 bytes of slack for wide stores.
  out->resize(start + (n * kHuffmanMaxBits + 7) / 8 + 8);
  char* p = out->data() + start;
  uint64_t buf = 0;
  int cnt = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; ++j) {
      const uint32_t e = entry[in[i + j]];
      buf |= uint64_t{e & 0xffff} << cnt;
      cnt += e >> 16;
    }
    Store64(p, buf);
    p += cnt >> 3;
    buf >>= cnt & ~7;
    cnt &= 7;
  }
  for (; i < n; ++i) {
    const uint32_t e = entry[in[i]];
    buf |= uint64_t{e & 0xffff} << cnt;
    cnt += e >> 16;
  }
  Store64(p, buf);
  p += (cnt + 7) >> 3;
  out->resize(p - out->data());
}

// Decoder state of one segment: a bit position into [base, base + size).
struct BitReader {
  const uint8_t* base;
  size_t size;
  uint64_t pos = 0;  // in bits
  uint64_t PeekSafe() const {
    const size_t byte = pos >> 3;
    uint8_t tmp[8] = {};
    if (byte < size) std::memcpy(tmp, base + byte, std::min<size_t>(8, size - byte));
    uint64_t v;
    std::memcpy(&v, tmp, 8);
    return v >> (pos & 7);
  }
  uint64_t PeekFast() const {
    uint64_t v;
    std::memcpy(&v, base + (pos >> 3), 8);
    return v >> (pos & 7);
  }
  // True while PeekFast reads in bounds for 4 symbols.
  bool FastOk() const { return (pos >> 3) + 8 + 6 <= size; }
};

}  // namespace

void ByteHistogram(std::string_view in, uint32_t hist[256]) {
  // Four tables break the store-to-load dependency of runs of equal bytes.
  uint32_t h[4][256] = {};
  const uint8_t* p = reinterpret_cast<const uint8_t*>(in.data());
  const size_t n = in.size();
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    ++h[0][p[i]];
    ++h[1][p[i + 1]];
    ++h[2][p[i + 2]];
    ++h[3][p[i + 3]];
  }
  for (; i < n; ++i) ++h[0][p[i]];
  for (int v = 0; v < 256; ++v) hist[v] = h[0][v] + h[1][v] + h[2][v] + h[3][v];
}

Status HuffmanEncode(std::string_view in, std::string* out) {
  uint32_t hist[256];
  ByteHistogram(in, hist);
  return HuffmanEncode(in, hist, out);
}

Status HuffmanEncode(std::string_view in, const uint32_t hist[256], std::string* out) {
  if (in.empty()) return Status::InvalidArgument("huffman: empty input");
  const uint8_t* src = reinterpret_cast<const uint8_t*>(in.data());
  const std::array<uint8_t, 256> len = CodeLengths(hist);
  uint16_t codes[256] = {};
  CanonicalCodes(len, codes);
  uint32_t entry[256];
  for (int v = 0; v < 256; ++v) entry[v] = codes[v] | (uint32_t{len[v]} << 16);

  out->clear();
  const size_t tb = TableBytes(len);
  out->resize(tb);
  const int count = static_cast<int>(2 * (tb - 1));
  (*out)[0] = static_cast<char>(count - 1);
  for (int s = 0; s < count; s += 2) {
    const uint8_t lo = len[s];
    const uint8_t hi = s + 1 < 256 ? len[s + 1] : 0;
    (*out)[1 + s / 2] = static_cast<char>(lo | (hi << 4));
  }
  const size_t sizes_at = out->size();
  out->resize(sizes_at + 4 * (kSegments - 1));
  size_t offset = 0;
  for (int k = 0; k < kSegments; ++k) {
    const size_t m = SegmentSymbols(in.size(), k);
    const size_t before = out->size();
    EncodeSegment(src + offset, m, entry, out);
    if (k < kSegments - 1) PutLE32(out->data() + sizes_at + 4 * k, static_cast<uint32_t>(out->size() - before));
    offset += m;
  }
  return Status::OK();
}

Status HuffmanDecode(std::string_view in, uint8_t* dst, size_t n) {
  if (in.empty()) return Status::Corruption("huffman stream empty");
  const int count = static_cast<uint8_t>(in[0]) + 1;
  const size_t tb = 1 + (count + 1) / 2;
  if (in.size() < tb + 4 * (kSegments - 1)) return Status::Corruption("huffman stream truncated");
  std::array<uint8_t, 256> len{};
  for (int s = 0; s < count; ++s) {
    const uint8_t b = static_cast<uint8_t>(in[1 + s / 2]);
    len[s] = (s & 1) ? (b >> 4) : (b & 15);
    if (len[s] > kHuffmanMaxBits) return Status::Corruption("huffman code length too large");
  }
  if ((count & 1) && (static_cast<uint8_t>(in[tb - 1]) >> 4) != 0)
    return Status::Corruption("huffman table padding is not zero");
  // The code must be complete (Kraft sum exactly 1), or a single symbol of
  // length 1, so every table slot is defined.
  uint64_t kraft = 0;
  int used = 0;
  for (int s = 0; s < 256; ++s)
    if (len[s]) kraft += uint64_t{1} << (kHuffmanMaxBits - len[s]), ++used;
  const bool single = used == 1 && kraft == kTableSize / 2;
  if (kraft != kTableSize && !single) return Status::Corruption("huffman code is not complete");
  uint16_t codes[256] = {};
  CanonicalCodes(len, codes);
  std::vector<uint16_t> table(kTableSize);
  for (int s = 0; s < 256; ++s) {
    const int l = len[s];
    if (!l) continue;
    const uint16_t e = static_cast<uint16_t>(s | (l << 8));
    for (uint32_t j = codes[s]; j < kTableSize; j += 1u << l) table[j] = e;
    if (single)
      for (uint32_t j = 0; j < kTableSize; ++j) table[j] = e;
  }

  size_t seg_size[kSegments];
  size_t rest = in.size() - tb - 4 * (kSegments - 1);
  for (int k = 0; k < kSegments - 1; ++k) {
    seg_size[k] = GetLE32(in.data() + tb + 4 * k);
    if (seg_size[k] > rest) return Status::Corruption("huffman segment sizes exceed the stream");
    rest -= seg_size[k];
  }
  seg_size[kSegments - 1] = rest;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(in.data()) + tb + 4 * (kSegments - 1);
  BitReader r[kSegments] = {{p, seg_size[0]}, {}, {}, {}};
  uint8_t* out[kSegments];
  size_t left[kSegments];
  for (int k = 0; k < kSegments; ++k) {
    if (k > 0) r[k] = BitReader{r[k - 1].base + seg_size[k - 1], seg_size[k]};
    out[k] = dst + std::min(n, ((n + kSegments - 1) / kSegments) * k);
    left[k] = SegmentSymbols(n, k);
  }
  const uint16_t* t = table.data();
  constexpr uint64_t kMask = kTableSize - 1;
  // Fast loop: 4 symbols from each segment per round (4 * 11 bits fit one
  // peek of >= 57 bits).
  while (left[0] >= 4 && left[1] >= 4 && left[2] >= 4 && left[3] >= 4 && r[0].FastOk() &&
         r[1].FastOk() && r[2].FastOk() && r[3].FastOk()) {
    // Four independent dependency chains, interleaved by hand so the
    // table lookups of different segments overlap.
    uint64_t v0 = r[0].PeekFast(), v1 = r[1].PeekFast(), v2 = r[2].PeekFast(),
             v3 = r[3].PeekFast();
    uint32_t u0 = 0, u1 = 0, u2 = 0, u3 = 0;
    for (int j = 0; j < 4; ++j) {
      const uint16_t e0 = t[v0 & kMask], e1 = t[v1 & kMask], e2 = t[v2 & kMask],
                     e3 = t[v3 & kMask];
      out[0][j] = static_cast<uint8_t>(e0);
      out[1][j] = static_cast<uint8_t>(e1);
      out[2][j] = static_cast<uint8_t>(e2);
      out[3][j] = static_cast<uint8_t>(e3);
      v0 >>= e0 >> 8;
      v1 >>= e1 >> 8;
      v2 >>= e2 >> 8;
      v3 >>= e3 >> 8;
      u0 += e0 >> 8;
      u1 += e1 >> 8;
      u2 += e2 >> 8;
      u3 += e3 >> 8;
    }
    r[0].pos += u0;
    r[1].pos += u1;
    r[2].pos += u2;
    r[3].pos += u3;
    for (int k = 0; k < kSegments; ++k) {
      out[k] += 4;
      left[k] -= 4;
    }
  }
  for (int k = 0; k < kSegments; ++k) {
    while (left[k] > 0) {
      const uint16_t e = t[r[k].PeekSafe() & kMask];
      *out[k]++ = static_cast<uint8_t>(e);
      r[k].pos += e >> 8;
      --left[k];
    }
    if (r[k].pos > uint64_t{r[k].size} * 8) return Status::Corruption("huffman segment overrun");
    if ((r[k].pos + 7) / 8 != r[k].size) return Status::Corruption("huffman segment has trailing bytes");
  }
  return Status::OK();
}

size_t HuffmanEstimate(const uint32_t hist[256]) {
  const std::array<uint8_t, 256> len = CodeLengths(hist);
  uint64_t bits = 0;
  for (int s = 0; s < 256; ++s) bits += uint64_t{hist[s]} * len[s];
  return TableBytes(len) + 4 * (kSegments - 1) + (bits + 7) / 8 + kSegments;
}

}  // namespace qatq::v3
