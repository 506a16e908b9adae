#include "base/status.h"

#include <cerrno>
#include <cstring>

namespace qatq {

namespace {
const char* CodeName(Status::Code c) {
  switch (c) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kNotFound: return "NotFound";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kInvalidArgument: return "Invalid argument";
    case Status::Code::kNotSupported: return "Not supported";
    case Status::Code::kIOError: return "IO error";
    case Status::Code::kBusy: return "Busy";
  }
  return "Unknown";
}
}  // namespace

Status Status::Posix(int err, std::string_view msg) {
  return Status(err == ENOENT ? Code::kNotFound : Code::kIOError, msg, err);
}

Status Status::FromErrno(std::string_view context) {
  int err = errno;
  std::string m(context);
  m += ": ";
  m += std::strerror(err);
  return Status(err == ENOENT ? Code::kNotFound : Code::kIOError, m, err);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = CodeName(code_);
  s += ": ";
  s += msg_;
  return s;
}

Status Status::WithContext(std::string_view prefix) const {
  if (ok()) return *this;
  std::string m(prefix);
  m += ": ";
  m += msg_;
  return Status(code_, m, errno_);
}

}  // namespace qatq
