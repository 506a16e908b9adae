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
  uint64_t freq[256];
  int used = 0;
  int last = 0;
  for (int s = 0; s < 256; ++s) {
    freq[s] = hist[s];
    if (freq[s]) ++used, last = s;
  }
  if (used == 0) return len;
  if (used == 1) {
    len[last] = 1;
    return len;
  }
  // Runs per stream of every chunk: fixed arrays, no heap.
  uint64_t key[256];
  uint64_t w[512];
  int parent[512];
  int depth[512];
  for (;;) {
    // Two-queue Huffman over symbols sorted by (frequency, symbol); the
    // frequency sits above the symbol in one key so a plain sort is stable.
    int m = 0;
    for (int s = 0; s < 256; ++s)
      if (freq[s]) key[m++] = freq[s] << 8 | static_cast<uint64_t>(s);
    std::sort(key, key + m);
    for (int i = 0; i < m; ++i) w[i] = key[i] >> 8;
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
    depth[2 * m - 2] = 0;
    int maxd = 0;
    for (int i = 2 * m - 3; i >= 0; --i) {
      depth[i] = depth[parent[i]] + 1;
      if (i < m) maxd = std::max(maxd, depth[i]);
    }
    if (maxd <= kHuffmanMaxBits) {
      for (int i = 0; i < m; ++i) len[key[i] & 0xff] = static_cast<uint8_t>(depth[i]);
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

// Bit writer of one segment: whole 64-bit stores, advancing by the bytes
// completed. entry[s] = code | length << 16.
struct BitWriter {
  char* p;
  uint64_t buf = 0;
  int cnt = 0;
  // Five codes of at most 11 bits on top of at most 7 pending bits fit 64.
  inline void Put5(const uint8_t* in, const uint32_t entry[256]) {
    for (int j = 0; j < 5; ++j) {
      const uint32_t e = entry[in[j]];
      buf |= uint64_t{e & 0xffff} << cnt;
      cnt += static_cast<int>(e >> 16);
    }
    Store64(p, buf);
    p += cnt >> 3;
    buf >>= cnt & ~7;
    cnt &= 7;
  }
  inline void Put1(uint8_t sym, const uint32_t entry[256]) {
    const uint32_t e = entry[sym];
    buf |= uint64_t{e & 0xffff} << cnt;
    cnt += static_cast<int>(e >> 16);
    Store64(p, buf);
    p += cnt >> 3;
    buf >>= cnt & ~7;
    cnt &= 7;
  }
  // Writes the pending bits; returns the end of the segment.
  char* Finish() {
    Store64(p, buf);
    return p + ((cnt + 7) >> 3);
  }
};

// Codes the kSegments segments of in[0, n) into dst, segment k at
// dst + k * cap, where cap bounds a segment's size plus 8 bytes of slack;
// sets end[k]. The segments are coded in one loop: four independent
// dependency chains instead of one.
void EncodeSegments(const uint8_t* in, size_t n, const uint32_t entry[256], char* dst, size_t cap,
                    char* end[kSegments]) {
  BitWriter w[kSegments];
  const uint8_t* src[kSegments];
  size_t count[kSegments];
  size_t offset = 0;
  for (int k = 0; k < kSegments; ++k) {
    w[k].p = dst + k * cap;
    src[k] = in + offset;
    count[k] = SegmentSymbols(n, k);
    offset += count[k];
  }
  // Segment sizes never grow with k: the last is the shortest.
  const size_t common = count[kSegments - 1];
  size_t i = 0;
  for (; i + 5 <= common; i += 5)
    for (int k = 0; k < kSegments; ++k) w[k].Put5(src[k] + i, entry);
  for (int k = 0; k < kSegments; ++k) {
    size_t j = i;
    for (; j + 5 <= count[k]; j += 5) w[k].Put5(src[k] + j, entry);
    for (; j < count[k]; ++j) w[k].Put1(src[k][j], entry);
    end[k] = w[k].Finish();
  }
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

// Fills multi[x] for every 11-bit window x: the codes wholly inside it,
// up to three (see HuffmanDecode). Written level by level from the code
// list rather than by decoding each window: every level stores at most
// 2048 entries with no dependent loads, a few microseconds per stream.
void BuildMultiTable(const std::array<uint8_t, 256>& len, const uint16_t codes[256], bool single,
                     const uint16_t* table, uint32_t multi[kTableSize]) {
  if (single) {
    // One symbol: any bit decodes it (as the single-symbol table does).
    int s = 0;
    while (len[s] == 0) ++s;
    const uint32_t e = s * 0x010101u | 3u << 24 | 3u << 28;
    for (uint32_t x = 0; x < kTableSize; ++x) multi[x] = e;
    return;
  }
  struct Code {
    uint32_t code, len, sym;
  };
  // Codes by length (a counting sort), so the inner loops stop at the
  // first code that no longer fits.
  int start[kHuffmanMaxBits + 2] = {};
  for (int s = 0; s < 256; ++s) ++start[len[s] + 1];
  start[1] = 0;  // unused symbols (length 0) are left out
  for (int l = 2; l <= kHuffmanMaxBits + 1; ++l) start[l] += start[l - 1];
  Code list[256];
  const int m = start[kHuffmanMaxBits + 1];
  for (int s = 0; s < 256; ++s)
    if (len[s]) list[start[len[s]]++] = {codes[s], len[s], static_cast<uint32_t>(s)};
  auto fill = [multi](uint32_t prefix, uint32_t bits, uint32_t entry) {
    for (uint32_t x = prefix; x < kTableSize; x += 1u << bits) multi[x] = entry;
  };
  // Level 1 is the single-symbol table, converted in one vectorised pass.
  for (uint32_t x = 0; x < kTableSize; ++x)
    multi[x] = (table[x] & 0xffu) | (uint32_t{table[x]} >> 8) << 24 | 1u << 28;
  for (int a = 0; a < m; ++a) {
    const Code& ca = list[a];
    for (int b = 0; b < m && ca.len + list[b].len <= kHuffmanMaxBits; ++b) {
      const Code& cb = list[b];
      const uint32_t lab = ca.len + cb.len, cab = ca.code | cb.code << ca.len;
      const uint32_t sab = ca.sym | cb.sym << 8;
      fill(cab, lab, sab | lab << 24 | 2u << 28);
      for (int c = 0; c < m && lab + list[c].len <= kHuffmanMaxBits; ++c) {
        const Code& cc = list[c];
        const uint32_t l = lab + cc.len;
        fill(cab | cc.code << lab, l, sab | cc.sym << 16 | l << 24 | 3u << 28);
      }
    }
  }
}

}  // namespace

void ByteHistogram(std::string_view in, uint32_t hist[256]) {
  // Eight tables break the store-to-load dependency of runs of equal bytes
  // (exponent streams are mostly such runs), and one 8-byte load feeds
  // eight counts: 3.6 GB/s against 2.7 with four tables and byte loads.
  uint32_t h[8][256] = {};
  const uint8_t* p = reinterpret_cast<const uint8_t*>(in.data());
  const size_t n = in.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    ++h[0][v & 0xff];
    ++h[1][(v >> 8) & 0xff];
    ++h[2][(v >> 16) & 0xff];
    ++h[3][(v >> 24) & 0xff];
    ++h[4][(v >> 32) & 0xff];
    ++h[5][(v >> 40) & 0xff];
    ++h[6][(v >> 48) & 0xff];
    ++h[7][v >> 56];
  }
  for (; i < n; ++i) ++h[0][p[i]];
  for (int v = 0; v < 256; ++v) {
    uint32_t sum = 0;
    for (int k = 0; k < 8; ++k) sum += h[k][v];
    hist[v] = sum;
  }
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
  // Worst case 11 bits per symbol, plus slack for the wide stores. The
  // segments are coded into scratch that only grows (no zero fill per
  // call) and appended end to end.
  const size_t q = (in.size() + kSegments - 1) / kSegments;
  const size_t cap = (q * kHuffmanMaxBits + 7) / 8 + 16;
  thread_local std::string scratch;
  if (scratch.size() < kSegments * cap) scratch.resize(kSegments * cap);
  char* end[kSegments];
  EncodeSegments(src, in.size(), entry, scratch.data(), cap, end);
  out->resize(sizes_at + 4 * (kSegments - 1));
  for (int k = 0; k < kSegments; ++k) {
    const char* begin = scratch.data() + k * cap;
    const size_t size = static_cast<size_t>(end[k] - begin);
    if (k < kSegments - 1) PutLE32(out->data() + sizes_at + 4 * k, static_cast<uint32_t>(size));
    out->append(begin, size);
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
  std::array<uint16_t, kTableSize> table{};
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
  // Multi-symbol table: an entry holds every whole code among its 11 bits,
  // up to three (symbols in bits 0-23, bits used in 24-27, count in 28-29),
  // so one lookup yields ~2.5 exponents of a bf16 stream instead of one.
  uint32_t multi[kTableSize];
  BuildMultiTable(len, codes, single, table.data(), multi);
  // Fast loop: five lookups per segment and round (5 x 11 bits fit one
  // peek of >= 57 bits), each storing four bytes of which `count` are
  // symbols. A round writes at most 5 x 3 symbols plus one spare byte past
  // them, so it runs only while 18 symbols are left in every segment, and
  // never writes into the next segment.
  constexpr size_t kRoundMargin = 18;
  uint8_t* const end0 = out[0] + left[0];
  uint8_t* const end1 = out[1] + left[1];
  uint8_t* const end2 = out[2] + left[2];
  uint8_t* const end3 = out[3] + left[3];
  uint8_t *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3];
  while (end0 - o0 >= static_cast<ptrdiff_t>(kRoundMargin) &&
         end1 - o1 >= static_cast<ptrdiff_t>(kRoundMargin) &&
         end2 - o2 >= static_cast<ptrdiff_t>(kRoundMargin) &&
         end3 - o3 >= static_cast<ptrdiff_t>(kRoundMargin) && r[0].FastOk() && r[1].FastOk() &&
         r[2].FastOk() && r[3].FastOk()) {
    // Four independent dependency chains, interleaved by hand so the
    // table lookups of different segments overlap.
    uint64_t v0 = r[0].PeekFast(), v1 = r[1].PeekFast(), v2 = r[2].PeekFast(),
             v3 = r[3].PeekFast();
    uint32_t u0 = 0, u1 = 0, u2 = 0, u3 = 0;
    for (int j = 0; j < 5; ++j) {
      const uint32_t e0 = multi[v0 & kMask], e1 = multi[v1 & kMask], e2 = multi[v2 & kMask],
                     e3 = multi[v3 & kMask];
      std::memcpy(o0, &e0, 4);
      std::memcpy(o1, &e1, 4);
      std::memcpy(o2, &e2, 4);
      std::memcpy(o3, &e3, 4);
      o0 += e0 >> 28;
      o1 += e1 >> 28;
      o2 += e2 >> 28;
      o3 += e3 >> 28;
      const uint32_t b0 = (e0 >> 24) & 15, b1 = (e1 >> 24) & 15, b2 = (e2 >> 24) & 15,
                     b3 = (e3 >> 24) & 15;
      v0 >>= b0;
      v1 >>= b1;
      v2 >>= b2;
      v3 >>= b3;
      u0 += b0;
      u1 += b1;
      u2 += b2;
      u3 += b3;
    }
    r[0].pos += u0;
    r[1].pos += u1;
    r[2].pos += u2;
    r[3].pos += u3;
  }
  out[0] = o0;
  out[1] = o1;
  out[2] = o2;
  out[3] = o3;
  left[0] = static_cast<size_t>(end0 - o0);
  left[1] = static_cast<size_t>(end1 - o1);
  left[2] = static_cast<size_t>(end2 - o2);
  left[3] = static_cast<size_t>(end3 - o3);
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
