#include "tools/cli_args.h"

#include <cerrno>
#include <cstdlib>

namespace qatq::cli {

Status ParseArgs(const std::vector<std::string>& args, const std::set<std::string>& valued,
                 const std::set<std::string>& flags, ParsedArgs* out) {
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (options_done || a == "-" || a.empty() || a[0] != '-') {
      out->positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a == "-h") a = "--help";
    if (a == "-q") a = "--quiet";
    std::string value;
    bool has_value = false;
    size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    if (valued.count(a)) {
      if (!has_value) {
        if (i + 1 >= args.size()) return Status::InvalidArgument("option " + a + " needs a value");
        value = args[++i];
      }
      out->values[a] = value;
    } else if (flags.count(a)) {
      if (has_value) return Status::InvalidArgument("option " + a + " takes no value");
      out->flags.insert(a);
    } else {
      return Status::InvalidArgument("unknown option " + a);
    }
  }
  return Status::OK();
}

Status ParseUint(const std::string& name, const std::string& text, uint64_t lo, uint64_t hi,
                 uint64_t* out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument(name + " needs a number, got '" + text + "'");
  }
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE || v < lo || v > hi) {
    return Status::InvalidArgument(name + " must be in " + std::to_string(lo) + ".." +
                                   std::to_string(hi) + ", got " + text);
  }
  *out = v;
  return Status::OK();
}

}  // namespace qatq::cli
