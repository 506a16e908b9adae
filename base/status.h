// Status and StatusOr<T>: errors as values, in the manner of LevelDB's Status
// and Abseil's StatusOr. Every fallible function in the core returns one of
// these; errno values appear only at the FUSE edge (fs/errno_map.h) and in
// Status::Posix, which carries an errno for failures that came from the OS or
// that must map to a specific POSIX error.
//
// Thread-safety: a Status is an immutable value; distinct objects may be used
// from different threads without synchronisation.
#ifndef QATQ_BASE_STATUS_H_
#define QATQ_BASE_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace qatq {

class [[nodiscard]] Status {
 public:
  // DO NOT reorder: tests and tools print these names.
  enum class Code : uint8_t {
    kOk = 0,
    kNotFound,         // no such object
    kCorruption,       // bytes failed a format or checksum check
    kInvalidArgument,  // caller passed something unusable (usage errors)
    kNotSupported,     // valid but unimplemented feature (e.g. strategy 0)
    kIOError,          // the OS or a device failed; errno() says how
    kBusy,             // resource is locked or in use (e.g. store mounted)
  };

  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) { return Status(Code::kNotFound, msg); }
  static Status Corruption(std::string_view msg) { return Status(Code::kCorruption, msg); }
  static Status InvalidArgument(std::string_view msg) {
    return Status(Code::kInvalidArgument, msg);
  }
  static Status NotSupported(std::string_view msg) { return Status(Code::kNotSupported, msg); }
  static Status Busy(std::string_view msg) { return Status(Code::kBusy, msg); }
  // An OS failure; `err` is the errno value observed.
  static Status IOError(std::string_view msg, int err = 5 /*EIO*/) {
    return Status(Code::kIOError, msg, err);
  }
  // A POSIX-level outcome that must reach the caller as exactly `err`
  // (ENOENT, EEXIST, ENOTEMPTY, ...). Used by the filesystem core.
  static Status Posix(int err, std::string_view msg);
  // Builds an IOError from the current errno, prefixed by `context`.
  static Status FromErrno(std::string_view context);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsNotSupported() const { return code_ == Code::kNotSupported; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsBusy() const { return code_ == Code::kBusy; }

  // The errno carried by IOError/Posix statuses, 0 otherwise.
  int posix_errno() const { return errno_; }
  const std::string& message() const { return msg_; }

  // "Corruption: checksum mismatch in chunk 3".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>"; OK stays OK.
  Status WithContext(std::string_view prefix) const;

  // Marks an error as deliberately ignored; greppable.
  void IgnoreError() const {}

 private:
  Status(Code code, std::string_view msg, int err = 0) : code_(code), errno_(err), msg_(msg) {}

  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string msg_;
};

// A value of type T or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status s) : v_(std::move(s)) {}  // REQUIRES: !s.ok()
  StatusOr(T value) : v_(std::move(value)) {}

  bool ok() const { return v_.index() == 1; }
  Status status() const { return ok() ? Status::OK() : std::get<0>(v_); }
  // REQUIRES: ok()
  T& value() & { return std::get<1>(v_); }
  const T& value() const& { return std::get<1>(v_); }
  T&& value() && { return std::get<1>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace qatq

// Returns from the enclosing function if `expr` yields a non-OK Status.
#define QATQ_RETURN_IF_ERROR(expr)          \
  do {                                      \
    ::qatq::Status _qatq_st = (expr);       \
    if (!_qatq_st.ok()) return _qatq_st;    \
  } while (0)

#define QATQ_CONCAT_INNER_(a, b) a##b
#define QATQ_CONCAT_(a, b) QATQ_CONCAT_INNER_(a, b)
// `QATQ_ASSIGN_OR_RETURN(auto x, Foo());`
#define QATQ_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto QATQ_CONCAT_(_qatq_sor_, __LINE__) = (expr);                       \
  if (!QATQ_CONCAT_(_qatq_sor_, __LINE__).ok())                           \
    return QATQ_CONCAT_(_qatq_sor_, __LINE__).status();                   \
  lhs = std::move(QATQ_CONCAT_(_qatq_sor_, __LINE__)).value()

#endif  // QATQ_BASE_STATUS_H_
