// QATC v3: the native container. A 32-byte header, chunk records
// (codec/chunk_record.h) back to back, a chunk index, and a fixed-size
// trailer that locates the index, so a writer streams in one pass and a
// reader decodes chunk k without touching the others. Layout:
// docs/FORMAT-v3.md.
//
// Thread-safety: free functions are pure. QatcV3Builder is not thread-safe.
#ifndef QATQ_CODEC_QATC_V3_H_
#define QATQ_CODEC_QATC_V3_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "codec/chunk_record.h"
#include "codec/dtype.h"

namespace qatq {

// Receives output bytes in order. A non-OK return aborts the operation and is
// returned to the caller.
using ByteSink = std::function<Status(std::string_view)>;

struct QatcV3Options {
  // Elements per chunk (the last chunk may be shorter).
  // Default: 65536
  uint32_t chunk_elements = 65536;
  // Per-chunk encoder options.
  ChunkEncodeOptions chunk;
  // Worker threads for chunk-parallel encoding; 0 = all cores.
  // Default: 0
  int threads = 0;
};

// One entry of the chunk index.
struct QatcV3ChunkRef {
  uint64_t offset = 0;      // of the chunk record, from the start of the file
  uint32_t record_len = 0;  // header + body
  uint32_t raw_len = 0;
  uint8_t strategy = 0;
  uint64_t raw_checksum = 0;
};

struct QatcV3Index {
  DType dtype = DType::kBytes;
  uint32_t chunk_elements = 0;
  uint64_t element_count = 0;
  std::vector<QatcV3ChunkRef> chunks;
};

// True if `prefix` (at least 5 bytes) starts like a QATC v3 file.
bool LooksLikeQatcV3(std::string_view prefix);

// Encodes `raw` (little-endian elements) as a complete v3 file into `sink`.
// Memory: O(threads * chunk) beyond the input.
// REQUIRES: raw.size() % DTypeWidth(dtype) == 0.
Status EncodeQatcV3(DType dtype, std::string_view raw, const QatcV3Options& options,
                    const ByteSink& sink);

// Validates header, trailer, index (offsets, lengths, counts, element totals)
// and the whole-file checksum against `file`; fills *index. Allocation is
// bounded by file.size(). Does not decode chunks.
Status ReadQatcV3Index(std::string_view file, QatcV3Index* index);

// Decodes chunk k of a file whose index was read by ReadQatcV3Index.
Status DecodeQatcV3Chunk(std::string_view file, const QatcV3Index& index, size_t k,
                         std::string* raw);

// Full decode. The header, trailer, index, record headers and the
// whole-file checksum are verified before the first call to `sink`; each
// chunk's record checksum before it is decoded, and its raw checksum before
// its bytes are passed on. A failure after
// that (a record that passes its checksum but does not decode) returns
// non-OK after partial output: callers stage output in a temp file (the CLI
// does). Memory: O(threads * chunk). `threads` 0 = all cores.
Status DecodeQatcV3(std::string_view file, const ByteSink& sink, int threads = 0);

// Full decode into dst[0, dst_size), which must be exactly the decoded size
// (element count x dtype width, InvalidArgument otherwise): chunks are
// decoded in parallel and land at their offsets, without the ordered
// hand-over of the sink form. The same checks as DecodeQatcV3; the file's
// are done before any write, and on a later failure dst holds partial
// output. Memory: O(threads * chunk) scratch. `threads` 0 = all cores.
Status DecodeQatcV3Into(std::string_view file, char* dst, size_t dst_size, int threads = 0);

// Builds a v3 file from already-encoded chunk records (export from the
// filesystem without re-encoding). Records are verified (VerifyChunkRecord)
// and must all carry `dtype`; every record but the last must hold exactly
// chunk_elements elements.
class QatcV3Builder {
 public:
  QatcV3Builder(DType dtype, uint32_t chunk_elements, ByteSink sink);
  QatcV3Builder(const QatcV3Builder&) = delete;
  QatcV3Builder& operator=(const QatcV3Builder&) = delete;

  Status AddRecord(std::string_view record);
  // Writes index and trailer. REQUIRES: called once, after the last AddRecord.
  Status Finish();

 private:
  struct Rep;
  std::shared_ptr<Rep> rep_;
};

}  // namespace qatq

#endif  // QATQ_CODEC_QATC_V3_H_
