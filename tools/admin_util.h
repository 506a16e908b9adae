// Helpers shared by the qatqfs admin commands (tools/qatqfs_admin.h):
// finding qatqfs mounts in /proc/self/mountinfo, resolving a path inside a
// store, and putting chunk objects into the chunk directory of a store that
// a daemon may have open.
#ifndef QATQ_TOOLS_ADMIN_UTIL_H_
#define QATQ_TOOLS_ADMIN_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "index/metadata_store.h"
#include "index/types.h"

namespace qatq::admin {

struct QatqfsMount {
  std::string mount_point;  // absolute, unescaped
  std::string store;        // the mount source: the daemon sets fsname=<store realpath>
  bool read_only = false;
};

// Every mount of type fuse.qatqfs visible to this process.
std::vector<QatqfsMount> ListQatqfsMounts();

// The qatqfs mount whose mount point is the longest prefix of `abs_path`;
// *rel is the rest ("/" for the mount point itself). False if none.
bool FindMountOf(const std::string& abs_path, QatqfsMount* mount, std::string* rel);

// A mount of the store at `abs_store` (compared with the mount source).
bool FindMountOfStore(const std::string& abs_store, QatqfsMount* mount);

// realpath(path) if it exists, else realpath(dirname) + "/" + basename;
// `path` unchanged if the directory does not exist either.
std::string AbsPath(const std::string& path);

// Resolves `rel` ("/a/b", components separated by '/', no symlinks
// followed) from the root of `meta`. NotFound names the missing component.
Status ResolvePath(MetadataStore* meta, const std::string& rel, InodeAttr* attr);

// Output helpers.
std::string JsonEscape(std::string_view s);
std::string HumanBytes(uint64_t bytes);

}  // namespace qatq::admin

#endif  // QATQ_TOOLS_ADMIN_UTIL_H_
