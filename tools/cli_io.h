// File plumbing for the qatq CLI: inputs read through mmap (or stdin into
// memory), outputs written atomically (temp file in the target directory,
// fsync, rename), and a TTY-only progress line.
#ifndef QATQ_TOOLS_CLI_IO_H_
#define QATQ_TOOLS_CLI_IO_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "base/status.h"

namespace qatq::cli {

// A read-only view of a whole input: a private mapping of a regular file,
// or the bytes of stdin/a pipe read into memory. Not copyable.
class InputFile {
 public:
  InputFile() = default;
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // `path` "-" reads stdin. On error the object is empty.
  Status Open(const std::string& path);
  std::string_view data() const { return data_; }

 private:
  void* map_ = nullptr;
  size_t map_len_ = 0;
  std::string buf_;
  std::string_view data_;
};

// An output that appears under its final name only after Commit(): bytes go
// to a temp file beside it, Commit() fsyncs and renames it into place (and
// fsyncs the directory). Destroying an uncommitted output removes the temp
// file, so a failure leaves no partial output and an existing file
// untouched. Path "-" writes straight to stdout (not atomic).
class AtomicOutput {
 public:
  AtomicOutput() = default;
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  Status Open(const std::string& path);
  Status Write(std::string_view bytes);
  Status Commit();
  // Removes the temp file (also done by the destructor).
  void Abandon();
  uint64_t bytes_written() const { return written_; }

 private:
  std::string path_, tmp_path_;
  int fd_ = -1;
  bool to_stdout_ = false;
  uint64_t written_ = 0;
};

// A one-line progress bar on stderr for long work (`label` names the
// program and the work):
//   qatq: encode [#########...........]  45.0%    123.4 MB/s ETA 3s
// (throughput = bytes done / time since construction; ETA from that rate).
// Drawn only when `enabled` (callers pass !--quiet) and stderr is a
// terminal, so pipes, files and logs never see it; first drawn once the work
// has run for a second ($QATQ_PROGRESS_DELAY_MS overrides the delay; tests
// set 0), then redrawn at most every 200 ms. Finish() (or the destructor)
// erases the line. Not thread-safe: update from one thread.
class Progress {
 public:
  Progress(std::string label, uint64_t total, bool enabled);
  ~Progress();
  // `done` of `total` bytes are done.
  void Update(uint64_t done);
  void Finish();

 private:
  std::string label_;
  uint64_t total_;
  bool enabled_, shown_ = false;
  std::chrono::steady_clock::duration delay_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace qatq::cli

#endif  // QATQ_TOOLS_CLI_IO_H_
