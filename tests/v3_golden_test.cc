// Golden QATC v3 files (tests/golden-v3/): valid files must decode to their
// committed raw twins forever; invalid ones must be rejected forever.
// Regenerate (only when adding files; never to make a failing test pass):
//   build/tests/v3_golden_test --gtest_also_run_disabled_tests
//       --gtest_filter='*DISABLED_Regenerate*'   (one command line)
#include <gtest/gtest.h>
#include <xxhash.h>

#include <filesystem>
#include <string>
#include <vector>

#include "codec/chunk_record.h"
#include "codec/endian.h"
#include "codec/qatc_v3.h"
#include "codec/v3_strategies.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

namespace fs = std::filesystem;
using v3::ForcedPlan;
using v3::StreamCoder;
using v3::Transform;

fs::path GoldenDir() { return fs::path(QATQ_SOURCE_DIR) / "tests" / "golden-v3"; }

DType DTypeOfName(const std::string& name) {
  if (name.find(".bf16.") != std::string::npos) return DType::kBF16;
  if (name.find(".f16.") != std::string::npos) return DType::kF16;
  if (name.find(".f32.") != std::string::npos) return DType::kF32;
  return DType::kBytes;
}

Status DecodeAll(const std::string& file, std::string* out) {
  out->clear();
  return DecodeQatcV3(
      file,
      [&](std::string_view b) {
        out->append(b);
        return Status::OK();
      },
      2);
}

// Recomputes the whole-file checksum so an edit reaches the deeper checks.
void Reseal(std::string* file) {
  const size_t at = file->size() - 16;
  PutLE64(file->data() + at, XXH3_64bits(file->data(), at));
}

// ---------------------------------------------------------------------------
// Generator.

std::string Sink(const std::function<Status(const ByteSink&)>& fn) {
  std::string out;
  Status s = fn([&](std::string_view b) {
    out.append(b);
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// One file whose chunks each use a different forced plan, so every
// strategy, transform and stream coder is frozen in a golden file.
std::string ForcedPlansFile(DType dtype, const std::string& raw, uint32_t chunk_elements,
                            const std::vector<ForcedPlan>& plans) {
  return Sink([&](const ByteSink& sink) {
    QatcV3Builder b(dtype, chunk_elements, sink);
    const size_t chunk_bytes = size_t{chunk_elements} * DTypeWidth(dtype);
    for (size_t k = 0; k * chunk_bytes < raw.size(); ++k) {
      const std::string_view chunk =
          std::string_view(raw).substr(k * chunk_bytes, chunk_bytes);
      const ForcedPlan& plan = plans[k % plans.size()];
      std::string body, record;
      QATQ_RETURN_IF_ERROR(v3::EncodeBodyForced(dtype, chunk, plan, &body));
      QATQ_RETURN_IF_ERROR(FrameChunkRecord(dtype, plan.strategy, chunk, body, &record));
      QATQ_RETURN_IF_ERROR(b.AddRecord(record));
    }
    return b.Finish();
  });
}

std::vector<ForcedPlan> AllFieldPlans() {
  std::vector<ForcedPlan> plans;
  auto add = [&](Transform t, uint32_t stride, bool tr, StreamCoder c, int order = 0) {
    ForcedPlan p;
    p.strategy = v3::kStrategyFields;
    p.transform = t;
    p.stride = stride;
    p.transposed = tr;
    p.coder = c;
    p.rans_order = order;
    plans.push_back(p);
  };
  add(Transform::kNone, 1, false, StreamCoder::kHuffman);
  add(Transform::kNone, 8, true, StreamCoder::kRans, 1);
  add(Transform::kXor, 16, false, StreamCoder::kRans, 0);
  add(Transform::kDelta, 16, false, StreamCoder::kHuffman);
  add(Transform::kNone, 1, false, StreamCoder::kZstd);
  add(Transform::kDelta, 3, true, StreamCoder::kRaw);
  add(Transform::kNone, 1, false, StreamCoder::kRans, 0x04);
  ForcedPlan raw;
  raw.strategy = static_cast<uint8_t>(Strategy::kRaw);
  plans.push_back(raw);
  ForcedPlan z;
  z.strategy = static_cast<uint8_t>(Strategy::kZstd);
  plans.push_back(z);
  return plans;
}

TEST(V3Golden, DISABLED_RegenerateGoldenFiles) {
  QATQ_REQUIRE_SHARED(shared);
  const fs::path dir = GoldenDir();
  fs::create_directories(dir / "valid");
  fs::create_directories(dir / "invalid");
  const fs::path twins = shared / "qatc-v2-golden" / "containers";
  auto copy_twin = [&](const std::string& from, const std::string& to) {
    std::string raw = test::ReadFileOrDie(twins / from);
    test::WriteFileOrDie(dir / "valid" / to, raw);
    return raw;
  };
  auto encode = [&](DType dtype, const std::string& raw, uint32_t ce) {
    return Sink([&](const ByteSink& sink) {
      QatcV3Options opt;
      opt.chunk_elements = ce;
      opt.threads = 1;
      return EncodeQatcV3(dtype, raw, opt, sink);
    });
  };
  // Encoder's own choices on the public fixtures.
  struct Auto {
    const char* twin;
    const char* name;
    DType dtype;
    uint32_t ce;
  } autos[] = {
      {"bf16-kv-ramp-64x8x16.bf16le", "ramp.bf16", DType::kBF16, 1024},
      {"bf16-kv-wave-128x8x16.f32le", "wave.f32", DType::kF32, 4096},
      {"f32-noisy-pass-through-64x12x16.f16le", "noisy.f16", DType::kF16, 3000},
      {"stress-signed-zero-nan-inf.f32le", "stress.f32", DType::kF32, 1000},
      {"stress-signed-zero-nan-inf.bf16le", "stress.bf16", DType::kBF16, 4096},
  };
  for (const Auto& a : autos) {
    std::string raw = copy_twin(a.twin, std::string(a.name) + ".raw");
    test::WriteFileOrDie(dir / "valid" / (std::string(a.name) + ".qatc3"),
                         encode(a.dtype, raw, a.ce));
  }
  // Every strategy and coder, forced.
  {
    std::string raw = copy_twin("bf16-kv-wave-128x8x16.bf16le", "plans.bf16.raw");
    test::WriteFileOrDie(dir / "valid" / "plans.bf16.qatc3",
                         ForcedPlansFile(DType::kBF16, raw, 1024, AllFieldPlans()));
    std::string raw32 = copy_twin("f32-noisy-pass-through-64x12x16.f32le", "plans.f32.raw");
    test::WriteFileOrDie(dir / "valid" / "plans.f32.qatc3",
                         ForcedPlansFile(DType::kF32, raw32, 1000, AllFieldPlans()));
    std::string raw16 = copy_twin("f32-noisy-pass-through-64x12x16.f16le", "plans.f16.raw");
    test::WriteFileOrDie(dir / "valid" / "plans.f16.qatc3",
                         ForcedPlansFile(DType::kF16, raw16, 2000, AllFieldPlans()));
    // Widened: the wave f32 twin is bf16 widened.
    std::string wide = copy_twin("bf16-kv-wave-128x8x16.f32le", "widened.f32.raw");
    std::vector<ForcedPlan> w = AllFieldPlans();
    for (auto& p : w) {
      if (p.strategy == v3::kStrategyFields) p.strategy = v3::kStrategyWidened;
    }
    test::WriteFileOrDie(dir / "valid" / "widened.f32.qatc3",
                         ForcedPlansFile(DType::kF32, wide, 2048, w));
  }
  // Bytes, constant chunks, empty.
  {
    std::string text;
    for (int i = 0; i < 300; ++i) text += "{\"tensor\": \"blk." + std::to_string(i % 13) + "\"}\n";
    test::WriteFileOrDie(dir / "valid" / "text.bytes.raw", text);
    test::WriteFileOrDie(dir / "valid" / "text.bytes.qatc3", encode(DType::kBytes, text, 4096));
    std::string constant(3 * 1000 * 2 + 2, '\0');
    for (size_t i = 1000 * 2; i < constant.size(); i += 2) constant[i] = 0x3c;
    test::WriteFileOrDie(dir / "valid" / "constant.f16.raw", constant);
    test::WriteFileOrDie(dir / "valid" / "constant.f16.qatc3", encode(DType::kF16, constant, 1000));
    test::WriteFileOrDie(dir / "valid" / "empty.f32.raw", "");
    test::WriteFileOrDie(dir / "valid" / "empty.f32.qatc3", encode(DType::kF32, "", 1000));
  }
  // Invalid files, each derived from a valid one.
  const std::string good = test::ReadFileOrDie(dir / "valid" / "ramp.bf16.qatc3");
  auto bad = [&](const std::string& name, std::string bytes) {
    test::WriteFileOrDie(dir / "invalid" / (name + ".qatc3"), bytes);
  };
  bad("truncated-last-byte", good.substr(0, good.size() - 1));
  bad("truncated-half", good.substr(0, good.size() / 2));
  bad("header-only", good.substr(0, 32));
  {
    std::string b = good;
    b[100] ^= 0x04;
    bad("flipped-record-byte", b);
    Reseal(&b);
    bad("flipped-record-byte-resealed", b);
  }
  {
    std::string b = good;
    b[b.size() - 1] = 'X';
    bad("bad-trailer-magic", b);
  }
  {
    std::string b = good;
    b[4] = 4;
    Reseal(&b);
    bad("version-4", b);
  }
  {
    std::string b = good;
    b[6] = 1;
    Reseal(&b);
    bad("reserved-header-bit", b);
  }
  {
    std::string b = good;
    b[5] = 7;
    Reseal(&b);
    bad("unknown-dtype", b);
  }
  {
    // Index says a different element count than the trailer.
    std::string b = good;
    PutLE64(b.data() + b.size() - 40, GetLE64(b.data() + b.size() - 40) + 1);
    Reseal(&b);
    bad("element-count-mismatch", b);
  }
  {
    // A well-checksummed record of strategy 99.
    std::string raw = test::ReadFileOrDie(dir / "valid" / "ramp.bf16.raw").substr(0, 2048);
    std::string record;
    ASSERT_OK(FrameChunkRecord(DType::kBF16, 99, raw, raw, &record));
    std::string file = Sink([&](const ByteSink& sink) {
      QatcV3Builder b(DType::kBF16, 1024, sink);
      QATQ_RETURN_IF_ERROR(b.AddRecord(record));
      return b.Finish();
    });
    bad("unknown-strategy", file);
    test::WriteFileOrDie(dir / "invalid" / "unknown-strategy.record", record);
  }
  {
    // A fields body whose stream coder id is unknown, correctly checksummed.
    std::string raw = test::ReadFileOrDie(dir / "valid" / "ramp.bf16.raw").substr(0, 2048);
    ForcedPlan p;
    p.strategy = v3::kStrategyFields;
    p.coder = StreamCoder::kRaw;
    std::string body, record;
    ASSERT_OK(v3::EncodeBodyForced(DType::kBF16, raw, p, &body));
    body[9] = 42;
    ASSERT_OK(FrameChunkRecord(DType::kBF16, p.strategy, raw, body, &record));
    test::WriteFileOrDie(dir / "invalid" / "unknown-stream-coder.record", record);
    // A record whose body decodes but to other bytes (raw checksum).
    std::string other = raw;
    other[0] ^= 1;
    ASSERT_OK(FrameChunkRecord(DType::kBF16, static_cast<uint8_t>(Strategy::kRaw), raw, other,
                               &record));
    test::WriteFileOrDie(dir / "invalid" / "raw-checksum-mismatch.record", record);
  }
}

// ---------------------------------------------------------------------------
// Checks.

TEST(V3Golden, ValidFilesDecodeToTheirTwins) {
  int count = 0;
  for (const auto& e : fs::directory_iterator(GoldenDir() / "valid")) {
    if (e.path().extension() != ".qatc3") continue;
    const std::string name = e.path().filename().string();
    const std::string stem = e.path().stem().string();
    const std::string file = test::ReadFileOrDie(e.path());
    const std::string raw = test::ReadFileOrDie(GoldenDir() / "valid" / (stem + ".raw"));
    QatcV3Index index;
    ASSERT_OK(ReadQatcV3Index(file, &index));
    EXPECT_EQ(index.dtype, DTypeOfName(name + ".")) << name;
    std::string out;
    ASSERT_OK(DecodeAll(file, &out));
    EXPECT_TRUE(out == raw) << name;
    for (size_t k = 0; k < index.chunks.size(); ++k) {
      std::string chunk;
      ASSERT_OK(DecodeQatcV3Chunk(file, index, k, &chunk));
      EXPECT_EQ(chunk, raw.substr(k * index.chunks[0].raw_len, index.chunks[k].raw_len));
    }
    ++count;
  }
  EXPECT_GE(count, 10);
}

TEST(V3Golden, ForcedPlanFilesCoverEveryStrategy) {
  std::vector<bool> seen(v3::kMaxStrategy + 1);
  for (const char* name : {"plans.bf16.qatc3", "widened.f32.qatc3", "constant.f16.qatc3"}) {
    const std::string file = test::ReadFileOrDie(GoldenDir() / "valid" / name);
    QatcV3Index index;
    ASSERT_OK(ReadQatcV3Index(file, &index));
    for (const auto& c : index.chunks) seen.at(c.strategy) = true;
  }
  for (size_t s = 0; s < seen.size(); ++s) EXPECT_TRUE(seen[s]) << "strategy " << s;
}

TEST(V3Golden, InvalidFilesAreRejected) {
  int count = 0;
  for (const auto& e : fs::directory_iterator(GoldenDir() / "invalid")) {
    const std::string file = test::ReadFileOrDie(e.path());
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".record") {
      std::string raw;
      EXPECT_FALSE(DecodeChunkRecord(file, &raw).ok()) << name;
    } else {
      std::string out;
      Status s = DecodeAll(file, &out);
      EXPECT_FALSE(s.ok()) << name;
      EXPECT_FALSE(s.message().empty()) << name;
    }
    ++count;
  }
  EXPECT_GE(count, 12);
}

TEST(V3Golden, UnknownStrategyRecordSaysSo) {
  const std::string rec =
      test::ReadFileOrDie(GoldenDir() / "invalid" / "unknown-strategy.record");
  std::string raw;
  Status s = DecodeChunkRecord(rec, &raw);
  EXPECT_TRUE(s.IsNotSupported()) << s.ToString();
}

}  // namespace
}  // namespace qatq
