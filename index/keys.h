// The key space of the metadata index and the encodings of its values.
// Every byte written to RocksDB goes through these functions; docs/STORE.md
// repeats this table with the rationale.
//
// Keys (one-byte prefix; integers in keys are big-endian so that a RocksDB
// scan returns them in numeric order; names are raw bytes, compared bytewise):
//
//   S                          superblock               -> Superblock value
//   N                          last allocated inode     -> U64 value
//   I<ino:8>                   inode attributes         -> Inode value
//   D<parent:8><name>          directory entry          -> DirEntry value
//   M<ino:8><index:8>          chunk map entry          -> ChunkRef value
//   X<ino:8><name>             extended attribute       -> Xattr value
//   R<chunkid:16>              chunk reference count    -> U64 value
//   O<ino:8>                   orphan (nlink 0, open)   -> Orphan value
//
// Values: a leading value-version byte (kValueVersion = 1), then fixed-width
// little-endian fields (offsets in bytes):
//
//   Superblock  "QFSB" magic[4] ver:1 format_version:4 default_chunk_bytes:4
//               created_ns:8 uuid_len:1 uuid[uuid_len]           (22 + uuid)
//   Inode       ver:1 mode:4 uid:4 gid:4 nlink:4 size:8 rdev:8 atime_ns:8
//               mtime_ns:8 ctime_ns:8 chunk_bytes:4 dtype:1 dtype_source:1
//               symlink_len:4 symlink[symlink_len]               (67 + target)
//   DirEntry    ver:1 ino:8 type:4                               (13)
//   ChunkRef    ver:1 id:16 raw_len:4 stored_len:4 strategy:1    (26)
//   Xattr       ver:1 value[...]                                 (1 + value)
//   U64         ver:1 value:8                                    (9)
//   Orphan      ver:1                                            (1)
//
// The inode number of an Inode value, and the name of a DirEntry, live only
// in the key. Decoders treat their input as hostile: they check lengths,
// version bytes and enum ranges and return Corruption, never crash; they
// are fuzzed by tests/fuzz/index_value_fuzzer.cc.
//
// Thread-safety: all functions are pure.
#ifndef QATQ_INDEX_KEYS_H_
#define QATQ_INDEX_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "index/metadata_store.h"
#include "index/types.h"

namespace qatq {

// DO NOT CHANGE: key prefixes and the value version are on-disk constants.
inline constexpr char kSuperblockPrefix = 'S';
inline constexpr char kLastInodePrefix = 'N';
inline constexpr char kInodePrefix = 'I';
inline constexpr char kDirEntryPrefix = 'D';
inline constexpr char kChunkMapPrefix = 'M';
inline constexpr char kXattrPrefix = 'X';
inline constexpr char kRefcountPrefix = 'R';
inline constexpr char kOrphanPrefix = 'O';
inline constexpr uint8_t kValueVersion = 1;
inline constexpr char kSuperblockMagic[4] = {'Q', 'F', 'S', 'B'};

// ---- Keys -----------------------------------------------------------------

std::string SuperblockKey();
std::string LastInodeKey();
std::string InodeKey(InodeId ino);
std::string DirEntryKey(InodeId parent, std::string_view name);
std::string ChunkMapKey(InodeId ino, uint64_t index);
std::string XattrKey(InodeId ino, std::string_view name);
std::string RefcountKey(const ChunkId& id);
std::string OrphanKey(InodeId ino);

// Prefixes for ordered scans of one directory / one file / one inode's xattrs.
std::string DirEntryPrefix(InodeId parent);
std::string ChunkMapPrefix(InodeId ino);
std::string XattrPrefix(InodeId ino);

// The smallest key greater than every key starting with `prefix`, for use as
// an exclusive scan bound; "" if there is none (prefix is all 0xff).
std::string PrefixSuccessor(std::string_view prefix);

// Key parsers: false if `key` is not a well-formed key of that kind. Name
// views point into `key`.
bool ParseInodeKey(std::string_view key, InodeId* ino);
bool ParseDirEntryKey(std::string_view key, InodeId* parent, std::string_view* name);
bool ParseChunkMapKey(std::string_view key, InodeId* ino, uint64_t* index);
bool ParseXattrKey(std::string_view key, InodeId* ino, std::string_view* name);
bool ParseRefcountKey(std::string_view key, ChunkId* id);
bool ParseOrphanKey(std::string_view key, InodeId* ino);

// ---- Values ---------------------------------------------------------------
// Encode* replace the contents of *out. Decode* leave *out unspecified on
// error.

void EncodeSuperblock(const Superblock& sb, std::string* out);
// NotSupported (naming both versions) if the superblock is intact but of a
// format version this build cannot read; sb->format_version is set then.
Status DecodeSuperblock(std::string_view value, Superblock* sb);

void EncodeInode(const InodeAttr& attr, std::string* out);
// `ino` comes from the key.
Status DecodeInode(InodeId ino, std::string_view value, InodeAttr* attr);

// The name is not stored in the value (it is in the key).
void EncodeDirEntry(const DirEntry& entry, std::string* out);
Status DecodeDirEntry(std::string_view name, std::string_view value, DirEntry* entry);

void EncodeChunkRef(const ChunkRef& ref, std::string* out);
Status DecodeChunkRef(std::string_view value, ChunkRef* ref);

void EncodeXattrValue(std::string_view value, std::string* out);
Status DecodeXattrValue(std::string_view value, std::string* out);

// Reference counts and the last inode number.
void EncodeU64Value(uint64_t v, std::string* out);
Status DecodeU64Value(std::string_view value, uint64_t* v);

void EncodeOrphanValue(std::string* out);
Status DecodeOrphanValue(std::string_view value);

// "I 0000000000000007"-style rendering of any key, for error messages.
std::string DescribeKey(std::string_view key);

}  // namespace qatq

#endif  // QATQ_INDEX_KEYS_H_
