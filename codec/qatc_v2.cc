// QATC v2 containers (spec section 2): structure walk, chunk-parallel
// encode and decode. Payloads are in v2_payload.cc.
#include "codec/qatc_v2.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "codec/endian.h"
#include "codec/fnv.h"
#include "codec/v2_estimate.h"
#include "codec/ordered_parallel.h"

namespace qatq {
namespace {

constexpr char kContainerMagic[4] = {'Q', 'A', 'T', 'C'};
constexpr uint8_t kContainerVersion = 2;
constexpr uint8_t kModeExact = 4;
constexpr size_t kMinRecord = 4 + kPayloadHeaderSize;

std::string Num(uint64_t v) { return std::to_string(v); }

// "checksum mismatch" -> "checksum mismatch in chunk 3".
Status InChunk(const Status& s, size_t k) {
  std::string msg = s.message() + " in chunk " + Num(k);
  if (s.IsNotSupported()) return Status::NotSupported(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  return Status::Corruption(msg);
}

}  // namespace

bool LooksLikeQatcV2(std::string_view prefix) {
  return prefix.size() >= 5 && std::memcmp(prefix.data(), kContainerMagic, 4) == 0 &&
         static_cast<uint8_t>(prefix[4]) == kContainerVersion;
}

namespace {

// Checks 1-3 of spec 2.3; check 4 (the aggregate checksum) is left to the
// caller, so that decoding can overlap it with chunk work.
Status ReadLayout(std::string_view f, ContainerInfo* info, bool any_version) {
  if (f.empty()) return Status::Corruption("empty file");
  if (f.size() < 4 || std::memcmp(f.data(), kContainerMagic, 4) != 0) {
    return Status::Corruption("bad magic (expected QATC)");
  }
  if (f.size() < kContainerHeaderSize) {
    return Status::Corruption("truncated header (" + Num(f.size()) + " of 32 bytes)");
  }
  const uint8_t version = static_cast<uint8_t>(f[4]);
  if (any_version) {
    // The caller only wants the layout checked.
  } else if (version == 1) {
    return Status::NotSupported("unsupported container version 1 (never released)");
  } else if (version != kContainerVersion) {
    return Status::NotSupported("unsupported container version " + Num(version));
  }
  const uint8_t mode = static_cast<uint8_t>(f[5]);
  if (mode != kModeExact) return Status::NotSupported("unsupported mode " + Num(mode));
  if (f[6] != 0 || f[7] != 0 || GetBE32(f.data() + 20) != 0) {
    return Status::Corruption("reserved header field is not zero");
  }
  const uint64_t total = GetBE64(f.data() + 8);
  if (total > kMaxContainerElements) {
    return Status::Corruption("total element count " + Num(total) + " exceeds the limit 2^32");
  }
  const uint32_t count = GetBE32(f.data() + 16);
  if (count == 0 || count > kMaxContainerChunks) {
    return Status::Corruption("chunk count " + Num(count) + " is out of range 1..2^20");
  }
  // Every record takes at least 40 bytes: reject before reserving.
  if (uint64_t{count} * kMinRecord > f.size() - kContainerHeaderSize) {
    return Status::Corruption("file of " + Num(f.size()) + " bytes is too short for " +
                              Num(count) + " chunks");
  }
  ContainerInfo out;
  out.element_count = total;
  out.aggregate_checksum = GetBE64(f.data() + 24);
  out.chunks.reserve(count);
  uint64_t pos = kContainerHeaderSize, running = 0;
  for (uint32_t k = 0; k < count; ++k) {
    if (f.size() - pos < 4) {
      return Status::Corruption("file ends before the length of chunk " + Num(k));
    }
    const uint32_t len = GetBE32(f.data() + pos);
    if (len < kPayloadHeaderSize) {
      return Status::Corruption("chunk " + Num(k) + " length " + Num(len) +
                                " is below the 36-byte minimum");
    }
    if (len > f.size() - pos - 4) {
      return Status::Corruption("chunk " + Num(k) + " length " + Num(len) +
                                " overruns the end of the file");
    }
    ContainerChunkInfo c;
    c.offset = pos + 4;
    c.length = len;
    Status st = ParsePayloadHeader(f.substr(c.offset, len), &c.payload);
    if (!st.ok()) return InChunk(st, k);
    if (k > 0 && c.payload.dtype != out.chunks[0].payload.dtype) {
      return Status::Corruption("chunk " + Num(k) + " dtype " +
                                std::string(DTypeName(c.payload.dtype)) + " differs from chunk 0");
    }
    running += c.payload.element_count;
    if (running > total) {
      return Status::Corruption("chunks hold more elements than the header total " + Num(total));
    }
    out.chunks.push_back(c);
    pos += 4 + uint64_t{len};
  }
  if (pos != f.size()) {
    return Status::Corruption("trailing bytes after last chunk (" + Num(f.size() - pos) +
                              " bytes)");
  }
  if (running != total) {
    return Status::Corruption("element total mismatch: header says " + Num(total) +
                              ", chunks hold " + Num(running));
  }
  out.dtype = out.chunks[0].payload.dtype;
  *info = std::move(out);
  return Status::OK();
}

Status CheckAggregate(std::string_view f, const ContainerInfo& info) {
  if (Fnv1a64(f.data() + kContainerHeaderSize, f.size() - kContainerHeaderSize) !=
      info.aggregate_checksum) {
    return Status::Corruption("aggregate checksum mismatch");
  }
  return Status::OK();
}

}  // namespace

Status ReadQatcV2Structure(std::string_view f, ContainerInfo* info, bool any_version) {
  ContainerInfo out;
  QATQ_RETURN_IF_ERROR(ReadLayout(f, &out, any_version));
  QATQ_RETURN_IF_ERROR(CheckAggregate(f, out));
  *info = std::move(out);
  return Status::OK();
}

Status ReadQatcV2Layout(std::string_view file, ContainerInfo* info) {
  return ReadLayout(file, info, /*any_version=*/false);
}

Status DecodeQatcV2(std::string_view file, const ByteSink& sink, int threads) {
  ContainerInfo info;
  QATQ_RETURN_IF_ERROR(ReadLayout(file, &info, /*any_version=*/false));
  const int nthreads = ResolveThreads(threads);
  // Check 4 must pass before any output, but it is a serial hash over the
  // whole file: with several threads it runs beside the first chunk
  // decodes, and the first delivery waits for it.
  std::thread aggregate_thread;
  Status aggregate;
  bool aggregate_done = false;
  if (nthreads > 1 && info.chunks.size() > 1) {
    aggregate_thread = std::thread([&] { aggregate = CheckAggregate(file, info); });
  } else {
    aggregate = CheckAggregate(file, info);
    aggregate_done = true;
    QATQ_RETURN_IF_ERROR(aggregate);
  }
  auto verify_aggregate = [&]() -> Status {
    if (!aggregate_done) {
      aggregate_thread.join();
      aggregate_done = true;
    }
    return aggregate;
  };
  auto produce = [&](size_t k, std::string* buf) -> Status {
    const ContainerChunkInfo& c = info.chunks[k];
    Status st = DecodePayload(file.substr(c.offset, c.length), buf);
    return st.ok() ? st : InChunk(st, k);
  };
  auto consume = [&](size_t, std::string* buf) -> Status {
    QATQ_RETURN_IF_ERROR(verify_aggregate());
    return sink(*buf);
  };
  Status s = OrderedParallel(info.chunks.size(), nthreads, 2 * static_cast<size_t>(nthreads),
                             produce, consume);
  // A chunk error must not hide an aggregate mismatch (check 4 before 5).
  Status agg = verify_aggregate();
  return agg.ok() ? s : agg;
}

Status EncodeQatcV2(DType dtype, std::string_view raw, uint32_t max_values_per_chunk,
                    const PayloadEncodeOptions& options, int threads, const ByteSink& sink,
                    const ProgressFn& progress) {
  if (dtype == DType::kBytes) return Status::InvalidArgument("v2 containers hold f32, f16 or bf16");
  const size_t w = DTypeWidth(dtype);
  if (raw.size() % w != 0) {
    return Status::InvalidArgument("input size " + Num(raw.size()) + " is not a multiple of " +
                                   Num(w) + " (" + std::string(DTypeName(dtype)) + ")");
  }
  if (max_values_per_chunk == 0 || max_values_per_chunk > kMaxPayloadElements) {
    return Status::InvalidArgument("max values per chunk must be in 1..2^26");
  }
  const uint64_t n = raw.size() / w;
  if (n > kMaxContainerElements) {
    return Status::InvalidArgument("input of " + Num(n) + " elements exceeds the v2 limit 2^32");
  }
  const uint64_t count = std::max<uint64_t>(1, (n + max_values_per_chunk - 1) / max_values_per_chunk);
  if (count > kMaxContainerChunks) {
    return Status::InvalidArgument(Num(count) + " chunks exceed the v2 limit 2^20; raise " +
                                   "--max-values-per-chunk");
  }
  // The aggregate checksum precedes the body, so encoded chunks are kept
  // until the end: memory is O(output size) plus O(threads * chunk).
  // Detect the row length once for the whole tensor rather than per chunk.
  PayloadEncodeOptions chunk_options = options;
  if (w == 2 && options.stride_elements == 0 && options.detect_stride) {
    chunk_options.stride_elements = DetectStride16(raw.data(), n);
    chunk_options.detect_stride = false;
  }
  std::vector<std::string> records(count);
  uint64_t fnv = kFnvOffsetBasis;
  const int nthreads = ResolveThreads(threads);
  auto produce = [&](size_t k, std::string* buf) -> Status {
    const uint64_t begin = k * uint64_t{max_values_per_chunk};
    const uint64_t end = std::min<uint64_t>(n, begin + max_values_per_chunk);
    return EncodePayload(dtype, raw.substr(begin * w, (end - begin) * w), chunk_options, buf);
  };
  auto consume = [&](size_t k, std::string* buf) -> Status {
    char len[4];
    PutBE32(len, static_cast<uint32_t>(buf->size()));
    fnv = Fnv1a64(fnv, len, 4);
    fnv = Fnv1a64(fnv, buf->data(), buf->size());
    records[k] = std::move(*buf);
    buf->clear();
    if (progress) progress(std::min<uint64_t>(n, (k + 1) * uint64_t{max_values_per_chunk}) * w);
    return Status::OK();
  };
  QATQ_RETURN_IF_ERROR(OrderedParallel(count, nthreads, 2 * static_cast<size_t>(nthreads), produce,
                                       consume));
  char h[kContainerHeaderSize] = {};
  std::memcpy(h, kContainerMagic, 4);
  h[4] = static_cast<char>(kContainerVersion);
  h[5] = static_cast<char>(kModeExact);
  PutBE64(h + 8, n);
  PutBE32(h + 16, static_cast<uint32_t>(count));
  PutBE64(h + 24, fnv);
  QATQ_RETURN_IF_ERROR(sink(std::string_view(h, sizeof h)));
  for (std::string& r : records) {
    char len[4];
    PutBE32(len, static_cast<uint32_t>(r.size()));
    QATQ_RETURN_IF_ERROR(sink(std::string_view(len, 4)));
    QATQ_RETURN_IF_ERROR(sink(r));
    std::string().swap(r);
  }
  return Status::OK();
}

}  // namespace qatq
