// Crash tests: SIGKILL the qatqfs daemon at random moments while writer
// processes run, remount, and check what survived against the writers'
// journals; SIGTERM with a file held open (docs/RELIABILITY.md).
//
// What must hold after a SIGKILL of the daemon (the kernel keeps the page
// cache, so this is a process crash, not a power cut):
//  - a file whose last write was followed by a successful fsync has exactly
//    that content (no fsync'ed byte is lost);
//  - a file written and closed but not fsync'ed holds a complete version:
//    the last fsync'ed one or any later one (or is empty/absent when it never
//    reached an fsync and was being rewritten with O_TRUNC);
//  - only a file being written at the kill may be torn, and then every byte
//    is one that some candidate version has at that offset (or zero);
//  - an append-only file keeps every fsync'ed byte, and past that holds only
//    appended bytes;
//  - a file renamed into place after its data was fsync'ed is never torn;
//    a rename followed by an fsync of the directory survives;
//  - files of earlier iterations (complete and unmodified) never change;
//  - the daemon mounts the store again; the store check of `qatqfs fsck`
//    (index/fsck.h, run in-process) reports nothing but orphan objects
//    (removable garbage) right after the kill and after the remount's clean
//    unmount, and after a repair at the end nothing at all.
//
// Every fourth iteration sends SIGTERM first and SIGKILL 0-50 ms later, so
// the kill lands inside the shutdown commit. At the end every file is
// deleted and `qatqfs stats` must show no chunk references left.
//
// Environment: QATQ_CRASH_ITERATIONS (default 4), QATQ_CRASH_WRITERS
// (default 3), QATQ_CRASH_SEED (default 1), QATQ_CRASH_MAX_MS (latest kill,
// default 2500; kills land 20 ms..max after the writers start).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "index/fsck.h"
#include "index/store.h"
#include "tests/reliability/mount_util.h"
#include "tests/reliability/rng.h"
#include "tests/testutil.h"

namespace qatq::test {
namespace {

namespace fs = std::filesystem;


// Identifies one version of one file; content is a function of it.
uint64_t Key(int iter, int writer, const std::string& name, uint64_t ver) {
  std::string s =
      std::to_string(iter) + "/" + std::to_string(writer) + "/" + name + "/" + std::to_string(ver);
  return Fnv1a(s.data(), s.size());
}

// Content of `len` bytes for `key`: random, tensor-like, zero with islands
// (chunks of zeros become holes) or byte runs, chosen by the key.
std::string Content(uint64_t key, uint64_t len) {
  std::string s(len, '\0');
  Rng g(key);
  uint64_t style = g.Below(4);
  for (uint64_t i = 0; i < len; i += 8) {
    uint64_t v = g.Next();
    switch (style) {
      case 0:
        break;
      case 1:
        v = (v & 0x00ff00ff00ff00ffull) | 0x3e003f003c003d00ull;
        break;
      case 2:
        if ((i >> 16) % 3 != 0) v = 0;
        break;
      case 3:
        v = 0x0101010101010101ull * ((i >> 12) & 0xff);
        break;
    }
    memcpy(&s[i], &v, std::min<uint64_t>(8, len - i));
  }
  return s;
}

uint64_t PickLen(Rng& rng) {
  uint64_t r = rng.Below(100);
  if (r < 30) return rng.Below(4097);
  if (r < 70) return rng.Range(1, 256 << 10);
  return rng.Range(1, 3 << 20);
}

// ---- writer process ----

class Journal {
 public:
  explicit Journal(const fs::path& p)
      : fd_(open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {}
  // One write() per record: a record is either wholly there or absent.
  void Log(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    buf[n++] = '\n';
    if (write(fd_, buf, static_cast<size_t>(n)) != n) _exit(3);
  }

 private:
  int fd_;
};

bool WriteAll(int fd, const std::string& data, uint64_t off, Rng& rng) {
  uint64_t done = 0;
  while (done < data.size()) {
    uint64_t piece = std::min<uint64_t>(data.size() - done, rng.Range(1, 512 << 10));
    ssize_t w = pwrite(fd, data.data() + done, piece, static_cast<off_t>(off + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<uint64_t>(w);
  }
  return true;
}

// Runs until an operation fails (the daemon died) or it is killed. Every
// state change is journaled before it starts ("B", "A", "R") and every
// completion after it returned ("S", "C", "Y", "N", "D").
[[noreturn]] void WriterMain(const fs::path& dir, const fs::path& journal, uint64_t seed, int iter,
                             int writer) {
  Rng rng(seed);
  Journal j(journal);
  if (mkdir(dir.c_str(), 0755) != 0) _exit(0);
  int logfd = open((dir / "log").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (logfd < 0) _exit(0);
  uint64_t ver[4] = {}, rver[2] = {}, appended = 0, orphans = 0;
  std::vector<int> open_orphans;
  for (;;) {
    uint64_t r = rng.Below(100);
    if (r < 5) {  // an orphan: unlinked while open, still written, never closed cleanly
      std::string name = "o" + std::to_string(++orphans);
      std::string data = Content(Key(iter, writer, name, 0), rng.Range(1, 2 << 20));
      int fd = open((dir / name).c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
      if (fd < 0 || !WriteAll(fd, data, 0, rng)) _exit(0);
      if (unlink((dir / name).c_str()) != 0) _exit(0);
      j.Log("U %s", name.c_str());
      if (!WriteAll(fd, data, data.size(), rng)) _exit(0);
      if (rng.OneIn(2) && fsync(fd) != 0) _exit(0);
      open_orphans.push_back(fd);
      if (open_orphans.size() > 3) {
        close(open_orphans.front());
        open_orphans.erase(open_orphans.begin());
      }
    } else if (r < 50) {  // rewrite a whole file in place
      int k = static_cast<int>(rng.Below(4));
      uint64_t v = ++ver[k], len = PickLen(rng);
      std::string name = "v" + std::to_string(k);
      std::string data = Content(Key(iter, writer, name, v), len);
      j.Log("B %s %lu %lu", name.c_str(), v, len);
      int fd = open((dir / name).c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || !WriteAll(fd, data, 0, rng)) _exit(0);
      if (rng.OneIn(2)) {
        if (fsync(fd) != 0) _exit(0);
        j.Log("S %s %lu", name.c_str(), v);
      }
      if (close(fd) != 0) _exit(0);
      j.Log("C %s %lu", name.c_str(), v);
    } else if (r < 75) {  // append to a file held open for the whole run
      uint64_t len = rng.Range(1, 128 << 10);
      std::string data = Content(Key(iter, writer, "log", appended), len);
      j.Log("A %lu %lu", appended, len);
      if (!WriteAll(logfd, data, appended, rng)) _exit(0);
      appended += len;
      if (rng.OneIn(3)) {
        if (fsync(logfd) != 0) _exit(0);
        j.Log("Y %lu", appended);
      }
    } else {  // write a temporary, fsync it, rename it over the target
      int k = static_cast<int>(rng.Below(2));
      uint64_t v = ++rver[k], len = PickLen(rng);
      std::string name = "r" + std::to_string(k);
      std::string tmp = name + ".t" + std::to_string(v);
      std::string data = Content(Key(iter, writer, name, v), len);
      int fd = open((dir / tmp).c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0 || !WriteAll(fd, data, 0, rng) || fsync(fd) != 0 || close(fd) != 0) _exit(0);
      j.Log("R %s %lu %lu", name.c_str(), v, len);
      if (rename((dir / tmp).c_str(), (dir / name).c_str()) != 0) _exit(0);
      j.Log("N %s %lu", name.c_str(), v);
      if (rng.OneIn(2)) {
        int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) _exit(0);
        close(dfd);
        j.Log("D %s %lu", name.c_str(), v);
      }
    }
  }
}

// ---- verification ----

struct CrashStats {
  uint64_t files = 0;
  uint64_t fsync_determined = 0;  // files whose content an fsync fixed exactly
  uint64_t exact_latest = 0;
  uint64_t exact_earlier = 0;
  uint64_t empty_or_absent = 0;
  uint64_t torn_in_flight = 0;
  uint64_t lost_fsynced_bytes = 0;
  uint64_t unsynced_append_bytes_lost = 0;
  uint64_t bytes_checked = 0;
  uint64_t resurrected_unlinks = 0;
  uint64_t closed_but_earlier = 0;  // last version closed, file holds an older one
  uint64_t kills = 0;
  uint64_t fsck_runs = 0;
  uint64_t fsck_orphan_objects = 0;  // summed over all fsck runs
};

struct Version {
  uint64_t len = 0;
  bool synced = false, closed = false, renamed = false, dir_synced = false;
};

struct WriterJournal {
  std::map<std::string, std::map<uint64_t, Version>> rewrites;  // v0..v3
  std::map<std::string, std::map<uint64_t, Version>> renames;   // r0, r1
  std::vector<std::pair<uint64_t, uint64_t>> appends;           // (off, len)
  uint64_t synced_append = 0;
  std::vector<std::string> unlinked;  // orphans whose unlink returned
};

WriterJournal ParseJournal(const fs::path& p) {
  WriterJournal j;
  std::string text;
  ReadWholeFile(p, &text);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string op, name;
    uint64_t a = 0, b = 0;
    ls >> op;
    if (op == "B") {
      ls >> name >> a >> b;
      j.rewrites[name][a].len = b;
    } else if (op == "S") {
      ls >> name >> a;
      j.rewrites[name][a].synced = true;
    } else if (op == "C") {
      ls >> name >> a;
      j.rewrites[name][a].closed = true;
    } else if (op == "A") {
      ls >> a >> b;
      j.appends.push_back({a, b});
    } else if (op == "Y") {
      ls >> a;
      j.synced_append = std::max(j.synced_append, a);
    } else if (op == "R") {
      ls >> name >> a >> b;
      j.renames[name][a].len = b;
    } else if (op == "N") {
      ls >> name >> a;
      j.renames[name][a].renamed = true;
    } else if (op == "U") {
      ls >> name;
      j.unlinked.push_back(name);
    } else if (op == "D") {
      ls >> name >> a;
      j.renames[name][a].dir_synced = true;
    }
  }
  return j;
}

// Reads `p`; *exists is false for ENOENT. Any other error is a failure.
bool ReadForCheck(const fs::path& p, std::string* data, bool* exists, std::string* err) {
  if (ReadWholeFile(p, data)) {
    *exists = true;
    return true;
  }
  if (errno == ENOENT) {
    *exists = false;
    return true;
  }
  *err += p.string() + ": read failed: " + strerror(errno) + "\n";
  return false;
}

class Verifier {
 public:
  Verifier(int iter, CrashStats* stats, std::string* failures)
      : iter_(iter), stats_(stats), failures_(failures) {}

  void Fail(const std::string& what) {
    *failures_ += "iteration " + std::to_string(iter_) + ": " + what + "\n";
  }

  void CheckWriter(int writer, const fs::path& dir, const WriterJournal& j) {
    for (const auto& [name, versions] : j.rewrites)
      CheckRewrite(writer, dir / name, name, versions);
    for (const auto& [name, versions] : j.renames) CheckRename(writer, dir, name, versions);
    CheckAppend(writer, dir / "log", j);
    // An unlink is a metadata commit: it should survive, but without a
    // directory fsync that is not promised, so only count.
    for (const auto& name : j.unlinked) stats_->resurrected_unlinks += fs::exists(dir / name);
  }

 private:
  // A torn file: every byte matches some candidate version or is zero.
  bool PlausiblyTorn(const std::string& got, const std::vector<std::string>& candidates) {
    size_t max_len = 0;
    for (const auto& c : candidates) max_len = std::max(max_len, c.size());
    if (got.size() > max_len) return false;
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] == 0) continue;
      bool ok = false;
      for (const auto& c : candidates) ok = ok || (i < c.size() && c[i] == got[i]);
      if (!ok) return false;
    }
    return true;
  }

  void CheckRewrite(int writer, const fs::path& path, const std::string& name,
                    const std::map<uint64_t, Version>& versions) {
    ++stats_->files;
    std::string got, err;
    bool exists;
    if (!ReadForCheck(path, &got, &exists, &err)) return Fail(err);
    stats_->bytes_checked += got.size();
    uint64_t last = versions.rbegin()->first;
    uint64_t synced = 0;
    for (const auto& [v, info] : versions) {
      if (info.synced) synced = v;
    }
    auto content = [&](uint64_t v) {
      return Content(Key(iter_, writer, name, v), versions.at(v).len);
    };
    if (synced == last) {
      ++stats_->fsync_determined;
      std::string want = content(last);
      if (exists && got == want) {
        ++stats_->exact_latest;
        return;
      }
      stats_->lost_fsynced_bytes += want.size();
      return Fail(path.string() + ": fsync'ed version " + std::to_string(last) + " (" +
                  std::to_string(want.size()) + " bytes) lost: " +
                  (exists ? "file has " + std::to_string(got.size()) + " other bytes"
                          : std::string("file is absent")));
    }
    // Candidates: the last fsync'ed version (or none) and every later one.
    std::vector<std::string> candidates;
    for (const auto& [v, info] : versions) {
      if (v < synced) continue;
      std::string c = content(v);
      if (exists && got == c) {
        ++(v == last ? stats_->exact_latest : stats_->exact_earlier);
        // Allowed, but a process crash should not undo a completed close.
        if (v != last && versions.at(last).closed) ++stats_->closed_but_earlier;
        return;
      }
      candidates.push_back(std::move(c));
    }
    if (!exists || got.empty()) {
      // O_TRUNC of a later version (or the first create) committed alone.
      if (synced == 0 || exists) {
        ++stats_->empty_or_absent;
        return;
      }
      stats_->lost_fsynced_bytes += versions.at(synced).len;
      return Fail(path.string() + ": absent, but version " + std::to_string(synced) +
                  " was fsync'ed");
    }
    if (!versions.at(last).closed && PlausiblyTorn(got, candidates)) {
      ++stats_->torn_in_flight;
      return;
    }
    Fail(path.string() + ": " + std::to_string(got.size()) +
         " bytes match no complete version in [" + std::to_string(synced) + ", " +
         std::to_string(last) + "]" +
         (versions.at(last).closed ? " (last version was closed: may not be torn)"
                                   : " and are not a torn in-flight write"));
  }

  void CheckRename(int writer, const fs::path& dir, const std::string& name,
                   const std::map<uint64_t, Version>& versions) {
    ++stats_->files;
    std::string got, err;
    bool exists;
    if (!ReadForCheck(dir / name, &got, &exists, &err)) return Fail(err);
    stats_->bytes_checked += got.size();
    uint64_t durable = 0, last_done = 0;
    for (const auto& [v, info] : versions) {
      if (info.dir_synced) durable = v;
      if (info.renamed) last_done = v;
    }
    // A temporary whose rename was made durable must be gone.
    for (const auto& [v, info] : versions) {
      fs::path tmp = dir / (name + ".t" + std::to_string(v));
      if (info.dir_synced && fs::exists(tmp)) {
        Fail(tmp.string() + ": still exists after its rename and a directory fsync");
      }
    }
    if (!exists) {
      if (durable == 0) {
        ++stats_->empty_or_absent;
        return;
      }
      stats_->lost_fsynced_bytes += versions.at(durable).len;
      return Fail((dir / name).string() + ": absent after a durable rename of version " +
                  std::to_string(durable));
    }
    if (durable != 0 && durable == versions.rbegin()->first) ++stats_->fsync_determined;
    for (const auto& [v, info] : versions) {
      if (v < durable) continue;
      if (got == Content(Key(iter_, writer, name, v), info.len)) {
        ++(v == last_done ? stats_->exact_latest : stats_->exact_earlier);
        return;
      }
    }
    if (durable != 0) stats_->lost_fsynced_bytes += versions.at(durable).len;
    Fail((dir / name).string() + ": " + std::to_string(got.size()) +
         " bytes match no version renamed in since the last durable one (" +
         std::to_string(durable) + "); renamed files must never be torn");
  }

  void CheckAppend(int writer, const fs::path& path, const WriterJournal& j) {
    ++stats_->files;
    std::string got, err;
    bool exists;
    if (!ReadForCheck(path, &got, &exists, &err)) return Fail(err);
    stats_->bytes_checked += got.size();
    std::string want;
    for (const auto& [off, len] : j.appends) want += Content(Key(iter_, writer, "log", off), len);
    if (j.synced_append > 0) ++stats_->fsync_determined;
    if (got.size() < j.synced_append) {
      stats_->lost_fsynced_bytes += j.synced_append - got.size();
      return Fail(path.string() + ": " + std::to_string(got.size()) + " bytes, but " +
                  std::to_string(j.synced_append) + " were fsync'ed");
    }
    if (got.size() > want.size()) {
      return Fail(path.string() + ": " + std::to_string(got.size()) + " bytes, only " +
                  std::to_string(want.size()) + " were ever written");
    }
    size_t first = 0;
    while (first < got.size() && got[first] == want[first]) ++first;
    if (first < got.size()) {
      uint64_t bad = 0;
      for (size_t i = first; i < got.size(); ++i) bad += got[i] != want[i];
      if (first < j.synced_append) stats_->lost_fsynced_bytes += j.synced_append - first;
      return Fail(path.string() + ": appended bytes differ from offset " + std::to_string(first) +
                  " (" + std::to_string(bad) + " bytes; " + std::to_string(j.synced_append) +
                  " fsync'ed, size " + std::to_string(got.size()) + ")");
    }
    stats_->unsynced_append_bytes_lost += want.size() - got.size();
    ++(got.size() == want.size() ? stats_->exact_latest : stats_->exact_earlier);
  }

  int iter_;
  CrashStats* stats_;
  std::string* failures_;
};

// Digests of every regular file under `dir` (relative path -> size, hash).
std::map<std::string, std::pair<uint64_t, uint64_t>> Digest(const fs::path& dir) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string data;
    ReadWholeFile(it->path(), &data);
    out[fs::relative(it->path(), dir).string()] = {data.size(), Fnv1a(data.data(), data.size())};
  }
  return out;
}

std::string Summary(const CrashStats& s) {
  std::ostringstream o;
  o << "kills=" << s.kills << " files=" << s.files << " fsync_determined=" << s.fsync_determined
    << " exact_latest=" << s.exact_latest << " exact_earlier=" << s.exact_earlier
    << " empty_or_absent=" << s.empty_or_absent << " torn_in_flight=" << s.torn_in_flight
    << " lost_fsynced_bytes=" << s.lost_fsynced_bytes
    << " unsynced_append_bytes_lost=" << s.unsynced_append_bytes_lost
    << " closed_but_earlier=" << s.closed_but_earlier
    << " resurrected_unlinks=" << s.resurrected_unlinks
    << " MiB_checked=" << (s.bytes_checked >> 20) << " fsck_runs=" << s.fsck_runs
    << " fsck_orphan_objects=" << s.fsck_orphan_objects;
  return o.str();
}

TEST(MountCrash, SigkillDuringWritesKeepsFsyncedDataAndCompleteVersions) {
  QATQ_REQUIRE_MOUNT();
  const int iterations = static_cast<int>(EnvOr("QATQ_CRASH_ITERATIONS", 4));
  const int writers = static_cast<int>(EnvOr("QATQ_CRASH_WRITERS", 3));
  const uint64_t seed = EnvOr("QATQ_CRASH_SEED", 1);
  const uint64_t max_ms = std::max<uint64_t>(EnvOr("QATQ_CRASH_MAX_MS", 2500), 100);
  QatqfsMount m;
  std::string err;
  ASSERT_TRUE(m.Mkfs({}, &err)) << err;
  CrashStats stats;
  std::map<int, std::map<std::string, std::pair<uint64_t, uint64_t>>> settled;
  Rng rng(seed);
  for (int iter = 1; iter <= iterations; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter) + " seed " + std::to_string(seed));
    ASSERT_TRUE(m.Mount(&err)) << err;
    fs::path idir = m.mnt() / ("i" + std::to_string(iter));
    ASSERT_EQ(mkdir(idir.c_str(), 0755), 0) << strerror(errno);
    std::vector<pid_t> pids;
    for (int w = 0; w < writers; ++w) {
      fs::path journal = m.dir() / ("journal-" + std::to_string(iter) + "-" + std::to_string(w));
      uint64_t wseed = rng.Next();
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) WriterMain(idir / ("w" + std::to_string(w)), journal, wseed, iter, w);
      pids.push_back(pid);
    }
    usleep(static_cast<useconds_t>(rng.Range(20, max_ms) * 1000));
    if (iter % 4 == 0) {
      // Die in the middle of the SIGTERM shutdown commit.
      m.Signal(SIGTERM);
      usleep(static_cast<useconds_t>(rng.Below(50) * 1000));
    }
    m.Signal(SIGKILL);
    int status;
    ASSERT_TRUE(m.WaitDaemon(30000, &status)) << "daemon did not die on SIGKILL";
    ++stats.kills;
    for (pid_t pid : pids) kill(pid, SIGKILL);
    for (pid_t pid : pids) ASSERT_TRUE(WaitPid(pid, 30000, &status)) << "writer stuck";
    ASSERT_TRUE(m.CleanDeadMount(&err)) << err;
    {
      std::string out;
      std::string damage = StoreDamage(m.store(), false, &stats.fsck_orphan_objects, &out);
      ++stats.fsck_runs;
      EXPECT_EQ(damage, "") << "fsck right after the kill reports damage:\n" << out;
    }
    ASSERT_TRUE(m.Mount(&err)) << "remount after SIGKILL failed: " << err;

    std::string failures;
    Verifier verifier(iter, &stats, &failures);
    for (int w = 0; w < writers; ++w) {
      fs::path journal = m.dir() / ("journal-" + std::to_string(iter) + "-" + std::to_string(w));
      WriterJournal j = ParseJournal(journal);
      verifier.CheckWriter(w, idir / ("w" + std::to_string(w)), j);
    }
    for (const auto& [old, digests] : settled) {
      auto now = Digest(m.mnt() / ("i" + std::to_string(old)));
      EXPECT_EQ(now, digests) << "files of iteration " << old << " changed after a later crash";
    }
    EXPECT_TRUE(failures.empty()) << failures << "\ndaemon log:\n" << m.LogTail();
    // Keep the last few iterations for re-checking; delete older ones so
    // the store stays small over long runs (and unlink gets exercised).
    settled[iter] = Digest(idir);
    if (settled.size() > 4) {
      int oldest = settled.begin()->first;
      std::error_code ec;
      fs::remove_all(m.mnt() / ("i" + std::to_string(oldest)), ec);
      EXPECT_FALSE(ec) << "removing iteration " << oldest << ": " << ec.message();
      settled.erase(settled.begin());
    }
    ASSERT_TRUE(m.Unmount(&err)) << err;
    {
      std::string out;
      std::string damage = StoreDamage(m.store(), false, &stats.fsck_orphan_objects, &out);
      ++stats.fsck_runs;
      EXPECT_EQ(damage, "") << "fsck after recovery and clean unmount:\n" << out;
    }
    if (HasFatalFailure() || !failures.empty()) break;
  }
  // Leak check: once every file is deleted, no chunk may stay referenced
  // (orphans left by the kills were reclaimed, no reference count drifted).
  if (!HasFailure()) {
    ASSERT_TRUE(m.Mount(&err)) << err;
    for (const auto& e : fs::directory_iterator(m.mnt())) fs::remove_all(e.path());
    ASSERT_TRUE(m.Unmount(&err)) << err;
    EXPECT_EQ(StoreStat(m.store(), "chunk_refs", &err), 0) << err;
    EXPECT_EQ(StoreStat(m.store(), "unique_chunks", &err), 0) << err;
    EXPECT_EQ(StoreStat(m.store(), "files", &err), 0) << err;
    {
      // Repair removes the garbage; then the store is clean.
      std::string out;
      uint64_t orphans = 0;
      EXPECT_EQ(StoreDamage(m.store(), true, &orphans, &out), "") << out;
      orphans = 0;
      EXPECT_EQ(StoreDamage(m.store(), false, &orphans, &out), "") << out;
      EXPECT_EQ(orphans, 0u) << "orphan objects left after repair:\n" << out;
    }
  }
  std::cout << "crash summary (seed " << seed << ", " << writers << " writers): " << Summary(stats)
            << "\n";
  EXPECT_EQ(stats.lost_fsynced_bytes, 0u);
}

// SIGTERM is a clean unmount even with a file held open: everything written
// so far (never fsync'ed, never closed) is committed before the daemon exits.
TEST(MountCrash, SigtermWithFileHeldOpenCommitsEverythingWritten) {
  QATQ_REQUIRE_MOUNT();
  QatqfsMount m;
  std::string err;
  ASSERT_TRUE(m.Mkfs({}, &err)) << err;
  ASSERT_TRUE(m.Mount(&err)) << err;

  // Held open: several chunks, an overwrite, a shrink and a sparse extension.
  std::string held = RandomBytes(5 << 20, 1);
  int fd = open((m.mnt() / "held.bin").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(pwrite(fd, held.data(), held.size(), 0), static_cast<ssize_t>(held.size()));
  std::string patch = RandomBytes(300000, 2);
  ASSERT_EQ(pwrite(fd, patch.data(), patch.size(), 1000000), static_cast<ssize_t>(patch.size()));
  held.replace(1000000, patch.size(), patch);
  ASSERT_EQ(ftruncate(fd, 4200000), 0);
  held.resize(4200000);
  ASSERT_EQ(pwrite(fd, "tail", 4, 6000000), 4);
  held.resize(6000000, '\0');
  held += "tail";
  // Closed without fsync, and a second handle still open read-only.
  std::string closed = RandomBytes(1500000, 3);
  WriteFileOrDie(m.mnt() / "closed.bin", closed);
  int rfd = open((m.mnt() / "closed.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(rfd, 0);

  m.Signal(SIGTERM);
  int status;
  ASSERT_TRUE(m.WaitDaemon(120000, &status)) << "daemon did not exit on SIGTERM\n" << m.LogTail();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "daemon " << DescribeStatus(status) << " on SIGTERM\n"
      << m.LogTail();
  close(fd);
  close(rfd);
  ASSERT_TRUE(m.CleanDeadMount(&err)) << err;

  ASSERT_TRUE(m.Mount(&err)) << err;
  std::string got;
  ASSERT_TRUE(ReadWholeFile(m.mnt() / "held.bin", &got)) << strerror(errno);
  EXPECT_EQ(got.size(), held.size());
  EXPECT_TRUE(got == held) << "held-open file differs after SIGTERM";
  ASSERT_TRUE(ReadWholeFile(m.mnt() / "closed.bin", &got)) << strerror(errno);
  EXPECT_TRUE(got == closed) << "closed file differs after SIGTERM";
  ASSERT_TRUE(m.Unmount(&err)) << err;
}

}  // namespace
}  // namespace qatq::test
