// Value types shared by the metadata index, the chunk store and the
// filesystem core. Encodings of these on disk: index/keys.h, docs/STORE.md.
#ifndef QATQ_INDEX_TYPES_H_
#define QATQ_INDEX_TYPES_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/dtype.h"

namespace qatq {

using InodeId = uint64_t;
inline constexpr InodeId kRootInode = 1;

// Content address of a chunk: XXH3-128 of its raw (decoded) bytes. Two
// chunks with the same raw bytes share one stored object whatever dtype or
// strategy encoded them, since both decode to the same bytes.
struct ChunkId {
  std::array<uint8_t, 16> bytes{};

  static ChunkId OfRaw(std::string_view raw);
  // 32 lowercase hex digits.
  std::string ToHex() const;
  // Parses ToHex() output; false on anything else.
  static bool FromHex(std::string_view hex, ChunkId* id);

  friend bool operator==(const ChunkId&, const ChunkId&) = default;
  friend auto operator<=>(const ChunkId&, const ChunkId&) = default;
};

struct ChunkIdHash {
  size_t operator()(const ChunkId& id) const {
    size_t h;
    static_assert(sizeof h <= sizeof id.bytes);
    __builtin_memcpy(&h, id.bytes.data(), sizeof h);
    return h;
  }
};

// One entry of a file's chunk map: chunk `index` of the file covers bytes
// [index * chunk_bytes, index * chunk_bytes + raw_len). A missing index is a
// hole and reads as zeros.
struct ChunkRef {
  ChunkId id;
  uint32_t raw_len = 0;
  uint32_t stored_len = 0;  // record bytes in the chunk store
  uint8_t strategy = 0;     // of the stored record, for stats
};

// How an inode's dtype was chosen (stats and xattr reporting only).
enum class DTypeSource : uint8_t { kDefault = 0, kMountOption, kXattr, kName, kSafetensors, kSampled };

struct InodeAttr {
  InodeId ino = 0;
  uint32_t mode = 0;  // S_IFMT type bits | permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  // Regular files: chunk size of this file's chunk map, fixed at creation so
  // a store option change never reinterprets existing maps.
  uint32_t chunk_bytes = 0;
  DType dtype = DType::kBytes;
  DTypeSource dtype_source = DTypeSource::kDefault;
  // Symlinks: the target.
  std::string symlink_target;
};

struct DirEntry {
  std::string name;
  InodeId ino = 0;
  uint32_t type = 0;  // S_IFMT bits of the child
};

}  // namespace qatq

#endif  // QATQ_INDEX_TYPES_H_
