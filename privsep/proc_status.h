// How the kernel sees a process: the security-relevant fields of /proc/<pid>/status.
//
// A sandboxed process cannot open /proc (Landlock), so it reports on itself through a
// descriptor for /proc/self/status opened before entering the sandbox and read with
// pread(2) from offset 0, which makes the kernel generate the text afresh each time.
#ifndef COOLD_PRIVSEP_PROC_STATUS_H_
#define COOLD_PRIVSEP_PROC_STATUS_H_

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace coolify::privsep {

struct ProcStatus {
  uint32_t uid = 0;  // Real.
  uint32_t gid = 0;  // Real.
  // Real, effective, saved and filesystem ids, in the kernel's order.
  uint32_t uids[4] = {0, 0, 0, 0};
  uint32_t gids[4] = {0, 0, 0, 0};
  uint32_t groups = 0;  // Number of supplementary groups.
  std::vector<uint32_t> group_ids;
  uint32_t threads = 0;
  uint64_t cap_inh = 0;
  uint64_t cap_prm = 0;
  uint64_t cap_eff = 0;
  uint64_t cap_bnd = 0;
  uint64_t cap_amb = 0;
  bool no_new_privs = false;
  uint32_t seccomp = 0;  // Mode: 0 none, 1 strict, 2 filter.
  int seccomp_filters = -1;  // Filters attached (Seccomp_filters, Linux 5.9+); -1 when absent.
};

// Parses the text of a status file. Every field above but seccomp_filters must be
// present exactly once and well-formed; anything else is InvalidArgumentError naming the field. Lines this
// struct does not cover are ignored.
absl::StatusOr<ProcStatus> ParseProcStatus(absl::string_view text);

// Reads and parses /proc/<pid>/status.
absl::StatusOr<ProcStatus> ReadProcStatus(pid_t pid);

// Reads and parses the status file open at `fd`, from offset 0 (the file position is
// left alone, so the descriptor can be read again later).
absl::StatusOr<ProcStatus> ReadProcStatusFd(int fd);

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_PROC_STATUS_H_
