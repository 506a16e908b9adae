#include "tools/admin_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace qatq::admin {

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool HasOption(const std::string& opts, const std::string& name) {
  size_t start = 0;
  while (start <= opts.size()) {
    size_t comma = opts.find(',', start);
    if (comma == std::string::npos) comma = opts.size();
    if (opts.compare(start, comma - start, name) == 0 && comma - start == name.size()) return true;
    start = comma + 1;
  }
  return false;
}

}  // namespace

std::vector<QatqfsMount> ListQatqfsMounts() {
  std::vector<QatqfsMount> mounts;
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp, opts, tok;
    ss >> id >> parent >> dev >> root >> mp >> opts;
    while (ss >> tok && tok != "-") {
    }
    std::string fstype, source;
    ss >> fstype >> source;
    if (fstype != "fuse.qatqfs") continue;
    mounts.push_back(QatqfsMount{Unescape(mp), Unescape(source), HasOption(opts, "ro")});
  }
  return mounts;
}

bool FindMountOf(const std::string& abs_path, QatqfsMount* mount, std::string* rel) {
  bool found = false;
  size_t best = 0;
  for (const QatqfsMount& m : ListQatqfsMounts()) {
    const std::string& mp = m.mount_point;
    bool prefix = abs_path == mp || (abs_path.compare(0, mp.size(), mp) == 0 &&
                                     (mp == "/" || abs_path[mp.size()] == '/'));
    if (!prefix || (found && mp.size() < best)) continue;
    found = true;
    best = mp.size();
    *mount = m;
    std::string r = mp == "/" ? abs_path : abs_path.substr(mp.size());
    *rel = r.empty() ? "/" : r;
  }
  return found;
}

bool FindMountOfStore(const std::string& abs_store, QatqfsMount* mount) {
  for (const QatqfsMount& m : ListQatqfsMounts()) {
    if (m.store == abs_store) {
      *mount = m;
      return true;
    }
  }
  return false;
}

std::string AbsPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf)) return buf;
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  if (dir.empty()) dir.assign(1, '/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (::realpath(dir.c_str(), buf)) {
    std::string d = buf;
    return d == "/" ? "/" + base : d + "/" + base;
  }
  return path;
}

Status ResolvePath(MetadataStore* meta, const std::string& rel, InodeAttr* attr) {
  InodeId cur = kRootInode;
  std::string walked;
  size_t start = 0;
  while (start < rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) slash = rel.size();
    std::string name = rel.substr(start, slash - start);
    start = slash + 1;
    if (name.empty() || name == ".") continue;
    if (name == "..") return Status::InvalidArgument("'..' in a store path: " + rel);
    DirEntry e;
    Status s = meta->Lookup(cur, name, &e);
    if (s.IsNotFound()) return Status::NotFound(walked + "/" + name + " not found in the store");
    QATQ_RETURN_IF_ERROR(s);
    walked += "/" + name;
    cur = e.ino;
  }
  return meta->GetInode(cur, attr);
}

std::string JsonEscape(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string HumanBytes(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(1ull << 30));
  } else if (bytes >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / double(1ull << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

}  // namespace qatq::admin
