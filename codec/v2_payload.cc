// QATQ exact payloads (spec section 1): header parsing, decoding and the
// strategy-choosing encoder.
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "codec/endian.h"
#include "codec/fnv.h"
#include "codec/planes.h"
#include "codec/qatc_v2.h"
#include "codec/v2_estimate.h"
#include "codec/v2_runs.h"

namespace qatq {
namespace {

constexpr char kPayloadMagic[4] = {'Q', 'A', 'T', 'Q'};
constexpr char kExactMagic[4] = {'Q', 'E', 'X', '1'};
constexpr uint8_t kEnvelopeVersion = 1;
constexpr uint8_t kModeExact = 4;
constexpr uint32_t kScaleOne = 0x3f800000;  // 1.0f
constexpr int kZstdLevel = 3;               // spec 1.3: writers use level 3
// A zstd block (3-byte header and at least 1 byte of content) never holds
// more than 128 KiB, so a frame of b bytes decodes to at most this much.
constexpr size_t ZstdMaxOutput(size_t frame_len) { return (frame_len / 3 + 1) * (size_t{128} << 10); }

std::string Num(uint64_t v) { return std::to_string(v); }

void DTypeTag(DType d, char tag[3]) {
  tag[0] = static_cast<char>(d == DType::kF32 ? 0 : d == DType::kF16 ? 1 : 2);
  tag[1] = static_cast<char>(d == DType::kF32 ? 0 : 2);
  tag[2] = 0;
}

bool StrategyAllowed(uint8_t s, DType d) {
  bool f32 = d == DType::kF32;
  switch (s) {
    case 1: case 2: case 3: case 6: case 7: return true;
    case 0: case 4: case 5: case 8: return f32;
    case 9: case 10: return !f32;
    default: return false;
  }
}

// Per-thread reusable buffers: payload work is chunk-sized and repeated.
struct Scratch {
  std::string planes;  // decoded planes / canonical bytes
  std::string a, b, c, d;
  std::string z_best, z_try, z_small;
};
Scratch& ThreadScratch() {
  thread_local Scratch s;
  return s;
}

char* Grow(std::string* s, size_t n) {
  if (s->size() < n) s->resize(n);
  return s->data();
}

ZSTD_DCtx* ThreadDCtx() {
  struct Holder {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    ~Holder() { ZSTD_freeDCtx(ctx); }
  };
  thread_local Holder h;
  return h.ctx;
}

ZSTD_CCtx* ThreadCCtx() {
  struct Holder {
    ZSTD_CCtx* ctx = ZSTD_createCCtx();
    ~Holder() { ZSTD_freeCCtx(ctx); }
  };
  thread_local Holder h;
  return h.ctx;
}

uint64_t RawChecksum(DType dtype, const char* raw, size_t n) {
  if (dtype == DType::kF32) return Fnv1a64CanonicalWords32(raw, n);
  return Fnv1a64(raw, n * 2);
}

// Size check only: the allocation that follows is bounded by `expect`.
Status CheckZstdFrame(std::string_view frame, size_t expect) {
  size_t flen = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(flen)) {
    return Status::Corruption(std::string("invalid zstd frame: ") + ZSTD_getErrorName(flen));
  }
  if (flen != frame.size()) return Status::Corruption("trailing bytes after the zstd frame");
  unsigned long long cs = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (cs == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption("invalid zstd frame header");
  if (cs != ZSTD_CONTENTSIZE_UNKNOWN && cs != expect) {
    return Status::Corruption("zstd frame holds " + Num(cs) + " bytes, expected n*width = " +
                              Num(expect));
  }
  if (expect > ZstdMaxOutput(frame.size())) {
    return Status::Corruption("zstd frame of " + Num(frame.size()) +
                              " bytes cannot hold n*width = " + Num(expect) + " bytes");
  }
  return Status::OK();
}

Status ZstdDecodeExact(std::string_view frame, char* dst, size_t expect) {
  size_t r = ZSTD_decompressDCtx(ThreadDCtx(), dst, expect, frame.data(), frame.size());
  if (ZSTD_isError(r)) {
    return Status::Corruption(std::string("zstd frame does not decode: ") + ZSTD_getErrorName(r));
  }
  if (r != expect) {
    return Status::Corruption("zstd frame decodes to " + Num(r) + " bytes, expected " + Num(expect));
  }
  return Status::OK();
}

// Checks the body of `info.strategy` against the bytes present before
// anything is allocated. Returns the zstd frame (if any) in *frame.
Status CheckBody(const PayloadInfo& info, std::string_view body, size_t nbytes,
                 std::string_view* frame) {
  auto too_small = [&](size_t max_out) -> Status {
    if (nbytes > max_out) {
      return Status::Corruption("strategy " + Num(info.strategy) + " body of " + Num(body.size()) +
                                " bytes cannot hold " + Num(nbytes) + " bytes");
    }
    return Status::OK();
  };
  switch (info.strategy) {
    case 1:
      if (body.size() != nbytes) {
        return Status::Corruption("raw-bits body is " + Num(body.size()) + " bytes, expected " +
                                  Num(nbytes));
      }
      return Status::OK();
    case 2: case 3: case 4:
      return too_small(Run3MaxOutput(body.size()));
    case 5:
      return Status::OK();  // descriptors are walked against the body while decoding
    case 6:
      return too_small(PackMaxOutput(body.size()));
    case 7: case 8: case 9:
      *frame = body;
      return CheckZstdFrame(body, nbytes);
    case 10:
      *frame = body.substr(4);  // stride checked by ParsePayloadHeader
      return CheckZstdFrame(*frame, nbytes);
    default:
      return Status::NotSupported("unsupported strategy " + Num(info.strategy));
  }
}

Status DecodePlaneBlocks(std::string_view body, size_t n, char* planes) {
  size_t pos = 0;
  for (int k = 0; k < 4; ++k) {
    if (pos >= body.size()) return Status::Corruption("byte-plane-blocks body: truncated");
    uint8_t kind = static_cast<uint8_t>(body[pos++]);
    char* plane = planes + k * n;
    if (kind == 0) {
      std::memset(plane, 0, n);
    } else if (kind == 2) {
      if (pos >= body.size()) return Status::Corruption("byte-plane-blocks body: truncated");
      std::memset(plane, body[pos++], n);
    } else if (kind == 1) {
      if (body.size() - pos < n) return Status::Corruption("byte-plane-blocks body: truncated");
      std::memcpy(plane, body.data() + pos, n);
      pos += n;
    } else {
      return Status::Corruption("byte-plane-blocks body: invalid plane descriptor " + Num(kind));
    }
  }
  if (pos != body.size()) return Status::Corruption("byte-plane-blocks body: trailing bytes");
  return Status::OK();
}

// Decodes into dst[0, n*width) once CheckBody has passed.
Status DecodeBody(const PayloadInfo& info, std::string_view body, std::string_view frame,
                  char* dst) {
  const size_t n = info.element_count;
  const size_t w = DTypeWidth(info.dtype);
  const size_t nbytes = n * w;
  char* tmp = Grow(&ThreadScratch().planes, nbytes);
  switch (info.strategy) {
    case 1:
      SwapWords(body.data(), n, w, dst);
      return Status::OK();
    case 2:
      QATQ_RETURN_IF_ERROR(Run3Decode(body, tmp, nbytes));
      SwapWords(tmp, n, w, dst);
      return Status::OK();
    case 3:
      QATQ_RETURN_IF_ERROR(Run3Decode(body, tmp, nbytes));
      MergePlanes(tmp, n, w, WordTransform::kNone, 1, dst);
      return Status::OK();
    case 4:
      QATQ_RETURN_IF_ERROR(Run3Decode(body, tmp, nbytes));
      MergePlanes(tmp, n, w, WordTransform::kXorStride, 1, dst);
      return Status::OK();
    case 5:
      QATQ_RETURN_IF_ERROR(DecodePlaneBlocks(body, n, tmp));
      MergePlanes(tmp, n, w, WordTransform::kNone, 1, dst);
      return Status::OK();
    case 6:
      QATQ_RETURN_IF_ERROR(PackDecode(body, tmp, nbytes));
      MergePlanes(tmp, n, w, WordTransform::kNone, 1, dst);
      return Status::OK();
    case 7:
      QATQ_RETURN_IF_ERROR(ZstdDecodeExact(frame, tmp, nbytes));
      MergePlanes(tmp, n, w, WordTransform::kNone, 1, dst);
      return Status::OK();
    case 8:
      QATQ_RETURN_IF_ERROR(ZstdDecodeExact(frame, tmp, nbytes));
      MergePlanes(tmp, n, w, WordTransform::kSubPrev, 1, dst);
      return Status::OK();
    case 9:
      QATQ_RETURN_IF_ERROR(ZstdDecodeExact(frame, tmp, nbytes));
      MergePlanes(tmp, n, w, WordTransform::kXorStride, 1, dst);
      return Status::OK();
    case 10:
      QATQ_RETURN_IF_ERROR(ZstdDecodeExact(frame, tmp, nbytes));
      MergePlanes(tmp, n, w, WordTransform::kXorStride, info.stride, dst);
      return Status::OK();
    default:
      return Status::NotSupported("unsupported strategy " + Num(info.strategy));
  }
}

}  // namespace

bool LooksLikePayload(std::string_view prefix) {
  return prefix.size() >= 4 && std::memcmp(prefix.data(), kPayloadMagic, 4) == 0;
}

Status ParsePayloadHeader(std::string_view p, PayloadInfo* info) {
  if (p.size() < 4 || std::memcmp(p.data(), kPayloadMagic, 4) != 0) {
    if (p.size() < 4) return Status::Corruption("truncated payload header");
    return Status::Corruption("bad payload magic (expected QATQ)");
  }
  if (p.size() < kPayloadHeaderSize) {
    return Status::Corruption("truncated payload header (" + Num(p.size()) + " of 36 bytes)");
  }
  const uint8_t version = static_cast<uint8_t>(p[4]);
  if (version != kEnvelopeVersion) {
    return Status::NotSupported("unsupported payload envelope version " + Num(version));
  }
  const uint8_t mode = static_cast<uint8_t>(p[5]);
  if (mode != kModeExact) return Status::NotSupported("unsupported mode " + Num(mode));
  if (p[6] != 0 || p[7] != 0) return Status::Corruption("payload reserved field is not zero");
  const uint64_t n = GetBE64(p.data() + 8);
  if (n > kMaxPayloadElements) {
    return Status::Corruption("payload element count " + Num(n) + " exceeds the limit 2^26");
  }
  const uint32_t scale_bits = GetBE32(p.data() + 16);
  float scale;
  std::memcpy(&scale, &scale_bits, 4);
  if (!std::isfinite(scale) || !(scale > 0)) {
    return Status::Corruption("payload scale is not finite and positive");
  }
  if (std::memcmp(p.data() + 28, kExactMagic, 4) != 0) {
    return Status::Corruption("bad exact body magic (expected QEX1)");
  }
  const uint8_t strategy = static_cast<uint8_t>(p[32]);
  const uint8_t t0 = static_cast<uint8_t>(p[33]), t1 = static_cast<uint8_t>(p[34]),
                t2 = static_cast<uint8_t>(p[35]);
  DType dtype;
  if (t0 == 0 && t1 == 0 && t2 == 0) {
    dtype = DType::kF32;
  } else if (t0 == 1 && t1 == 2 && t2 == 0) {
    dtype = DType::kF16;
  } else if (t0 == 2 && t1 == 2 && t2 == 0) {
    dtype = DType::kBF16;
  } else {
    char buf[40];
    std::snprintf(buf, sizeof buf, "invalid dtype tag %02x %02x %02x", t0, t1, t2);
    return Status::Corruption(buf);
  }
  if (strategy > 10) return Status::Corruption("unknown strategy " + Num(strategy));
  if (!StrategyAllowed(strategy, dtype)) {
    return Status::Corruption("strategy " + Num(strategy) + " is not valid for dtype " +
                              std::string(DTypeName(dtype)));
  }
  uint32_t stride = 0;
  if (strategy == 10) {
    if (p.size() < kPayloadHeaderSize + 4) {
      return Status::Corruption("strategy 10 body is too short for its stride");
    }
    stride = GetBE32(p.data() + kPayloadHeaderSize);
    if (stride == 0 || stride >= n) {
      return Status::Corruption("strategy 10 stride " + Num(stride) + " is not in (0, n = " +
                                Num(n) + ")");
    }
  }
  info->dtype = dtype;
  info->element_count = n;
  info->strategy = strategy;
  info->stride = stride;
  info->checksum = GetBE64(p.data() + 20);
  return Status::OK();
}

Status DecodePayloadTo(std::string_view payload, char* dst, size_t dst_len, PayloadInfo* out) {
  PayloadInfo info;
  QATQ_RETURN_IF_ERROR(ParsePayloadHeader(payload, &info));
  if (info.strategy == 0) return Status::NotSupported("unsupported strategy 0");
  const size_t nbytes = info.element_count * DTypeWidth(info.dtype);
  if (dst_len != nbytes) return Status::InvalidArgument("output buffer size mismatch");
  std::string_view body = payload.substr(kPayloadHeaderSize);
  std::string_view frame;
  QATQ_RETURN_IF_ERROR(CheckBody(info, body, nbytes, &frame));
  QATQ_RETURN_IF_ERROR(DecodeBody(info, body, frame, dst));
  if (RawChecksum(info.dtype, dst, info.element_count) != info.checksum) {
    return Status::Corruption("checksum mismatch");
  }
  if (out) *out = info;
  return Status::OK();
}

Status DecodePayload(std::string_view payload, std::string* raw, PayloadInfo* out) {
  PayloadInfo info;
  QATQ_RETURN_IF_ERROR(ParsePayloadHeader(payload, &info));
  if (info.strategy == 0) return Status::NotSupported("unsupported strategy 0");
  const size_t nbytes = info.element_count * DTypeWidth(info.dtype);
  std::string_view frame;
  // Bound the allocation by what the body can describe before resizing.
  QATQ_RETURN_IF_ERROR(CheckBody(info, payload.substr(kPayloadHeaderSize), nbytes, &frame));
  raw->resize(nbytes);
  return DecodePayloadTo(payload, raw->data(), nbytes, out);
}

// ---------------------------------------------------------------------------
// Encoder

namespace {

struct Candidate {
  uint8_t strategy;
  WordTransform transform;
  uint32_t stride;
  double estimate;
};

// Compresses `planes` with zstd level 3 into *out.
// Compresses `width` planes of n bytes with zstd level 3 into *out as one
// frame (content size recorded). With `split`, each plane is flushed as its
// own blocks: planes have very different statistics (exponent bytes vs
// mantissa noise), and a block shared by two planes shares one Huffman table.
size_t ZstdCompressPlanes(const char* planes, size_t n, size_t width, bool split,
                          std::string* out) {
  const size_t len = n * width;
  const size_t bound = ZSTD_compressBound(len) + 64 * width;
  if (out->size() < bound) out->resize(bound);
  ZSTD_CCtx* cctx = ThreadCCtx();
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, kZstdLevel)) ||
      ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, len))) {
    return SIZE_MAX;
  }
  ZSTD_outBuffer ob{out->data(), bound, 0};
  const size_t parts = split ? width : 1, part_len = split ? n : len;
  for (size_t k = 0; k < parts; ++k) {
    ZSTD_inBuffer ib{planes + k * part_len, part_len, 0};
    const ZSTD_EndDirective mode = k + 1 == parts ? ZSTD_e_end : ZSTD_e_flush;
    for (;;) {
      size_t left = ZSTD_compressStream2(cctx, &ob, &ib, mode);
      if (ZSTD_isError(left)) return SIZE_MAX;
      if (left == 0 && ib.pos == ib.size) break;
      if (ob.pos == ob.size) return SIZE_MAX;  // cannot happen within the bound
    }
  }
  return ob.pos;
}

// Per-plane blocks win clearly on chunks of real size; on small ones the
// extra block headers and lost cross-plane matches can cost more, so both
// ways are tried there (cheaply).
size_t ZstdCompress(const char* planes, size_t n, size_t width, std::string* out) {
  constexpr size_t kAlwaysSplit = 16384;
  size_t split = ZstdCompressPlanes(planes, n, width, true, out);
  if (n >= kAlwaysSplit) return split;
  std::string& other = ThreadScratch().z_small;
  size_t whole = ZstdCompressPlanes(planes, n, width, false, &other);
  if (whole < split) {
    out->swap(other);
    return whole;
  }
  return split;
}

// Byte-plane-blocks size for f32 planes, or SIZE_MAX.
size_t PlaneBlocksSize(const unsigned char* planes, size_t n) {
  size_t size = 0;
  for (int k = 0; k < 4; ++k) {
    const unsigned char* p = planes + k * n;
    bool constant = std::all_of(p, p + n, [&](unsigned char c) { return c == p[0]; });
    size += !constant ? 1 + n : p[0] == 0 ? 1 : 2;
  }
  return size;
}

void AppendPlaneBlocks(const unsigned char* planes, size_t n, std::string* out) {
  for (int k = 0; k < 4; ++k) {
    const unsigned char* p = planes + k * n;
    bool constant = std::all_of(p, p + n, [&](unsigned char c) { return c == p[0]; });
    if (constant && p[0] == 0) {
      out->push_back(0);
    } else if (constant) {
      out->push_back(2);
      out->push_back(static_cast<char>(p[0]));
    } else {
      out->push_back(1);
      out->append(reinterpret_cast<const char*>(p), n);
    }
  }
}

// Index ranges of the sample used to rank zstd candidates: the whole chunk
// when small, else a few evenly spread blocks.
std::vector<std::pair<size_t, size_t>> SampleRanges(size_t n) {
  constexpr size_t kFull = 8192, kBlocks = 2, kBlock = 2048;
  if (n <= kFull) return {{0, n}};
  std::vector<std::pair<size_t, size_t>> r;
  for (size_t k = 0; k < kBlocks; ++k) {
    size_t b = (n - kBlock) * k / (kBlocks - 1);
    r.push_back({b, b + kBlock});
  }
  return r;
}

double Estimate(const char* raw, size_t n, size_t w, WordTransform t, size_t s,
                const std::vector<std::pair<size_t, size_t>>& ranges) {
  double e = 0;
  for (auto [b, end] : ranges) e += EstimatePlaneEntropy(raw, n, w, t, s, b, end);
  return e;
}

}  // namespace

namespace {

// The transformed byte stream a strategy codes (planes of d, or canonical
// bytes for strategy 2), in *buf.
const unsigned char* StrategyInput(uint8_t strategy, const char* in, size_t n, size_t w,
                                   uint32_t stride, std::string* buf) {
  char* out = Grow(buf, n * w);
  switch (strategy) {
    case 2: SwapWords(in, n, w, out); break;
    case 4: case 9: SplitPlanes(in, n, w, WordTransform::kXorStride, 1, out); break;
    case 8: SplitPlanes(in, n, w, WordTransform::kSubPrev, 1, out); break;
    case 10: SplitPlanes(in, n, w, WordTransform::kXorStride, stride, out); break;
    default: SplitPlanes(in, n, w, WordTransform::kNone, 1, out); break;
  }
  return reinterpret_cast<const unsigned char*>(out);
}

void WriteHeader(DType dtype, const char* in, size_t n, uint8_t strategy, std::string* payload) {
  payload->resize(kPayloadHeaderSize);
  char* h = payload->data();
  std::memcpy(h, kPayloadMagic, 4);
  h[4] = static_cast<char>(kEnvelopeVersion);
  h[5] = static_cast<char>(kModeExact);
  h[6] = h[7] = 0;
  PutBE64(h + 8, n);
  PutBE32(h + 16, kScaleOne);
  PutBE64(h + 20, RawChecksum(dtype, in, n));
  std::memcpy(h + 28, kExactMagic, 4);
  h[32] = static_cast<char>(strategy);
  DTypeTag(dtype, h + 33);
}

// Appends the body of a non-zstd strategy (1..6) to *payload.
void AppendRunBody(uint8_t strategy, const char* in, size_t n, size_t w, std::string* payload) {
  Scratch& sc = ThreadScratch();
  if (strategy == 1) {
    size_t at = payload->size();
    payload->resize(at + n * w);
    SwapWords(in, n, w, payload->data() + at);
    return;
  }
  const unsigned char* src = StrategyInput(strategy, in, n, w, 1, &sc.d);
  switch (strategy) {
    case 2: case 3: case 4: Run3Encode(src, n * w, payload); break;
    case 5: AppendPlaneBlocks(src, n, payload); break;
    case 6: PackEncode(src, n * w, payload); break;
  }
}

}  // namespace

Status EncodePayload(DType dtype, std::string_view raw, const PayloadEncodeOptions& options,
                     std::string* payload) {
  if (dtype == DType::kBytes) return Status::InvalidArgument("v2 payloads hold f32, f16 or bf16");
  const size_t w = DTypeWidth(dtype);
  if (raw.size() % w != 0) {
    return Status::InvalidArgument("input size " + Num(raw.size()) + " is not a multiple of " +
                                   Num(w) + " (" + std::string(DTypeName(dtype)) + ")");
  }
  const size_t n = raw.size() / w;
  if (n > kMaxPayloadElements) {
    return Status::InvalidArgument("payload of " + Num(n) + " elements exceeds the limit 2^26");
  }
  const bool f32 = dtype == DType::kF32;
  const char* in = raw.data();
  Scratch& sc = ThreadScratch();
  payload->clear();

  if (options.force_strategy >= 0) {
    const int fs = options.force_strategy;
    if (fs == 0 || fs > 10 || !StrategyAllowed(static_cast<uint8_t>(fs), dtype)) {
      return Status::InvalidArgument("strategy " + Num(fs) + " cannot be written for " +
                                     std::string(DTypeName(dtype)));
    }
    const uint8_t st = static_cast<uint8_t>(fs);
    if (st < 7) {
      WriteHeader(dtype, in, n, st, payload);
      AppendRunBody(st, in, n, w, payload);
      return Status::OK();
    }
    uint32_t stride = 1;
    if (st == 10) {
      stride = options.stride_elements;
      if (stride == 0) stride = DetectStride16(in, n);
      if (stride == 0) stride = n > 2 ? 2 : 1;
      if (stride >= n) return Status::InvalidArgument("strategy 10 needs a stride below n");
    }
    const unsigned char* src = StrategyInput(st, in, n, w, stride, &sc.b);
    size_t z = ZstdCompress(reinterpret_cast<const char*>(src), n, w, &sc.z_try);
    if (z == SIZE_MAX) return Status::IOError("zstd compression failed");
    WriteHeader(dtype, in, n, st, payload);
    if (st == 10) {
      char sb[4];
      PutBE32(sb, stride);
      payload->append(sb, 4);
    }
    payload->append(sc.z_try.data(), z);
    return Status::OK();
  }

  uint8_t best = 1;
  size_t best_size = n * w;
  bool best_is_zstd = false;

  if (n > 0) {
    // zstd candidates: plain planes (7) and one predictor, 8 for f32 and,
    // for f16/bf16, whichever of adjacent (9) and strided (10) xor has the
    // lowest order-0 entropy on a sample. That estimate ranks predictors of
    // one family well, but misses the LZ matches that often favour plain
    // planes, so plain vs predictor is settled by zstd itself on a sample.
    std::vector<Candidate> cands;
    cands.push_back({7, WordTransform::kNone, 1, 0});
    if (f32) {
      cands.push_back({8, WordTransform::kSubPrev, 1, 0});
    } else {
      auto ranges = SampleRanges(n);
      Candidate x{9, WordTransform::kXorStride, 1,
                  Estimate(in, n, w, WordTransform::kXorStride, 1, ranges)};
      uint32_t preferred = options.stride_elements;
      if (preferred == 0 && options.detect_stride) preferred = DetectStride16(in, n);
      std::vector<uint32_t> strides = {2, 4, 8, 16, 32, 64, 128, 256, 512};
      if (preferred > 0) strides.push_back(preferred);
      for (uint32_t st : strides) {
        if (st >= n) continue;
        double e = Estimate(in, n, w, WordTransform::kXorStride, st, ranges);
        if (st == preferred) e *= 0.98;  // the row length given or detected
        if (e < x.estimate) x = {10, WordTransform::kXorStride, st, e};
      }
      cands.push_back(x);
    }
    constexpr size_t kTrialElems = 8192;
    if (!options.exhaustive && n >= 2 * kTrialElems) {
      const size_t begin = (n - kTrialElems) / 2;
      double trial[2];
      for (int i = 0; i < 2; ++i) {
        const unsigned char* src =
            StrategyInput(cands[i].strategy, in + begin * w, kTrialElems, w, cands[i].stride, &sc.b);
        size_t z = ZstdCompress(reinterpret_cast<const char*>(src), kTrialElems, w, &sc.z_try);
        trial[i] = z == SIZE_MAX ? 1e300 : static_cast<double>(z);
      }
      const double lo = std::min(trial[0], trial[1]) * (1 + options.estimate_margin);
      if (trial[1] > lo) cands.pop_back();
      if (trial[0] > lo) cands.erase(cands.begin());
    }
    // Plain planes serve candidate 7 and the run-code checks below.
    const unsigned char* up = StrategyInput(3, in, n, w, 1, &sc.a);
    for (const Candidate& c : cands) {
      const unsigned char* src =
          c.strategy == 7 ? up : StrategyInput(c.strategy, in, n, w, c.stride, &sc.b);
      size_t z = ZstdCompress(reinterpret_cast<const char*>(src), n, w, &sc.z_try);
      if (z == SIZE_MAX) continue;
      size_t body = z + (c.strategy == 10 ? 4 : 0);
      if (body < best_size) {
        best = c.strategy;
        best_size = body;
        best_is_zstd = true;
        sc.z_best.swap(sc.z_try);
        sc.z_best.resize(z);
        if (c.strategy == 10) {
          sc.z_best.insert(0, 4, '\0');
          PutBE32(sc.z_best.data(), c.stride);
        }
      }
    }

    // Non-zstd strategies. The number of byte runs bounds the run codes'
    // sizes from below, so exact sizes are computed only when they could win.
    auto consider = [&](uint8_t st, size_t size) {
      if (size < best_size) {
        best = st;
        best_size = size;
        best_is_zstd = false;
      }
    };
    if (f32) consider(5, PlaneBlocksSize(up, n));
    if (CountByteRuns(up, n * w) < best_size) {
      consider(3, Run3EncodedSize(up, n * w));
      consider(6, PackEncodedSize(up, n * w));
    }
    const unsigned char* uc = StrategyInput(2, in, n, w, 1, &sc.a);
    if (CountByteRuns(uc, n * w) < best_size) consider(2, Run3EncodedSize(uc, n * w));
    if (f32) {
      const unsigned char* ux = StrategyInput(4, in, n, w, 1, &sc.a);
      if (CountByteRuns(ux, n * w) < best_size) consider(4, Run3EncodedSize(ux, n * w));
    }
  }

  payload->reserve(kPayloadHeaderSize + best_size);
  WriteHeader(dtype, in, n, best, payload);
  if (best_is_zstd) {
    payload->append(sc.z_best.data(), best_size);
  } else {
    AppendRunBody(best, in, n, w, payload);
  }
  return Status::OK();
}

}  // namespace qatq
