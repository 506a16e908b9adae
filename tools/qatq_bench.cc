#include "tools/qatq_bench.h"

#include <cstdio>

namespace qatq {

int RunBenchCommand(const std::vector<std::string>&) {
  std::fprintf(stderr, "qatq bench: not available in this build yet\n");
  return 2;
}

}  // namespace qatq
