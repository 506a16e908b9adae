// The FUSE adapter: libfuse low-level callbacks that translate each request
// into one Filesystem call (fs/filesystem.h) and its Status into one reply
// (fs/errno_map.h). No filesystem logic lives here.
//
// Every callback replies exactly once; exceptions (allocation failure) are
// caught before the reply and answered with EIO, never propagated into C.
#ifndef QATQ_FS_FUSE_OPS_H_
#define QATQ_FS_FUSE_OPS_H_

#include <atomic>
#include <string>

struct fuse_lowlevel_ops;

namespace qatq {

class Filesystem;

// The session userdata.
struct FuseContext {
  Filesystem* fs = nullptr;
  // Entry and attribute cache lifetime given to the kernel, seconds.
  double entry_timeout = 1.0;
  double attr_timeout = 1.0;
  // Absolute mount point, and the kernel readahead (KiB) to set on the
  // mount's bdi once the session is initialised; 0 leaves the kernel's
  // default (128 KiB, i.e. 8 FUSE reads per 1 MiB chunk).
  std::string mountpoint;
  unsigned read_ahead_kb = 1024;
  std::atomic<bool> read_ahead_set{false};
};

// The operation table; userdata must be a FuseContext*.
const fuse_lowlevel_ops& QatqfsLowlevelOps();

}  // namespace qatq

#endif  // QATQ_FS_FUSE_OPS_H_
