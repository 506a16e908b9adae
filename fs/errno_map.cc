#include "fs/errno_map.h"

#include <cerrno>

namespace qatq {

int ToErrno(const Status& s) {
  if (s.ok()) return 0;
  if (s.posix_errno() > 0) return s.posix_errno();
  switch (s.code()) {
    case Status::Code::kOk:
      return 0;
    case Status::Code::kNotFound:
      return ENOENT;
    case Status::Code::kCorruption:
      return EIO;
    case Status::Code::kInvalidArgument:
      return EINVAL;
    case Status::Code::kNotSupported:
      return EOPNOTSUPP;
    case Status::Code::kIOError:
      return EIO;
    case Status::Code::kBusy:
      return EBUSY;
  }
  return EIO;
}

}  // namespace qatq
