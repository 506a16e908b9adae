// Administrative subcommands of the qatqfs daemon binary:
//
//   qatqfs fsck STORE|MOUNTPOINT [--repair] [--read-only] [--deep] [--json]
//   qatqfs export MOUNT/FILE OUT.qatc [--format v3|v2]
//   qatqfs export --store STORE /path/in/store OUT.qatc [--format v3|v2]
//   qatqfs import IN.qatc MOUNT/FILE
//
// Each Run*Command takes the arguments after the subcommand name, prints to
// stdout/stderr and returns the process exit code. Errors are one line on
// stderr ("qatqfs export: ...") saying what to do next. fs/main.cc
// dispatches to them; tests call them in-process.
//
// fsck exit codes follow e2fsck(8):
//   0   the store is clean
//   1   problems were found and all of them repaired (--repair)
//   4   problems left unrepaired (any problem without --repair; damaged
//       files and corrupt index entries, which repair never touches)
//   8   operational error (store missing, mounted read-write, I/O error)
//   16  usage error
// export and import return 0 on success, 1 on bad data or an I/O error,
// 2 on a usage error (the qatq CLI's codes, tools/cli.h).
//
// Thread-safety: each call is self-contained; not meant to run
// concurrently in one process (they print to the process's stdout).
#ifndef QATQ_TOOLS_QATQFS_ADMIN_H_
#define QATQ_TOOLS_QATQFS_ADMIN_H_

#include <string>
#include <vector>

namespace qatq {

inline constexpr int kFsckClean = 0;
inline constexpr int kFsckRepaired = 1;
inline constexpr int kFsckUnrepaired = 4;
inline constexpr int kFsckOperationalError = 8;
inline constexpr int kFsckUsage = 16;

// `qatqfs fsck`: runs CheckStore (index/fsck.h) and prints a summary in
// which every problem about a file names its path. Refuses a store mounted
// read-write (unmount it first); a store mounted read-only, or --read-only,
// gets a check that changes nothing (--repair refused).
int RunFsckCommand(const std::vector<std::string>& args);

// `qatqfs export`: writes a file of a qatqfs mount as a QATC v3 artefact
// built from its stored chunk records, without decoding or re-encoding
// them (only holes and chunks stored with another dtype or length are
// encoded). --format v2 decodes and encodes a QATC v2 file for the other
// QATQ tools. The output is written atomically.
int RunExportCommand(const std::vector<std::string>& args);

// `qatqfs import`: stores a QATC v3 (or v2) artefact as a file of a mounted
// store. The input is verified completely before anything is written; v3
// chunk records whose chunk size matches the store's are put into the
// store's chunk directory as they are (so the daemon need not encode them
// again), then the decoded bytes are written through the mount to a temp
// file that is renamed over the target: a failure leaves an existing target
// untouched. Objects put by an import that fails are orphans that
// `qatqfs fsck --repair` removes.
int RunImportCommand(const std::vector<std::string>& args);

}  // namespace qatq

#endif  // QATQ_TOOLS_QATQFS_ADMIN_H_
