// `qatq bench`: the codec benchmark (see docs/BENCHMARKS.md).
#ifndef QATQ_TOOLS_QATQ_BENCH_H_
#define QATQ_TOOLS_QATQ_BENCH_H_

#include <string>
#include <vector>

namespace qatq {

// Runs `qatq bench` with the arguments after "bench". Returns the process
// exit code (0 ok, 1 data/I-O error or failed round trip, 2 usage).
int RunBenchCommand(const std::vector<std::string>& args);

}  // namespace qatq

#endif  // QATQ_TOOLS_QATQ_BENCH_H_
