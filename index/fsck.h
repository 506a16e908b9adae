// Store consistency check (`qatqfs fsck`): verifies the invariants of
// docs/STORE.md over the whole metadata index and every chunk object, and
// optionally repairs what can be repaired without guessing.
//
// Checks:
//   index      every key and value decodes; the root inode is a directory;
//              N >= every inode number
//   tree       every dentry names an existing inode of the dentry's type in
//              an existing directory; nlink = number of names (directories:
//              2 + subdirectories); every inode is reachable from the root
//              or listed as an orphan; no directory has two names
//   files      chunk map entries belong to existing regular files, lie below
//              the file size and are not longer than the file's chunk size
//   counts     R<id> equals the number of chunk map entries naming id
//   objects    every referenced object exists and its record verifies
//              (VerifyChunkRecord; with deep, decodes and checks the id);
//              objects nobody references are orphans
//
// Repair (FsckOptions::repair, needs a store open for writing): deletes
// dangling dentries, xattrs and chunk map entries of missing inodes, and
// chunk map entries beyond EOF; fixes dentry types, nlink, reference counts
// and N; turns unreachable inodes into orphans (the next mount releases them
// and their chunks); deletes orphan objects. It never deletes a chunk map
// entry whose object is missing or corrupt: such files are listed in
// FsckReport::damaged_files as unrecoverable, so a backup can restore them.
//
// Thread-safety: CheckStore must be the only user of a writable store while
// repairing. A read-only check of a mounted store is allowed; objects being
// written at that moment may show as orphans.
#ifndef QATQ_INDEX_FSCK_H_
#define QATQ_INDEX_FSCK_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "index/store.h"

namespace qatq {

struct FsckOptions {
  // Fix what can be fixed (see above). Requires !store->read_only().
  // Default: false
  bool repair = false;
  // Read every referenced object and check its record checksum.
  // Default: true
  bool verify_objects = true;
  // Also decode every object and check that XXH3-128 of the decoded bytes
  // is its id and the length matches the chunk map (slow: full decode).
  // Default: false
  bool deep = false;
  // Problems kept in FsckReport::problems; more are only counted.
  // Default: 10000
  size_t max_problems = 10000;
  // Called with a short phase description ("scanning index", ...); may be
  // empty.
  std::function<void(const std::string&)> progress;
};

enum class FsckProblemKind : uint8_t {
  kCorruptEntry = 0,      // an index key or value does not decode
  kMissingRoot,           // root inode missing or not a directory
  kDanglingDirEntry,      // dentry names a missing inode
  kDirEntryInBadParent,   // dentry's parent is missing or not a directory
  kDirEntryTypeMismatch,  // dentry type differs from the inode's
  kWrongNlink,            // nlink differs from the counted names
  kUnreachableInode,      // no name and not an orphan
  kMultiplyLinkedDir,     // a directory with more than one name
  kBadOrphan,             // orphan key for a missing inode or one with names
  kDanglingXattr,         // xattr of a missing inode
  kDanglingChunkMap,      // chunk map entry of a missing / non-regular inode
  kChunkBeyondEof,        // chunk map entry at or past the file size
  kBadChunkLength,        // raw_len > chunk size, or chunk size 0 with chunks
  kWrongRefcount,         // R<id> differs from the counted references
  kMissingObject,         // a referenced object does not exist
  kCorruptObject,         // a referenced object fails verification
  kOrphanObject,          // an object nobody references
  kLastInodeTooLow,       // N below an existing inode number
};

// "corrupt-entry", "dangling-dentry", ...
const char* FsckProblemName(FsckProblemKind kind);

struct FsckProblem {
  FsckProblemKind kind;
  InodeId ino = 0;     // when the problem concerns one inode
  std::string detail;  // human-readable, names keys/paths/ids
  bool repaired = false;
};

struct FsckReport {
  // What was examined.
  uint64_t inodes = 0;
  uint64_t directories = 0;
  uint64_t regular_files = 0;
  uint64_t dir_entries = 0;
  uint64_t chunk_refs = 0;
  uint64_t objects = 0;  // objects in the chunk store
  uint64_t object_bytes = 0;
  uint64_t objects_verified = 0;

  uint64_t problem_count = 0;  // all problems, also those not kept below
  uint64_t repaired_count = 0;
  std::vector<FsckProblem> problems;

  // Files whose data cannot be fully read (missing or corrupt objects),
  // with a path from the root where one exists ("<inode N>" otherwise).
  struct DamagedFile {
    InodeId ino = 0;
    std::string path;
    uint64_t bad_chunks = 0;
  };
  std::vector<DamagedFile> damaged_files;

  bool clean() const { return problem_count == 0; }
  // Problems not repaired (repair leaves damaged files and corrupt entries).
  uint64_t unrepaired() const { return problem_count - repaired_count; }
  // Multi-line human-readable summary for the CLI.
  std::string Summary() const;
};

// Checks `store` and fills *report. Returns OK when the check itself ran to
// the end, whatever it found (see report->clean()); non-OK only when it
// could not (I/O errors reading the index or listing objects, or repair
// requested on a read-only store: InvalidArgument). With repair, fixes are
// committed in a synced batch before orphan objects are deleted.
Status CheckStore(Store* store, const FsckOptions& options, FsckReport* report);

}  // namespace qatq

#endif  // QATQ_INDEX_FSCK_H_
