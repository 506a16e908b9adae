// The one place where Status values become errno values for the kernel.
// The filesystem core (fs/filesystem.h) reports every outcome as a Status;
// fs/fuse_ops.cc replies with ToErrno(status).
#ifndef QATQ_FS_ERRNO_MAP_H_
#define QATQ_FS_ERRNO_MAP_H_

#include "base/status.h"

namespace qatq {

// OK -> 0. A Status carrying an errno (Posix, IOError from the OS) -> that
// errno. Otherwise by code: NotFound -> ENOENT, Corruption -> EIO,
// InvalidArgument -> EINVAL, NotSupported -> EOPNOTSUPP, Busy -> EBUSY,
// IOError without errno -> EIO.
int ToErrno(const Status& s);

}  // namespace qatq

#endif  // QATQ_FS_ERRNO_MAP_H_
