// qatq-fsx: a random-operation file integrity tester in the spirit of fsx.
//
// It drives one file through a deterministic (seeded) sequence of writes,
// truncates, reads, mmap reads, fsyncs, close/reopen cycles and optional
// remounts, keeps the expected contents in an in-memory sparse model, and
// compares every byte it reads back with the model. On the first mismatch or
// unexpected error it prints the offending bytes, the operations that last
// touched them and the tail of the operation log, then exits 1.
//
// The operation sequence depends only on --seed and the size options, never
// on timing, so a failure reproduces with the same command line.
//
// Exit status: 0 all operations verified, 1 mismatch or I/O error,
// 2 usage error. See docs/RELIABILITY.md.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/reliability/rng.h"

namespace {

using qatq::test::Rng;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

// Chunk sizes the filesystem may use; writes are steered across multiples
// of these so chunk-boundary code paths are hit often.
constexpr uint64_t kBoundaries[] = {64 * kKiB, 128 * kKiB, 256 * kKiB, 512 * kKiB,
                                    1 * kMiB,  2 * kMiB,   4 * kMiB};

struct Options {
  std::string file;
  uint64_t ops = 10000;
  uint64_t seed = 1;
  // Largest file size reached by ordinary writes and truncates.
  uint64_t maxlen = 16 * kMiB;
  // Largest single read or write.
  uint64_t maxop = 4 * kMiB;
  // Sparse writes land in [maxlen, huge_max); 0 disables them.
  uint64_t huge_max = uint64_t{1} << 40;
  uint64_t remount_every = 0;
  std::string remount_cmd;
  bool mmap_reads = true;
  bool mmap_writes = false;
  uint64_t log_tail = 40;
  uint64_t progress = 0;
  bool verbose = false;
  // Self-test: before op N, flip one byte of the file behind the model's
  // back (through a second descriptor); the run must then fail.
  uint64_t inject_corruption = 0;
  // Print the time spent per operation type at the end.
  bool timing = false;
};


// Expected file contents: a size plus 64 KiB pages; a missing page reads as
// zeros. Invariant: every stored byte at or past size_ is zero, so growing
// the file never needs to clear anything.
class SparseModel {
 public:
  static constexpr uint64_t kPage = 64 * kKiB;

  uint64_t size() const { return size_; }
  size_t pages() const { return pages_.size(); }
  // Visits the start offset of every stored page below size().
  template <typename F>
  void ForEachPage(F f) const {
    for (const auto& [index, page] : pages_) {
      if (index * kPage < size_) f(index * kPage);
    }
  }

  void Write(uint64_t off, const uint8_t* data, uint64_t len) {
    while (len > 0) {
      uint64_t index = off / kPage, in = off % kPage;
      uint64_t n = std::min(len, kPage - in);
      auto& page = pages_[index];
      if (!page) page = std::make_unique<uint8_t[]>(kPage);  // value-initialized: zeros
      memcpy(page.get() + in, data, n);
      off += n, data += n, len -= n;
    }
    size_ = std::max(size_, off);
  }

  void Truncate(uint64_t new_size) {
    if (new_size < size_) {
      pages_.erase(pages_.lower_bound((new_size + kPage - 1) / kPage), pages_.end());
      auto it = pages_.find(new_size / kPage);
      if (it != pages_.end()) {
        uint64_t in = new_size % kPage;
        memset(it->second.get() + in, 0, kPage - in);
      }
    }
    size_ = new_size;
  }

  // Bytes [off, off+len) clipped to the file size; returns the count.
  uint64_t Read(uint64_t off, uint64_t len, uint8_t* out) const {
    if (off >= size_) return 0;
    len = std::min(len, size_ - off);
    uint64_t done = 0;
    while (done < len) {
      uint64_t pos = off + done, index = pos / kPage, in = pos % kPage;
      uint64_t n = std::min(len - done, kPage - in);
      auto it = pages_.find(index);
      if (it == pages_.end()) {
        memset(out + done, 0, n);
      } else {
        memcpy(out + done, it->second.get() + in, n);
      }
      done += n;
    }
    return len;
  }

 private:
  uint64_t size_ = 0;
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> pages_;
};

enum class OpType : uint8_t {
  kWrite,
  kHugeWrite,
  kMapWrite,
  kRead,
  kMapRead,
  kTruncate,
  kFsync,
  kFdatasync,
  kReopen,
  kRemount,
};

const char* OpName(OpType t) {
  switch (t) {
    case OpType::kWrite:
      return "write";
    case OpType::kHugeWrite:
      return "hugewrite";
    case OpType::kMapWrite:
      return "mapwrite";
    case OpType::kRead:
      return "read";
    case OpType::kMapRead:
      return "mapread";
    case OpType::kTruncate:
      return "truncate";
    case OpType::kFsync:
      return "fsync";
    case OpType::kFdatasync:
      return "fdatasync";
    case OpType::kReopen:
      return "reopen";
    case OpType::kRemount:
      return "remount";
  }
  return "?";
}

enum class Fill : uint8_t { kRandom, kZero, kTensor, kRuns };

const char* FillName(Fill f) {
  switch (f) {
    case Fill::kRandom:
      return "random";
    case Fill::kZero:
      return "zero";
    case Fill::kTensor:
      return "tensor";
    case Fill::kRuns:
      return "runs";
  }
  return "?";
}

struct OpRecord {
  uint64_t number;
  uint64_t off;
  uint64_t len;
  uint64_t size_before;
  uint64_t size_after;
  OpType type;
  Fill fill;
};

bool Modifies(const OpRecord& r) {
  return r.type == OpType::kWrite || r.type == OpType::kHugeWrite || r.type == OpType::kMapWrite ||
         r.type == OpType::kTruncate;
}

class Fsx {
 public:
  explicit Fsx(const Options& o) : o_(o), rng_(o.seed) {}
  int Run();

 private:
  void Open(bool truncate);
  void Close();
  void Step(uint64_t n);
  void DoWrite(OpType type, uint64_t off, uint64_t len);
  void DoMapWrite(uint64_t off, uint64_t len);
  void DoRead(uint64_t off, uint64_t len);
  void DoMapRead(uint64_t off, uint64_t len);
  void DoTruncate(uint64_t size);
  void DoRemount();
  // Reads back the whole file (or, for huge sparse files, every model page
  // plus samples of the holes) and checks the size.
  void VerifyAll(const char* why);
  void CheckRange(uint64_t off, const uint8_t* got, uint64_t got_len, uint64_t want_len,
                  const char* how);
  void CheckSize(const char* why);

  uint64_t PickLen(uint64_t cap);
  uint64_t PickOffset(uint64_t len, uint64_t limit);
  Fill PickFill();
  void FillBuffer(Fill fill, uint64_t op, uint8_t* buf, uint64_t len);

  void Record(OpType type, uint64_t off, uint64_t len, uint64_t size_before, Fill fill);
  [[noreturn]] void Fail(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  void DumpTail();
  void DumpTouching(uint64_t off);

  const Options o_;
  Rng rng_;
  SparseModel model_;
  int fd_ = -1;
  uint64_t opno_ = 0;
  std::vector<OpRecord> log_;
  std::vector<uint8_t> buf_, want_;
  uint64_t page_size_ = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  // Counters for the summary line.
  uint64_t counts_[static_cast<int>(OpType::kRemount) + 1] = {};
  double seconds_[static_cast<int>(OpType::kRemount) + 1] = {};
  uint64_t bytes_written_ = 0, bytes_verified_ = 0;
};

void Fsx::Fail(const char* fmt, ...) {
  fflush(stdout);
  fprintf(stderr, "qatq-fsx: FAILURE at op %" PRIu64 " (seed %" PRIu64 "): ", opno_, o_.seed);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  DumpTail();
  fprintf(stderr,
          "reproduce: qatq-fsx --file %s --seed %" PRIu64 " --ops %" PRIu64 " --maxlen %" PRIu64
          " --maxop %" PRIu64 " --huge-max %" PRIu64 "%s%s\n",
          o_.file.c_str(), o_.seed, o_.ops, o_.maxlen, o_.maxop, o_.huge_max,
          o_.mmap_reads ? "" : " --no-mmap", o_.mmap_writes ? " --mapwrite" : "");
  exit(1);
}

void Fsx::DumpTail() {
  size_t from = log_.size() > o_.log_tail ? log_.size() - o_.log_tail : 0;
  fprintf(stderr, "last %zu operations:\n", log_.size() - from);
  for (size_t i = from; i < log_.size(); ++i) {
    const OpRecord& r = log_[i];
    fprintf(
        stderr,
        "  %8" PRIu64 " %-9s off=0x%" PRIx64 " len=0x%" PRIx64 " size 0x%" PRIx64 " -> 0x%" PRIx64
        "%s%s\n",
        r.number, OpName(r.type), r.off, r.len, r.size_before, r.size_after,
        (r.type == OpType::kWrite || r.type == OpType::kHugeWrite || r.type == OpType::kMapWrite)
            ? " fill="
            : "",
        (r.type == OpType::kWrite || r.type == OpType::kHugeWrite || r.type == OpType::kMapWrite)
            ? FillName(r.fill)
            : "");
  }
}

// The most recent operations that decided the byte at `off`.
void Fsx::DumpTouching(uint64_t off) {
  int shown = 0;
  fprintf(stderr, "last operations that determined offset 0x%" PRIx64 ":\n", off);
  for (size_t i = log_.size(); i-- > 0 && shown < 5;) {
    const OpRecord& r = log_[i];
    if (!Modifies(r)) continue;
    bool touches = r.type == OpType::kTruncate ? (off >= std::min(r.size_before, r.size_after) &&
                                                  off < std::max(r.size_before, r.size_after))
                                               : (off >= r.off && off < r.off + r.len);
    if (!touches) continue;
    fprintf(stderr, "  %8" PRIu64 " %-9s off=0x%" PRIx64 " len=0x%" PRIx64 " size->0x%" PRIx64 "\n",
            r.number, OpName(r.type), r.off, r.len, r.size_after);
    ++shown;
  }
  if (shown == 0) fprintf(stderr, "  (none: the byte was never written, expected zero)\n");
}

void Fsx::Record(OpType type, uint64_t off, uint64_t len, uint64_t size_before, Fill fill) {
  log_.push_back({opno_, off, len, size_before, model_.size(), type, fill});
  ++counts_[static_cast<int>(type)];
  if (o_.verbose) {
    fprintf(stderr, "%8" PRIu64 " %-9s off=0x%" PRIx64 " len=0x%" PRIx64 " size=0x%" PRIx64 "\n",
            opno_, OpName(type), off, len, model_.size());
  }
}

uint64_t Fsx::PickLen(uint64_t cap) {
  cap = std::max<uint64_t>(cap, 1);
  uint64_t r = rng_.Below(100), len;
  if (r < 60) {
    len = rng_.Range(1, 4 * kKiB);
  } else if (r < 90) {
    len = rng_.Range(1, 160 * kKiB);
  } else if (r < 98) {
    len = rng_.Range(1, 1 * kMiB);
  } else {
    len = rng_.Range(1, o_.maxop);
  }
  return std::min({len, cap, o_.maxop});
}

// An offset such that [off, off+len) fits below `limit` when possible; half
// of the time the range straddles a multiple of one of kBoundaries.
uint64_t Fsx::PickOffset(uint64_t len, uint64_t limit) {
  uint64_t room = limit > len ? limit - len : 0;
  if (rng_.OneIn(2)) {
    uint64_t b = kBoundaries[rng_.Below(std::size(kBoundaries))];
    uint64_t multiples = limit / b;
    if (multiples > 0) {
      uint64_t edge = rng_.Range(1, multiples) * b;
      uint64_t back = rng_.Below(std::min<uint64_t>(len, 8 * kKiB) + 1);
      uint64_t off = edge > back ? edge - back : 0;
      if (rng_.OneIn(4)) off = edge;  // starts exactly on the boundary
      return std::min(off, room);
    }
  }
  return rng_.Below(room + 1);
}

Fill Fsx::PickFill() {
  uint64_t r = rng_.Below(100);
  if (r < 40) return Fill::kRandom;
  if (r < 55) return Fill::kZero;
  if (r < 85) return Fill::kTensor;
  return Fill::kRuns;
}

// Data for operation `op`: a function of (seed, op) only.
void Fsx::FillBuffer(Fill fill, uint64_t op, uint8_t* buf, uint64_t len) {
  Rng g(o_.seed * 0x100000001b3ull ^ (op + 1) * 0x9e3779b97f4a7c15ull);
  switch (fill) {
    case Fill::kZero:
      memset(buf, 0, len);
      break;
    case Fill::kRandom:
      for (uint64_t i = 0; i < len; i += 8) {
        uint64_t v = g.Next();
        memcpy(buf + i, &v, std::min<uint64_t>(8, len - i));
      }
      break;
    case Fill::kTensor:
      // bf16-like little-endian pairs: random mantissa, narrow exponent.
      for (uint64_t i = 0; i < len; i += 8) {
        uint64_t v = g.Next();
        uint8_t e[8];
        for (int k = 0; k < 8; k += 2) {
          e[k] = static_cast<uint8_t>(v >> (8 * k));
          e[k + 1] = static_cast<uint8_t>(0x3c + ((v >> (8 * k + 8)) & 7)) |
                     static_cast<uint8_t>((v >> (8 * k + 11)) & 0x80);
        }
        memcpy(buf + i, e, std::min<uint64_t>(8, len - i));
      }
      break;
    case Fill::kRuns:
      for (uint64_t i = 0; i < len;) {
        uint64_t v = g.Next();
        uint64_t run = std::min<uint64_t>(len - i, 1 + (v >> 8) % 4096);
        memset(buf + i, static_cast<int>(v & 0xff), run);
        i += run;
      }
      break;
  }
}

void Fsx::Open(bool truncate) {
  int flags = O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0);
  do {
    fd_ = open(o_.file.c_str(), flags, 0644);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) Fail("open(%s): %s", o_.file.c_str(), strerror(errno));
}

void Fsx::Close() {
  if (fd_ >= 0 && close(fd_) != 0) Fail("close: %s", strerror(errno));
  fd_ = -1;
}

void Fsx::CheckSize(const char* why) {
  struct stat st;
  if (fstat(fd_, &st) != 0) Fail("fstat (%s): %s", why, strerror(errno));
  if (static_cast<uint64_t>(st.st_size) != model_.size()) {
    Fail("size mismatch (%s): file has 0x%" PRIx64 " bytes, expected 0x%" PRIx64, why,
         static_cast<uint64_t>(st.st_size), model_.size());
  }
}

// `got` holds got_len bytes read at `off`; the model says want_len bytes
// exist there.
void Fsx::CheckRange(uint64_t off, const uint8_t* got, uint64_t got_len, uint64_t want_len,
                     const char* how) {
  want_.resize(std::max<uint64_t>(want_len, 1));
  model_.Read(off, want_len, want_.data());
  uint64_t n = std::min(got_len, want_len);
  if (got_len == want_len && (n == 0 || memcmp(got, want_.data(), n) == 0)) {
    bytes_verified_ += n;
    return;
  }
  uint64_t first = 0;
  while (first < n && got[first] == want_[first]) ++first;
  if (first == n) {
    Fail("%s at 0x%" PRIx64 ": got %" PRIu64 " bytes, expected %" PRIu64
         " (file size in model 0x%" PRIx64 ")",
         how, off, got_len, want_len, model_.size());
  }
  uint64_t bad = 0;
  for (uint64_t i = first; i < n; ++i) bad += got[i] != want_[i];
  fprintf(stderr,
          "qatq-fsx: %s mismatch at offset 0x%" PRIx64 " (%" PRIu64 " of %" PRIu64
          " bytes differ from there)\n",
          how, off + first, bad, n - first);
  uint64_t from = first >= 8 ? first - 8 : 0, to = std::min(n, first + 24);
  fprintf(stderr, "  offset            expected got\n");
  for (uint64_t i = from; i < to; ++i) {
    fprintf(stderr, "  0x%014" PRIx64 "  %02x       %02x%s\n", off + i, want_[i], got[i],
            want_[i] != got[i] ? "  <--" : "");
  }
  DumpTouching(off + first);
  Fail("%s mismatch at offset 0x%" PRIx64, how, off + first);
}

void Fsx::DoWrite(OpType type, uint64_t off, uint64_t len) {
  Fill fill = PickFill();
  buf_.resize(len);
  FillBuffer(fill, opno_, buf_.data(), len);
  uint64_t done = 0;
  while (done < len) {
    ssize_t w = pwrite(fd_, buf_.data() + done, len - done, static_cast<off_t>(off + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      Fail("%s at 0x%" PRIx64 " len 0x%" PRIx64 ": %s", OpName(type), off + done, len - done,
           w < 0 ? strerror(errno) : "wrote 0 bytes");
    }
    done += static_cast<uint64_t>(w);
  }
  uint64_t before = model_.size();
  model_.Write(off, buf_.data(), len);
  bytes_written_ += len;
  Record(type, off, len, before, fill);
}

void Fsx::DoMapWrite(uint64_t off, uint64_t len) {
  uint64_t before = model_.size();
  // A shared mapping cannot extend the file: grow it first, as fsx does.
  if (off + len > model_.size()) {
    if (ftruncate(fd_, static_cast<off_t>(off + len)) != 0) {
      Fail("mapwrite ftruncate to 0x%" PRIx64 ": %s", off + len, strerror(errno));
    }
    model_.Truncate(off + len);
  }
  Fill fill = PickFill();
  buf_.resize(len);
  FillBuffer(fill, opno_, buf_.data(), len);
  uint64_t start = off / page_size_ * page_size_;
  uint64_t map_len = off + len - start;
  void* p =
      mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, static_cast<off_t>(start));
  if (p == MAP_FAILED) Fail("mapwrite mmap: %s", strerror(errno));
  memcpy(static_cast<uint8_t*>(p) + (off - start), buf_.data(), len);
  if (msync(p, map_len, MS_SYNC) != 0) Fail("mapwrite msync: %s", strerror(errno));
  if (munmap(p, map_len) != 0) Fail("mapwrite munmap: %s", strerror(errno));
  model_.Write(off, buf_.data(), len);
  bytes_written_ += len;
  Record(OpType::kMapWrite, off, len, before, fill);
}

void Fsx::DoRead(uint64_t off, uint64_t len) {
  buf_.resize(std::max<uint64_t>(len, 1));
  uint64_t done = 0;
  while (done < len) {
    ssize_t r = pread(fd_, buf_.data() + done, len - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      Fail("read at 0x%" PRIx64 " len 0x%" PRIx64 ": %s", off + done, len - done, strerror(errno));
    if (r == 0) break;
    done += static_cast<uint64_t>(r);
  }
  Record(OpType::kRead, off, len, model_.size(), Fill::kZero);
  uint64_t want = off >= model_.size() ? 0 : std::min(len, model_.size() - off);
  CheckRange(off, buf_.data(), done, want, "read");
}

void Fsx::DoMapRead(uint64_t off, uint64_t len) {
  if (model_.size() == 0) return;
  // Stay inside the file: touching a page past EOF raises SIGBUS.
  off = std::min(off, model_.size() - 1);
  len = std::min(len, model_.size() - off);
  uint64_t start = off / page_size_ * page_size_;
  uint64_t map_len = off + len - start;
  void* p = mmap(nullptr, map_len, PROT_READ, MAP_SHARED, fd_, static_cast<off_t>(start));
  if (p == MAP_FAILED) Fail("mapread mmap at 0x%" PRIx64 ": %s", start, strerror(errno));
  buf_.resize(len);
  memcpy(buf_.data(), static_cast<uint8_t*>(p) + (off - start), len);
  if (munmap(p, map_len) != 0) Fail("mapread munmap: %s", strerror(errno));
  Record(OpType::kMapRead, off, len, model_.size(), Fill::kZero);
  CheckRange(off, buf_.data(), len, len, "mapread");
}

void Fsx::DoTruncate(uint64_t size) {
  uint64_t before = model_.size();
  if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    Fail("ftruncate 0x%" PRIx64 " -> 0x%" PRIx64 ": %s", before, size, strerror(errno));
  }
  model_.Truncate(size);
  Record(OpType::kTruncate, 0, size, before, Fill::kZero);
}

void Fsx::DoRemount() {
  Close();
  fflush(stdout);
  fflush(stderr);
  int st = system(o_.remount_cmd.c_str());
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    Fail("remount command failed (status %d): %s", st, o_.remount_cmd.c_str());
  }
  Record(OpType::kRemount, 0, 0, model_.size(), Fill::kZero);
  Open(false);
  VerifyAll("after remount");
}

void Fsx::VerifyAll(const char* why) {
  CheckSize(why);
  const uint64_t size = model_.size();
  constexpr uint64_t kBlock = 1 * kMiB;
  std::vector<uint8_t> block(kBlock);
  auto check = [&](uint64_t off, uint64_t len) {
    len = std::min(len, size - off);
    uint64_t done = 0;
    while (done < len) {
      ssize_t r = pread(fd_, block.data() + done, len - done, static_cast<off_t>(off + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) Fail("verify read at 0x%" PRIx64 " (%s): %s", off + done, why, strerror(errno));
      if (r == 0) break;
      done += static_cast<uint64_t>(r);
    }
    std::string how = std::string("verify (") + why + ")";
    CheckRange(off, block.data(), done, len, how.c_str());
  };
  if (size <= 4 * o_.maxlen) {
    for (uint64_t off = 0; off < size; off += kBlock) check(off, kBlock);
    return;
  }
  // Huge sparse file: every data page, samples of the holes, and the tail.
  model_.ForEachPage([&](uint64_t off) { check(off, SparseModel::kPage); });
  Rng sampler(o_.seed ^ opno_);
  for (int i = 0; i < 16; ++i) check(sampler.Below(size), 64 * kKiB);
  check(size > 4 * kKiB ? size - 4 * kKiB : 0, 4 * kKiB);
}

void Fsx::Step(uint64_t n) {
  opno_ = n;
  if (n == o_.inject_corruption && model_.size() > 0) {
    uint64_t off = rng_.Below(std::min(model_.size(), o_.maxlen));
    int fd = open(o_.file.c_str(), O_RDWR | O_CLOEXEC);
    uint8_t b = 0;
    if (fd < 0 || pread(fd, &b, 1, static_cast<off_t>(off)) != 1) Fail("inject: read failed");
    b ^= 0x5a;
    if (pwrite(fd, &b, 1, static_cast<off_t>(off)) != 1 || close(fd) != 0) {
      Fail("inject: write failed");
    }
    fprintf(stderr, "qatq-fsx: injected corruption at offset 0x%" PRIx64 "\n", off);
    VerifyAll("after injected corruption");
  }
  if (o_.remount_every > 0 && n % o_.remount_every == 0) {
    DoRemount();
    return;
  }
  const uint64_t size = model_.size();
  uint64_t r = rng_.Below(1000);
  if (r < 330) {  // write
    uint64_t len = PickLen(o_.maxlen);
    DoWrite(OpType::kWrite, PickOffset(len, o_.maxlen), len);
  } else if (r < 340) {  // sparse write far past the ordinary range
    if (o_.huge_max <= o_.maxlen + 1) return Step(n);
    uint64_t len = rng_.Range(1, 256 * kKiB);
    uint64_t span = o_.huge_max - o_.maxlen - len;
    uint64_t off = o_.maxlen + rng_.Below(span);
    if (rng_.OneIn(2)) off = off / kBoundaries[6] * kBoundaries[6] + kBoundaries[6] - len / 2;
    DoWrite(OpType::kHugeWrite, off, len);
  } else if (r < 370) {  // write through a shared mapping
    if (!o_.mmap_writes) return Step(n);
    uint64_t len = PickLen(1 * kMiB);
    DoMapWrite(PickOffset(len, o_.maxlen), len);
  } else if (r < 660) {  // read, often near EOF
    uint64_t len = PickLen(o_.maxlen);
    uint64_t off;
    if (size > 0 && rng_.OneIn(4)) {
      off = size - std::min(size, rng_.Below(len + 1));
    } else {
      off = PickOffset(len, std::max(size, len) + 4 * kKiB);
    }
    DoRead(off, len);
  } else if (r < 750) {  // mmap read
    if (!o_.mmap_reads) return Step(n);
    uint64_t len = PickLen(std::min<uint64_t>(o_.maxlen, 2 * kMiB));
    DoMapRead(size > 0 && size > o_.maxlen ? rng_.Below(o_.maxlen) : PickOffset(len, size), len);
  } else if (r < 880) {  // truncate: shrink or grow, often onto a boundary
    uint64_t to;
    if (size > o_.maxlen || rng_.OneIn(2)) {
      to = rng_.Below(std::min(size, o_.maxlen) + 1);
    } else {
      to = rng_.Range(size, o_.maxlen);
    }
    if (rng_.OneIn(3)) {
      uint64_t b = kBoundaries[rng_.Below(std::size(kBoundaries))];
      to = to / b * b + (rng_.OneIn(2) ? 0 : rng_.Below(3));
      to = std::min(to, o_.maxlen);
    }
    DoTruncate(to);
  } else if (r < 930) {
    if (fsync(fd_) != 0) Fail("fsync: %s", strerror(errno));
    Record(OpType::kFsync, 0, 0, size, Fill::kZero);
  } else if (r < 960) {
    if (fdatasync(fd_) != 0) Fail("fdatasync: %s", strerror(errno));
    Record(OpType::kFdatasync, 0, 0, size, Fill::kZero);
  } else if (r < 995) {  // read a random range through a fresh mapping
    if (!o_.mmap_reads || size == 0) return Step(n);
    DoMapRead(rng_.Below(std::min(size, o_.maxlen)), PickLen(256 * kKiB));
  } else {  // close and reopen, then read everything back
    Close();
    Open(false);
    Record(OpType::kReopen, 0, 0, size, Fill::kZero);
    VerifyAll("after reopen");
  }
}

int Fsx::Run() {
  Open(true);
  for (uint64_t n = 1; n <= o_.ops; ++n) {
    auto t0 = std::chrono::steady_clock::now();
    size_t logged = log_.size();
    Step(n);
    if (o_.timing && log_.size() > logged) {
      seconds_[static_cast<int>(log_.back().type)] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (o_.progress > 0 && n % o_.progress == 0) {
      printf("qatq-fsx: %" PRIu64 " ops, size 0x%" PRIx64 "\n", n, model_.size());
      fflush(stdout);
    }
  }
  opno_ = o_.ops + 1;
  if (fsync(fd_) != 0) Fail("final fsync: %s", strerror(errno));
  Close();
  Open(false);
  VerifyAll("final");
  Close();
  printf("qatq-fsx: %" PRIu64 " ops ok, seed %" PRIu64 ":", o_.ops, o_.seed);
  for (int t = 0; t <= static_cast<int>(OpType::kRemount); ++t) {
    if (counts_[t]) printf(" %s=%" PRIu64, OpName(static_cast<OpType>(t)), counts_[t]);
  }
  printf("; %" PRIu64 " MiB written, %" PRIu64 " MiB verified, 0 mismatches\n",
         bytes_written_ >> 20, bytes_verified_ >> 20);
  if (o_.timing) {
    printf("qatq-fsx: seconds per operation type:");
    for (int t = 0; t <= static_cast<int>(OpType::kRemount); ++t) {
      if (counts_[t]) printf(" %s=%.2f", OpName(static_cast<OpType>(t)), seconds_[t]);
    }
    printf("\n");
  }
  return 0;
}

bool ParseSize(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno != 0 || end == s) return false;
  uint64_t mult = 1;
  switch (*end) {
    case 'k':
    case 'K':
      mult = kKiB;
      ++end;
      break;
    case 'm':
    case 'M':
      mult = kMiB;
      ++end;
      break;
    case 'g':
    case 'G':
      mult = kMiB * kKiB;
      ++end;
      break;
    case 't':
    case 'T':
      mult = kMiB * kMiB;
      ++end;
      break;
    default:
      break;
  }
  if (*end != '\0') return false;
  *out = v * mult;
  return true;
}

void Usage() {
  fprintf(stderr,
          "usage: qatq-fsx --file PATH [options]\n"
          "  --ops N            operations to run (default 10000)\n"
          "  --seed S           random seed; same seed, same operations (default 1)\n"
          "  --maxlen BYTES     largest ordinary file size (default 16M)\n"
          "  --maxop BYTES      largest single read/write (default 4M)\n"
          "  --huge-max BYTES   sparse writes land below this offset; 0 = off (default 1T)\n"
          "  --remount-every N  every N ops: close, run --remount-cmd, reopen, verify\n"
          "  --remount-cmd CMD  shell command that remounts the filesystem\n"
          "  --no-mmap          no mmap reads\n"
          "  --mapwrite         also write through shared mappings (msync)\n"
          "  --log-tail N       operations printed on failure (default 40)\n"
          "  --progress N       print a line every N ops\n"
          "  -v                 log every operation to stderr\n"
          "  --timing           print seconds spent per operation type\n"
          "  --inject-corruption N  self-test: corrupt one byte before op N (must fail)\n"
          "sizes take K/M/G/T suffixes (powers of 1024)\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        fprintf(stderr, "qatq-fsx: %s needs a value\n", name);
        exit(2);
      }
      return argv[++i];
    };
    auto size = [&](const char* name, uint64_t* out) {
      const char* v = value(name);
      if (!ParseSize(v, out)) {
        fprintf(stderr, "qatq-fsx: bad value for %s: %s\n", name, v);
        exit(2);
      }
    };
    if (a == "--file")
      o.file = value("--file");
    else if (a == "--ops")
      size("--ops", &o.ops);
    else if (a == "--seed")
      size("--seed", &o.seed);
    else if (a == "--maxlen")
      size("--maxlen", &o.maxlen);
    else if (a == "--maxop")
      size("--maxop", &o.maxop);
    else if (a == "--huge-max")
      size("--huge-max", &o.huge_max);
    else if (a == "--remount-every")
      size("--remount-every", &o.remount_every);
    else if (a == "--remount-cmd")
      o.remount_cmd = value("--remount-cmd");
    else if (a == "--no-mmap")
      o.mmap_reads = false;
    else if (a == "--mapwrite")
      o.mmap_writes = true;
    else if (a == "--log-tail")
      size("--log-tail", &o.log_tail);
    else if (a == "--progress")
      size("--progress", &o.progress);
    else if (a == "-v" || a == "--verbose")
      o.verbose = true;
    else if (a == "--timing")
      o.timing = true;
    else if (a == "--inject-corruption")
      size("--inject-corruption", &o.inject_corruption);
    else if (a == "-h" || a == "--help") {
      Usage();
      return 0;
    } else {
      fprintf(stderr, "qatq-fsx: unknown argument %s\n", argv[i]);
      Usage();
      return 2;
    }
  }
  if (o.file.empty() || o.maxlen < 4 * kKiB || o.maxop == 0 ||
      (o.huge_max != 0 && o.huge_max < o.maxlen + 512 * kKiB) ||
      (o.remount_every > 0 && o.remount_cmd.empty())) {
    fprintf(stderr,
            "qatq-fsx: need --file, --maxlen >= 4K, --maxop > 0, --huge-max 0 or >= "
            "maxlen+512K, and --remount-cmd with --remount-every\n");
    return 2;
  }
  o.maxop = std::min(o.maxop, o.maxlen);
  return Fsx(o).Run();
}
