#include "tools/cli_io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdlib>
#include <cstring>

#include "base/posix_io.h"

namespace qatq::cli {

InputFile::~InputFile() {
  if (map_) munmap(map_, map_len_);
}

Status InputFile::Open(const std::string& path) {
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("cannot open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Status s = Status::FromErrno("cannot stat");
    if (fd != STDIN_FILENO) ::close(fd);
    return s;
  }
  if (S_ISDIR(st.st_mode)) {
    if (fd != STDIN_FILENO) ::close(fd);
    return Status::IOError("is a directory", EISDIR);
  }
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      madvise(m, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
      map_ = m;
      map_len_ = static_cast<size_t>(st.st_size);
      data_ = std::string_view(static_cast<const char*>(m), map_len_);
      if (fd != STDIN_FILENO) ::close(fd);
      return Status::OK();
    }
  }
  // Pipes, terminals, and anything mmap refuses: read it all.
  char tmp[1 << 16];
  for (;;) {
    ssize_t r = ::read(fd, tmp, sizeof tmp);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      Status s = Status::FromErrno("read failed");
      if (fd != STDIN_FILENO) ::close(fd);
      return s;
    }
    if (r == 0) break;
    buf_.append(tmp, static_cast<size_t>(r));
  }
  if (fd != STDIN_FILENO) ::close(fd);
  data_ = buf_;
  return Status::OK();
}

AtomicOutput::~AtomicOutput() { Abandon(); }

Status AtomicOutput::Open(const std::string& path) {
  path_ = path;
  if (path == "-") {
    to_stdout_ = true;
    fd_ = STDOUT_FILENO;
    return Status::OK();
  }
  std::string dir_buf = path;
  std::string dir = dirname(dir_buf.data());
  std::string base_buf = path;
  std::string base = basename(base_buf.data());
  tmp_path_ = dir + "/." + base + ".qatq-tmp-XXXXXX";
  fd_ = mkostemp(tmp_path_.data(), O_CLOEXEC);
  if (fd_ < 0) {
    tmp_path_.clear();
    return Status::FromErrno("cannot create a temporary file in " + dir);
  }
  // mkstemp makes 0600; give the result the usual 0666 & ~umask.
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd_, 0666 & ~mask);
  return Status::OK();
}

Status AtomicOutput::Write(std::string_view bytes) {
  QATQ_RETURN_IF_ERROR(WriteAll(fd_, bytes, "failed"));
  written_ += bytes.size();
  return Status::OK();
}

Status AtomicOutput::Commit() {
  if (to_stdout_) {
    fd_ = -1;
    return Status::OK();
  }
  if (fsync(fd_) != 0) return Status::FromErrno("fsync failed");
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Status::FromErrno("close failed");
  }
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return Status::FromErrno("cannot rename the output into place");
  }
  tmp_path_.clear();
  // Make the rename itself durable.
  std::string dir_buf = path_;
  int dfd = ::open(dirname(dir_buf.data()), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  return Status::OK();
}

void AtomicOutput::Abandon() {
  if (to_stdout_) return;
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!tmp_path_.empty()) {
    ::unlink(tmp_path_.c_str());
    tmp_path_.clear();
  }
}

namespace {

// Milliseconds before the first draw: $QATQ_PROGRESS_DELAY_MS, else 1000.
// Tests set 0 to get a bar from the first update, whatever the machine speed.
int ProgressDelayMs() {
  const char* env = std::getenv("QATQ_PROGRESS_DELAY_MS");
  if (env == nullptr || *env == '\0') return 1000;
  char* end;
  long v = std::strtol(env, &end, 10);
  if (*end != '\0' || v < 0) return 1000;
  return static_cast<int>(std::min(v, 3600L * 1000));
}

// "7s", "2m05s", "1h02m": short enough to keep the line under 80 columns.
std::string FormatEta(double seconds) {
  const uint64_t s = static_cast<uint64_t>(seconds + 0.5);
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
  }
  return buf;
}

}  // namespace

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled && isatty(STDERR_FILENO)),
      delay_(std::chrono::milliseconds(enabled_ ? ProgressDelayMs() : 0)),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() { Finish(); }

void Progress::Update(uint64_t done) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  // Redraw at most every 200 ms (or as often as the first-draw delay, if
  // shorter), so a fast loop does not flood the terminal.
  const auto interval =
      std::min<std::chrono::steady_clock::duration>(delay_, std::chrono::milliseconds(200));
  if (now - start_ < delay_ || (shown_ && now - last_ < interval)) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  done = std::min(done, total_);
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  constexpr int kBarWidth = 20;
  char bar[kBarWidth + 1];
  const int filled = static_cast<int>(frac * kBarWidth);
  for (int i = 0; i < kBarWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kBarWidth] = '\0';
  // Unknown until something is done; 0 at the end.
  const std::string eta = rate > 0 ? FormatEta(static_cast<double>(total_ - done) / rate) : "?";
  std::fprintf(stderr, "\r%s [%s] %5.1f%% %8.1f MB/s ETA %-6s", label_.c_str(), bar,
               100.0 * frac, rate / 1e6, eta.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void Progress::Finish() {
  if (shown_) {
    // Erase the line: the bar is transient, it leaves no trace in the
    // scrollback when the work is done.
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    shown_ = false;
  }
}

}  // namespace qatq::cli
