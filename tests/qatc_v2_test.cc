// QATC v2 containers: golden files, the invalid set, round trips and
// hostile headers.
#include "codec/qatc_v2.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "codec/endian.h"
#include "codec/fnv.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;

std::string Encode(DType dtype, const std::string& raw, uint32_t chunk, int threads = 2,
                   PayloadEncodeOptions opt = {}) {
  std::string out;
  Status s = EncodeQatcV2(dtype, raw, chunk, opt, threads, [&](std::string_view b) {
    out.append(b);
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

Status Decode(std::string_view file, std::string* raw, int threads = 2, int* calls = nullptr) {
  raw->clear();
  return DecodeQatcV2(
      file,
      [&](std::string_view b) {
        raw->append(b);
        if (calls) ++*calls;
        return Status::OK();
      },
      threads);
}

void ExpectRoundTrip(DType dtype, const std::string& raw, uint32_t chunk, int threads = 2) {
  std::string file = Encode(dtype, raw, chunk, threads);
  ContainerInfo info;
  ASSERT_OK(ReadQatcV2Structure(file, &info));
  const uint64_t n = raw.size() / DTypeWidth(dtype);
  EXPECT_EQ(info.element_count, n);
  EXPECT_EQ(info.dtype, dtype);
  EXPECT_EQ(info.chunks.size(), std::max<uint64_t>(1, (n + chunk - 1) / chunk));
  for (size_t k = 0; k + 1 < info.chunks.size(); ++k) {
    EXPECT_EQ(info.chunks[k].payload.element_count, chunk);
  }
  std::string back;
  ASSERT_OK(Decode(file, &back, threads));
  EXPECT_TRUE(back == raw) << DTypeName(dtype) << " n=" << n << " chunk=" << chunk;
}

// Smooth-ish data: slowly varying exponents, noisy mantissas.
std::string TensorLike(DType dtype, size_t n, uint64_t seed) {
  const size_t w = DTypeWidth(dtype);
  std::string r = test::RandomBytes(n * w, seed);
  for (size_t i = 0; i < n; ++i) {
    r[i * w + w - 1] = static_cast<char>(0x3c + ((i / 64) % 3));
  }
  return r;
}

TEST(QatcV2Golden, EveryContainerDecodesToItsRawTwin) {
  QATQ_REQUIRE_SHARED(shared);
  int checked = 0;
  for (const auto& e : fs::directory_iterator(shared / "qatc-v2-golden" / "containers")) {
    if (e.path().extension() != ".qatc") continue;
    std::string file = test::ReadFileOrDie(e.path());
    fs::path twin = e.path();
    twin.replace_extension("");  // NAME.DTYPE
    twin += "le";
    std::string want = test::ReadFileOrDie(twin);
    for (int threads : {1, 3}) {
      std::string got;
      ASSERT_OK(Decode(file, &got, threads));
      EXPECT_TRUE(got == want) << e.path();
    }
    ++checked;
  }
  EXPECT_GE(checked, 13);
}

TEST(QatcV2Golden, ReencodingMatchesTheReferenceStructure) {
  QATQ_REQUIRE_SHARED(shared);
  for (const auto& e : fs::directory_iterator(shared / "qatc-v2-golden" / "containers")) {
    if (e.path().extension() != ".qatc") continue;
    std::string ref_file = test::ReadFileOrDie(e.path());
    ContainerInfo ref;
    ASSERT_OK(ReadQatcV2Structure(ref_file, &ref));
    fs::path twin = e.path();
    twin.replace_extension("");
    twin += "le";
    std::string raw = test::ReadFileOrDie(twin);
    const uint32_t chunk = static_cast<uint32_t>(ref.chunks[0].payload.element_count);
    std::string mine = Encode(ref.dtype, raw, chunk);
    ContainerInfo info;
    ASSERT_OK(ReadQatcV2Structure(mine, &info));
    EXPECT_EQ(mine.substr(0, 24), ref_file.substr(0, 24)) << e.path();  // header up to checksum
    ASSERT_EQ(info.chunks.size(), ref.chunks.size());
    for (size_t k = 0; k < info.chunks.size(); ++k) {
      EXPECT_EQ(info.chunks[k].payload.element_count, ref.chunks[k].payload.element_count);
      EXPECT_EQ(info.chunks[k].payload.checksum, ref.chunks[k].payload.checksum);
      EXPECT_EQ(mine.substr(info.chunks[k].offset, 20),
                ref_file.substr(ref.chunks[k].offset, 20));  // envelope up to the checksum
    }
    // Ours is at most marginally larger (zstd versions differ).
    EXPECT_LE(mine.size(), ref_file.size() + 16 * info.chunks.size()) << e.path();
  }
}

TEST(QatcV2Golden, EveryInvalidFileIsRejectedBeforeAnyOutput) {
  QATQ_REQUIRE_SHARED(shared);
  const std::map<std::string, std::string> expected = {
      {"bad-dtype-tag.qatc", "invalid dtype tag"},
      {"bad-magic.qatc", "bad magic"},
      {"chunk-length-overrun.qatc", "overruns the end of the file"},
      {"empty-file.qatc", "empty file"},
      {"flipped-byte-aggregate-checksum.qatc", "aggregate checksum mismatch"},
      {"flipped-byte-chunk-checksum.qatc", "checksum mismatch in chunk 0"},
      {"mode-lossy.qatc", "unsupported mode 1"},
      {"reserved-nonzero.qatc", "reserved header field is not zero"},
      {"total-mismatch.qatc", "element total mismatch"},
      {"trailing-garbage.qatc", "trailing bytes after last chunk"},
      {"truncated-header.qatc", "truncated header"},
      {"truncated-last-byte.qatc", "overruns the end of the file"},
      {"version-1.qatc", "unsupported container version 1"},
      {"version-3.qatc", "unsupported container version 3"},
      {"zero-chunks.qatc", "chunk count 0"},
  };
  int seen = 0;
  for (const auto& e : fs::directory_iterator(shared / "qatc-v2-golden" / "invalid")) {
    const std::string name = e.path().filename().string();
    std::string file = test::ReadFileOrDie(e.path());
    std::string out;
    int calls = 0;
    Status s = Decode(file, &out, 2, &calls);
    ASSERT_FALSE(s.ok()) << name;
    EXPECT_EQ(calls, 0) << name << ": output before the error";
    auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << "new invalid file " << name << ": " << s.ToString();
    EXPECT_NE(s.message().find(it->second), std::string::npos) << name << ": " << s.ToString();
    EXPECT_EQ(s.message().find('\n'), std::string::npos);
    ++seen;
  }
  EXPECT_EQ(seen, static_cast<int>(expected.size()));
}

TEST(QatcV2RoundTrip, SizesAroundChunkBoundaries) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    const uint32_t chunk = 1000;
    for (size_t n : {size_t{0}, size_t{1}, size_t{chunk - 1}, size_t{chunk}, size_t{chunk + 1},
                     size_t{3 * chunk - 1}, size_t{3 * chunk}, size_t{3 * chunk + 1}}) {
      ExpectRoundTrip(t, TensorLike(t, n, n + 1), chunk);
    }
  }
}

TEST(QatcV2RoundTrip, EmptyInputIsOneEmptyChunk) {
  std::string file = Encode(DType::kBF16, "", 65536);
  EXPECT_EQ(file.size(), kContainerHeaderSize + 4 + kPayloadHeaderSize);
  ContainerInfo info;
  ASSERT_OK(ReadQatcV2Structure(file, &info));
  EXPECT_EQ(info.chunks.size(), 1u);
  std::string back = "x";
  ASSERT_OK(Decode(file, &back));
  EXPECT_EQ(back, "");
}

TEST(QatcV2RoundTrip, All16BitPatternsInSmallChunks) {
  std::string raw(65536 * 2, '\0');
  for (uint32_t i = 0; i < 65536; ++i) PutLE16(raw.data() + 2 * i, static_cast<uint16_t>(i));
  ExpectRoundTrip(DType::kF16, raw, 4096);
  ExpectRoundTrip(DType::kBF16, raw, 3000);
}

TEST(QatcV2RoundTrip, RandomData) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    ExpectRoundTrip(t, test::RandomBytes(100003 * DTypeWidth(t), 17), 8192);
  }
}

TEST(QatcV2RoundTrip, OutputDoesNotDependOnThreads) {
  std::string raw = TensorLike(DType::kBF16, 300000, 5);
  std::string one = Encode(DType::kBF16, raw, 16384, 1);
  EXPECT_EQ(one, Encode(DType::kBF16, raw, 16384, 4));
  EXPECT_EQ(one, Encode(DType::kBF16, raw, 16384, 0));
}

TEST(QatcV2RoundTrip, EveryCorpusFile) {
  QATQ_REQUIRE_SHARED(shared);
  int files = 0;
  for (const auto& e : fs::directory_iterator(shared / "corpus")) {
    const std::string ext = e.path().extension().string();
    std::optional<DType> t = ext == ".f32le"    ? std::optional(DType::kF32)
                             : ext == ".f16le"  ? std::optional(DType::kF16)
                             : ext == ".bf16le" ? std::optional(DType::kBF16)
                                                : std::nullopt;
    if (!t) continue;
    std::string raw = test::ReadFileOrDie(e.path());
    std::string file = Encode(*t, raw, 65536, 0);
    EXPECT_LT(file.size(), raw.size()) << e.path();
    std::string back;
    ASSERT_OK(Decode(file, &back, 0));
    EXPECT_TRUE(back == raw) << e.path();
    ++files;
  }
  EXPECT_GT(files, 0);
}

TEST(QatcV2Encode, RejectsBadArguments) {
  auto sink = [](std::string_view) { return Status::OK(); };
  EXPECT_TRUE(EncodeQatcV2(DType::kF32, "abc", 10, {}, 1, sink).IsInvalidArgument());
  EXPECT_TRUE(EncodeQatcV2(DType::kBytes, "abcd", 10, {}, 1, sink).IsInvalidArgument());
  EXPECT_TRUE(EncodeQatcV2(DType::kF32, "abcd", 0, {}, 1, sink).IsInvalidArgument());
  // More than 2^20 chunks.
  std::string raw((kMaxContainerChunks + 1) * 2, '\0');
  EXPECT_TRUE(EncodeQatcV2(DType::kBF16, raw, 1, {}, 1, sink).IsInvalidArgument());
}

TEST(QatcV2Decode, SinkErrorsStopTheDecode) {
  std::string file = Encode(DType::kF32, TensorLike(DType::kF32, 10000, 1), 1000);
  int calls = 0;
  Status s = DecodeQatcV2(
      file,
      [&](std::string_view) {
        return ++calls == 3 ? Status::IOError("disk full") : Status::OK();
      },
      2);
  EXPECT_TRUE(s.IsIOError());
  EXPECT_EQ(calls, 3);
}

TEST(QatcV2Decode, CorruptChunkIsNamedAndLaterChunksAreNotDelivered) {
  std::string file = Encode(DType::kBF16, TensorLike(DType::kBF16, 10000, 2), 1000);
  ContainerInfo info;
  ASSERT_OK(ReadQatcV2Structure(file, &info));
  // Flip a payload checksum byte of chunk 4 and fix the aggregate checksum.
  file[info.chunks[4].offset + 20] ^= 1;
  PutBE64(file.data() + 24, Fnv1a64(file.data() + 32, file.size() - 32));
  std::string out;
  int calls = 0;
  Status s = Decode(file, &out, 3, &calls);
  EXPECT_EQ(s.message(), "checksum mismatch in chunk 4");
  EXPECT_EQ(calls, 4);
}

// A tiny file whose header fields claim enormous sizes must be rejected by
// the bounds checks (this would need GBs of memory otherwise; run it under
// ASan or a ulimit to see an allocation).
TEST(QatcV2Decode, HostileHeadersAreRejectedWithoutAllocating) {
  std::string h(kContainerHeaderSize, '\0');
  std::memcpy(h.data(), "QATC\x02\x04", 6);
  auto with = [&](uint64_t total, uint32_t count, const std::string& body) {
    std::string f = h;
    PutBE64(f.data() + 8, total);
    PutBE32(f.data() + 16, count);
    f += body;
    PutBE64(f.data() + 24, Fnv1a64(f.data() + 32, f.size() - 32));
    return f;
  };
  std::string out;
  // 2^20 chunks claimed in a 60-byte file.
  Status s = Decode(with(uint64_t{1} << 26, kMaxContainerChunks, std::string(28, 'x')), &out);
  EXPECT_NE(s.message().find("too short"), std::string::npos) << s.ToString();
  // A chunk length of 4 GB.
  s = Decode(with(1, 1, "\xff\xff\xff\xff" + std::string(40, 'x')), &out);
  EXPECT_NE(s.message().find("overruns"), std::string::npos) << s.ToString();
  // One payload claiming 2^26 elements with an 8-byte RUN3 body.
  std::string p(kPayloadHeaderSize, '\0');
  std::memcpy(p.data(), "QATQ\x01\x04\x00\x00", 8);
  PutBE64(p.data() + 8, kMaxPayloadElements);
  PutBE32(p.data() + 16, 0x3f800000);
  std::memcpy(p.data() + 28, "QEX1\x03\x02\x02\x00", 8);
  p += std::string("\x00\xff\xff\x00\xff\xff\x00\x00", 8);
  std::string rec(4, '\0');
  PutBE32(rec.data(), static_cast<uint32_t>(p.size()));
  s = Decode(with(kMaxPayloadElements, 1, rec + p), &out);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot hold"), std::string::npos) << s.ToString();
  // Total above 2^32.
  s = Decode(with((uint64_t{1} << 32) + 1, 1, rec + p), &out);
  EXPECT_NE(s.message().find("exceeds the limit"), std::string::npos) << s.ToString();
  EXPECT_TRUE(out.empty());
}

TEST(QatcV2Decode, RejectsMixedDtypesAndRunningTotalOverflow) {
  std::string a = Encode(DType::kF16, TensorLike(DType::kF16, 100, 1), 100);
  std::string b = Encode(DType::kBF16, TensorLike(DType::kBF16, 100, 1), 100);
  std::string f = a + b.substr(32);
  PutBE64(f.data() + 8, 200);
  PutBE32(f.data() + 16, 2);
  PutBE64(f.data() + 24, Fnv1a64(f.data() + 32, f.size() - 32));
  std::string out;
  Status s = Decode(f, &out);
  EXPECT_NE(s.message().find("differs from chunk 0"), std::string::npos) << s.ToString();
  std::string g = a + a.substr(32);
  PutBE64(g.data() + 8, 150);
  PutBE32(g.data() + 16, 2);
  PutBE64(g.data() + 24, Fnv1a64(g.data() + 32, g.size() - 32));
  s = Decode(g, &out);
  EXPECT_NE(s.message().find("more elements than the header total"), std::string::npos);
}

}  // namespace
}  // namespace qatq
