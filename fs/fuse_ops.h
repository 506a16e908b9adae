// The FUSE adapter: libfuse low-level callbacks that translate each request
// into one Filesystem call (fs/filesystem.h) and its Status into one reply
// (fs/errno_map.h). No filesystem logic lives here.
//
// Every callback replies exactly once; exceptions (allocation failure) are
// caught before the reply and answered with EIO, never propagated into C.
#ifndef QATQ_FS_FUSE_OPS_H_
#define QATQ_FS_FUSE_OPS_H_

struct fuse_lowlevel_ops;

namespace qatq {

class Filesystem;

// The session userdata.
struct FuseContext {
  Filesystem* fs = nullptr;
  // Entry and attribute cache lifetime given to the kernel, seconds.
  double entry_timeout = 1.0;
  double attr_timeout = 1.0;
};

// The operation table; userdata must be a FuseContext*.
const fuse_lowlevel_ops& QatqfsLowlevelOps();

}  // namespace qatq

#endif  // QATQ_FS_FUSE_OPS_H_
