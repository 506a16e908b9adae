#include "index/keys.h"

#include <sys/stat.h>

#include <cstdio>

#include "codec/chunk_record.h"
#include "codec/endian.h"

namespace qatq {

namespace {

constexpr size_t kInodeFixedSize = 67;
constexpr size_t kDirEntrySize = 13;
constexpr size_t kChunkRefSize = 26;
constexpr size_t kU64Size = 9;
constexpr size_t kSuperblockFixedSize = 22;
// uuid_len is one byte; a text UUID is 36.
constexpr size_t kMaxUuidLen = 64;

std::string PrefixWithId(char prefix, uint64_t id) {
  std::string k(9, '\0');
  k[0] = prefix;
  PutBE64(k.data() + 1, id);
  return k;
}

bool ParseIdKey(std::string_view key, char prefix, uint64_t* id) {
  if (key.size() != 9 || key[0] != prefix) return false;
  *id = GetBE64(key.data() + 1);
  return true;
}

// Checks the version byte; `what` names the value kind in the message.
Status CheckVersion(std::string_view value, const char* what) {
  if (value.empty()) return Status::Corruption(std::string("empty ") + what + " value");
  uint8_t v = static_cast<uint8_t>(value[0]);
  if (v != kValueVersion) {
    return Status::Corruption(std::string(what) + " value has unknown version " +
                              std::to_string(v));
  }
  return Status::OK();
}

Status BadLength(const char* what, size_t got, size_t want) {
  return Status::Corruption(std::string(what) + " value is " + std::to_string(got) +
                            " bytes, expected " + std::to_string(want));
}

}  // namespace

// ---- Keys -----------------------------------------------------------------

std::string SuperblockKey() { return std::string(1, kSuperblockPrefix); }
std::string LastInodeKey() { return std::string(1, kLastInodePrefix); }
std::string InodeKey(InodeId ino) { return PrefixWithId(kInodePrefix, ino); }
std::string OrphanKey(InodeId ino) { return PrefixWithId(kOrphanPrefix, ino); }
std::string DirEntryPrefix(InodeId parent) { return PrefixWithId(kDirEntryPrefix, parent); }
std::string ChunkMapPrefix(InodeId ino) { return PrefixWithId(kChunkMapPrefix, ino); }
std::string XattrPrefix(InodeId ino) { return PrefixWithId(kXattrPrefix, ino); }

std::string DirEntryKey(InodeId parent, std::string_view name) {
  std::string k = DirEntryPrefix(parent);
  k.append(name);
  return k;
}

std::string ChunkMapKey(InodeId ino, uint64_t index) {
  std::string k = ChunkMapPrefix(ino);
  k.resize(17);
  PutBE64(k.data() + 9, index);
  return k;
}

std::string XattrKey(InodeId ino, std::string_view name) {
  std::string k = XattrPrefix(ino);
  k.append(name);
  return k;
}

std::string RefcountKey(const ChunkId& id) {
  std::string k(1, kRefcountPrefix);
  k.append(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
  return k;
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    uint8_t last = static_cast<uint8_t>(s.back());
    if (last != 0xff) {
      s.back() = static_cast<char>(last + 1);
      return s;
    }
    s.pop_back();
  }
  return s;
}

bool ParseInodeKey(std::string_view key, InodeId* ino) {
  return ParseIdKey(key, kInodePrefix, ino);
}

bool ParseOrphanKey(std::string_view key, InodeId* ino) {
  return ParseIdKey(key, kOrphanPrefix, ino);
}

bool ParseDirEntryKey(std::string_view key, InodeId* parent, std::string_view* name) {
  if (key.size() < 10 || key[0] != kDirEntryPrefix) return false;
  *parent = GetBE64(key.data() + 1);
  *name = key.substr(9);
  return true;
}

bool ParseChunkMapKey(std::string_view key, InodeId* ino, uint64_t* index) {
  if (key.size() != 17 || key[0] != kChunkMapPrefix) return false;
  *ino = GetBE64(key.data() + 1);
  *index = GetBE64(key.data() + 9);
  return true;
}

bool ParseXattrKey(std::string_view key, InodeId* ino, std::string_view* name) {
  if (key.size() < 10 || key[0] != kXattrPrefix) return false;
  *ino = GetBE64(key.data() + 1);
  *name = key.substr(9);
  return true;
}

bool ParseRefcountKey(std::string_view key, ChunkId* id) {
  if (key.size() != 17 || key[0] != kRefcountPrefix) return false;
  __builtin_memcpy(id->bytes.data(), key.data() + 1, 16);
  return true;
}

std::string DescribeKey(std::string_view key) {
  if (key.empty()) return "<empty key>";
  char buf[64];
  InodeId ino;
  uint64_t index;
  std::string_view name;
  ChunkId id;
  if (ParseInodeKey(key, &ino)) {
    std::snprintf(buf, sizeof buf, "inode %llu", static_cast<unsigned long long>(ino));
    return buf;
  }
  if (ParseOrphanKey(key, &ino)) {
    std::snprintf(buf, sizeof buf, "orphan %llu", static_cast<unsigned long long>(ino));
    return buf;
  }
  if (ParseChunkMapKey(key, &ino, &index)) {
    std::snprintf(buf, sizeof buf, "chunk map %llu[%llu]", static_cast<unsigned long long>(ino),
                  static_cast<unsigned long long>(index));
    return buf;
  }
  if (ParseDirEntryKey(key, &ino, &name)) {
    std::snprintf(buf, sizeof buf, "dentry %llu/", static_cast<unsigned long long>(ino));
    return buf + std::string(name);
  }
  if (ParseXattrKey(key, &ino, &name)) {
    std::snprintf(buf, sizeof buf, "xattr %llu:", static_cast<unsigned long long>(ino));
    return buf + std::string(name);
  }
  if (ParseRefcountKey(key, &id)) return "refcount " + id.ToHex();
  if (key == SuperblockKey()) return "superblock";
  if (key == LastInodeKey()) return "last-inode";
  std::string s = "unknown key 0x";
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < key.size() && i < 32; ++i) {
    s += kDigits[static_cast<uint8_t>(key[i]) >> 4];
    s += kDigits[static_cast<uint8_t>(key[i]) & 0xf];
  }
  return s;
}

// ---- Values ---------------------------------------------------------------

void EncodeSuperblock(const Superblock& sb, std::string* out) {
  std::string_view uuid(sb.uuid);
  if (uuid.size() > kMaxUuidLen) uuid = uuid.substr(0, kMaxUuidLen);
  out->assign(kSuperblockFixedSize + uuid.size(), '\0');
  char* p = out->data();
  __builtin_memcpy(p, kSuperblockMagic, 4);
  p[4] = static_cast<char>(kValueVersion);
  PutLE32(p + 5, sb.format_version);
  PutLE32(p + 9, sb.default_chunk_bytes);
  PutLE64(p + 13, sb.created_ns);
  p[21] = static_cast<char>(uuid.size());
  __builtin_memcpy(p + 22, uuid.data(), uuid.size());
}

Status DecodeSuperblock(std::string_view value, Superblock* sb) {
  // The magic and format version come first and never move, so any future
  // version can at least be identified and refused by name.
  if (value.size() < 9 || __builtin_memcmp(value.data(), kSuperblockMagic, 4) != 0) {
    return Status::Corruption("superblock has bad magic (not a qatqfs store superblock)");
  }
  uint32_t format = GetLE32(value.data() + 5);
  sb->format_version = format;
  if (format != kStoreFormatVersion) {
    return Status::NotSupported("store format version " + std::to_string(format) +
                                " is not supported by this qatqfs (it reads version " +
                                std::to_string(kStoreFormatVersion) + ")");
  }
  if (static_cast<uint8_t>(value[4]) != kValueVersion) {
    return Status::Corruption("superblock value has unknown version " +
                              std::to_string(static_cast<uint8_t>(value[4])));
  }
  if (value.size() < kSuperblockFixedSize) {
    return Status::Corruption("superblock is truncated");
  }
  size_t uuid_len = static_cast<uint8_t>(value[21]);
  if (uuid_len > kMaxUuidLen) return Status::Corruption("superblock uuid is too long");
  if (value.size() != kSuperblockFixedSize + uuid_len) {
    return BadLength("superblock", value.size(), kSuperblockFixedSize + uuid_len);
  }
  sb->default_chunk_bytes = GetLE32(value.data() + 9);
  sb->created_ns = GetLE64(value.data() + 13);
  sb->uuid.assign(value.data() + 22, uuid_len);
  return Status::OK();
}

void EncodeInode(const InodeAttr& a, std::string* out) {
  out->assign(kInodeFixedSize + a.symlink_target.size(), '\0');
  char* p = out->data();
  p[0] = static_cast<char>(kValueVersion);
  PutLE32(p + 1, a.mode);
  PutLE32(p + 5, a.uid);
  PutLE32(p + 9, a.gid);
  PutLE32(p + 13, a.nlink);
  PutLE64(p + 17, a.size);
  PutLE64(p + 25, a.rdev);
  PutLE64(p + 33, static_cast<uint64_t>(a.atime_ns));
  PutLE64(p + 41, static_cast<uint64_t>(a.mtime_ns));
  PutLE64(p + 49, static_cast<uint64_t>(a.ctime_ns));
  PutLE32(p + 57, a.chunk_bytes);
  p[61] = static_cast<char>(a.dtype);
  p[62] = static_cast<char>(a.dtype_source);
  PutLE32(p + 63, static_cast<uint32_t>(a.symlink_target.size()));
  __builtin_memcpy(p + 67, a.symlink_target.data(), a.symlink_target.size());
}

Status DecodeInode(InodeId ino, std::string_view value, InodeAttr* a) {
  QATQ_RETURN_IF_ERROR(CheckVersion(value, "inode"));
  if (value.size() < kInodeFixedSize) return BadLength("inode", value.size(), kInodeFixedSize);
  const char* p = value.data();
  uint32_t link_len = GetLE32(p + 63);
  if (value.size() - kInodeFixedSize != link_len) {
    return BadLength("inode", value.size(), kInodeFixedSize + static_cast<size_t>(link_len));
  }
  uint8_t dtype = static_cast<uint8_t>(p[61]);
  uint8_t source = static_cast<uint8_t>(p[62]);
  if (dtype > static_cast<uint8_t>(DType::kBytes)) {
    return Status::Corruption("inode has unknown dtype " + std::to_string(dtype));
  }
  if (source > static_cast<uint8_t>(DTypeSource::kSampled)) {
    return Status::Corruption("inode has unknown dtype source " + std::to_string(source));
  }
  uint32_t chunk_bytes = GetLE32(p + 57);
  // Readers divide by chunk_bytes and allocate chunk buffers from it.
  if (chunk_bytes % 4 != 0 || chunk_bytes > kMaxChunkRawBytes) {
    return Status::Corruption("inode has invalid chunk size " + std::to_string(chunk_bytes));
  }
  a->ino = ino;
  a->mode = GetLE32(p + 1);
  a->uid = GetLE32(p + 5);
  a->gid = GetLE32(p + 9);
  a->nlink = GetLE32(p + 13);
  a->size = GetLE64(p + 17);
  a->rdev = GetLE64(p + 25);
  a->atime_ns = static_cast<int64_t>(GetLE64(p + 33));
  a->mtime_ns = static_cast<int64_t>(GetLE64(p + 41));
  a->ctime_ns = static_cast<int64_t>(GetLE64(p + 49));
  a->chunk_bytes = chunk_bytes;
  a->dtype = static_cast<DType>(dtype);
  a->dtype_source = static_cast<DTypeSource>(source);
  a->symlink_target.assign(p + kInodeFixedSize, link_len);
  return Status::OK();
}

void EncodeDirEntry(const DirEntry& e, std::string* out) {
  out->assign(kDirEntrySize, '\0');
  char* p = out->data();
  p[0] = static_cast<char>(kValueVersion);
  PutLE64(p + 1, e.ino);
  PutLE32(p + 9, e.type);
}

Status DecodeDirEntry(std::string_view name, std::string_view value, DirEntry* e) {
  QATQ_RETURN_IF_ERROR(CheckVersion(value, "dentry"));
  if (value.size() != kDirEntrySize) return BadLength("dentry", value.size(), kDirEntrySize);
  uint64_t ino = GetLE64(value.data() + 1);
  uint32_t type = GetLE32(value.data() + 9);
  if (ino == 0) return Status::Corruption("dentry points to inode 0");
  if ((type & ~static_cast<uint32_t>(S_IFMT)) != 0) {
    return Status::Corruption("dentry has invalid type bits " + std::to_string(type));
  }
  e->name.assign(name);
  e->ino = ino;
  e->type = type;
  return Status::OK();
}

void EncodeChunkRef(const ChunkRef& r, std::string* out) {
  out->assign(kChunkRefSize, '\0');
  char* p = out->data();
  p[0] = static_cast<char>(kValueVersion);
  __builtin_memcpy(p + 1, r.id.bytes.data(), 16);
  PutLE32(p + 17, r.raw_len);
  PutLE32(p + 21, r.stored_len);
  p[25] = static_cast<char>(r.strategy);
}

Status DecodeChunkRef(std::string_view value, ChunkRef* r) {
  QATQ_RETURN_IF_ERROR(CheckVersion(value, "chunk map"));
  if (value.size() != kChunkRefSize) return BadLength("chunk map", value.size(), kChunkRefSize);
  const char* p = value.data();
  uint32_t raw_len = GetLE32(p + 17);
  // Readers size decode buffers from raw_len.
  if (raw_len > kMaxChunkRawBytes) {
    return Status::Corruption("chunk map entry has raw length " + std::to_string(raw_len) +
                              " above the limit");
  }
  __builtin_memcpy(r->id.bytes.data(), p + 1, 16);
  r->raw_len = raw_len;
  r->stored_len = GetLE32(p + 21);
  r->strategy = static_cast<uint8_t>(p[25]);
  return Status::OK();
}

void EncodeXattrValue(std::string_view value, std::string* out) {
  out->assign(1, static_cast<char>(kValueVersion));
  out->append(value);
}

Status DecodeXattrValue(std::string_view value, std::string* out) {
  QATQ_RETURN_IF_ERROR(CheckVersion(value, "xattr"));
  out->assign(value.substr(1));
  return Status::OK();
}

void EncodeU64Value(uint64_t v, std::string* out) {
  out->assign(kU64Size, '\0');
  (*out)[0] = static_cast<char>(kValueVersion);
  PutLE64(out->data() + 1, v);
}

Status DecodeU64Value(std::string_view value, uint64_t* v) {
  QATQ_RETURN_IF_ERROR(CheckVersion(value, "counter"));
  if (value.size() != kU64Size) return BadLength("counter", value.size(), kU64Size);
  *v = GetLE64(value.data() + 1);
  return Status::OK();
}

void EncodeOrphanValue(std::string* out) { out->assign(1, static_cast<char>(kValueVersion)); }

Status DecodeOrphanValue(std::string_view value) {
  QATQ_RETURN_IF_ERROR(CheckVersion(value, "orphan"));
  if (value.size() != 1) return BadLength("orphan", value.size(), 1);
  return Status::OK();
}

}  // namespace qatq
