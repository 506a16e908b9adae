#include "index/fsck.h"

#include <sys/stat.h>

#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "codec/chunk_record.h"
#include "index/keys.h"

namespace qatq {

const char* FsckProblemName(FsckProblemKind kind) {
  switch (kind) {
    case FsckProblemKind::kCorruptEntry:
      return "corrupt-entry";
    case FsckProblemKind::kMissingRoot:
      return "missing-root";
    case FsckProblemKind::kDanglingDirEntry:
      return "dangling-dentry";
    case FsckProblemKind::kDirEntryInBadParent:
      return "dentry-in-bad-parent";
    case FsckProblemKind::kDirEntryTypeMismatch:
      return "dentry-type-mismatch";
    case FsckProblemKind::kWrongNlink:
      return "wrong-nlink";
    case FsckProblemKind::kUnreachableInode:
      return "unreachable-inode";
    case FsckProblemKind::kMultiplyLinkedDir:
      return "multiply-linked-dir";
    case FsckProblemKind::kBadOrphan:
      return "bad-orphan";
    case FsckProblemKind::kDanglingXattr:
      return "dangling-xattr";
    case FsckProblemKind::kDanglingChunkMap:
      return "dangling-chunk-map";
    case FsckProblemKind::kChunkBeyondEof:
      return "chunk-beyond-eof";
    case FsckProblemKind::kBadChunkLength:
      return "bad-chunk-length";
    case FsckProblemKind::kWrongRefcount:
      return "wrong-refcount";
    case FsckProblemKind::kMissingObject:
      return "missing-object";
    case FsckProblemKind::kCorruptObject:
      return "corrupt-object";
    case FsckProblemKind::kOrphanObject:
      return "orphan-object";
    case FsckProblemKind::kLastInodeTooLow:
      return "last-inode-too-low";
  }
  return "unknown";
}

std::string FsckReport::Summary() const {
  std::string s;
  s += "inodes " + std::to_string(inodes) + " (directories " + std::to_string(directories) +
       ", regular files " + std::to_string(regular_files) + "), dentries " +
       std::to_string(dir_entries) + ", chunk refs " + std::to_string(chunk_refs) + "\n";
  s += "objects " + std::to_string(objects) + " (" + std::to_string(object_bytes) +
       " bytes), verified " + std::to_string(objects_verified) + "\n";
  for (const FsckProblem& p : problems) {
    s += std::string(p.repaired ? "repaired " : "problem  ") + FsckProblemName(p.kind) + ": " +
         p.detail + "\n";
  }
  if (problems.size() < problem_count) {
    s += "... and " + std::to_string(problem_count - problems.size()) + " more problems\n";
  }
  for (const DamagedFile& f : damaged_files) {
    s += "unrecoverable " + f.path + " (inode " + std::to_string(f.ino) +
         "): " + std::to_string(f.bad_chunks) + " chunks missing or corrupt\n";
  }
  if (clean()) {
    s += "clean\n";
  } else {
    s += std::to_string(problem_count) + " problems, " + std::to_string(repaired_count) +
         " repaired\n";
  }
  return s;
}

namespace {

struct InodeInfo {
  InodeAttr attr;
  uint32_t names = 0;    // valid dentries naming it
  uint32_t subdirs = 0;  // directories only: child directories
  bool orphan = false;
  bool reachable = false;
  bool attr_dirty = false;  // repaired attr to write back
};

struct Dent {
  InodeId parent;
  std::string name;
  InodeId ino;
  uint32_t type;
  bool valid = true;
};

struct RefInfo {
  uint64_t actual = 0;
  uint64_t recorded = 0;
  uint32_t raw_len = 0;
  bool has_raw_len = false;
};

bool IsDir(uint32_t mode) { return S_ISDIR(mode); }
bool IsReg(uint32_t mode) { return S_ISREG(mode); }

std::string Num(uint64_t v) { return std::to_string(v); }

class Checker {
 public:
  Checker(Store* store, const FsckOptions& options, FsckReport* report)
      : store_(store),
        meta_(store->meta()),
        chunks_(store->chunks()),
        options_(options),
        report_(report) {}

  Status Run() {
    *report_ = FsckReport();
    if (options_.repair && store_->read_only()) {
      return Status::InvalidArgument("fsck repair needs the store opened for writing (unmounted)");
    }
    if (options_.repair) batch_ = meta_->NewBatch();
    Progress("scanning index");
    QATQ_RETURN_IF_ERROR(ScanIndex());
    Progress("checking directory tree");
    CheckTree();
    CheckLastInode();
    CheckCounts();
    Progress("checking chunk objects");
    QATQ_RETURN_IF_ERROR(CheckObjects());
    QATQ_RETURN_IF_ERROR(FindDamagedFiles());
    if (options_.repair) {
      Progress("committing repairs");
      QATQ_RETURN_IF_ERROR(CommitRepairs());
    }
    return Status::OK();
  }

 private:
  void Progress(const std::string& what) {
    if (options_.progress) options_.progress(what);
  }

  // Records a problem; `repairable` problems count as repaired when repair
  // is on (the fix is in batch_ or pending_deletes_).
  void Problem(FsckProblemKind kind, InodeId ino, std::string detail, bool repairable) {
    bool repaired = repairable && options_.repair;
    ++report_->problem_count;
    if (repaired) ++report_->repaired_count;
    if (report_->problems.size() < options_.max_problems) {
      report_->problems.push_back(FsckProblem{kind, ino, std::move(detail), repaired});
    }
  }

  // ---- Pass 1: one ordered scan of the whole index --------------------------
  // Key order is D < I < M < N < O < R < S < X, so inodes are known when
  // chunk maps, orphans and xattrs are seen; dentries are kept for later.
  Status ScanIndex() {
    bool saw_superblock = false;
    Status s = meta_->ForEachRaw([&](std::string_view key, std::string_view value) {
      if (key.empty()) {
        Problem(FsckProblemKind::kCorruptEntry, 0, "empty key in the index", false);
        return Status::OK();
      }
      switch (key[0]) {
        case kDirEntryPrefix:
          ScanDirEntry(key, value);
          break;
        case kInodePrefix:
          ScanInode(key, value);
          break;
        case kChunkMapPrefix:
          ScanChunkRef(key, value);
          break;
        case kLastInodePrefix:
          ScanLastInode(key, value);
          break;
        case kOrphanPrefix:
          ScanOrphan(key, value);
          break;
        case kRefcountPrefix:
          ScanRefcount(key, value);
          break;
        case kXattrPrefix:
          ScanXattr(key, value);
          break;
        case kSuperblockPrefix: {
          Superblock sb;
          Status d = key.size() == 1 ? DecodeSuperblock(value, &sb)
                                     : Status::Corruption("malformed superblock key");
          if (!d.ok()) Corrupt(key, d);
          saw_superblock = true;
          break;
        }
        default:
          Problem(FsckProblemKind::kCorruptEntry, 0, "unknown key kind: " + DescribeKey(key),
                  false);
      }
      return Status::OK();
    });
    if (!saw_superblock) {
      Problem(FsckProblemKind::kCorruptEntry, 0, "superblock missing", false);
    }
    return s;
  }

  void Corrupt(std::string_view key, const Status& s) {
    Problem(FsckProblemKind::kCorruptEntry, 0, DescribeKey(key) + ": " + s.ToString(), false);
  }

  void ScanDirEntry(std::string_view key, std::string_view value) {
    InodeId parent;
    std::string_view name;
    if (!ParseDirEntryKey(key, &parent, &name)) {
      Corrupt(key, Status::Corruption("malformed dentry key"));
      return;
    }
    DirEntry e;
    Status s = DecodeDirEntry(name, value, &e);
    if (!s.ok()) {
      Corrupt(key, s);
      return;
    }
    ++report_->dir_entries;
    dents_.push_back(Dent{parent, e.name, e.ino, e.type});
  }

  void ScanInode(std::string_view key, std::string_view value) {
    InodeId ino;
    if (!ParseInodeKey(key, &ino)) {
      Corrupt(key, Status::Corruption("malformed inode key"));
      return;
    }
    InodeInfo info;
    Status s = DecodeInode(ino, value, &info.attr);
    if (!s.ok()) {
      Corrupt(key, s);
      // Known to exist, so its names and chunks are not "dangling"; it is
      // just unreadable. Treat it as a regular file of unknown size.
      info.attr.ino = ino;
      info.attr.mode = S_IFREG;
      info.attr.size = UINT64_MAX;
      unreadable_.insert(ino);
    }
    ++report_->inodes;
    if (IsDir(info.attr.mode)) ++report_->directories;
    if (IsReg(info.attr.mode)) ++report_->regular_files;
    max_ino_ = std::max(max_ino_, ino);
    inodes_.emplace(ino, std::move(info));
  }

  void ScanChunkRef(std::string_view key, std::string_view value) {
    InodeId ino;
    uint64_t index;
    if (!ParseChunkMapKey(key, &ino, &index)) {
      Corrupt(key, Status::Corruption("malformed chunk map key"));
      return;
    }
    ChunkRef ref;
    Status s = DecodeChunkRef(value, &ref);
    if (!s.ok()) {
      Corrupt(key, s);
      return;
    }
    ++report_->chunk_refs;
    auto it = inodes_.find(ino);
    const std::string where = "chunk " + Num(index) + " of inode " + Num(ino);
    if (it == inodes_.end() || !IsReg(it->second.attr.mode)) {
      Problem(FsckProblemKind::kDanglingChunkMap, ino,
              where + (it == inodes_.end() ? ": no such inode" : ": not a regular file"), true);
      if (batch_) batch_->DeleteChunkRef(ino, index);
      return;
    }
    const InodeAttr& a = it->second.attr;
    if (!unreadable_.count(ino)) {
      if (a.chunk_bytes == 0) {
        Problem(FsckProblemKind::kBadChunkLength, ino, where + ": the file has chunk size 0",
                false);
      } else {
        uint64_t nchunks = a.size / a.chunk_bytes + (a.size % a.chunk_bytes != 0);
        if (index >= nchunks) {
          Problem(FsckProblemKind::kChunkBeyondEof, ino,
                  where + ": beyond the file size " + Num(a.size), true);
          if (batch_) batch_->DeleteChunkRef(ino, index);
          return;
        }
        if (ref.raw_len > a.chunk_bytes) {
          Problem(FsckProblemKind::kBadChunkLength, ino,
                  where + ": raw length " + Num(ref.raw_len) + " exceeds the chunk size " +
                      Num(a.chunk_bytes),
                  false);
        }
      }
    }
    RefInfo& r = refs_[ref.id];
    ++r.actual;
    r.raw_len = ref.raw_len;
    r.has_raw_len = true;
  }

  void ScanLastInode(std::string_view key, std::string_view value) {
    uint64_t v;
    Status s = key.size() == 1 ? DecodeU64Value(value, &v)
                               : Status::Corruption("malformed last-inode key");
    if (!s.ok()) {
      Corrupt(key, s);
      return;
    }
    last_inode_ = v;
  }

  void ScanOrphan(std::string_view key, std::string_view value) {
    InodeId ino;
    if (!ParseOrphanKey(key, &ino)) {
      Corrupt(key, Status::Corruption("malformed orphan key"));
      return;
    }
    Status s = DecodeOrphanValue(value);
    if (!s.ok()) Corrupt(key, s);
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) {
      Problem(FsckProblemKind::kBadOrphan, ino, "orphan " + Num(ino) + ": no such inode", true);
      if (batch_) batch_->DeleteOrphan(ino);
      return;
    }
    it->second.orphan = true;
  }

  void ScanRefcount(std::string_view key, std::string_view value) {
    ChunkId id;
    if (!ParseRefcountKey(key, &id)) {
      Corrupt(key, Status::Corruption("malformed refcount key"));
      return;
    }
    uint64_t count;
    Status s = DecodeU64Value(value, &count);
    if (!s.ok()) {
      // Repairable: the count is recomputed from the chunk maps anyway.
      Problem(FsckProblemKind::kCorruptEntry, 0, DescribeKey(key) + ": " + s.ToString(), true);
      refs_[id].recorded = UINT64_MAX;  // force a rewrite
      return;
    }
    refs_[id].recorded = count;
  }

  void ScanXattr(std::string_view key, std::string_view value) {
    InodeId ino;
    std::string_view name;
    if (!ParseXattrKey(key, &ino, &name)) {
      Corrupt(key, Status::Corruption("malformed xattr key"));
      return;
    }
    std::string v;
    Status s = DecodeXattrValue(value, &v);
    if (!s.ok()) Corrupt(key, s);
    if (!inodes_.count(ino)) {
      Problem(FsckProblemKind::kDanglingXattr, ino,
              "xattr " + std::string(name) + " of missing inode " + Num(ino), true);
      if (batch_) batch_->DeleteXattr(ino, name);
    }
  }

  // ---- Pass 2: the tree ----------------------------------------------------

  // A directory, or an inode whose value does not decode (it may be one:
  // never cut a subtree off because its directory inode is unreadable).
  bool DirLike(InodeId ino, const InodeInfo& info) const {
    return IsDir(info.attr.mode) || unreadable_.count(ino) != 0;
  }

  void CheckTree() {
    auto root = inodes_.find(kRootInode);
    if (root == inodes_.end() || !IsDir(root->second.attr.mode)) {
      Problem(FsckProblemKind::kMissingRoot, kRootInode,
              root == inodes_.end() ? "root inode missing" : "root inode is not a directory",
              false);
    }
    // Valid dentries: existing child in an existing directory.
    std::unordered_map<InodeId, std::vector<const Dent*>> children;
    for (Dent& d : dents_) {
      const std::string where = "dentry " + Num(d.parent) + "/" + d.name;
      auto parent = inodes_.find(d.parent);
      if (parent == inodes_.end() || !DirLike(d.parent, parent->second)) {
        Problem(FsckProblemKind::kDirEntryInBadParent, d.ino,
                where + (parent == inodes_.end() ? ": parent missing" : ": parent not a directory"),
                true);
        Drop(d);
        continue;
      }
      auto child = inodes_.find(d.ino);
      if (child == inodes_.end()) {
        Problem(FsckProblemKind::kDanglingDirEntry, d.ino,
                where + ": names missing inode " + Num(d.ino), true);
        Drop(d);
        continue;
      }
      const uint32_t real_type = child->second.attr.mode & S_IFMT;
      if (d.type != real_type && !unreadable_.count(d.ino)) {
        Problem(FsckProblemKind::kDirEntryTypeMismatch, d.ino,
                where + ": type " + Num(d.type) + " but inode is " + Num(real_type), true);
        if (batch_) batch_->PutDirEntry(d.parent, DirEntry{d.name, d.ino, real_type});
      }
      children[d.parent].push_back(&d);
    }

    // Reachability from the root, breadth first.
    std::deque<InodeId> queue;
    if (root != inodes_.end()) {
      root->second.reachable = true;
      queue.push_back(kRootInode);
    }
    while (!queue.empty()) {
      InodeId dir = queue.front();
      queue.pop_front();
      auto it = children.find(dir);
      if (it == children.end()) continue;
      for (const Dent* d : it->second) {
        InodeInfo& c = inodes_.at(d->ino);
        if (c.reachable) continue;
        c.reachable = true;
        if (DirLike(d->ino, c)) queue.push_back(d->ino);
      }
    }

    // Names inside detached subtrees do not count (repair removes them: an
    // orphan has no names). With corrupt entries in the index, a subtree may
    // only look detached, so nothing is orphaned then.
    const bool may_orphan = unreadable_.empty();
    for (Dent& d : dents_) {
      if (!d.valid) continue;
      InodeInfo& parent = inodes_.at(d.parent);
      if (!parent.reachable && may_orphan) {
        Drop(d);
        continue;
      }
      InodeInfo& child = inodes_.at(d.ino);
      ++child.names;
      if (IsDir(child.attr.mode)) ++parent.subdirs;
      if (!parent_of_.count(d.ino)) parent_of_[d.ino] = &d;
    }

    for (auto& [ino, info] : inodes_) {
      if (IsDir(info.attr.mode) && info.names > 1) {
        Problem(FsckProblemKind::kMultiplyLinkedDir, ino,
                "directory " + Num(ino) + " has " + Num(info.names) + " names", false);
      }
      if (ino == kRootInode) {
        CheckNlink(ino, info, 2 + info.subdirs);
        continue;
      }
      if (!info.reachable) {
        if (info.orphan) {
          CheckNlink(ino, info, 0);
          continue;
        }
        Problem(FsckProblemKind::kUnreachableInode, ino,
                "inode " + Num(ino) + " is not reachable from the root" +
                    (options_.repair && may_orphan
                         ? "; made an orphan, the next mount releases it and its data"
                         : ""),
                may_orphan);
        if (batch_ && may_orphan) {
          batch_->PutOrphan(ino);
          info.orphan = true;
          CheckNlink(ino, info, 0, /*report=*/false);
        }
        continue;
      }
      if (info.orphan) {
        Problem(FsckProblemKind::kBadOrphan, ino,
                "inode " + Num(ino) + " is listed as orphan but has names", true);
        if (batch_) batch_->DeleteOrphan(ino);
        info.orphan = false;
      }
      CheckNlink(ino, info, IsDir(info.attr.mode) ? 2 + info.subdirs : info.names);
    }
  }

  void Drop(Dent& d) {
    d.valid = false;
    if (batch_) batch_->DeleteDirEntry(d.parent, d.name);
  }

  void CheckNlink(InodeId ino, InodeInfo& info, uint32_t want, bool report = true) {
    if (unreadable_.count(ino) || info.attr.nlink == want) return;
    if (report) {
      Problem(FsckProblemKind::kWrongNlink, ino,
              "inode " + Num(ino) + " has nlink " + Num(info.attr.nlink) + ", counted " + Num(want),
              true);
    }
    info.attr.nlink = want;
    if (batch_) batch_->PutInode(info.attr);
  }

  void CheckLastInode() {
    if (last_inode_ < max_ino_) {
      Problem(FsckProblemKind::kLastInodeTooLow, 0,
              "last allocated inode " + Num(last_inode_) + " is below existing inode " +
                  Num(max_ino_) + " (numbers would be reused)",
              true);
      if (batch_) batch_->PutLastInode(max_ino_);
    }
  }

  void CheckCounts() {
    for (auto& [id, r] : refs_) {
      if (r.actual == r.recorded) continue;
      if (r.recorded != UINT64_MAX) {
        Problem(FsckProblemKind::kWrongRefcount, 0,
                "chunk " + id.ToHex() + " has count " + Num(r.recorded) + ", counted " +
                    Num(r.actual) + " references",
                true);
      }
      if (batch_) batch_->SetChunkRefcount(id, r.actual);
    }
  }

  // ---- Pass 3: objects -------------------------------------------------------

  Status CheckObjects() {
    std::unordered_set<ChunkId, ChunkIdHash> present;
    QATQ_RETURN_IF_ERROR(chunks_->ForEach([&](const ChunkId& id, uint64_t size) {
      ++report_->objects;
      report_->object_bytes += size;
      present.insert(id);
      auto it = refs_.find(id);
      if (it == refs_.end() || it->second.actual == 0) {
        Problem(FsckProblemKind::kOrphanObject, 0,
                "object " + id.ToHex() + " (" + Num(size) + " bytes) is not referenced", true);
        if (options_.repair) orphan_objects_.push_back(id);
        return Status::OK();
      }
      if (options_.verify_objects || options_.deep) VerifyObject(id, it->second);
      return Status::OK();
    }));
    for (const auto& [id, r] : refs_) {
      if (r.actual == 0 || present.count(id)) continue;
      Problem(FsckProblemKind::kMissingObject, 0,
              "object " + id.ToHex() + " is referenced " + Num(r.actual) + " times but missing",
              false);
      bad_ids_.insert(id);
    }
    return Status::OK();
  }

  void VerifyObject(const ChunkId& id, const RefInfo& r) {
    std::string record;
    Status s = chunks_->Get(id, &record);
    ChunkRecordInfo info;
    if (s.ok()) s = VerifyChunkRecord(record, &info);
    if (s.ok() && r.has_raw_len && info.raw_len != r.raw_len) {
      s = Status::Corruption("record holds " + Num(info.raw_len) + " bytes, chunk map says " +
                             Num(r.raw_len));
    }
    if (s.ok() && options_.deep) {
      std::string raw;
      s = DecodeChunkRecord(record, &raw);
      if (s.ok() && ChunkId::OfRaw(raw) != id) {
        s = Status::Corruption("decoded bytes do not hash to the object's id");
      }
    }
    ++report_->objects_verified;
    if (!s.ok()) {
      Problem(FsckProblemKind::kCorruptObject, 0, "object " + id.ToHex() + ": " + s.ToString(),
              false);
      bad_ids_.insert(id);
    }
  }

  Status FindDamagedFiles() {
    if (bad_ids_.empty()) return Status::OK();
    std::map<InodeId, uint64_t> bad_chunks;
    QATQ_RETURN_IF_ERROR(meta_->ForEachRaw([&](std::string_view key, std::string_view value) {
      InodeId ino;
      uint64_t index;
      ChunkRef ref;
      if (!ParseChunkMapKey(key, &ino, &index)) return Status::OK();
      if (DecodeChunkRef(value, &ref).ok() && bad_ids_.count(ref.id)) ++bad_chunks[ino];
      return Status::OK();
    }));
    for (const auto& [ino, n] : bad_chunks) {
      report_->damaged_files.push_back(FsckReport::DamagedFile{ino, PathOf(ino), n});
    }
    return Status::OK();
  }

  std::string PathOf(InodeId ino) const {
    std::string path;
    InodeId cur = ino;
    for (int depth = 0; depth < 4096 && cur != kRootInode; ++depth) {
      auto it = parent_of_.find(cur);
      if (it == parent_of_.end() || !it->second->valid) {
        return "<inode " + Num(ino) + ">";
      }
      path = "/" + it->second->name + path;
      cur = it->second->parent;
    }
    if (cur != kRootInode) return "<inode " + Num(ino) + ">";
    return path.empty() ? "/" : path;
  }

  Status CommitRepairs() {
    if (!batch_->empty()) {
      Status s = meta_->Commit(batch_.get(), /*sync=*/true);
      if (!s.ok()) {
        // Nothing applied: report the problems as unrepaired.
        for (FsckProblem& p : report_->problems) p.repaired = false;
        report_->repaired_count = 0;
        return s.WithContext("committing fsck repairs");
      }
    }
    // Objects go only after the index no longer counts them (it never did,
    // for orphans, but a crash must not leave a count naming a deleted one).
    for (const ChunkId& id : orphan_objects_) {
      QATQ_RETURN_IF_ERROR(chunks_->Delete(id));
    }
    return chunks_->Sync();
  }

  Store* const store_;
  MetadataStore* const meta_;
  ChunkStore* const chunks_;
  const FsckOptions& options_;
  FsckReport* const report_;
  std::unique_ptr<MetaBatch> batch_;  // null unless repairing

  std::unordered_map<InodeId, InodeInfo> inodes_;
  std::unordered_set<InodeId> unreadable_;
  std::vector<Dent> dents_;
  std::unordered_map<InodeId, const Dent*> parent_of_;
  std::unordered_map<ChunkId, RefInfo, ChunkIdHash> refs_;
  std::unordered_set<ChunkId, ChunkIdHash> bad_ids_;
  std::vector<ChunkId> orphan_objects_;
  InodeId max_ino_ = 0;
  uint64_t last_inode_ = 0;
};

}  // namespace

Status CheckStore(Store* store, const FsckOptions& options, FsckReport* report) {
  Checker checker(store, options, report);
  return checker.Run();
}

}  // namespace qatq
