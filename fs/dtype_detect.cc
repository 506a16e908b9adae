#include "fs/dtype_detect.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "codec/endian.h"

namespace qatq {

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

template <size_t N>
double Entropy(const std::array<uint64_t, N>& hist, uint64_t total) {
  if (total == 0) return 0;
  double h = 0;
  for (uint64_t c : hist) {
    if (c == 0) continue;
    double p = static_cast<double>(c) / static_cast<double>(total);
    h -= p * std::log2(p);
  }
  return h;
}

std::optional<DType> SafetensorsDType(std::string_view s) {
  if (s == "BF16") return DType::kBF16;
  if (s == "F16") return DType::kF16;
  if (s == "F32") return DType::kF32;
  return std::nullopt;
}

// Value of a "key":"string" member inside `obj`, or empty.
std::string_view StringMember(std::string_view obj, std::string_view key) {
  std::string pat = "\"" + std::string(key) + "\"";
  size_t p = obj.find(pat);
  if (p == std::string_view::npos) return {};
  p = obj.find('"', obj.find(':', p + pat.size()) + 1);
  if (p == std::string_view::npos) return {};
  size_t e = obj.find('"', p + 1);
  if (e == std::string_view::npos) return {};
  return obj.substr(p + 1, e - p - 1);
}

bool OffsetsMember(std::string_view obj, uint64_t* a, uint64_t* b) {
  size_t p = obj.find("\"data_offsets\"");
  if (p == std::string_view::npos) return false;
  p = obj.find('[', p);
  if (p == std::string_view::npos) return false;
  std::string rest(obj.substr(p + 1, 64));
  unsigned long long x = 0, y = 0;
  if (std::sscanf(rest.c_str(), " %llu , %llu", &x, &y) != 2) return false;
  *a = x;
  *b = y;
  return true;
}

}  // namespace

std::optional<DType> DTypeFromName(std::string_view name) {
  if (EndsWith(name, ".bf16le") || EndsWith(name, ".bf16")) return DType::kBF16;
  if (EndsWith(name, ".f16le") || EndsWith(name, ".f16")) return DType::kF16;
  if (EndsWith(name, ".f32le") || EndsWith(name, ".f32")) return DType::kF32;
  return std::nullopt;
}

bool IsSafetensorsName(std::string_view name) { return EndsWith(name, ".safetensors"); }

Status ParseSafetensorsHeader(std::string_view prefix, SafetensorsLayout* layout) {
  if (prefix.size() < 10) return Status::InvalidArgument("safetensors: too short");
  uint64_t n = GetLE64(prefix.data());
  if (n < 2 || n > (100u << 20) || prefix[8] != '{') {
    return Status::InvalidArgument("safetensors: bad header length or no JSON object");
  }
  layout->header_end = 8 + n;
  std::string_view json = prefix.substr(8, std::min<uint64_t>(n, prefix.size() - 8));
  std::map<DType, uint64_t> bytes;
  size_t pos = 0;
  while ((pos = json.find("\"dtype\"", pos)) != std::string_view::npos) {
    size_t open = json.rfind('{', pos);
    size_t close = json.find('}', pos);
    if (open == std::string_view::npos || close == std::string_view::npos) break;
    std::string_view obj = json.substr(open, close - open + 1);
    uint64_t a = 0, b = 0;
    DType t = SafetensorsDType(StringMember(obj, "dtype")).value_or(DType::kBytes);
    if (OffsetsMember(obj, &a, &b) && b >= a) bytes[t] += b - a;
    pos = close;
  }
  layout->dominant = DType::kBytes;
  uint64_t best = 0;
  for (auto& [t, n_bytes] : bytes) {
    if (n_bytes > best) {
      best = n_bytes;
      layout->dominant = t;
    }
  }
  return Status::OK();
}

DType DetectDType(std::string_view sample) {
  if (sample.size() > (256u << 10)) sample = sample.substr(0, 256u << 10);
  sample = sample.substr(0, sample.size() & ~size_t{3});
  if (sample.size() < 256) return DType::kBytes;
  const auto* p = reinterpret_cast<const uint8_t*>(sample.data());
  size_t printable = 0;
  for (size_t i = 0; i < sample.size(); ++i) {
    uint8_t c = p[i];
    if ((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t') ++printable;
  }
  if (printable * 100 >= sample.size() * 95) return DType::kBytes;

  // Even and odd 16-bit elements separately: in f32 data one half holds
  // exponents and the other mantissa bits, which a pooled histogram hides.
  std::array<uint64_t, 256> bf16[2] = {}, f32{};
  std::array<uint64_t, 32> f16[2] = {};
  uint64_t n16 = sample.size() / 2, n32 = sample.size() / 4;
  for (size_t i = 0; i < n16; ++i) {
    uint16_t v = GetLE16(sample.data() + 2 * i);
    ++bf16[i & 1][(v >> 7) & 0xff];
    ++f16[i & 1][(v >> 10) & 0x1f];
  }
  for (size_t i = 0; i < n32; ++i) ++f32[(GetLE32(sample.data() + 4 * i) >> 23) & 0xff];
  uint64_t half = n16 / 2;
  double h_bf16 = std::max(Entropy(bf16[0], n16 - half), Entropy(bf16[1], half));
  double h_f16 = std::max(Entropy(f16[0], n16 - half), Entropy(f16[1], half));
  double h_f32 = Entropy(f32, n32);
  // Measured on the corpus (first 256 KiB): true dtype 2.4-3.1 bits; bf16
  // read as f16 0.2-0.7 (checked after bf16); f16 read as bf16 ~6; f32 read
  // as bf16/f16 has a mantissa half at 8.0/5.0; random bytes 8/5/8.
  if (h_bf16 < 5.0) return DType::kBF16;
  if (h_f16 < 4.2) return DType::kF16;
  if (h_f32 < 5.5) return DType::kF32;
  return DType::kBytes;
}

}  // namespace qatq
