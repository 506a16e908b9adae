// Minimal option parsing for qatq commands: options in any order, before or
// after positional arguments, as `--name value` or `--name=value`; `-` is a
// positional argument (stdin/stdout) and `--` ends the options.
#ifndef QATQ_TOOLS_CLI_ARGS_H_
#define QATQ_TOOLS_CLI_ARGS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"

namespace qatq::cli {

struct ParsedArgs {
  std::map<std::string, std::string> values;  // "--dtype" -> "bf16"
  std::set<std::string> flags;                // "--json"
  std::vector<std::string> positional;

  bool Has(const std::string& name) const { return values.count(name) || flags.count(name); }
  std::string Get(const std::string& name, const std::string& def = "") const {
    auto it = values.find(name);
    return it == values.end() ? def : it->second;
  }
};

// Parses `args`; `valued` take a value, `flags` do not. "-h" is "--help",
// "-q" is "--quiet". InvalidArgument names an unknown option or a missing
// value.
Status ParseArgs(const std::vector<std::string>& args, const std::set<std::string>& valued,
                 const std::set<std::string>& flags, ParsedArgs* out);

// Parses a decimal unsigned integer in [lo, hi] for option `name`.
Status ParseUint(const std::string& name, const std::string& text, uint64_t lo, uint64_t hi,
                 uint64_t* out);

}  // namespace qatq::cli

#endif  // QATQ_TOOLS_CLI_ARGS_H_
