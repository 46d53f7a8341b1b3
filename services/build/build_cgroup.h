// One build's cgroup, on whichever hierarchy the host has:
//
//   unified (cgroup v2 at /sys/fs/cgroup): one directory, memory.max, cpu.max, pids.max;
//   hybrid  (v1 controllers beside a v2 tree at /sys/fs/cgroup/unified, as on hosts whose
//           kernel or init mounts both): memory.limit_in_bytes in memory/, cpu.cfs_* in
//           cpu/, pids.max in pids/, and the v2 directory for membership and cgroup.kill.
//
// Every process the builder starts (git, buildah, runc and the build's containers, which
// runc nests below the caller's cgroup) stays in the subtree, so the limits hold for the
// whole build and one walk of the subtree reaches every process of it.
#ifndef COOLD_SERVICES_BUILD_BUILD_CGROUP_H_
#define COOLD_SERVICES_BUILD_BUILD_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace coolify::build {

// Where coold's builds live in every hierarchy.
inline constexpr char kBuildCgroupParent[] = "coolify-builds";

struct CgroupLimits {
  uint64_t memory_bytes = 0;  // 0 = no limit
  uint32_t cpu_millis = 0;    // 1000 = one CPU; 0 = no limit
  uint32_t pids = 0;          // 0 = no limit
};

class BuildCgroup {
 public:
  // Creates `parent` (mode 0755, the caller's) in every hierarchy the host has, and on a
  // v2 host enables the memory, cpu and pids controllers down to it. The monitor does
  // this as root before it starts the launcher: on a hybrid host the v1 controllers' and
  // the v2 tree's roots are mode 0555, which only CAP_DAC_OVERRIDE passes, and the
  // launcher does not hold it (hardening/capabilities/build.list); in a parent it owns
  // it needs none.
  static absl::Status PrepareParent(const std::string& parent);
  // The cgroup named `name` below `parent` ("coolify-builds") in every hierarchy the
  // host has, created when `create` (with the limits applied), else opened when it exists.
  static absl::StatusOr<BuildCgroup> Create(const std::string& parent, const std::string& name,
                                            const CgroupLimits& limits);
  static absl::StatusOr<BuildCgroup> Open(const std::string& parent, const std::string& name);
  // Names of the build cgroups below `parent` in the v2 tree (for adoption after restart).
  static std::vector<std::string> List(const std::string& parent);

  // Moves `pid` into the cgroup in every hierarchy.
  absl::Status Add(pid_t pid) const;
  // Every process of the subtree.
  std::vector<pid_t> Processes() const;
  bool Populated() const;
  // `signal` to every process of the subtree; SIGKILL through cgroup.kill, which also
  // catches processes forked while it runs.
  void Signal(int signal) const;
  // OOM kills counted in the subtree.
  uint64_t OomKills() const;
  // Removes the (empty) cgroup and what runc may have left below it, in every hierarchy.
  absl::Status Remove() const;

  // The v2 directory (for tests and messages).
  const std::string& unified_dir() const { return unified_; }
  bool hybrid() const { return hybrid_; }
  // Where memory.* lives (the v1 memory directory on a hybrid host).
  const std::string& memory_dir() const { return memory_dir_; }

 private:
  std::string unified_;               // the v2 directory
  std::vector<std::string> v1_dirs_;  // hybrid: memory, cpu, pids directories
  std::string memory_dir_;            // where memory.* lives
  bool hybrid_ = false;
};

}  // namespace coolify::build

#endif  // COOLD_SERVICES_BUILD_BUILD_CGROUP_H_
