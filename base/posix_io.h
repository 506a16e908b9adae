// Small POSIX I/O helpers that report failures as Status values.
#ifndef QATQ_BASE_POSIX_IO_H_
#define QATQ_BASE_POSIX_IO_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace qatq {

// Writes all of `data` to `fd`, retrying short writes and EINTR. On
// failure the error names `what` (a path, usually) and the errno; some of
// the data may have been written.
Status WriteAll(int fd, std::string_view data, const std::string& what);

}  // namespace qatq

#endif  // QATQ_BASE_POSIX_IO_H_
