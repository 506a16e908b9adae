// qatq: the QATQ exact codec command line. All logic lives in tools/cli*.cc.
#include <string>
#include <vector>

#include "tools/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return qatq::RunQatq(args);
}
