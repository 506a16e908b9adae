#include "fs/store_stats.h"

#include <sys/stat.h>

#include <cstdio>
#include <set>

#include "codec/chunk_record.h"

namespace qatq {

Status ComputeStoreStats(MetadataStore* meta, StoreStats* st) {
  *st = StoreStats();
  Superblock sb;
  QATQ_RETURN_IF_ERROR(meta->GetSuperblock(&sb));
  st->default_chunk_bytes = sb.default_chunk_bytes;
  QATQ_RETURN_IF_ERROR(meta->ForEachInode([&](const InodeAttr& a) {
    if (S_ISREG(a.mode)) {
      st->files++;
      st->logical_bytes += a.size;
      st->files_by_dtype[std::string(DTypeName(a.dtype))]++;
    } else if (S_ISDIR(a.mode)) {
      st->directories++;
    } else if (S_ISLNK(a.mode)) {
      st->symlinks++;
    }
    return Status::OK();
  }));
  std::set<ChunkId> seen;
  QATQ_RETURN_IF_ERROR(meta->ForEachChunkRef([&](InodeId, uint64_t, const ChunkRef& r) {
    st->chunk_refs++;
    st->referenced_bytes += r.raw_len;
    if (seen.insert(r.id).second) {
      st->unique_chunks++;
      st->unique_raw_bytes += r.raw_len;
      st->stored_bytes += r.stored_len;
      auto& p = st->strategies[StrategyName(r.strategy)];
      p.chunks++;
      p.raw_bytes += r.raw_len;
      p.stored_bytes += r.stored_len;
    }
    return Status::OK();
  }));
  return Status::OK();
}

namespace {
std::string Human(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f%s", v, units[u]);
  }
  return buf;
}
double Ratio(uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / b : 0.0; }
}  // namespace

std::string FormatStoreStats(const StoreStats& s, bool json) {
  std::string out;
  char buf[512];
  if (json) {
    std::snprintf(buf, sizeof buf,
                  "{\"files\":%llu,\"directories\":%llu,\"symlinks\":%llu,"
                  "\"logical_bytes\":%llu,\"referenced_bytes\":%llu,\"chunk_refs\":%llu,"
                  "\"unique_chunks\":%llu,\"unique_raw_bytes\":%llu,\"stored_bytes\":%llu,"
                  "\"ratio\":%.4f,\"default_chunk_bytes\":%u,\"strategies\":{",
                  (unsigned long long)s.files, (unsigned long long)s.directories,
                  (unsigned long long)s.symlinks, (unsigned long long)s.logical_bytes,
                  (unsigned long long)s.referenced_bytes, (unsigned long long)s.chunk_refs,
                  (unsigned long long)s.unique_chunks, (unsigned long long)s.unique_raw_bytes,
                  (unsigned long long)s.stored_bytes, Ratio(s.logical_bytes, s.stored_bytes),
                  s.default_chunk_bytes);
    out += buf;
    bool first = true;
    for (auto& [name, p] : s.strategies) {
      std::snprintf(buf, sizeof buf,
                    "%s\"%s\":{\"chunks\":%llu,\"raw_bytes\":%llu,\"stored_bytes\":%llu}",
                    first ? "" : ",", name.c_str(), (unsigned long long)p.chunks,
                    (unsigned long long)p.raw_bytes, (unsigned long long)p.stored_bytes);
      out += buf;
      first = false;
    }
    out += "},\"files_by_dtype\":{";
    first = true;
    for (auto& [name, n] : s.files_by_dtype) {
      std::snprintf(buf, sizeof buf, "%s\"%s\":%llu", first ? "" : ",", name.c_str(),
                    (unsigned long long)n);
      out += buf;
      first = false;
    }
    out += "}}\n";
    return out;
  }
  std::snprintf(buf, sizeof buf,
                "Processed %llu files, %llu directories, %llu symlinks; %llu chunk refs, "
                "%llu unique chunks.\n",
                (unsigned long long)s.files, (unsigned long long)s.directories,
                (unsigned long long)s.symlinks, (unsigned long long)s.chunk_refs,
                (unsigned long long)s.unique_chunks);
  out += buf;
  std::snprintf(buf, sizeof buf, "%-10s %6s %12s %12s %8s\n", "Type", "Ratio", "Disk Usage",
                "Uncompressed", "Chunks");
  out += buf;
  std::snprintf(buf, sizeof buf, "%-10s %6.2f %12s %12s %8llu\n", "TOTAL",
                Ratio(s.unique_raw_bytes, s.stored_bytes), Human(s.stored_bytes).c_str(),
                Human(s.unique_raw_bytes).c_str(), (unsigned long long)s.unique_chunks);
  out += buf;
  for (auto& [name, p] : s.strategies) {
    std::snprintf(buf, sizeof buf, "%-10s %6.2f %12s %12s %8llu\n", name.c_str(),
                  Ratio(p.raw_bytes, p.stored_bytes), Human(p.stored_bytes).c_str(),
                  Human(p.raw_bytes).c_str(), (unsigned long long)p.chunks);
    out += buf;
  }
  std::snprintf(
      buf, sizeof buf,
      "Logical %s in files (holes %s, dedup saved %s); stored %s; overall ratio "
      "%.3f\n",
      Human(s.logical_bytes).c_str(),
      Human(s.logical_bytes > s.referenced_bytes ? s.logical_bytes - s.referenced_bytes : 0)
          .c_str(),
      Human(s.referenced_bytes - s.unique_raw_bytes).c_str(), Human(s.stored_bytes).c_str(),
      Ratio(s.logical_bytes, s.stored_bytes));
  out += buf;
  out += "Files by dtype:";
  for (auto& [name, n] : s.files_by_dtype) {
    std::snprintf(buf, sizeof buf, " %s=%llu", name.c_str(), (unsigned long long)n);
    out += buf;
  }
  out += "\n";
  return out;
}

}  // namespace qatq
