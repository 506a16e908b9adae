// dtype choice: name hints, safetensors headers, sampling of real tensors.
#include <cstring>
#include <string>

#include "codec/endian.h"
#include "fs/dtype_detect.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

TEST(DTypeFromName, SuffixHints) {
  EXPECT_EQ(DTypeFromName("w.bf16le"), DType::kBF16);
  EXPECT_EQ(DTypeFromName("w.bf16"), DType::kBF16);
  EXPECT_EQ(DTypeFromName("kv.f16le"), DType::kF16);
  EXPECT_EQ(DTypeFromName("kv.f32"), DType::kF32);
  EXPECT_EQ(DTypeFromName("model.safetensors"), std::nullopt);
  EXPECT_EQ(DTypeFromName("notes.txt"), std::nullopt);
  EXPECT_TRUE(IsSafetensorsName("model.safetensors"));
}

std::string Safetensors(std::string json, bool pad = false) {
  // Writers pad the header with spaces so tensors start 8-byte aligned.
  if (pad) json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  PutLE64(out.data(), json.size());
  return out + json;
}

TEST(ParseSafetensorsHeader, DominantDTypeByBytes) {
  std::string h = Safetensors(
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"shape":[100],"dtype":"BF16","data_offsets":[8,208]}})");
  SafetensorsLayout l;
  ASSERT_OK(ParseSafetensorsHeader(h, &l));
  EXPECT_EQ(l.dominant, DType::kBF16);
  EXPECT_EQ(l.header_end, h.size());
}

TEST(ParseSafetensorsHeader, TensorRangesAndTheirDTypes) {
  std::string h = Safetensors(
      R"({"b":{"dtype":"BF16","shape":[4,2],"data_offsets":[16,32]},)"
      R"("__metadata__":{"note":"{\"dtype\":\"F16\",\"data_offsets\":[0,99]}"},)"
      R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
      R"("i":{"dtype":"I64","shape":[1],"data_offsets":[32,40]}})",
      /*pad=*/true);
  SafetensorsLayout l;
  ASSERT_OK(ParseSafetensorsHeader(h, &l));
  const uint64_t base = h.size();
  ASSERT_EQ(l.tensors.size(), 3u);  // not the look-alike inside the metadata string
  EXPECT_EQ(l.tensors[0].begin, base);
  EXPECT_EQ(l.tensors[0].dtype, DType::kF32);
  EXPECT_EQ(l.tensors[1].begin, base + 16);
  EXPECT_EQ(l.tensors[1].dtype, DType::kBF16);
  EXPECT_EQ(l.tensors[2].dtype, DType::kBytes);
  EXPECT_EQ(l.DTypeOfRange(0, base), DType::kBytes);
  EXPECT_EQ(l.DTypeOfRange(base, base + 16), DType::kF32);
  EXPECT_EQ(l.DTypeOfRange(base + 12, base + 32), DType::kBF16);  // 4 f32 bytes, 16 bf16
  EXPECT_EQ(l.DTypeOfRange(base + 32, base + 40), DType::kBytes);
  EXPECT_EQ(l.DTypeOfRange(base + 100, base + 200), l.dominant);  // nothing votes
}

TEST(ParseSafetensorsHeader, TensorsMisalignedForTheirWidthCountAsBytes) {
  // 8 + 7 bytes of header: every tensor starts at an odd file offset.
  std::string h = Safetensors(R"({"a":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}})");
  ASSERT_EQ(h.size() % 2, 1u);
  SafetensorsLayout l;
  ASSERT_OK(ParseSafetensorsHeader(h, &l));
  EXPECT_EQ(l.dominant, DType::kF16);
  EXPECT_EQ(l.DTypeOfRange(h.size(), h.size() + 16), DType::kBytes);
}

TEST(ParseSafetensorsHeader, PrefixOfALongHeaderKeepsTheCompleteTensors) {
  std::string json = "{";
  for (int i = 0; i < 100; ++i) {
    json += "\"t" + std::to_string(i) + R"(":{"dtype":"F16","shape":[2],"data_offsets":[)" +
            std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]},";
  }
  json.back() = '}';
  std::string h = Safetensors(json);
  SafetensorsLayout l;
  ASSERT_OK(ParseSafetensorsHeader(std::string_view(h).substr(0, h.size() / 2), &l));
  EXPECT_GT(l.tensors.size(), 40u);
  EXPECT_LT(l.tensors.size(), 60u);
  EXPECT_EQ(l.dominant, DType::kF16);
  EXPECT_EQ(l.header_end, h.size());
}

TEST(ParseSafetensorsHeader, RejectsOtherFiles) {
  SafetensorsLayout l;
  EXPECT_FALSE(ParseSafetensorsHeader("hello world, not a tensor file", &l).ok());
  EXPECT_FALSE(ParseSafetensorsHeader(std::string(64, '\xff'), &l).ok());
}

TEST(DetectDType, TextAndRandomAreBytes) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "{\"key\": " + std::to_string(i) + "}\n";
  EXPECT_EQ(DetectDType(text), DType::kBytes);
  EXPECT_EQ(DetectDType(test::RandomBytes(1 << 20, 1)), DType::kBytes);
}

TEST(DetectDType, CorpusTensorsByTheirSuffix) {
  QATQ_REQUIRE_SHARED(shared);
  int checked = 0;
  for (auto& e : std::filesystem::directory_iterator(shared / "corpus")) {
    auto want = DTypeFromName(e.path().filename().string());
    if (!want) continue;
    std::string data = test::ReadFileOrDie(e.path());
    data.resize(std::min<size_t>(data.size(), 1 << 20));
    EXPECT_EQ(DTypeName(DetectDType(data)), DTypeName(*want)) << e.path();
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace qatq
