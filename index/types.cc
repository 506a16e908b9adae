#include "index/types.h"

#include <xxhash.h>

namespace qatq {

ChunkId ChunkId::OfRaw(std::string_view raw) {
  XXH128_hash_t h = XXH3_128bits(raw.data(), raw.size());
  // The canonical (big-endian) form is what xxhsum prints, so object names
  // can be checked with `xxh128sum` on the decoded bytes.
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  ChunkId id;
  static_assert(sizeof c.digest == sizeof id.bytes);
  __builtin_memcpy(id.bytes.data(), c.digest, sizeof c.digest);
  return id;
}

std::string ChunkId::ToHex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(32, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return s;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is not ToHex() output
}
}  // namespace

bool ChunkId::FromHex(std::string_view hex, ChunkId* id) {
  if (hex.size() != 32) return false;
  ChunkId out;
  for (size_t i = 0; i < out.bytes.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  *id = out;
  return true;
}

}  // namespace qatq
