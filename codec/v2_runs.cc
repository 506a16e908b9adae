#include "codec/v2_runs.h"

#include <cstdint>
#include <cstring>

namespace qatq {
namespace {

// Counts output bytes only.
struct SizeSink {
  size_t size = 0;
  void Header(const unsigned char*, size_t len) { size += len; }
  void Bytes(const unsigned char*, size_t len) { size += len; }
};

struct StringSink {
  std::string* out;
  void Header(const unsigned char* h, size_t len) { out->append(reinterpret_cast<const char*>(h), len); }
  void Bytes(const unsigned char* p, size_t len) { out->append(reinterpret_cast<const char*>(p), len); }
};

inline size_t RunLength(const unsigned char* in, size_t p, size_t n) {
  unsigned char b = in[p];
  size_t q = p + 1;
  while (q < n && in[q] == b) ++q;
  return q - p;
}

// Shared greedy parse. Format-specific costs come from `Code`:
//   kMaxRun, kMaxLit; thresholds for starting a zero/repeat run with and
//   without a pending literal; EmitZero/EmitRepeat/EmitLiteral.
template <typename Code, typename Sink>
void GreedyEncode(const unsigned char* in, size_t n, Sink* sink) {
  size_t lit_start = 0, lit_len = 0;
  auto flush = [&] {
    while (lit_len > 0) {
      size_t l = lit_len < Code::kMaxLit ? lit_len : Code::kMaxLit;
      Code::EmitLiteral(in + lit_start, l, sink);
      lit_start += l;
      lit_len -= l;
    }
  };
  size_t p = 0;
  while (p < n) {
    unsigned char b = in[p];
    size_t r = RunLength(in, p, n);
    size_t thresh = b == 0 ? (lit_len ? Code::kZeroMid : Code::kZeroStart)
                           : (lit_len ? Code::kRepMid : Code::kRepStart);
    if (r >= thresh) {
      flush();
      size_t left = r;
      while (left > 0) {
        size_t l = left < Code::kMaxRun ? left : Code::kMaxRun;
        if (b == 0) {
          Code::EmitZero(l, sink);
        } else {
          Code::EmitRepeat(b, l, sink);
        }
        left -= l;
      }
      p += r;
      lit_start = p;
    } else {
      if (lit_len == 0) lit_start = p;
      lit_len += r;
      p += r;
    }
  }
  flush();
}

struct Run3Code {
  static constexpr size_t kMaxRun = 65535, kMaxLit = 65535;
  // A run costs 3 (zero) or 4 (repeat) bytes; splitting a literal costs a
  // further 3-byte literal header.
  static constexpr size_t kZeroStart = 4, kRepStart = 5, kZeroMid = 7, kRepMid = 8;
  template <typename Sink>
  static void EmitZero(size_t l, Sink* s) {
    unsigned char h[3] = {0, static_cast<unsigned char>(l >> 8), static_cast<unsigned char>(l)};
    s->Header(h, 3);
  }
  template <typename Sink>
  static void EmitRepeat(unsigned char b, size_t l, Sink* s) {
    unsigned char h[4] = {2, static_cast<unsigned char>(l >> 8), static_cast<unsigned char>(l), b};
    s->Header(h, 4);
  }
  template <typename Sink>
  static void EmitLiteral(const unsigned char* p, size_t l, Sink* s) {
    unsigned char h[3] = {1, static_cast<unsigned char>(l >> 8), static_cast<unsigned char>(l)};
    s->Header(h, 3);
    s->Bytes(p, l);
  }
};

struct PackCode {
  static constexpr size_t kMaxRun = 64, kMaxLit = 64;
  static constexpr size_t kZeroStart = 2, kRepStart = 3, kZeroMid = 3, kRepMid = 4;
  template <typename Sink>
  static void EmitZero(size_t l, Sink* s) {
    unsigned char h = static_cast<unsigned char>(l - 1);
    s->Header(&h, 1);
  }
  template <typename Sink>
  static void EmitRepeat(unsigned char b, size_t l, Sink* s) {
    unsigned char h[2] = {static_cast<unsigned char>(0x80 | (l - 1)), b};
    s->Header(h, 2);
  }
  template <typename Sink>
  static void EmitLiteral(const unsigned char* p, size_t l, Sink* s) {
    unsigned char h = static_cast<unsigned char>(0x40 | (l - 1));
    s->Header(&h, 1);
    s->Bytes(p, l);
  }
};

}  // namespace

size_t CountByteRuns(const unsigned char* in, size_t n) {
  if (n == 0) return 0;
  // Eight neighbour comparisons per step: a byte of a ^ b is non-zero
  // where in[i] != in[i + 1].
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7full;
  size_t changes = 0, i = 0;
  for (; i + 9 <= n; i += 8) {
    uint64_t a, b;
    std::memcpy(&a, in + i, 8);
    std::memcpy(&b, in + i + 1, 8);
    uint64_t t = a ^ b;
    uint64_t nonzero = ((((t & kLow7) + kLow7) | t) & ~kLow7) >> 7;  // 1 per differing byte
    changes += static_cast<size_t>((nonzero * 0x0101010101010101ull) >> 56);
  }
  for (; i + 1 < n; ++i) changes += in[i] != in[i + 1];
  return changes + 1;
}

size_t Run3EncodedSize(const unsigned char* in, size_t n) {
  SizeSink s;
  GreedyEncode<Run3Code>(in, n, &s);
  return s.size;
}

size_t PackEncodedSize(const unsigned char* in, size_t n) {
  SizeSink s;
  GreedyEncode<PackCode>(in, n, &s);
  return s.size;
}

void Run3Encode(const unsigned char* in, size_t n, std::string* out) {
  StringSink s{out};
  GreedyEncode<Run3Code>(in, n, &s);
}

void PackEncode(const unsigned char* in, size_t n, std::string* out) {
  StringSink s{out};
  GreedyEncode<PackCode>(in, n, &s);
}

Status Run3Decode(std::string_view body, char* out, size_t out_len) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(body.data());
  const unsigned char* end = p + body.size();
  size_t o = 0;
  while (p < end) {
    if (end - p < 3) return Status::Corruption("RUN3 body: truncated run header");
    unsigned tag = p[0];
    size_t len = (size_t{p[1]} << 8) | p[2];
    p += 3;
    if (len == 0) return Status::Corruption("RUN3 body: run of length 0");
    if (len > out_len - o) return Status::Corruption("RUN3 body: run past the end of the output");
    switch (tag) {
      case 0:
        std::memset(out + o, 0, len);
        break;
      case 1:
        if (static_cast<size_t>(end - p) < len) {
          return Status::Corruption("RUN3 body: literal run past the end of the body");
        }
        std::memcpy(out + o, p, len);
        p += len;
        break;
      case 2:
        if (p == end) return Status::Corruption("RUN3 body: truncated repeat run");
        std::memset(out + o, *p++, len);
        break;
      default:
        return Status::Corruption("RUN3 body: invalid run tag " + std::to_string(tag));
    }
    o += len;
  }
  if (o != out_len) {
    return Status::Corruption("RUN3 body: decodes to " + std::to_string(o) + " bytes, expected " +
                              std::to_string(out_len));
  }
  return Status::OK();
}

Status PackDecode(std::string_view body, char* out, size_t out_len) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(body.data());
  const unsigned char* end = p + body.size();
  size_t o = 0;
  while (p < end) {
    unsigned tag = *p >> 6;
    size_t len = (*p & 0x3f) + 1u;
    ++p;
    if (len > out_len - o) return Status::Corruption("PACK body: run past the end of the output");
    switch (tag) {
      case 0:
        std::memset(out + o, 0, len);
        break;
      case 1:
        if (static_cast<size_t>(end - p) < len) {
          return Status::Corruption("PACK body: literal run past the end of the body");
        }
        std::memcpy(out + o, p, len);
        p += len;
        break;
      case 2:
        if (p == end) return Status::Corruption("PACK body: truncated repeat run");
        std::memset(out + o, *p++, len);
        break;
      default:
        return Status::Corruption("PACK body: invalid run tag 3");
    }
    o += len;
  }
  if (o != out_len) {
    return Status::Corruption("PACK body: decodes to " + std::to_string(o) + " bytes, expected " +
                              std::to_string(out_len));
  }
  return Status::OK();
}

}  // namespace qatq
