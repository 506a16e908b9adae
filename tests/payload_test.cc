// QATQ exact payloads: golden decode, round trips, strategy coverage and
// hostile input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include <zstd.h>

#include <algorithm>
#include <iostream>
#include <set>

#include "codec/endian.h"
#include "codec/fnv.h"
#include "codec/qatc_v2.h"
#include "codec/v2_runs.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;

std::string Encode(DType dtype, const std::string& raw, PayloadEncodeOptions opt = {}) {
  std::string payload;
  Status s = EncodePayload(dtype, raw, opt, &payload);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return payload;
}

// Encodes, checks the header, decodes and compares; returns the strategy.
int RoundTrip(DType dtype, const std::string& raw, PayloadEncodeOptions opt = {}) {
  std::string payload = Encode(dtype, raw, opt);
  PayloadInfo info;
  Status s = ParsePayloadHeader(payload, &info);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(info.dtype, dtype);
  EXPECT_EQ(info.element_count, raw.size() / DTypeWidth(dtype));
  std::string back;
  s = DecodePayload(payload, &back);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(back == raw) << "round trip differs, dtype " << DTypeName(dtype) << " strategy "
                           << int(info.strategy);
  return info.strategy;
}

std::string Words16(const std::vector<uint16_t>& w) {
  std::string s(w.size() * 2, '\0');
  for (size_t i = 0; i < w.size(); ++i) PutLE16(s.data() + 2 * i, w[i]);
  return s;
}

std::string Words32(const std::vector<uint32_t>& w) {
  std::string s(w.size() * 4, '\0');
  for (size_t i = 0; i < w.size(); ++i) PutLE32(s.data() + 4 * i, w[i]);
  return s;
}

std::optional<DType> DTypeFromSuffix(const fs::path& p) {
  std::string ext = p.extension().string();
  if (ext == ".f32le") return DType::kF32;
  if (ext == ".f16le") return DType::kF16;
  if (ext == ".bf16le") return DType::kBF16;
  return std::nullopt;
}

TEST(PayloadGolden, EveryPayloadDecodesToItsRawTwin) {
  QATQ_REQUIRE_SHARED(shared);
  const fs::path dir = shared / "qatc-v2-golden" / "payloads";
  int decoded = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".qatq") continue;
    std::string payload = test::ReadFileOrDie(e.path());
    PayloadInfo info;
    ASSERT_OK(ParsePayloadHeader(payload, &info));
    fs::path twin = e.path();
    twin.replace_extension(std::string(".") + std::string(DTypeName(info.dtype)) + "le");
    std::string want = test::ReadFileOrDie(twin);
    std::string got;
    Status s = DecodePayload(payload, &got);
    if (info.strategy == 0) {
      EXPECT_TRUE(s.IsNotSupported()) << s.ToString();
      EXPECT_EQ(s.message(), "unsupported strategy 0");
      continue;
    }
    ASSERT_OK(s);
    EXPECT_TRUE(got == want) << e.path();
    ++decoded;
  }
  EXPECT_GE(decoded, 18);
}

TEST(PayloadGolden, ReencodedPayloadsAreNoLargerAndDecode) {
  QATQ_REQUIRE_SHARED(shared);
  const fs::path dir = shared / "qatc-v2-golden" / "payloads";
  for (const auto& e : fs::directory_iterator(dir)) {
    auto dtype = DTypeFromSuffix(e.path());
    if (!dtype) continue;
    std::string raw = test::ReadFileOrDie(e.path());
    fs::path ref = e.path();
    ref.replace_extension(".qatq");
    size_t ref_size = fs::file_size(ref);
    std::string mine = Encode(*dtype, raw);
    EXPECT_LE(mine.size(), ref_size + 16) << e.path();  // zstd versions differ slightly
    RoundTrip(*dtype, raw);
  }
}

TEST(PayloadRoundTrip, All16BitPatternsAsF16AndBF16) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<uint16_t> shuffled = all;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(42));
  for (DType t : {DType::kF16, DType::kBF16}) {
    RoundTrip(t, Words16(all));
    RoundTrip(t, Words16(shuffled));
  }
}

TEST(PayloadRoundTrip, F32SpecialValuesAreBitExact) {
  std::vector<uint32_t> w = {
      0x00000000, 0x80000000,              // +0, -0
      0x7f800000, 0xff800000,              // +-inf
      0x7fc00000, 0xffc00000, 0x7fc12345,  // quiet NaNs, with payload
      0x7f800001, 0x7fa00000, 0xff812345,  // signalling NaNs
      0x00000001, 0x807fffff, 0x00400000,  // subnormals
      0x3f800000, 0xbf800000, 0x7f7fffff, 0x00800000};
  std::string raw = Words32(w);
  RoundTrip(DType::kF32, raw);
  // Repeated, so run and zstd strategies also see them.
  std::string many;
  for (int i = 0; i < 500; ++i) many += raw;
  RoundTrip(DType::kF32, many);
}

TEST(PayloadRoundTrip, EmptyInputIsA36BytePayload) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    std::string p = Encode(t, "");
    EXPECT_EQ(p.size(), kPayloadHeaderSize);
    EXPECT_EQ(p[32], 1);  // raw-bits
    RoundTrip(t, "");
  }
}

TEST(PayloadRoundTrip, OneElement) {
  RoundTrip(DType::kF32, Words32({0x7fc00001}));
  RoundTrip(DType::kF16, Words16({0xfc01}));
  RoundTrip(DType::kBF16, Words16({0x8000}));
}

TEST(PayloadRoundTrip, CoversEveryEncoderStrategy) {
  std::set<int> seen;
  const size_t n = 4096;
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    const size_t w = DTypeWidth(t);
    std::vector<std::string> inputs;
    inputs.push_back(std::string(n * w, '\0'));                // zeros
    inputs.push_back(test::RandomBytes(n * w, 1));             // noise
    std::string c(n * w, '\0');                                // constant non-zero
    for (size_t i = 0; i < n; ++i) c[i * w + w - 1] = 0x3f;
    inputs.push_back(c);
    std::string ramp(n * w, '\0');                             // smooth ramp
    for (size_t i = 0; i < n; ++i) {
      if (w == 4) PutLE32(ramp.data() + 4 * i, 0x3f800000 + static_cast<uint32_t>(i) * 977);
      else PutLE16(ramp.data() + 2 * i, static_cast<uint16_t>(0x3c00 + i / 16));
    }
    inputs.push_back(ramp);
    std::string rows(n * w, '\0');                             // repeated rows of 100
    std::string row = test::RandomBytes(100 * w, 9);
    for (size_t i = 0; i < n; ++i) rows[i * w] = row[(i % 100) * w] ^ (i / 100 & 1), rows[i * w + 1] = row[(i % 100) * w + 1];
    inputs.push_back(rows);
    std::string sparse(n * w, '\0');                           // mostly zeros, a few values
    for (size_t i = 0; i < n; i += 97) sparse[i * w + w - 1] = static_cast<char>(i);
    inputs.push_back(sparse);
    std::string blocks = test::RandomBytes(n * w, 3);          // low plane noise, high plane constant
    for (size_t i = 0; i < n; ++i) blocks[i * w + w - 1] = 0x40;
    inputs.push_back(blocks);
    std::string tiny = test::RandomBytes(37 * w, 5);           // short literal-heavy
    for (size_t i = 0; i < 37 * w; i += 3) tiny[i] = 0;
    inputs.push_back(tiny);
    std::string islands(n * w, '\0');                         // zero runs between random words
    std::string noise = test::RandomBytes(n * w, 6);
    for (size_t i = 0; i < n; i += 1003) std::memcpy(&islands[i * w], &noise[i * w], 3 * w);
    inputs.push_back(islands.substr(0, std::min(islands.size(), n * w)));
    for (const std::string& in : inputs) {
      seen.insert(RoundTrip(t, in));
      PayloadEncodeOptions ex;
      ex.exhaustive = true;
      seen.insert(RoundTrip(t, in, ex));
      PayloadEncodeOptions stride;
      stride.stride_elements = 100;
      seen.insert(RoundTrip(t, in, stride));
    }
  }
  std::string ids;
  for (int s : seen) ids += std::to_string(s) + " ";
  std::cout << "strategies chosen: " << ids << "\n";
  // Not every id is guaranteed to win somewhere, but the common ones must.
  for (int s : {1, 2, 3, 7, 9, 10}) EXPECT_TRUE(seen.count(s)) << "strategy " << s << " never chosen";
}

TEST(PayloadRoundTrip, EveryForcedStrategyDecodes) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    const size_t w = DTypeWidth(t);
    for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{1000}, size_t{70000}}) {
      std::string raw = test::RandomBytes(n * w, n);
      for (size_t i = 0; i < raw.size(); i += 3) raw[i] = 0;
      for (int st = 0; st <= 11; ++st) {
        PayloadEncodeOptions opt;
        opt.force_strategy = st;
        std::string p;
        Status s = EncodePayload(t, raw, opt, &p);
        bool valid = st >= 1 && st <= 10 &&
                     (t == DType::kF32 ? (st != 9 && st != 10) : (st != 4 && st != 5 && st != 8)) &&
                     !(st == 10 && n < 2);
        ASSERT_EQ(s.ok(), valid) << DTypeName(t) << " n=" << n << " strategy " << st << " "
                                 << s.ToString();
        if (!valid) continue;
        EXPECT_EQ(p[32], st);
        std::string back;
        ASSERT_OK(DecodePayload(p, &back));
        EXPECT_TRUE(back == raw) << DTypeName(t) << " n=" << n << " strategy " << st;
      }
    }
  }
}

TEST(PayloadRoundTrip, RandomSizesAndData) {
  std::mt19937_64 rng(11);
  for (int iter = 0; iter < 60; ++iter) {
    DType t = static_cast<DType>(iter % 3);
    size_t n = rng() % 5000;
    std::string raw = test::RandomBytes(n * DTypeWidth(t), iter);
    // Make some of them compressible: clear random bytes.
    for (size_t i = 0; i < raw.size(); ++i) {
      if (rng() % (1 + iter % 4) == 0) raw[i] = 0;
    }
    RoundTrip(t, raw);
  }
}

TEST(PayloadEncode, RejectsOddSizesAndBytes) {
  std::string p;
  EXPECT_TRUE(EncodePayload(DType::kF32, "abc", {}, &p).IsInvalidArgument());
  EXPECT_TRUE(EncodePayload(DType::kBF16, "abc", {}, &p).IsInvalidArgument());
  EXPECT_TRUE(EncodePayload(DType::kBytes, "abcd", {}, &p).IsInvalidArgument());
}

TEST(PayloadEncode, WritesTheReferenceHeaderAndChecksumRules) {
  std::string raw = Words32({0x3f800000, 0x40000000});
  std::string p = Encode(DType::kF32, raw);
  EXPECT_EQ(p.substr(0, 8), std::string("QATQ\x01\x04\x00\x00", 8));
  EXPECT_EQ(GetBE64(p.data() + 8), 2u);
  EXPECT_EQ(GetBE32(p.data() + 16), 0x3f800000u);
  const char canon[8] = {0x3f, char(0x80), 0, 0, 0x40, 0, 0, 0};
  EXPECT_EQ(GetBE64(p.data() + 20), Fnv1a64(canon, 8));  // f32: big-endian bytes
  EXPECT_EQ(p.substr(28, 4), "QEX1");
  EXPECT_EQ(p.substr(33, 3), std::string("\x00\x00\x00", 3));

  std::string raw16 = Words16({0x3f80, 0x4000});
  std::string q = Encode(DType::kBF16, raw16);
  EXPECT_EQ(GetBE64(q.data() + 20), Fnv1a64(raw16.data(), raw16.size()));  // little-endian bytes
  EXPECT_EQ(q.substr(33, 3), std::string("\x02\x02\x00", 3));
  EXPECT_EQ(Encode(DType::kF16, raw16).substr(33, 3), std::string("\x01\x02\x00", 3));
}

// Builds a payload with arbitrary header fields and body.
std::string MakePayload(uint64_t n, uint8_t strategy, const char tag[3], const std::string& body,
                        uint64_t checksum = 0) {
  std::string p(36, '\0');
  std::memcpy(p.data(), "QATQ\x01\x04\x00\x00", 8);
  PutBE64(p.data() + 8, n);
  PutBE32(p.data() + 16, 0x3f800000);
  PutBE64(p.data() + 20, checksum);
  std::memcpy(p.data() + 28, "QEX1", 4);
  p[32] = static_cast<char>(strategy);
  std::memcpy(p.data() + 33, tag, 3);
  return p + body;
}

const char kTagF32[3] = {0, 0, 0};
const char kTagBF16[3] = {2, 2, 0};

std::string DecodeError(const std::string& payload) {
  std::string out;
  Status s = DecodePayload(payload, &out);
  EXPECT_FALSE(s.ok());
  return s.message();
}

TEST(PayloadDecode, RejectsBadHeaders) {
  std::string good = Encode(DType::kF32, Words32({1, 2, 3}));
  auto with = [&](size_t off, char v) {
    std::string p = good;
    p[off] = v;
    return p;
  };
  EXPECT_NE(DecodeError(with(0, 'X')).find("bad payload magic"), std::string::npos);
  EXPECT_NE(DecodeError(with(4, 2)).find("envelope version 2"), std::string::npos);
  EXPECT_EQ(DecodeError(with(5, 1)), "unsupported mode 1");
  EXPECT_EQ(DecodeError(with(5, 3)), "unsupported mode 3");
  EXPECT_NE(DecodeError(with(7, 1)).find("reserved"), std::string::npos);
  EXPECT_NE(DecodeError(with(16, 0x7f)).find("scale"), std::string::npos);  // NaN-ish
  EXPECT_NE(DecodeError(with(16, char(0xbf))).find("scale"), std::string::npos);  // negative
  EXPECT_NE(DecodeError(with(29, 'X')).find("QEX1"), std::string::npos);
  EXPECT_NE(DecodeError(with(33, 5)).find("invalid dtype tag"), std::string::npos);
  EXPECT_NE(DecodeError(with(32, 11)).find("unknown strategy 11"), std::string::npos);
  EXPECT_NE(DecodeError(with(32, 9)).find("not valid for dtype f32"), std::string::npos);
  EXPECT_NE(DecodeError(with(35, 1)).find("invalid dtype tag"), std::string::npos);
  EXPECT_NE(DecodeError(good.substr(0, 20)).find("truncated"), std::string::npos);
  EXPECT_EQ(DecodeError(with(20, good[20] ^ 1)), "checksum mismatch");
  EXPECT_EQ(DecodeError(MakePayload(1, 0, kTagF32, "abcd")), "unsupported strategy 0");
}

TEST(PayloadDecode, RejectsBadBodies) {
  // raw-bits body of the wrong size
  EXPECT_NE(DecodeError(MakePayload(2, 1, kTagF32, "1234")).find("raw-bits body"),
            std::string::npos);
  // RUN3: zero length, bad tag, run past the end, trailing bytes
  EXPECT_NE(DecodeError(MakePayload(1, 2, kTagF32, std::string("\x00\x00\x00", 3))).find("length 0"),
            std::string::npos);
  EXPECT_NE(DecodeError(MakePayload(1, 2, kTagF32, std::string("\x03\x00\x04", 3))).find("tag"),
            std::string::npos);
  EXPECT_NE(DecodeError(MakePayload(1, 2, kTagF32, std::string("\x00\x00\x05", 3))).find("past"),
            std::string::npos);
  EXPECT_NE(DecodeError(MakePayload(1, 2, kTagF32, std::string("\x00\x00\x04\x00", 4)))
                .find("truncated"),
            std::string::npos);
  // PACK: tag 11
  EXPECT_NE(DecodeError(MakePayload(1, 6, kTagF32, "\xc3")).find("tag"), std::string::npos);
  // plane blocks: bad descriptor, trailing byte
  EXPECT_NE(DecodeError(MakePayload(1, 5, kTagF32, std::string("\x00\x00\x00\x07", 4)))
                .find("descriptor"),
            std::string::npos);
  EXPECT_NE(DecodeError(MakePayload(1, 5, kTagF32, std::string("\x00\x00\x00\x00\x00", 5)))
                .find("trailing"),
            std::string::npos);
  // strategy 10 stride out of range
  EXPECT_NE(DecodeError(MakePayload(4, 10, kTagBF16, std::string("\x00\x00\x00\x04", 4)))
                .find("stride"),
            std::string::npos);
  EXPECT_NE(DecodeError(MakePayload(4, 10, kTagBF16, std::string("\x00\x00\x00\x00", 4)))
                .find("stride"),
            std::string::npos);
  // zstd: not a frame
  EXPECT_NE(DecodeError(MakePayload(4, 7, kTagF32, "not a zstd frame")).find("zstd"),
            std::string::npos);
}

TEST(PayloadDecode, ZstdFrameMustHoldExactlyNTimesWidth) {
  const std::string planes(400, '\x11');  // 100 f32 words
  std::string frame(ZSTD_compressBound(planes.size()), '\0');
  frame.resize(ZSTD_compress(frame.data(), frame.size(), planes.data(), planes.size(), 3));
  const auto npos = std::string::npos;
  EXPECT_NE(DecodeError(MakePayload(101, 7, kTagF32, frame)).find("zstd frame holds 400"), npos);
  EXPECT_NE(DecodeError(MakePayload(100, 7, kTagF32, frame + "x")).find("trailing bytes"), npos);
  EXPECT_EQ(DecodeError(MakePayload(100, 7, kTagF32, frame)), "checksum mismatch");
  std::string raw, canon = planes;  // all bytes equal: planes == canonical == LE bytes
  EXPECT_OK(DecodePayload(MakePayload(100, 7, kTagF32, frame, Fnv1a64(canon.data(), 400)), &raw));
  EXPECT_EQ(raw, planes);

  // A frame without a content size field is checked by decoding.
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  std::string nofcs(ZSTD_compressBound(planes.size()), '\0');
  nofcs.resize(ZSTD_compress2(cctx, nofcs.data(), nofcs.size(), planes.data(), planes.size()));
  ZSTD_freeCCtx(cctx);
  ASSERT_EQ(ZSTD_getFrameContentSize(nofcs.data(), nofcs.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  EXPECT_NE(DecodeError(MakePayload(101, 7, kTagF32, nofcs)).find("zstd"), npos);
  EXPECT_NE(DecodeError(MakePayload(99, 7, kTagF32, nofcs)).find("zstd"), npos);
  EXPECT_OK(DecodePayload(MakePayload(100, 7, kTagF32, nofcs, Fnv1a64(canon.data(), 400)), &raw));
}

TEST(PayloadDecode, HostileElementCountDoesNotAllocate) {
  // 2^26 elements claimed by tiny bodies of every strategy: each must be
  // rejected by the size checks, not by running out of memory.
  const uint64_t n = kMaxPayloadElements;
  for (uint8_t s : {1, 2, 3, 4, 6, 7, 8}) {
    std::string body = "\x01\x00\x10" + std::string(21, 'x');
    std::string msg = DecodeError(MakePayload(n, s, kTagF32, body));
    EXPECT_FALSE(msg.empty()) << int(s);
  }
  // A zstd frame header declaring 2^28 bytes of content in a 20-byte body.
  std::string frame("\x28\xb5\x2f\xfd", 4);
  frame += '\xa0';  // FCS field 4 bytes (flag 10), single segment
  std::string fcs(4, '\0');
  PutLE32(fcs.data(), 1u << 28);
  frame += fcs;
  frame += std::string(11, '\0');
  std::string msg = DecodeError(MakePayload(n, 7, kTagF32, frame));
  EXPECT_FALSE(msg.empty());
  // Above the element limit.
  EXPECT_NE(DecodeError(MakePayload(n + 1, 1, kTagF32, "")).find("exceeds"), std::string::npos);
}

TEST(RunCodes, RoundTripAndSizesMatch) {
  std::mt19937_64 rng(5);
  for (int iter = 0; iter < 200; ++iter) {
    size_t n = rng() % 300000;
    std::string in(n, '\0');
    size_t i = 0;
    while (i < n) {
      size_t len = 1 + rng() % (iter % 2 ? 70000 : 100);
      char b = (rng() % 3 == 0) ? 0 : static_cast<char>(rng());
      bool lit = rng() % 2;
      for (size_t j = 0; j < len && i < n; ++j, ++i) in[i] = lit ? static_cast<char>(rng()) : b;
    }
    const unsigned char* u = reinterpret_cast<const unsigned char*>(in.data());
    std::string r3, pk;
    Run3Encode(u, n, &r3);
    PackEncode(u, n, &pk);
    EXPECT_EQ(r3.size(), Run3EncodedSize(u, n));
    EXPECT_EQ(pk.size(), PackEncodedSize(u, n));
    EXPECT_LE(CountByteRuns(u, n), std::min(r3.size(), pk.size()));
    std::string back(n, '\xff');
    ASSERT_OK(Run3Decode(r3, back.data(), n));
    EXPECT_TRUE(back == in);
    std::fill(back.begin(), back.end(), '\xff');
    ASSERT_OK(PackDecode(pk, back.data(), n));
    EXPECT_TRUE(back == in);
  }
}

}  // namespace
}  // namespace qatq
