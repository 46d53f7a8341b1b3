// Identity: the user a sandboxed process runs as and the capabilities it keeps.
//
// A role's policy (hardening/capabilities/<role>.list) names one user and a set of
// capabilities. After ChangeIdentity the process has real, effective and saved uid and
// gid of that user, no supplementary groups, exactly that set as its effective,
// permitted and bounding sets, and empty inheritable and ambient sets.
#ifndef COOLD_PRIVSEP_CAPABILITIES_H_
#define COOLD_PRIVSEP_CAPABILITIES_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "privsep/proc_status.h"

namespace coolify::privsep {

struct IdentityPolicy {
  std::string user;                // A system user name, or "root".
  std::vector<int> capabilities;   // CAP_* numbers, without repeats.
  // Capabilities the role's processes hold only inside user namespaces of their own
  // (the build launcher's builds): not in the role's own sets, which they leave
  // unchanged. The kernel gives a new user namespace's first process every capability
  // there whatever the creator's bounding set; this is the set it keeps.
  std::vector<int> namespace_capabilities;
};

// The set as a bitmask in the kernel's layout (bit n = capability n), as
// /proc/<pid>/status prints it.
uint64_t CapabilityBits(const std::vector<int>& capabilities);

struct UserIds {
  uid_t uid;
  gid_t gid;  // The user's primary group.
};

// Looks the user up in the user database. NotFoundError names the fix when the user is
// missing (the package's system users are created by tools/install-deps.sh).
absl::StatusOr<UserIds> ResolveUser(const std::string& name);

// Switches the calling process (which must be root with CAP_SETPCAP, CAP_SETUID and
// CAP_SETGID, and single-threaded) to `ids` keeping only `capabilities`. Any error
// leaves the process in an unknown state: the caller must not continue.
absl::Status ChangeIdentity(const UserIds& ids, const std::vector<int>& capabilities);

// How the process was started, from its real, effective and saved ids.
enum class StartedAs {
  kRoot,        // all uids 0: ChangeIdentity makes it `ids`
  kTargetUser,  // all uids and gids already `ids` (systemd's User=): nothing to change
  kOther,       // anything else, refused: it can become neither
};
StartedAs HowStarted(const UserIds& ids);

// For a process started as the role's user already: it has no privilege to change
// anything with, and needs none, when it already holds no capability but `capabilities`
// in any set, and no supplementary group but its own primary one (what systemd's User=
// leaves it from initgroups(3)). Otherwise an error saying what it holds, for the unit
// that started it to be fixed (an empty CapabilityBoundingSet=, the user in no group).
absl::Status CheckStartedAsUser(const UserIds& ids, uint64_t capabilities, const ProcStatus& status);

// Checks, independently of how ChangeIdentity got there, that the process is what it
// promises: ids from getresuid/getresgid, no supplementary groups (or only the user's
// primary group, which grants nothing the gid does not: a process started as the user by
// systemd keeps that one), setuid(0) refused for a non-root user, and `status` (this
// process's /proc status, read afterwards) showing exactly `capabilities` in the
// effective, permitted and bounding sets and nothing inheritable or ambient.
absl::Status VerifyIdentity(const UserIds& ids, uint64_t capabilities, const ProcStatus& status);

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_CAPABILITIES_H_
