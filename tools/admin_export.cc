// `qatqfs export`: a file of a store as a QATC artefact, built from the
// stored chunk records (tools/qatqfs_admin.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>

#include "codec/chunk_record.h"
#include "codec/qatc_v2.h"
#include "codec/qatc_v3.h"
#include "index/store.h"
#include "tools/admin_util.h"
#include "tools/cli.h"
#include "tools/cli_args.h"
#include "tools/cli_io.h"
#include "tools/qatqfs_admin.h"

namespace qatq {

namespace {

constexpr char kExportUsage[] =
    "usage: qatqfs export MOUNT/FILE OUT.qatc [--format v3|v2] [--quiet]\n"
    "       qatqfs export --store STORE /path/in/store OUT.qatc [--format v3|v2]\n"
    "Writes a file of a qatqfs mount (or of an unmounted store) as a QATC\n"
    "artefact. v3 (default) copies the stored chunk records without decoding or\n"
    "re-encoding them; v2 decodes and encodes a file for the other QATQ tools.\n";

int ExportError(const std::string& msg, int rc = kExitDataError) {
  std::fprintf(stderr, "qatqfs export: %s\n", msg.c_str());
  return rc;
}

struct ExportStats {
  uint64_t chunks = 0;
  uint64_t copied = 0;     // stored records passed through as they are
  uint64_t reencoded = 0;  // decoded and encoded again (dtype or length differ)
  uint64_t holes = 0;      // encoded as a constant-zero record
};

// Produces chunk k of the file as a record of `dtype` holding exactly the
// file's bytes of that chunk.
class RecordSource {
 public:
  RecordSource(Store* store, const InodeAttr& attr, DType dtype, const std::string& name)
      : store_(store), attr_(attr), dtype_(dtype), name_(name) {}

  Status Load() {
    if (attr_.size == 0) return Status::OK();
    if (attr_.chunk_bytes == 0) return Status::Corruption(name_ + " has chunk size 0");
    count_ = (attr_.size + attr_.chunk_bytes - 1) / attr_.chunk_bytes;
    std::vector<std::pair<uint64_t, ChunkRef>> refs;
    QATQ_RETURN_IF_ERROR(store_->meta()->GetChunkRefs(attr_.ino, 0, count_ - 1, &refs));
    for (auto& [k, r] : refs) refs_.emplace(k, r);
    return Status::OK();
  }
  uint64_t count() const { return count_; }

  Status Get(uint64_t k, std::string* record, ExportStats* stats) {
    const uint64_t expected =
        std::min<uint64_t>(attr_.chunk_bytes, attr_.size - k * attr_.chunk_bytes);
    ++stats->chunks;
    auto it = refs_.find(k);
    if (it == refs_.end()) {
      ++stats->holes;
      return EncodeChunkRecord(dtype_, std::string(expected, '\0'), {}, record);
    }
    const ChunkRef& ref = it->second;
    Status s = store_->chunks()->Get(ref.id, record);
    const std::string where =
        "chunk " + std::to_string(k) + " of " + name_ + " (object " + ref.id.ToHex() + ")";
    if (s.IsNotFound()) {
      return Status::Corruption(where +
                                " is missing (the file changed during the export, or "
                                "the store is damaged: retry, then run qatqfs fsck)");
    }
    QATQ_RETURN_IF_ERROR(s);
    ChunkRecordInfo info;
    s = VerifyChunkRecord(*record, &info);
    if (s.ok() && info.raw_len != ref.raw_len) {
      s = Status::Corruption("record holds " + std::to_string(info.raw_len) +
                             " bytes, the chunk map says " + std::to_string(ref.raw_len));
    }
    if (!s.ok())
      return Status::Corruption(where + " is corrupt: " + s.message() +
                                "; run qatqfs fsck on the store");
    if (info.dtype == dtype_ && info.raw_len == expected) {
      ++stats->copied;
      return Status::OK();
    }
    // Stored with another dtype (the file's dtype changed after it was
    // written) or shorter than the file says (bytes past a record read as
    // zeros): this chunk only is re-encoded.
    std::string raw;
    QATQ_RETURN_IF_ERROR(DecodeChunkRecord(*record, &raw).WithContext(where));
    raw.resize(expected, '\0');
    ++stats->reencoded;
    return EncodeChunkRecord(dtype_, raw, {}, record);
  }

  // Decoded bytes of chunk k (for v2), appended to *out.
  Status AppendRaw(uint64_t k, std::string* out, ExportStats* stats) {
    std::string record, raw;
    QATQ_RETURN_IF_ERROR(Get(k, &record, stats));
    QATQ_RETURN_IF_ERROR(DecodeChunkRecord(record, &raw));
    out->append(raw);
    return Status::OK();
  }

 private:
  Store* store_;
  InodeAttr attr_;
  DType dtype_;
  std::string name_;
  uint64_t count_ = 0;
  std::map<uint64_t, ChunkRef> refs_;
};

}  // namespace

int RunExportCommand(const std::vector<std::string>& args) {
  cli::ParsedArgs pa;
  Status s = cli::ParseArgs(args, {"--format", "--store"}, {"--quiet", "--help"}, &pa);
  if (pa.Has("--help")) {
    std::fputs(kExportUsage, stdout);
    return kExitOk;
  }
  const std::string format = pa.Get("--format", "v3");
  if (!s.ok() || pa.positional.size() != 2 || (format != "v3" && format != "v2")) {
    std::fprintf(stderr, "qatqfs export: %s\n%s",
                 !s.ok()                     ? s.message().c_str()
                 : pa.positional.size() != 2 ? "need a FILE and an OUT path"
                                             : "--format must be v3 or v2",
                 kExportUsage);
    return kExitUsage;
  }
  const std::string& file = pa.positional[0];
  const std::string& out_path = pa.positional[1];

  std::string store_path, rel;
  int fd = -1;  // held open through the export: an unlink meanwhile keeps the data
  struct FdCloser {
    int* fd;
    ~FdCloser() {
      if (*fd >= 0) ::close(*fd);
    }
  } closer{&fd};
  struct stat st {};
  if (pa.Has("--store")) {
    store_path = admin::AbsPath(pa.Get("--store"));
    rel = file;
  } else {
    const std::string abs = admin::AbsPath(file);
    admin::QatqfsMount mount;
    if (!admin::FindMountOf(abs, &mount, &rel)) {
      return ExportError(file +
                         " is not on a qatqfs mount; for a store that is not mounted use: "
                         "qatqfs export --store STORE /path/in/store OUT");
    }
    store_path = mount.store;
    fd = ::open(abs.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ExportError(file + ": " + Status::FromErrno("open").message());
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      return ExportError(file + " is not a regular file");
    }
    // Commits (and makes durable) everything written to the file so far,
    // so the index read below has all of it. A read-only mount has nothing
    // uncommitted.
    if (::fsync(fd) != 0 && errno != EROFS && errno != EINVAL) {
      return ExportError(file + ": " + Status::FromErrno("fsync").message());
    }
  }

  std::unique_ptr<Store> store;
  StoreOptions so;
  so.read_only = true;  // works beside the daemon: no lock, no writes
  s = OpenStore(store_path, so, &store);
  if (!s.ok()) return ExportError("store " + store_path + ": " + s.ToString());
  InodeAttr attr;
  s = admin::ResolvePath(store->meta(), rel, &attr);
  if (!s.ok()) return ExportError(file + ": " + s.ToString());
  if (!S_ISREG(attr.mode)) return ExportError(file + " is not a regular file");
  if (fd >= 0 && static_cast<uint64_t>(st.st_size) != attr.size) {
    return ExportError(file + " is " + std::to_string(st.st_size) + " bytes in the mount but " +
                       std::to_string(attr.size) +
                       " committed; another writer has it open: retry when it is done");
  }

  DType dtype = attr.dtype;
  const size_t width = DTypeWidth(dtype);
  if (attr.size % width != 0 || (attr.chunk_bytes != 0 && attr.chunk_bytes % width != 0)) {
    dtype = DType::kBytes;  // v3 holds whole elements only
  }
  if (format == "v2" && dtype == DType::kBytes) {
    return ExportError(file +
                       " is stored as bytes, not f32/f16/bf16; QATC v2 cannot hold it "
                       "(use --format v3)");
  }
  RecordSource source(store.get(), attr, dtype, file);
  if (!(s = source.Load()).ok()) return ExportError(s.ToString());

  cli::AtomicOutput out;
  if (!(s = out.Open(out_path)).ok()) return ExportError(out_path + ": " + s.ToString());
  cli::Progress progress("qatqfs: export", attr.size, !pa.Has("--quiet"));
  auto done_bytes = [&](uint64_t k) {
    return std::min<uint64_t>(attr.size, (k + 1) * uint64_t{attr.chunk_bytes});
  };
  ExportStats stats;
  Status write_status;
  auto sink = [&](std::string_view b) -> Status {
    Status w = out.Write(b);
    if (!w.ok()) write_status = w;
    return w;
  };
  const uint32_t chunk_elements =
      attr.chunk_bytes ? static_cast<uint32_t>(attr.chunk_bytes / DTypeWidth(dtype)) : 65536;
  if (format == "v3") {
    QatcV3Builder builder(dtype, chunk_elements, sink);
    std::string record;
    for (uint64_t k = 0; s.ok() && k < source.count(); ++k) {
      s = source.Get(k, &record, &stats);
      if (s.ok()) s = builder.AddRecord(record);
      progress.Update(done_bytes(k));
    }
    if (s.ok()) s = builder.Finish();
  } else {
    std::string raw;
    raw.reserve(attr.size);
    for (uint64_t k = 0; s.ok() && k < source.count(); ++k) {
      s = source.AppendRaw(k, &raw, &stats);
      progress.Update(done_bytes(k));
    }
    uint32_t v2_chunk = chunk_elements <= kMaxPayloadElements ? chunk_elements : 65536;
    if (s.ok()) s = EncodeQatcV2(dtype, raw, v2_chunk, {}, 0, sink);
  }
  progress.Finish();
  if (!write_status.ok()) return ExportError(out_path + ": " + write_status.ToString());
  if (!s.ok()) return ExportError(s.ToString());
  if (!(s = out.Commit()).ok()) return ExportError(out_path + ": " + s.ToString());
  if (!pa.Has("--quiet")) {
    std::printf("exported %s (%s, %s, %" PRIu64 " chunks: %" PRIu64 " copied, %" PRIu64
                " re-encoded, %" PRIu64 " holes) to %s (%s, QATC %s)\n",
                file.c_str(), admin::HumanBytes(attr.size).c_str(),
                std::string(DTypeName(dtype)).c_str(), stats.chunks, stats.copied, stats.reencoded,
                stats.holes, out_path.c_str(), admin::HumanBytes(out.bytes_written()).c_str(),
                format.c_str());
  }
  return kExitOk;
}

}  // namespace qatq
