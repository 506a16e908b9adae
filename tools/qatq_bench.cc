// `qatq bench`: ratio and throughput of the QATC v3 codec beside general
// purpose baselines, with every round trip verified. See docs/BENCHMARKS.md.
#include "tools/qatq_bench.h"

#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>
#include <time.h>
#include <unordered_map>
#include <vector>

#include "codec/qatc_v2.h"
#include "codec/qatc_v3.h"
#include "codec/v3_strategies.h"

namespace qatq {

namespace {

constexpr const char* kUsage =
    "usage: qatq bench [--markdown] [--threads N] [--runs N] [--chunk ELEMENTS] [--effort N]\n"
    "                  [--codecs LIST] [--gate BASELINE.tsv [--speed-advisory]]\n"
    "                  [--write-baseline FILE] FILES...\n"
    "  dtype from the file suffix: .bf16le .f16le .f32le (anything else: bytes)\n"
    "  --markdown: print the table as Markdown\n"
    "  --threads N: threads of the multi-thread columns (default 0 = all cores)\n"
    "  --runs N: runs per measurement, the best is kept (default 3)\n"
    "  --chunk ELEMENTS: elements per chunk of v3, v2, exp-only (default 65536)\n"
    "  --effort N: v3 encoder effort, 0 fastest .. 9 smallest (default 5)\n"
    "  --codecs: comma list of v3,v2,zstd1,zstd3,zstd19,lz4,planes-zstd,exp-only\n"
    "            (default: all)\n"
    "  --gate: compare v3 ratios with BASELINE.tsv (fail if worse by > 0.001) and\n"
    "          v3 speed with zstd in this process (fail below half the targets)\n"
    "  --speed-advisory: with --gate, report speed failures without failing\n"
    "  --write-baseline FILE: write the v3 ratio of each file as a baseline\n";

struct BenchOptions {
  bool markdown = false;
  int threads = 0;  // 0 = all cores
  int runs = 3;
  uint32_t chunk_elements = 65536;
  int effort = 5;
  std::vector<std::string> codecs;
  std::string gate_baseline;
  // Report a speed gate failure without failing the run (the codec does not
  // reach half of its speed targets yet; see docs/BENCHMARKS.md).
  bool speed_advisory = false;
  std::string write_baseline;
  std::vector<std::string> files;
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the calling thread: single-thread figures use it so that a
// busy machine (CI, shared cores) does not charge other processes' time to
// whichever codec happened to be running.
double ThreadCpuNow() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

DType DTypeForPath(const std::string& path) {
  auto ends = [&](const char* s) {
    const size_t n = std::strlen(s);
    return path.size() >= n && path.compare(path.size() - n, n, s) == 0;
  };
  if (ends(".bf16le") || ends(".bf16")) return DType::kBF16;
  if (ends(".f16le") || ends(".f16")) return DType::kF16;
  if (ends(".f32le") || ends(".f32")) return DType::kF32;
  return DType::kBytes;
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return static_cast<bool>(f) || f.eof();
}

// Order-0 entropy bounds (as ratios): byte planes, and whole 16-bit symbols
// (for f32, the two 16-bit halves each as one symbol).
void Order0Bounds(DType dtype, const std::string& raw, double* planes, double* sym16) {
  const size_t w = DTypeWidth(dtype);
  *planes = *sym16 = 0;
  if (raw.empty()) return;
  const size_t n = raw.size() / w;
  auto entropy = [](const std::vector<uint64_t>& h, size_t total) {
    double bits = 0;
    const double lt = std::log2(static_cast<double>(total));
    for (uint64_t c : h)
      if (c) bits += c * (lt - std::log2(static_cast<double>(c)));
    return bits;
  };
  double pb = 0;
  for (size_t k = 0; k < w; ++k) {
    std::vector<uint64_t> h(256);
    for (size_t i = 0; i < n; ++i) ++h[static_cast<uint8_t>(raw[i * w + k])];
    pb += entropy(h, n);
  }
  *planes = pb / 8 / raw.size();
  if (w == 1) {
    *sym16 = *planes;
    return;
  }
  double sb = 0;
  for (size_t half = 0; half < w / 2; ++half) {
    std::vector<uint64_t> h(65536);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(raw.data()) + i * w + half * 2;
      ++h[p[0] | (p[1] << 8)];
    }
    sb += entropy(h, n);
  }
  *sym16 = sb / 8 / raw.size();
}

// One codec under test: encode and decode whole buffers.
struct Codec {
  std::string name;
  // Encodes with `threads` (1 = single thread); returns false on error.
  std::function<bool(const std::string& raw, int threads, std::string* enc)> encode;
  std::function<bool(const std::string& enc, int threads, size_t raw_size, std::string* dec)> decode;
  bool has_threads = true;  // false: the "all threads" columns repeat single-thread figures
  int runs_cap = 1 << 30;   // slow codecs are timed fewer times
};

Status AppendSink(std::string* out, std::string_view b) {
  out->append(b);
  return Status::OK();
}

std::vector<Codec> MakeCodecs(DType dtype, const BenchOptions& o) {
  std::vector<Codec> all;
  const uint32_t ce = o.chunk_elements;
  const int effort = o.effort;
  all.push_back({"v3",
                 [=](const std::string& raw, int threads, std::string* enc) {
                   QatcV3Options opt;
                   opt.chunk_elements = ce;
                   opt.threads = threads;
                   opt.chunk.effort = effort;
                   enc->clear();
                   enc->reserve(raw.size() / 2);
                   Status s = EncodeQatcV3(dtype, raw, opt,
                                           [&](std::string_view b) { return AppendSink(enc, b); });
                   if (!s.ok()) std::fprintf(stderr, "qatq bench: v3: %s\n", s.ToString().c_str());
                   return s.ok();
                 },
                 [=](const std::string& enc, int threads, size_t raw_size, std::string* dec) {
                   // In place, as the zstd and lz4 rows decode.
                   dec->resize(raw_size);
                   Status s = DecodeQatcV3Into(enc, dec->data(), dec->size(), threads);
                   if (!s.ok()) std::fprintf(stderr, "qatq bench: v3: %s\n", s.ToString().c_str());
                   return s.ok();
                 }});
  if (dtype != DType::kBytes) {
    all.push_back({"v2",
                   [=](const std::string& raw, int threads, std::string* enc) {
                     enc->clear();
                     Status s = EncodeQatcV2(dtype, raw, ce, PayloadEncodeOptions{}, threads,
                                             [&](std::string_view b) { return AppendSink(enc, b); });
                     if (!s.ok()) std::fprintf(stderr, "qatq bench: v2: %s\n", s.ToString().c_str());
                     return s.ok();
                   },
                   [=](const std::string& enc, int threads, size_t raw_size, std::string* dec) {
                     dec->clear();
                     dec->reserve(raw_size);
                     Status s = DecodeQatcV2(
                         enc, [&](std::string_view b) { return AppendSink(dec, b); }, threads);
                     if (!s.ok()) std::fprintf(stderr, "qatq bench: v2: %s\n", s.ToString().c_str());
                     return s.ok();
                   }});
  }
  for (int level : {1, 3, 19}) {
    Codec c{"zstd" + std::to_string(level),
            [=](const std::string& raw, int threads, std::string* enc) {
              ZSTD_CCtx* cctx = ZSTD_createCCtx();
              ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
              if (threads > 1) ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, threads);
              enc->resize(ZSTD_compressBound(raw.size()));
              size_t n = ZSTD_compress2(cctx, enc->data(), enc->size(), raw.data(), raw.size());
              ZSTD_freeCCtx(cctx);
              if (ZSTD_isError(n)) return false;
              enc->resize(n);
              return true;
            },
            [](const std::string& enc, int, size_t raw_size, std::string* dec) {
              dec->resize(raw_size);
              size_t n = ZSTD_decompress(dec->data(), dec->size(), enc.data(), enc.size());
              return !ZSTD_isError(n) && n == raw_size;
            }};
    if (level == 19) c.runs_cap = 1;
    all.push_back(c);
  }
  all.push_back({"lz4",
                 [](const std::string& raw, int, std::string* enc) {
                   enc->resize(LZ4_compressBound(static_cast<int>(raw.size())));
                   int n = LZ4_compress_default(raw.data(), enc->data(), static_cast<int>(raw.size()),
                                                static_cast<int>(enc->size()));
                   if (n <= 0 && !raw.empty()) return false;
                   enc->resize(n);
                   return true;
                 },
                 [](const std::string& enc, int, size_t raw_size, std::string* dec) {
                   dec->resize(raw_size);
                   int n = LZ4_decompress_safe(enc.data(), dec->data(), static_cast<int>(enc.size()),
                                               static_cast<int>(raw_size));
                   return n == static_cast<int>(raw_size);
                 },
                 false});
  const size_t w = DTypeWidth(dtype);
  all.push_back({"planes-zstd3",
                 [=](const std::string& raw, int, std::string* enc) {
                   const size_t n = raw.size() / w;
                   enc->clear();
                   std::string plane(n, '\0'), z(ZSTD_compressBound(n), '\0');
                   for (size_t k = 0; k < w; ++k) {
                     for (size_t i = 0; i < n; ++i) plane[i] = raw[i * w + k];
                     size_t m = ZSTD_compress(z.data(), z.size(), plane.data(), n, 3);
                     if (ZSTD_isError(m)) return false;
                     char len[8];
                     std::memcpy(len, &m, 8);
                     enc->append(len, 8);
                     enc->append(z.data(), m);
                   }
                   return true;
                 },
                 [=](const std::string& enc, int, size_t raw_size, std::string* dec) {
                   const size_t n = raw_size / w;
                   dec->resize(raw_size);
                   std::string plane(n, '\0');
                   size_t pos = 0;
                   for (size_t k = 0; k < w; ++k) {
                     if (pos + 8 > enc.size()) return false;
                     size_t m;
                     std::memcpy(&m, enc.data() + pos, 8);
                     pos += 8;
                     if (m > enc.size() - pos) return false;
                     size_t got = ZSTD_decompress(plane.data(), n, enc.data() + pos, m);
                     if (ZSTD_isError(got) || got != n) return false;
                     pos += m;
                     for (size_t i = 0; i < n; ++i) (*dec)[i * w + k] = plane[i];
                   }
                   return true;
                 },
                 false});
  if (dtype != DType::kBytes) {
    const size_t chunk_bytes = size_t{ce} * w;
    all.push_back({"exp-only",
                   [=](const std::string& raw, int, std::string* enc) {
                     enc->clear();
                     std::string body;
                     for (size_t off = 0; off < raw.size(); off += chunk_bytes) {
                       const size_t len = std::min(chunk_bytes, raw.size() - off);
                       if (!v3::EncodeExponentOnly(dtype, std::string_view(raw).substr(off, len), &body)
                                .ok())
                         return false;
                       const uint32_t m = static_cast<uint32_t>(body.size());
                       enc->append(reinterpret_cast<const char*>(&m), 4);
                       enc->append(body);
                     }
                     return true;
                   },
                   [=](const std::string& enc, int, size_t raw_size, std::string* dec) {
                     dec->resize(raw_size);
                     size_t pos = 0;
                     for (size_t off = 0; off < raw_size; off += chunk_bytes) {
                       const size_t len = std::min(chunk_bytes, raw_size - off);
                       uint32_t m;
                       if (pos + 4 > enc.size()) return false;
                       std::memcpy(&m, enc.data() + pos, 4);
                       pos += 4;
                       if (m > enc.size() - pos) return false;
                       if (!v3::DecodeExponentOnly(dtype, std::string_view(enc).substr(pos, m),
                                                   dec->data() + off, static_cast<uint32_t>(len))
                                .ok())
                         return false;
                       pos += m;
                     }
                     return true;
                   },
                   false});
  }
  if (o.codecs.empty()) return all;
  std::vector<Codec> chosen;
  for (const auto& c : all)
    if (std::find(o.codecs.begin(), o.codecs.end(), c.name) != o.codecs.end()) chosen.push_back(c);
  return chosen;
}

struct Result {
  std::string file;
  std::string codec;
  size_t raw = 0;
  size_t enc = 0;
  double enc1 = 0, dec1 = 0, encn = 0, decn = 0;  // MB/s
  double planes = 0, sym16 = 0;
  double ratio() const { return raw ? static_cast<double>(enc) / raw : 0; }
};

// Best-of-runs throughput in MB/s of raw bytes; false on failure or mismatch.
// `buffers` (optional) keeps the encoded and decoded buffers between calls,
// so that repeated single-run calls time the codec rather than the first
// touch of fresh output pages (runs after the first reuse them anyway).
bool Measure(const Codec& c, const std::string& raw, int threads, int runs, Result* r, bool single,
             std::pair<std::string, std::string>* buffers = nullptr) {
  std::pair<std::string, std::string> local;
  std::pair<std::string, std::string>& b = buffers ? *buffers : local;
  std::string& enc = b.first;
  std::string& dec = b.second;
  double best_e = 1e30, best_d = 1e30;
  runs = std::max(1, std::min(runs, c.runs_cap));
  double (*clock)() = single ? ThreadCpuNow : Now;
  for (int i = 0; i < runs; ++i) {
    double t0 = clock();
    if (!c.encode(raw, threads, &enc)) return false;
    best_e = std::min(best_e, clock() - t0);
    t0 = clock();
    if (!c.decode(enc, threads, raw.size(), &dec)) return false;
    best_d = std::min(best_d, clock() - t0);
    if (dec != raw) {
      std::fprintf(stderr, "qatq bench: %s round trip MISMATCH on %s\n", c.name.c_str(),
                   r->file.c_str());
      return false;
    }
  }
  const double mb = raw.size() / 1e6;
  r->enc = enc.size();
  best_e = std::max(best_e, 1e-9);
  best_d = std::max(best_d, 1e-9);
  if (single) {
    r->enc1 = mb / best_e;
    r->dec1 = mb / best_d;
  } else {
    r->encn = mb / best_e;
    r->decn = mb / best_d;
  }
  return true;
}

bool ParseInt(const std::string& s, int* out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 0 || v > (1 << 30)) return false;
  *out = static_cast<int>(v);
  return true;
}

int ParseArgs(const std::vector<std::string>& args, BenchOptions* o) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](int* out) {
      if (i + 1 >= args.size() || !ParseInt(args[i + 1], out)) return false;
      ++i;
      return true;
    };
    if (a == "--markdown") {
      o->markdown = true;
    } else if (a == "--threads") {
      if (!value(&o->threads)) return 2;
    } else if (a == "--runs") {
      if (!value(&o->runs) || o->runs == 0) return 2;
    } else if (a == "--effort") {
      if (!value(&o->effort)) return 2;
    } else if (a == "--chunk") {
      int v;
      if (!value(&v) || v == 0) return 2;
      o->chunk_elements = static_cast<uint32_t>(v);
    } else if (a == "--codecs" && i + 1 < args.size()) {
      std::stringstream ss(args[++i]);
      std::string item;
      while (std::getline(ss, item, ',')) o->codecs.push_back(item);
    } else if (a == "--speed-advisory") {
      o->speed_advisory = true;
    } else if (a == "--gate" && i + 1 < args.size()) {
      o->gate_baseline = args[++i];
    } else if (a == "--write-baseline" && i + 1 < args.size()) {
      o->write_baseline = args[++i];
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      return 2;
    } else {
      o->files.push_back(a);
    }
  }
  return o->files.empty() ? 2 : -1;
}

void PrintTable(const std::vector<Result>& rows, bool markdown, int threads) {
  const std::string nt = "enc MB/s " + std::to_string(threads) + "T";
  const std::string nd = "dec MB/s " + std::to_string(threads) + "T";
  if (markdown) {
    std::printf("| file | codec | ratio | enc MB/s 1T | dec MB/s 1T | %s | %s | H0 planes | H0 16-bit |\n",
                nt.c_str(), nd.c_str());
    std::printf("|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
  } else {
    std::printf("%-40s %-13s %7s %10s %10s %10s %10s %9s %9s\n", "file", "codec", "ratio",
                "enc1 MB/s", "dec1 MB/s", "encN MB/s", "decN MB/s", "H0planes", "H0sym16");
  }
  for (const auto& r : rows) {
    if (markdown)
      std::printf("| %s | %s | %.4f | %.0f | %.0f | %.0f | %.0f | %.4f | %.4f |\n", r.file.c_str(),
                  r.codec.c_str(), r.ratio(), r.enc1, r.dec1, r.encn, r.decn, r.planes, r.sym16);
    else
      std::printf("%-40s %-13s %7.4f %10.0f %10.0f %10.0f %10.0f %9.4f %9.4f\n", r.file.c_str(),
                  r.codec.c_str(), r.ratio(), r.enc1, r.dec1, r.encn, r.decn, r.planes, r.sym16);
  }
}

bool LoadBaseline(const std::string& path, std::map<std::string, double>* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string name;
    double ratio;
    if (ss >> name >> ratio) (*out)[name] = ratio;
  }
  return true;
}

// The gate: v3 ratio against the baseline, and v3 single-thread speed
// beside zstd on the same bytes. Targets: encode >= zstd -1 encode; decode
// >= 2x zstd -3 decode. Failure below half of a target.
int RunGate(const BenchOptions& o) {
  std::map<std::string, double> baseline;
  if (!LoadBaseline(o.gate_baseline, &baseline)) {
    std::fprintf(stderr, "qatq bench: cannot read baseline %s\n", o.gate_baseline.c_str());
    return 1;
  }
  int failures = 0;
  for (const std::string& path : o.files) {
    std::string raw;
    if (!ReadWholeFile(path, &raw)) {
      std::fprintf(stderr, "qatq bench: cannot read %s\n", path.c_str());
      return 1;
    }
    const DType dtype = DTypeForPath(path);
    BenchOptions co = o;
    co.codecs = {"v3", "zstd1", "zstd3"};
    std::vector<Codec> codecs = MakeCodecs(dtype, co);
    // Rounds interleave the codecs so that a noisy machine slows them alike;
    // each keeps its best round.
    std::map<std::string, Result> res;
    std::map<std::string, std::pair<std::string, std::string>> buffers;
    for (int round = 0; round < std::max(1, o.runs); ++round) {
      for (const Codec& c : codecs) {
        Result r;
        r.file = BaseName(path);
        r.codec = c.name;
        r.raw = raw.size();
        if (!Measure(c, raw, 1, 1, &r, true, &buffers[c.name])) return 1;
        auto it = res.find(c.name);
        if (it == res.end()) {
          res[c.name] = r;
        } else {
          it->second.enc1 = std::max(it->second.enc1, r.enc1);
          it->second.dec1 = std::max(it->second.dec1, r.dec1);
        }
      }
    }
    const Result& v3 = res["v3"];
    const std::string name = BaseName(path);
    std::string verdict = "ok";
    auto it = baseline.find(name);
    if (it == baseline.end()) {
      verdict = "no-baseline";
    } else if (v3.ratio() > it->second + 0.001) {
      verdict = "FAIL-ratio";
      ++failures;
    }
    const double enc_target = res["zstd1"].enc1;
    const double dec_target = 2 * res["zstd3"].dec1;
    std::string speed = "ok";
    if (v3.enc1 < enc_target / 2 || v3.dec1 < dec_target / 2) {
      if (o.speed_advisory) {
        speed = "FAIL-speed (advisory)";
      } else {
        speed = "FAIL-speed";
        ++failures;
      }
    } else if (v3.enc1 < enc_target || v3.dec1 < dec_target) {
      speed = "below-target";
    }
    std::printf(
        "%-36s ratio %.4f (baseline %s) %s | enc %.0f MB/s (target %.0f) dec %.0f MB/s (target "
        "%.0f) %s\n",
        name.c_str(), v3.ratio(),
        it == baseline.end() ? "-" : std::to_string(it->second).substr(0, 6).c_str(),
        verdict.c_str(), v3.enc1, enc_target, v3.dec1, dec_target, speed.c_str());
  }
  std::printf("codec gate: %s\n", failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}

}  // namespace

int RunBenchCommand(const std::vector<std::string>& args) {
  BenchOptions o;
  int rc = ParseArgs(args, &o);
  if (rc == 0) return 0;
  if (rc == 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (!o.gate_baseline.empty()) return RunGate(o);
  const int all_threads = o.threads > 0 ? o.threads
                                        : std::max(1u, std::thread::hardware_concurrency());
  std::vector<Result> rows;
  std::vector<std::pair<std::string, double>> v3_ratios;
  for (const std::string& path : o.files) {
    std::string raw;
    if (!ReadWholeFile(path, &raw)) {
      std::fprintf(stderr, "qatq bench: cannot read %s\n", path.c_str());
      return 1;
    }
    const DType dtype = DTypeForPath(path);
    if (raw.size() % DTypeWidth(dtype) != 0) {
      std::fprintf(stderr, "qatq bench: %s: size is not a multiple of the %s width\n", path.c_str(),
                   std::string(DTypeName(dtype)).c_str());
      return 1;
    }
    double planes, sym16;
    Order0Bounds(dtype, raw, &planes, &sym16);
    for (const Codec& c : MakeCodecs(dtype, o)) {
      Result r;
      r.file = BaseName(path);
      r.codec = c.name;
      r.raw = raw.size();
      r.planes = planes;
      r.sym16 = sym16;
      if (!Measure(c, raw, 1, o.runs, &r, true)) return 1;
      if (c.has_threads && all_threads > 1) {
        Result rn = r;
        if (!Measure(c, raw, all_threads, o.runs, &rn, false)) return 1;
        r.encn = rn.encn;
        r.decn = rn.decn;
      } else {
        r.encn = r.enc1;
        r.decn = r.dec1;
      }
      if (c.name == "v3") v3_ratios.push_back({r.file, r.ratio()});
      rows.push_back(r);
    }
  }
  PrintTable(rows, o.markdown, all_threads);
  if (!o.write_baseline.empty()) {
    std::ofstream f(o.write_baseline);
    f << "# file\tv3 ratio (qatq bench --write-baseline; chunk " << o.chunk_elements << ", effort "
      << o.effort << ")\n";
    char buf[32];
    for (const auto& [name, ratio] : v3_ratios) {
      std::snprintf(buf, sizeof buf, "%.4f", ratio);
      f << name << "\t" << buf << "\n";
    }
    if (!f) {
      std::fprintf(stderr, "qatq bench: cannot write %s\n", o.write_baseline.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace qatq
