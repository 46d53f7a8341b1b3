// The monitor's side of a health round: what a sandboxed child must look like, read
// from the kernel, compared field by field with what its role's policy says.
//
// The kernel shows another process's ids, groups, capability sets, no_new_privs and
// seccomp state in /proc/<pid>/status. It shows nothing of a process's Landlock domain
// (no line in /proc/<pid>/status on the kernels coold runs on), so for Landlock the
// monitor compares the child's own report (ABI and ruleset digest, sandbox.h) with what
// it expects of the role: a compromised child could lie about that one, never about the
// rest.
#ifndef COOLD_PRIVSEP_HEALTH_CHECK_H_
#define COOLD_PRIVSEP_HEALTH_CHECK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "privsep/proc_status.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {

// What one role's process must show once sandboxed.
struct Confinement {
  uint32_t uid = 0;            // real, effective, saved and filesystem uid alike
  uint32_t gid = 0;            // likewise for gids; no supplementary groups
  uint64_t capabilities = 0;   // CapEff = CapPrm = CapBnd; CapInh = CapAmb = 0
  int landlock_abi = 0;        // 0: no ruleset (its list says @no-ruleset, or no Landlock)
  uint64_t landlock_ruleset = 0;  // LandlockRulesetDigest of the list; 0 with no ruleset
};
// Also always: NoNewPrivs 1, Seccomp 2 (filter) with exactly one filter attached.

// From the role's embedded lists, the user database and this kernel's Landlock ABI.
absl::StatusOr<Confinement> ExpectedConfinement(Role role);

// FailedPreconditionError naming the first field in which `kernel` (the child's
// /proc/<pid>/status) or `report` (its own health report, for Landlock) differs from
// `expected`, e.g. "uid: saved 0, policy 995".
absl::Status CheckConfinement(const Confinement& expected, const ProcStatus& kernel, const HealthReport& report);

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_HEALTH_CHECK_H_
