#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <vector>

#include "codec/chunk_record.h"
#include "index/keys.h"
#include "tests/testutil.h"

namespace qatq {
namespace {

InodeAttr SampleInode() {
  InodeAttr a;
  a.ino = 42;
  a.mode = S_IFREG | 0644;
  a.uid = 1000;
  a.gid = 100;
  a.nlink = 3;
  a.size = 0x123456789abcULL;
  a.rdev = 7;
  a.atime_ns = -5;  // before the epoch must survive
  a.mtime_ns = 1700000000123456789LL;
  a.ctime_ns = 1700000000987654321LL;
  a.chunk_bytes = 1 << 20;
  a.dtype = DType::kBF16;
  a.dtype_source = DTypeSource::kSafetensors;
  return a;
}

void ExpectSameInode(const InodeAttr& a, const InodeAttr& b) {
  EXPECT_EQ(a.ino, b.ino);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.uid, b.uid);
  EXPECT_EQ(a.gid, b.gid);
  EXPECT_EQ(a.nlink, b.nlink);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.rdev, b.rdev);
  EXPECT_EQ(a.atime_ns, b.atime_ns);
  EXPECT_EQ(a.mtime_ns, b.mtime_ns);
  EXPECT_EQ(a.ctime_ns, b.ctime_ns);
  EXPECT_EQ(a.chunk_bytes, b.chunk_bytes);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.dtype_source, b.dtype_source);
  EXPECT_EQ(a.symlink_target, b.symlink_target);
}

TEST(IndexKeys, InodeKeysSortInNumericOrder) {
  std::vector<uint64_t> ids = {
      0, 1, 2, 255, 256, 65535, 65536, 1ULL << 32, (1ULL << 56) + 1, UINT64_MAX - 1, UINT64_MAX};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) ids.push_back(rng());
  std::vector<std::string> keys;
  for (uint64_t id : ids) keys.push_back(InodeKey(id));
  std::sort(ids.begin(), ids.end());
  std::sort(keys.begin(), keys.end());  // bytewise, as RocksDB's default comparator
  for (size_t i = 0; i < ids.size(); ++i) {
    InodeId parsed;
    ASSERT_TRUE(ParseInodeKey(keys[i], &parsed));
    EXPECT_EQ(parsed, ids[i]);
  }
}

TEST(IndexKeys, ChunkMapKeysSortByInodeThenIndex) {
  std::vector<std::pair<uint64_t, uint64_t>> entries;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 300; ++i) entries.emplace_back(rng() % 5, rng() >> (rng() % 64));
  entries.emplace_back(3, 0);
  entries.emplace_back(3, UINT64_MAX);
  std::vector<std::string> keys;
  for (auto [ino, idx] : entries) keys.push_back(ChunkMapKey(ino, idx));
  std::sort(entries.begin(), entries.end());
  std::sort(keys.begin(), keys.end());
  for (size_t i = 0; i < keys.size(); ++i) {
    InodeId ino;
    uint64_t idx;
    ASSERT_TRUE(ParseChunkMapKey(keys[i], &ino, &idx));
    EXPECT_EQ(ino, entries[i].first);
    EXPECT_EQ(idx, entries[i].second);
  }
}

TEST(IndexKeys, DirEntryKeysGroupByParentThenName) {
  // A longer parent id must never interleave with names of another parent.
  std::vector<std::string> keys = {DirEntryKey(2, "a"), DirEntryKey(1, "zzz"),
                                   DirEntryKey(1, "\xff\xff"), DirEntryKey(256, "a"),
                                   DirEntryKey(1, "a")};
  std::sort(keys.begin(), keys.end());
  std::vector<std::pair<InodeId, std::string>> got;
  for (const auto& k : keys) {
    InodeId p;
    std::string_view n;
    ASSERT_TRUE(ParseDirEntryKey(k, &p, &n));
    got.emplace_back(p, std::string(n));
  }
  std::vector<std::pair<InodeId, std::string>> want = {
      {1, "a"}, {1, "zzz"}, {1, "\xff\xff"}, {2, "a"}, {256, "a"}};
  EXPECT_EQ(got, want);
  EXPECT_TRUE(DirEntryKey(1, "a").starts_with(DirEntryPrefix(1)));
  EXPECT_LT(DirEntryKey(1, "\xff\xff\xff"), PrefixSuccessor(DirEntryPrefix(1)));
}

TEST(IndexKeys, PrefixSuccessorBoundsThePrefix) {
  EXPECT_EQ(PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(PrefixSuccessor(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixSuccessor(std::string("\xff\xff", 2)), "");
  std::string p = ChunkMapPrefix(UINT64_MAX);
  EXPECT_EQ(PrefixSuccessor(p), std::string(1, kChunkMapPrefix + 1));
}

TEST(IndexKeys, KindsDoNotParseAsEachOther) {
  InodeId ino;
  uint64_t idx;
  std::string_view name;
  ChunkId id;
  EXPECT_FALSE(ParseInodeKey(OrphanKey(5), &ino));
  EXPECT_FALSE(ParseOrphanKey(InodeKey(5), &ino));
  EXPECT_FALSE(ParseChunkMapKey(InodeKey(5), &ino, &idx));
  EXPECT_FALSE(ParseDirEntryKey(DirEntryPrefix(5), &ino, &name));  // empty name
  EXPECT_FALSE(ParseXattrKey(DirEntryKey(5, "n"), &ino, &name));
  EXPECT_FALSE(ParseRefcountKey(InodeKey(5), &id));
  EXPECT_FALSE(ParseInodeKey(InodeKey(5) + "x", &ino));
}

TEST(IndexKeys, RefcountKeyRoundTrips) {
  ChunkId id = ChunkId::OfRaw("hello");
  ChunkId back;
  ASSERT_TRUE(ParseRefcountKey(RefcountKey(id), &back));
  EXPECT_EQ(back, id);
}

TEST(IndexValues, InodeRoundTrips) {
  InodeAttr a = SampleInode();
  std::string v;
  EncodeInode(a, &v);
  InodeAttr b;
  ASSERT_OK(DecodeInode(42, v, &b));
  ExpectSameInode(a, b);

  a.mode = S_IFLNK | 0777;
  a.symlink_target = std::string("../target\0with nul", 18);
  a.chunk_bytes = 0;
  EncodeInode(a, &v);
  ASSERT_OK(DecodeInode(42, v, &b));
  ExpectSameInode(a, b);
}

TEST(IndexValues, SuperblockRoundTrips) {
  Superblock sb;
  sb.default_chunk_bytes = 1 << 20;
  sb.created_ns = 123456789;
  sb.uuid = "0e0b4a4c-3f0b-4a8e-9b1e-6c2f0d7d9a11";
  std::string v;
  EncodeSuperblock(sb, &v);
  Superblock back;
  ASSERT_OK(DecodeSuperblock(v, &back));
  EXPECT_EQ(back.format_version, kStoreFormatVersion);
  EXPECT_EQ(back.default_chunk_bytes, sb.default_chunk_bytes);
  EXPECT_EQ(back.created_ns, sb.created_ns);
  EXPECT_EQ(back.uuid, sb.uuid);
}

TEST(IndexValues, SuperblockOfAnotherFormatVersionIsNotSupported) {
  Superblock sb;
  sb.format_version = kStoreFormatVersion + 1;
  std::string v;
  EncodeSuperblock(sb, &v);
  Superblock back;
  Status s = DecodeSuperblock(v, &back);
  EXPECT_TRUE(s.IsNotSupported()) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(kStoreFormatVersion + 1)), std::string::npos);
  EXPECT_EQ(back.format_version, kStoreFormatVersion + 1);
}

TEST(IndexValues, DirEntryChunkRefAndCountersRoundTrip) {
  DirEntry e{"name", 99, S_IFDIR};
  std::string v;
  EncodeDirEntry(e, &v);
  DirEntry eb;
  ASSERT_OK(DecodeDirEntry("name", v, &eb));
  EXPECT_EQ(eb.name, "name");
  EXPECT_EQ(eb.ino, 99u);
  EXPECT_EQ(eb.type, static_cast<uint32_t>(S_IFDIR));

  ChunkRef r;
  r.id = ChunkId::OfRaw("abc");
  r.raw_len = 1 << 20;
  r.stored_len = 12345;
  r.strategy = 2;
  EncodeChunkRef(r, &v);
  ChunkRef rb;
  ASSERT_OK(DecodeChunkRef(v, &rb));
  EXPECT_EQ(rb.id, r.id);
  EXPECT_EQ(rb.raw_len, r.raw_len);
  EXPECT_EQ(rb.stored_len, r.stored_len);
  EXPECT_EQ(rb.strategy, r.strategy);

  uint64_t n;
  EncodeU64Value(UINT64_MAX - 3, &v);
  ASSERT_OK(DecodeU64Value(v, &n));
  EXPECT_EQ(n, UINT64_MAX - 3);

  std::string x;
  EncodeXattrValue(std::string("\0bin", 4), &v);
  ASSERT_OK(DecodeXattrValue(v, &x));
  EXPECT_EQ(x, std::string("\0bin", 4));
  EncodeXattrValue("", &v);
  ASSERT_OK(DecodeXattrValue(v, &x));
  EXPECT_EQ(x, "");

  EncodeOrphanValue(&v);
  EXPECT_OK(DecodeOrphanValue(v));
}

TEST(IndexValues, TruncatedOrExtendedValuesAreCorruption) {
  std::string inode, dentry, ref, u64, sb;
  EncodeInode(SampleInode(), &inode);
  EncodeDirEntry(DirEntry{"n", 5, S_IFREG}, &dentry);
  EncodeChunkRef(ChunkRef{}, &ref);
  EncodeU64Value(5, &u64);
  Superblock s;
  s.uuid = "u";
  EncodeSuperblock(s, &sb);
  InodeAttr a;
  DirEntry e;
  ChunkRef r;
  uint64_t n;
  Superblock sbo;
  for (size_t len = 0; len < inode.size(); ++len) {
    EXPECT_TRUE(DecodeInode(1, inode.substr(0, len), &a).IsCorruption()) << len;
  }
  EXPECT_TRUE(DecodeInode(1, inode + "x", &a).IsCorruption());
  for (size_t len = 0; len < dentry.size(); ++len) {
    EXPECT_TRUE(DecodeDirEntry("n", dentry.substr(0, len), &e).IsCorruption()) << len;
  }
  EXPECT_TRUE(DecodeDirEntry("n", dentry + "x", &e).IsCorruption());
  for (size_t len = 0; len < ref.size(); ++len) {
    EXPECT_TRUE(DecodeChunkRef(ref.substr(0, len), &r).IsCorruption()) << len;
  }
  for (size_t len = 0; len < u64.size(); ++len) {
    EXPECT_TRUE(DecodeU64Value(u64.substr(0, len), &n).IsCorruption()) << len;
  }
  for (size_t len = 0; len < sb.size(); ++len) {
    EXPECT_TRUE(DecodeSuperblock(sb.substr(0, len), &sbo).IsCorruption()) << len;
  }
  EXPECT_TRUE(DecodeSuperblock(sb + "x", &sbo).IsCorruption());
  EXPECT_TRUE(DecodeOrphanValue("").IsCorruption());
  EXPECT_TRUE(DecodeOrphanValue("\x01\x01").IsCorruption());
}

TEST(IndexValues, BadFieldsAreCorruption) {
  std::string v;
  InodeAttr a = SampleInode();
  EncodeInode(a, &v);
  InodeAttr out;

  std::string bad = v;
  bad[0] = 2;  // unknown value version
  EXPECT_TRUE(DecodeInode(1, bad, &out).IsCorruption());
  bad = v;
  bad[61] = 9;  // dtype
  EXPECT_TRUE(DecodeInode(1, bad, &out).IsCorruption());
  bad = v;
  bad[62] = 100;  // dtype source
  EXPECT_TRUE(DecodeInode(1, bad, &out).IsCorruption());
  bad = v;
  bad[57] = 3;  // chunk size not a multiple of 4
  EXPECT_TRUE(DecodeInode(1, bad, &out).IsCorruption());
  bad = v;
  bad[66] = 0x7f;  // symlink length far beyond the value
  EXPECT_TRUE(DecodeInode(1, bad, &out).IsCorruption());

  DirEntry e;
  EncodeDirEntry(DirEntry{"n", 0, S_IFREG}, &v);
  EXPECT_TRUE(DecodeDirEntry("n", v, &e).IsCorruption());  // inode 0
  EncodeDirEntry(DirEntry{"n", 5, S_IFREG | 0644}, &v);
  EXPECT_TRUE(DecodeDirEntry("n", v, &e).IsCorruption());  // permission bits in type

  ChunkRef r;
  r.raw_len = kMaxChunkRawBytes + 1;
  EncodeChunkRef(r, &v);
  ChunkRef rb;
  EXPECT_TRUE(DecodeChunkRef(v, &rb).IsCorruption());

  Superblock sb;
  EncodeSuperblock(sb, &v);
  bad = v;
  bad[0] = 'X';
  EXPECT_TRUE(DecodeSuperblock(bad, &sb).IsCorruption());
}

TEST(IndexValues, RandomBytesNeverCrashDecoders) {
  // The fuzzer covers this properly; this keeps a deterministic sample in
  // the unit tests.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20000; ++i) {
    std::string v = test::RandomBytes(rng() % 96, rng());
    if (!v.empty() && (rng() & 1)) v[0] = static_cast<char>(kValueVersion);
    InodeAttr a;
    DirEntry e;
    ChunkRef r;
    uint64_t n;
    Superblock sb;
    std::string x;
    DecodeInode(1, v, &a).IgnoreError();
    DecodeDirEntry("n", v, &e).IgnoreError();
    DecodeChunkRef(v, &r).IgnoreError();
    DecodeU64Value(v, &n).IgnoreError();
    DecodeSuperblock(v, &sb).IgnoreError();
    DecodeXattrValue(v, &x).IgnoreError();
    DecodeOrphanValue(v).IgnoreError();
    DescribeKey(v);
  }
}

TEST(ChunkIdTest, HexRoundTripsAndRejectsGarbage) {
  ChunkId id = ChunkId::OfRaw("some raw bytes");
  std::string hex = id.ToHex();
  ASSERT_EQ(hex.size(), 32u);
  ChunkId back;
  ASSERT_TRUE(ChunkId::FromHex(hex, &back));
  EXPECT_EQ(back, id);
  EXPECT_FALSE(ChunkId::FromHex(hex.substr(1), &back));
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  if (upper != hex) {
    EXPECT_FALSE(ChunkId::FromHex(upper, &back));
  }
  EXPECT_FALSE(ChunkId::FromHex(std::string(31, '0') + "g", &back));
}

TEST(ChunkIdTest, OfRawIsXxh3_128OfTheBytes) {
  // Known value: xxh128sum of the empty input.
  EXPECT_EQ(ChunkId::OfRaw("").ToHex(), "99aa06d3014798d86001c324468d497f");
  EXPECT_NE(ChunkId::OfRaw("a"), ChunkId::OfRaw("b"));
  EXPECT_EQ(ChunkId::OfRaw(std::string(1000, 'x')), ChunkId::OfRaw(std::string(1000, 'x')));
}

}  // namespace
}  // namespace qatq
