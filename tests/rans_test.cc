// codec/rans.h: the direct 32-way decoder path must agree with the
// library's own entry point on every frame, and reject what it rejects.
#include "codec/rans.h"

#include <gtest/gtest.h>
#include <htscodecs/rANS_static4x16.h>

#include <random>
#include <string>

#include "tests/testutil.h"

namespace qatq {
namespace {

// Exponent-like bytes: a few values, geometric frequencies.
std::string Skewed(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::geometric_distribution<int> g(0.35);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(120 + std::min(g(rng), 20));
  return s;
}

// Decodes `frame` both ways into guarded buffers of n bytes; returns the
// direct path's status after checking that both agree and that neither
// wrote past n.
Status DecodeBothWays(std::string_view frame, size_t n, std::string* out) {
  constexpr size_t kGuard = 64;
  std::string a(n + kGuard, '\x5a'), b(n + kGuard, '\x5a');
  Status direct = RansDecode(frame, reinterpret_cast<uint8_t*>(a.data()), n);
  Status library = RansDecodeViaLibrary(frame, reinterpret_cast<uint8_t*>(b.data()), n);
  EXPECT_EQ(direct.ok(), library.ok()) << direct.ToString() << " vs " << library.ToString();
  EXPECT_EQ(a.substr(n), std::string(kGuard, '\x5a')) << "direct path wrote past the end";
  EXPECT_EQ(b.substr(n), std::string(kGuard, '\x5a')) << "library wrote past the end";
  if (direct.ok() && library.ok()) {
    EXPECT_TRUE(a == b);
  }
  out->assign(a, 0, n);
  return direct;
}

TEST(Rans, DirectDecodeMatchesTheLibraryOnEveryOrderAndSize) {
#if defined(__x86_64__)
  // Otherwise both paths below are the library's and nothing is compared.
  EXPECT_TRUE(RansDirectDecodeAvailable()) << "libhtscodecs lacks rans_uncompress_O*_32x16*";
#endif
  for (int order : {0, 1, RANS_ORDER_X32, RANS_ORDER_X32 | 1}) {
    for (size_t n : {size_t{1}, size_t{7}, size_t{100}, size_t{4095}, size_t{16384},
                     size_t{65536}, size_t{65537}, size_t{262144}}) {
      for (const std::string& in : {Skewed(n, 1), test::RandomBytes(n, 2), std::string(n, 'x')}) {
        std::string frame, back;
        ASSERT_OK(RansEncode(in, order, &frame));
        const Status s = DecodeBothWays(frame, n, &back);
        ASSERT_TRUE(s.ok()) << s.ToString() << " order " << order << " n " << n;
        EXPECT_TRUE(back == in) << "order " << order << " n " << n;
      }
    }
  }
}

TEST(Rans, RejectsWrongSizesTruncationAndDamageLikeTheLibrary) {
  const std::string in = Skewed(65536, 3);
  for (int order : {RANS_ORDER_X32, RANS_ORDER_X32 | 1}) {
    std::string frame, back;
    ASSERT_OK(RansEncode(in, order, &frame));
    EXPECT_FALSE(DecodeBothWays(frame, in.size() - 1, &back).ok());
    EXPECT_FALSE(DecodeBothWays(frame, in.size() + 1, &back).ok());
    EXPECT_FALSE(DecodeBothWays(std::string_view(frame).substr(0, 1), in.size(), &back).ok());
    EXPECT_FALSE(DecodeBothWays("", in.size(), &back).ok());
    // Truncated anywhere, and single bytes flipped anywhere: both paths
    // agree (rANS has no checksum; the record checksum catches the rest).
    for (size_t cut = 2; cut < frame.size(); cut += frame.size() / 37 + 1) {
      DecodeBothWays(std::string_view(frame).substr(0, cut), in.size(), &back).IgnoreError();
    }
    std::mt19937 rng(4);
    for (int i = 0; i < 200; ++i) {
      std::string bad = frame;
      bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
      DecodeBothWays(bad, in.size(), &back).IgnoreError();
    }
  }
}

}  // namespace
}  // namespace qatq
