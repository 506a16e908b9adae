// The qatq commands. Every command reports failures as one line on stderr,
// "qatq: FILE: problem", and returns kExitDataError (bad data, I/O) or
// kExitUsage (bad command line).
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "codec/chunk_record.h"
#include "codec/qatc_v2.h"
#include "codec/qatc_v3.h"
#include "codec/v3_strategies.h"
#include "tools/cli.h"
#include "tools/cli_args.h"
#include "tools/cli_io.h"
#include "tools/qatq_bench.h"

namespace qatq {
namespace {

using cli::AtomicOutput;
using cli::InputFile;
using cli::ParsedArgs;
using cli::Progress;

constexpr const char* kVersion = "qatq 0.1.0 (QATC v2 and v3, QATQ exact payloads)";

constexpr const char* kMainUsage =
    "usage: qatq COMMAND [options] ...\n"
    "commands:\n"
    "  encode          one tensor -> one QATQ exact payload\n"
    "  encode-chunked  one tensor -> a chunked QATC container (v3 by default, or v2)\n"
    "  decode          payload, QATC v2 or QATC v3 -> raw little-endian tensor\n"
    "  convert         between QATC v2 and v3, losslessly, verified\n"
    "  inspect         describe a payload or container\n"
    "  bench           codec benchmark\n"
    "Run 'qatq COMMAND --help' for the options of a command. '-' is stdin/stdout.\n"
    "'qatq --version' prints the version. A progress bar (throughput, ETA) is drawn\n"
    "on stderr for long work when stderr is a terminal; --quiet turns it off.\n"
    "Exit status: 0 success, 1 bad data or I/O error, 2 usage error.\n";

constexpr const char* kEncodeUsage =
    "usage: qatq encode [--mode qatq-exact] [--dtype f32|f16|bf16] [--stride-elements N]\n"
    "                   [--quiet] IN OUT\n"
    "Encodes IN (raw little-endian elements) as one QATQ exact payload (at most 2^26\n"
    "elements). The dtype defaults from IN's suffix (.f32le, .f16le, .bf16le).\n"
    "--stride-elements N suggests a row length for the strided predictor.\n";

constexpr const char* kEncodeChunkedUsage =
    "usage: qatq encode-chunked [--mode qatq-exact] [--dtype f32|f16|bf16|bytes]\n"
    "                           [--max-values-per-chunk N] [--format v3|v2] [--threads N]\n"
    "                           [--stride-elements N] [--effort N] [--quiet] IN OUT\n"
    "Encodes IN as a chunked container: N elements per chunk (default 65536), format\n"
    "v3 (default) or v2, on N threads (default 0 = all cores). The dtype defaults from\n"
    "IN's suffix; 'bytes' is for v3 only. --effort 0..9 (v3; default 5): 0 is the\n"
    "fastest, 9 the smallest.\n";

constexpr const char* kDecodeUsage =
    "usage: qatq decode [--threads N] [--quiet] IN OUT\n"
    "Decodes a QATQ payload, QATC v2 or QATC v3 file (detected) to raw little-endian\n"
    "bytes. Everything is verified; on any error OUT is not created or changed.\n";

constexpr const char* kConvertUsage =
    "usage: qatq convert --format v2|v3 [--max-values-per-chunk N] [--threads N]\n"
    "                    [--effort N] [--quiet] IN OUT\n"
    "Re-encodes a payload or container as QATC v2 or v3, and verifies the result\n"
    "decodes to the same bytes before it is committed. The chunk size defaults to the\n"
    "input's (else 65536); --effort 0..9 (v3 output; default 5).\n";

constexpr const char* kInspectUsage =
    "usage: qatq inspect [--json] FILE\n"
    "Validates the structure of a payload or container (not the chunk contents) and\n"
    "prints its header, dtype, element and chunk counts, per-chunk strategy and\n"
    "sizes (v3: also each chunk's layout and stream coders), and the overall ratio\n"
    "(file bytes / raw bytes).\n";

struct Cmd {
  std::string name;
  const char* usage;
};

int UsageError(const Cmd& cmd, const std::string& msg) {
  std::fprintf(stderr, "qatq %s: %s (see 'qatq %s --help')\n", cmd.name.c_str(), msg.c_str(),
               cmd.name.c_str());
  return kExitUsage;
}

std::string DisplayName(const std::string& path) { return path == "-" ? "<stdin>" : path; }

int DataError(const std::string& file, const Status& s) {
  std::string msg = s.message().empty() ? s.ToString() : s.message();
  // One line, whatever the message holds.
  for (char& c : msg) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "qatq: %s: %s\n", file.c_str(), msg.c_str());
  return kExitDataError;
}

std::optional<DType> DTypeFromSuffix(const std::string& path) {
  auto ends = [&](const char* s) {
    size_t n = std::strlen(s);
    return path.size() >= n && path.compare(path.size() - n, n, s) == 0;
  };
  if (ends(".bf16le")) return DType::kBF16;
  if (ends(".f16le")) return DType::kF16;
  if (ends(".f32le")) return DType::kF32;
  return std::nullopt;
}

// Parses the command line of `cmd`; returns -1 to continue, else an exit code.
int Parse(const Cmd& cmd, const std::vector<std::string>& args,
          const std::set<std::string>& valued, std::set<std::string> flags, size_t npos,
          ParsedArgs* pa) {
  flags.insert("--help");
  Status s = cli::ParseArgs(args, valued, flags, pa);
  if (!s.ok()) return UsageError(cmd, s.message());
  if (pa->flags.count("--help")) {
    std::fputs(cmd.usage, stdout);
    return kExitOk;
  }
  if (pa->positional.size() != npos) {
    return UsageError(cmd, "expected " + std::to_string(npos) + " file argument" +
                               (npos == 1 ? "" : "s") + ", got " +
                               std::to_string(pa->positional.size()));
  }
  if (pa->Has("--mode") && pa->Get("--mode") != "qatq-exact") {
    return UsageError(cmd, "unsupported --mode " + pa->Get("--mode") + " (only qatq-exact)");
  }
  return -1;
}

// Resolves --dtype or the input's suffix; -1 to continue, else an exit code.
int ResolveDType(const Cmd& cmd, const ParsedArgs& pa, bool allow_bytes, DType* out) {
  if (pa.Has("--dtype")) {
    auto d = ParseDType(pa.Get("--dtype"));
    if (!d || (*d == DType::kBytes && !allow_bytes)) {
      return UsageError(cmd, "unknown --dtype " + pa.Get("--dtype") +
                                 (allow_bytes ? " (f32, f16, bf16, bytes)" : " (f32, f16, bf16)"));
    }
    *out = *d;
    return -1;
  }
  auto d = DTypeFromSuffix(pa.positional[0]);
  if (!d) {
    return UsageError(cmd, "--dtype is required: cannot tell the dtype from the name " +
                               pa.positional[0] + " (use .f32le, .f16le or .bf16le)");
  }
  *out = *d;
  return -1;
}

int ParseNumber(const Cmd& cmd, const ParsedArgs& pa, const std::string& name, uint64_t lo,
                uint64_t hi, uint64_t def, uint64_t* out) {
  *out = def;
  if (!pa.Has(name)) return -1;
  Status s = cli::ParseUint(name, pa.Get(name), lo, hi, out);
  if (!s.ok()) return UsageError(cmd, s.message());
  return -1;
}

// --effort steers only the v3 encoder: asking for it with v2 output is an
// error rather than a silently ignored option.
int ParseEffort(const Cmd& cmd, const ParsedArgs& pa, const std::string& format, int* effort) {
  if (format != "v3" && pa.Has("--effort")) {
    return UsageError(cmd, "--effort applies to --format v3 only");
  }
  uint64_t v;
  int rc = ParseNumber(cmd, pa, "--effort", 0, 9, ChunkEncodeOptions().effort, &v);
  *effort = static_cast<int>(v);
  return rc;
}

Status CheckWidth(DType dtype, std::string_view data) {
  const size_t w = DTypeWidth(dtype);
  if (data.size() % w != 0) {
    return Status::InvalidArgument("input size " + std::to_string(data.size()) +
                                   " bytes is not a multiple of " + std::to_string(w) + " (" +
                                   std::string(DTypeName(dtype)) + ")");
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Formats of existing files.

enum class Format { kPayload, kV2, kV3 };

Status DetectFormat(std::string_view data, Format* f) {
  if (data.empty()) return Status::Corruption("empty file");
  if (LooksLikeQatcV3(data)) {
    *f = Format::kV3;
  } else if (data.size() >= 4 && std::memcmp(data.data(), "QATC", 4) == 0) {
    *f = Format::kV2;  // the v2 reader names any other version
  } else if (LooksLikePayload(data)) {
    *f = Format::kPayload;
  } else {
    return Status::Corruption("bad magic: not a QATQ payload or QATC container");
  }
  return Status::OK();
}

struct Source {
  Format format;
  DType dtype;
  uint64_t raw_bytes;
  uint32_t chunk_elements;  // 0 if unknown
};

// A "QATC" file with the v3 version byte that is not a valid v3 file but
// has the v2 layout is a mislabelled v2 container: say so rather than
// reporting whatever the v3 reader tripped over.
Status ReadV3IndexOrExplain(std::string_view data, QatcV3Index* index) {
  Status s = ReadQatcV3Index(data, index);
  if (s.ok()) return s;
  ContainerInfo v2;
  if (ReadQatcV2Structure(data, &v2, /*any_version=*/true).ok()) {
    return Status::NotSupported("unsupported container version " +
                                std::to_string(static_cast<uint8_t>(data[4])) +
                                " (the file has the QATC v2 layout)");
  }
  return s;
}

// Reads the header/index of any supported file. `full` also verifies a v2
// aggregate checksum; decoders skip that here because they verify it anyway.
Status DescribeSource(std::string_view data, Source* src, bool full = true) {
  QATQ_RETURN_IF_ERROR(DetectFormat(data, &src->format));
  switch (src->format) {
    case Format::kV3: {
      QatcV3Index index;
      QATQ_RETURN_IF_ERROR(ReadV3IndexOrExplain(data, &index));
      src->dtype = index.dtype;
      src->raw_bytes = index.element_count * DTypeWidth(index.dtype);
      src->chunk_elements = index.chunk_elements;
      return Status::OK();
    }
    case Format::kV2: {
      ContainerInfo info;
      QATQ_RETURN_IF_ERROR(full ? ReadQatcV2Structure(data, &info) : ReadQatcV2Layout(data, &info));
      src->dtype = info.dtype;
      src->raw_bytes = info.element_count * DTypeWidth(info.dtype);
      src->chunk_elements =
          info.chunks.size() > 1 ? static_cast<uint32_t>(info.chunks[0].payload.element_count) : 0;
      return Status::OK();
    }
    case Format::kPayload: {
      PayloadInfo info;
      QATQ_RETURN_IF_ERROR(ParsePayloadHeader(data, &info));
      src->dtype = info.dtype;
      src->raw_bytes = info.element_count * DTypeWidth(info.dtype);
      src->chunk_elements = 0;
      return Status::OK();
    }
  }
  return Status::OK();
}

// Decodes any supported file into `sink`, verified as each format requires.
Status DecodeAny(std::string_view data, Format format, int threads, const ByteSink& sink) {
  switch (format) {
    case Format::kV3:
      return DecodeQatcV3(data, sink, threads);
    case Format::kV2:
      return DecodeQatcV2(data, sink, threads);
    case Format::kPayload: {
      std::string raw;
      QATQ_RETURN_IF_ERROR(DecodePayload(data, &raw));
      return sink(raw);
    }
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Commands

int RunEncode(const std::vector<std::string>& args) {
  const Cmd cmd{"encode", kEncodeUsage};
  ParsedArgs pa;
  int rc = Parse(cmd, args, {"--mode", "--dtype", "--stride-elements", "--strategy"}, {"--quiet"},
                 2, &pa);
  if (rc >= 0) return rc;
  DType dtype;
  if ((rc = ResolveDType(cmd, pa, false, &dtype)) >= 0) return rc;
  PayloadEncodeOptions opt;
  uint64_t v;
  if ((rc = ParseNumber(cmd, pa, "--stride-elements", 1, UINT32_MAX, 0, &v)) >= 0) return rc;
  opt.stride_elements = static_cast<uint32_t>(v);
  // Undocumented: write a given strategy (interoperability checks).
  if ((rc = ParseNumber(cmd, pa, "--strategy", 1, 10, 0, &v)) >= 0) return rc;
  if (v) opt.force_strategy = static_cast<int>(v);
  const std::string& in = pa.positional[0];
  const std::string& out = pa.positional[1];
  InputFile input;
  Status s = input.Open(in);
  if (!s.ok()) return DataError(DisplayName(in), s);
  if (!(s = CheckWidth(dtype, input.data())).ok()) return DataError(DisplayName(in), s);
  const uint64_t n = input.data().size() / DTypeWidth(dtype);
  if (n > kMaxPayloadElements) {
    return DataError(DisplayName(in), Status::InvalidArgument(
                                          std::to_string(n) +
                                          " elements do not fit one payload (at most 2^26); use "
                                          "encode-chunked"));
  }
  std::string payload;
  if (!(s = EncodePayload(dtype, input.data(), opt, &payload)).ok()) {
    return DataError(DisplayName(in), s);
  }
  AtomicOutput output;
  if (!(s = output.Open(out)).ok() || !(s = output.Write(payload)).ok() ||
      !(s = output.Commit()).ok()) {
    return DataError(out, s);
  }
  return kExitOk;
}

// Writes to an AtomicOutput and keeps the first write error, so that a
// failed write is reported against the output, not the input.
class OutputSink {
 public:
  explicit OutputSink(AtomicOutput* output) : output_(output) {}
  Status operator()(std::string_view b) {
    Status w = output_->Write(b);
    if (!w.ok() && status_.ok()) status_ = w;
    return w;
  }
  const Status& status() const { return status_; }

 private:
  AtomicOutput* output_;
  Status status_;
};

// The raw bytes a v3 chunk record holds, for progress: the v3 encoder passes
// each record to its sink in one piece, and the record's header has its raw
// length. 0 for anything else.
uint64_t RecordRawBytes(std::string_view b) {
  ChunkRecordInfo info;
  if (ParseChunkRecordHeader(b, &info).ok() && info.record_len() == b.size()) return info.raw_len;
  return 0;
}

int RunEncodeChunked(const std::vector<std::string>& args) {
  const Cmd cmd{"encode-chunked", kEncodeChunkedUsage};
  ParsedArgs pa;
  int rc = Parse(cmd, args,
                 {"--mode", "--dtype", "--max-values-per-chunk", "--format", "--threads",
                  "--stride-elements", "--effort"},
                 {"--quiet"}, 2, &pa);
  if (rc >= 0) return rc;
  const std::string format = pa.Get("--format", "v3");
  if (format != "v2" && format != "v3") return UsageError(cmd, "--format must be v2 or v3");
  int effort;
  if ((rc = ParseEffort(cmd, pa, format, &effort)) >= 0) return rc;
  DType dtype;
  if ((rc = ResolveDType(cmd, pa, format == "v3", &dtype)) >= 0) return rc;
  uint64_t chunk, threads, stride;
  if ((rc = ParseNumber(cmd, pa, "--max-values-per-chunk", 1,
                        format == "v2" ? kMaxPayloadElements : kMaxChunkRawBytes / DTypeWidth(dtype),
                        65536, &chunk)) >= 0) {
    return rc;
  }
  if ((rc = ParseNumber(cmd, pa, "--threads", 0, 1024, 0, &threads)) >= 0) return rc;
  if ((rc = ParseNumber(cmd, pa, "--stride-elements", 1, UINT32_MAX, 0, &stride)) >= 0) return rc;
  const std::string& in = pa.positional[0];
  const std::string& out = pa.positional[1];
  InputFile input;
  Status s = input.Open(in);
  if (!s.ok()) return DataError(DisplayName(in), s);
  if (!(s = CheckWidth(dtype, input.data())).ok()) return DataError(DisplayName(in), s);

  AtomicOutput output;
  if (!(s = output.Open(out)).ok()) return DataError(out, s);
  Progress progress("qatq: encode", input.data().size(), !pa.Has("--quiet"));
  OutputSink sink(&output);
  if (format == "v2") {
    PayloadEncodeOptions opt;
    opt.stride_elements = static_cast<uint32_t>(stride);
    s = EncodeQatcV2(dtype, input.data(), static_cast<uint32_t>(chunk), opt,
                     static_cast<int>(threads), std::ref(sink),
                     [&](uint64_t done) { progress.Update(done); });
  } else {
    QatcV3Options opt;
    opt.chunk_elements = static_cast<uint32_t>(chunk);
    opt.threads = static_cast<int>(threads);
    opt.chunk.stride_hint = static_cast<uint32_t>(stride);
    opt.chunk.effort = effort;
    uint64_t done = 0;
    s = EncodeQatcV3(dtype, input.data(), opt, [&](std::string_view b) {
      progress.Update(done += RecordRawBytes(b));
      return sink(b);
    });
  }
  progress.Finish();
  if (!sink.status().ok()) return DataError(out, sink.status());
  if (!s.ok()) return DataError(DisplayName(in), s);
  if (!(s = output.Commit()).ok()) return DataError(out, s);
  return kExitOk;
}

int RunDecode(const std::vector<std::string>& args) {
  const Cmd cmd{"decode", kDecodeUsage};
  ParsedArgs pa;
  int rc = Parse(cmd, args, {"--threads"}, {"--quiet"}, 2, &pa);
  if (rc >= 0) return rc;
  uint64_t threads;
  if ((rc = ParseNumber(cmd, pa, "--threads", 0, 1024, 0, &threads)) >= 0) return rc;
  const std::string& in = pa.positional[0];
  const std::string& out = pa.positional[1];
  InputFile input;
  Status s = input.Open(in);
  if (!s.ok()) return DataError(DisplayName(in), s);
  Format format;
  if (!(s = DetectFormat(input.data(), &format)).ok()) return DataError(DisplayName(in), s);
  // Structure first, so a bad file rarely even creates the temp file.
  Source src;
  if (!(s = DescribeSource(input.data(), &src, /*full=*/false)).ok()) {
    return DataError(DisplayName(in), s);
  }
  AtomicOutput output;
  if (!(s = output.Open(out)).ok()) return DataError(out, s);
  Progress progress("qatq: decode", src.raw_bytes, !pa.Has("--quiet"));
  OutputSink sink(&output);
  uint64_t done = 0;
  s = DecodeAny(input.data(), format, static_cast<int>(threads), [&](std::string_view b) {
    progress.Update(done += b.size());
    return sink(b);
  });
  progress.Finish();
  if (!sink.status().ok()) return DataError(out, sink.status());
  if (!s.ok()) return DataError(DisplayName(in), s);
  if (!(s = output.Commit()).ok()) return DataError(out, s);
  return kExitOk;
}

int RunConvert(const std::vector<std::string>& args) {
  const Cmd cmd{"convert", kConvertUsage};
  ParsedArgs pa;
  int rc = Parse(cmd, args, {"--format", "--max-values-per-chunk", "--threads", "--effort"},
                 {"--quiet"}, 2, &pa);
  if (rc >= 0) return rc;
  if (!pa.Has("--format")) return UsageError(cmd, "--format v2|v3 is required");
  const std::string format = pa.Get("--format");
  if (format != "v2" && format != "v3") return UsageError(cmd, "--format must be v2 or v3");
  int effort;
  if ((rc = ParseEffort(cmd, pa, format, &effort)) >= 0) return rc;
  uint64_t chunk_opt, threads;
  if ((rc = ParseNumber(cmd, pa, "--max-values-per-chunk", 1, kMaxPayloadElements, 0,
                        &chunk_opt)) >= 0) {
    return rc;
  }
  if ((rc = ParseNumber(cmd, pa, "--threads", 0, 1024, 0, &threads)) >= 0) return rc;
  const std::string& in = pa.positional[0];
  const std::string& out = pa.positional[1];
  InputFile input;
  Status s = input.Open(in);
  if (!s.ok()) return DataError(DisplayName(in), s);
  Source src;
  if (!(s = DescribeSource(input.data(), &src, /*full=*/false)).ok()) {
    return DataError(DisplayName(in), s);
  }
  if (format == "v2" && src.dtype == DType::kBytes) {
    return DataError(DisplayName(in),
                     Status::InvalidArgument("QATC v2 holds f32, f16 or bf16, not bytes"));
  }
  // Three passes over the raw bytes: decode, encode, verify.
  Progress progress("qatq: convert", src.raw_bytes * 3, !pa.Has("--quiet"));
  std::string raw;
  raw.reserve(src.raw_bytes);
  s = DecodeAny(input.data(), src.format, static_cast<int>(threads), [&](std::string_view b) {
    raw.append(b);
    progress.Update(raw.size());
    return Status::OK();
  });
  if (!s.ok()) return DataError(DisplayName(in), s);
  uint32_t chunk = static_cast<uint32_t>(chunk_opt);
  if (chunk == 0) chunk = src.chunk_elements ? src.chunk_elements : 65536;
  std::string encoded;
  auto collect = [&](std::string_view b) {
    encoded.append(b);
    return Status::OK();
  };
  uint64_t encoded_raw = 0;  // input bytes encoded so far (v3: from record headers)
  auto collect_v3 = [&](std::string_view b) {
    progress.Update(raw.size() + (encoded_raw += RecordRawBytes(b)));
    return collect(b);
  };
  if (format == "v2") {
    if (chunk > kMaxPayloadElements) chunk = 65536;
    s = EncodeQatcV2(src.dtype, raw, chunk, {}, static_cast<int>(threads), collect,
                     [&](uint64_t done) { progress.Update(raw.size() + done); });
  } else {
    QatcV3Options opt;
    opt.chunk_elements = chunk;
    opt.threads = static_cast<int>(threads);
    opt.chunk.effort = effort;
    s = EncodeQatcV3(src.dtype, raw, opt, collect_v3);
  }
  if (!s.ok()) return DataError(DisplayName(in), s);
  // Verify: the new file must decode to exactly the same bytes.
  uint64_t offset = 0;
  s = DecodeAny(encoded, format == "v2" ? Format::kV2 : Format::kV3, static_cast<int>(threads),
                [&](std::string_view b) {
                  if (offset + b.size() > raw.size() ||
                      std::memcmp(raw.data() + offset, b.data(), b.size()) != 0) {
                    return Status::Corruption("verification failed: the converted file decodes "
                                              "differently");
                  }
                  offset += b.size();
                  progress.Update(2 * raw.size() + offset);
                  return Status::OK();
                });
  if (s.ok() && offset != raw.size()) {
    s = Status::Corruption("verification failed: the converted file is short");
  }
  progress.Finish();
  if (!s.ok()) return DataError(out, s);
  AtomicOutput output;
  if (!(s = output.Open(out)).ok() || !(s = output.Write(encoded)).ok() ||
      !(s = output.Commit()).ok()) {
    return DataError(out, s);
  }
  return kExitOk;
}

const char* V2StrategyName(uint8_t s) {
  static const char* const kNames[] = {"predictor-xor",
                                       "raw-bits",
                                       "byte-rle",
                                       "byte-plane-rle",
                                       "delta-xor-byte-plane-rle",
                                       "byte-plane-blocks",
                                       "byte-plane-packed-rle",
                                       "byte-plane-zstd",
                                       "quaternion-chain-zstd",
                                       "adjacent-xor-byte-plane-zstd",
                                       "strided-xor-byte-plane-zstd"};
  return s <= 10 ? kNames[s] : "unknown";
}

std::string JsonString(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

struct ChunkRow {
  uint64_t offset, length, elements;
  uint8_t strategy;
  std::string strategy_name;
  uint32_t stride;
  std::string layout = {};  // v3: v3::DescribeBody of the record body
};

int RunInspect(const std::vector<std::string>& args) {
  const Cmd cmd{"inspect", kInspectUsage};
  ParsedArgs pa;
  int rc = Parse(cmd, args, {}, {"--json"}, 1, &pa);
  if (rc >= 0) return rc;
  const std::string& in = pa.positional[0];
  InputFile input;
  Status s = input.Open(in);
  if (!s.ok()) return DataError(DisplayName(in), s);
  std::string_view data = input.data();
  Format format;
  if (!(s = DetectFormat(data, &format)).ok()) return DataError(DisplayName(in), s);
  std::string format_name, header;
  DType dtype = DType::kF32;
  uint64_t elements = 0;
  uint32_t chunk_elements = 0;
  std::vector<ChunkRow> rows;
  if (format == Format::kV2) {
    ContainerInfo info;
    if (!(s = ReadQatcV2Structure(data, &info)).ok()) return DataError(DisplayName(in), s);
    format_name = "qatc-v2";
    dtype = info.dtype;
    elements = info.element_count;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, info.aggregate_checksum);
    header = std::string("aggregate_checksum=") + buf;
    for (const auto& c : info.chunks) {
      rows.push_back({c.offset, c.length, c.payload.element_count, c.payload.strategy,
                      V2StrategyName(c.payload.strategy), c.payload.stride});
    }
    if (info.chunks.size() > 1) chunk_elements = static_cast<uint32_t>(rows[0].elements);
  } else if (format == Format::kV3) {
    QatcV3Index index;
    if (!(s = ReadV3IndexOrExplain(data, &index)).ok()) return DataError(DisplayName(in), s);
    format_name = "qatc-v3";
    dtype = index.dtype;
    elements = index.element_count;
    chunk_elements = index.chunk_elements;
    for (const auto& c : index.chunks) {
      ChunkRow row{c.offset, c.record_len, c.raw_len / DTypeWidth(index.dtype), c.strategy,
                   v3::StrategyName(c.strategy), 0};
      // ReadQatcV3Index checked every record's extent and header.
      const std::string_view body =
          data.substr(c.offset + kChunkRecordHeaderSize, c.record_len - kChunkRecordHeaderSize);
      if (!(s = v3::DescribeBody(c.strategy, body, &row.layout)).ok()) {
        return DataError(DisplayName(in), s.WithContext("chunk " + std::to_string(rows.size())));
      }
      rows.push_back(std::move(row));
    }
  } else {
    PayloadInfo info;
    if (!(s = ParsePayloadHeader(data, &info)).ok()) return DataError(DisplayName(in), s);
    format_name = "qatq-payload";
    dtype = info.dtype;
    elements = info.element_count;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, info.checksum);
    header = std::string("checksum=") + buf;
    rows.push_back({0, data.size(), info.element_count, info.strategy,
                    V2StrategyName(info.strategy), info.stride});
  }
  const uint64_t raw_bytes = elements * DTypeWidth(dtype);
  const double ratio = raw_bytes ? static_cast<double>(data.size()) / raw_bytes : 0.0;
  if (pa.Has("--json")) {
    std::printf("{\"file\":%s,\"format\":\"%s\",\"dtype\":\"%s\",\"elements\":%" PRIu64
                ",\"chunk_elements\":%u,\"chunks\":%zu,\"file_bytes\":%zu,\"raw_bytes\":%" PRIu64
                ",\"ratio\":%.6f",
                JsonString(in).c_str(), format_name.c_str(), std::string(DTypeName(dtype)).c_str(),
                elements, chunk_elements, rows.size(), data.size(), raw_bytes, ratio);
    if (!header.empty()) {
      size_t eq = header.find('=');
      std::printf(",\"%s\":\"%s\"", header.substr(0, eq).c_str(), header.substr(eq + 1).c_str());
    }
    std::printf(",\"chunk_list\":[");
    for (size_t k = 0; k < rows.size(); ++k) {
      const ChunkRow& r = rows[k];
      std::printf("%s{\"index\":%zu,\"offset\":%" PRIu64 ",\"length\":%" PRIu64
                  ",\"elements\":%" PRIu64 ",\"strategy\":%u,\"strategy_name\":%s",
                  k ? "," : "", k, r.offset, r.length, r.elements, r.strategy,
                  JsonString(r.strategy_name).c_str());
      if (r.stride) std::printf(",\"stride\":%u", r.stride);
      if (!r.layout.empty()) std::printf(",\"layout\":%s", JsonString(r.layout).c_str());
      std::printf("}");
    }
    std::printf("]}\n");
    return kExitOk;
  }
  std::printf("file:        %s\n", in.c_str());
  std::printf("format:      %s\n", format_name.c_str());
  std::printf("dtype:       %s\n", std::string(DTypeName(dtype)).c_str());
  std::printf("elements:    %" PRIu64 "\n", elements);
  if (chunk_elements) std::printf("chunk size:  %u elements\n", chunk_elements);
  std::printf("chunks:      %zu\n", rows.size());
  if (!header.empty()) std::printf("%-12s %s\n", (header.substr(0, header.find('=')) + ":").c_str(),
                                   header.substr(header.find('=') + 1).c_str());
  std::printf("file bytes:  %zu\nraw bytes:   %" PRIu64 "\nratio:       %.4f\n", data.size(),
              raw_bytes, ratio);
  std::printf("%6s %12s %10s %10s %8s  %s\n", "chunk", "offset", "bytes", "elements", "ratio",
              "strategy");
  for (size_t k = 0; k < rows.size(); ++k) {
    const ChunkRow& r = rows[k];
    double cr = r.elements ? static_cast<double>(r.length) / (r.elements * DTypeWidth(dtype)) : 0;
    std::printf("%6zu %12" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8.4f  %u %s", k, r.offset,
                r.length, r.elements, cr, r.strategy, r.strategy_name.c_str());
    if (r.stride) std::printf(" (stride %u)", r.stride);
    if (!r.layout.empty()) std::printf(" %s", r.layout.c_str());
    std::printf("\n");
  }
  return kExitOk;
}

}  // namespace

int RunQatq(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fputs(kMainUsage, stderr);
    return kExitUsage;
  }
  const std::string& c = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (c == "--help" || c == "-h" || c == "help") {
    std::fputs(kMainUsage, stdout);
    return kExitOk;
  }
  if (c == "--version" || c == "version") {
    std::printf("%s\n", kVersion);
    return kExitOk;
  }
  if (c == "encode") return RunEncode(rest);
  if (c == "encode-chunked") return RunEncodeChunked(rest);
  if (c == "decode") return RunDecode(rest);
  if (c == "convert") return RunConvert(rest);
  if (c == "inspect") return RunInspect(rest);
  if (c == "bench") return RunBenchCommand(rest);
  std::fprintf(stderr, "qatq: unknown command '%s' (see 'qatq --help')\n", c.c_str());
  return kExitUsage;
}

}  // namespace qatq
