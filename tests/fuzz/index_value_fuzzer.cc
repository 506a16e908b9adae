// Fuzzes the metadata index decoders (index/keys.h): any bytes must decode to
// a value or to Corruption/NotSupported, never crash or over-read; decoded
// values must survive an encode/decode round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "index/keys.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qatq;
  if (size == 0) return 0;
  const uint8_t which = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string re;
  switch (which % 9) {
    case 0: {
      InodeAttr a;
      if (DecodeInode(7, in, &a).ok()) {
        EncodeInode(a, &re);
        Check(re == in);
      }
      break;
    }
    case 1: {
      DirEntry e;
      if (DecodeDirEntry("name", in, &e).ok()) {
        EncodeDirEntry(e, &re);
        Check(re == in);
      }
      break;
    }
    case 2: {
      ChunkRef r;
      if (DecodeChunkRef(in, &r).ok()) {
        EncodeChunkRef(r, &re);
        Check(re == in);
      }
      break;
    }
    case 3: {
      Superblock sb;
      if (DecodeSuperblock(in, &sb).ok()) {
        EncodeSuperblock(sb, &re);
        Check(re == in);
      }
      break;
    }
    case 4: {
      uint64_t v;
      if (DecodeU64Value(in, &v).ok()) {
        EncodeU64Value(v, &re);
        Check(re == in);
      }
      break;
    }
    case 5: {
      std::string x;
      if (DecodeXattrValue(in, &x).ok()) {
        EncodeXattrValue(x, &re);
        Check(re == in);
      }
      break;
    }
    case 6:
      DecodeOrphanValue(in).IgnoreError();
      break;
    default: {
      // Keys: parsers must agree with the encoders.
      InodeId ino;
      uint64_t index;
      std::string_view name;
      ChunkId id;
      if (ParseInodeKey(in, &ino)) Check(InodeKey(ino) == in);
      if (ParseOrphanKey(in, &ino)) Check(OrphanKey(ino) == in);
      if (ParseChunkMapKey(in, &ino, &index)) Check(ChunkMapKey(ino, index) == in);
      if (ParseDirEntryKey(in, &ino, &name)) Check(DirEntryKey(ino, name) == in);
      if (ParseXattrKey(in, &ino, &name)) Check(XattrKey(ino, name) == in);
      if (ParseRefcountKey(in, &id)) Check(RefcountKey(id) == in);
      (void)DescribeKey(in);
      std::string succ = PrefixSuccessor(in);
      Check(succ.empty() || std::string_view(succ) > in);
      break;
    }
  }
  return 0;
}
