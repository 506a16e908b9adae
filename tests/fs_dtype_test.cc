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

std::string Safetensors(const std::string& json) {
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
