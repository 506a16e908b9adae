// The qatq command line (encode, encode-chunked, decode, convert, inspect,
// bench) as a library, so tests can drive it in-process. tools/qatq_main.cc
// is a thin main around RunQatq.
#ifndef QATQ_TOOLS_CLI_H_
#define QATQ_TOOLS_CLI_H_

#include <string>
#include <vector>

namespace qatq {

// Exit codes of every qatq command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitDataError = 1;  // bad input data or an I/O failure
inline constexpr int kExitUsage = 2;      // bad command line

// Runs `qatq args...` (args excludes the program name). Output goes to
// stdout/stderr; errors are one line on stderr ("qatq: FILE: problem").
int RunQatq(const std::vector<std::string>& args);

}  // namespace qatq

#endif  // QATQ_TOOLS_CLI_H_
