// The sandbox a privsep child enters right after the monitor starts it.
//
// Each sandboxed role (front, netlink, podman, build) has three policy lists under
// hardening/, embedded into the binary at build time so a deployed binary cannot be
// pointed at looser ones:
//
//   hardening/capabilities/<role>.list  the user it runs as, the capabilities it keeps
//   hardening/landlock/<role>.list      the paths it may still reach, and how
//   hardening/seccomp/<role>.list       the system calls it may still make
//
// EnterSandbox applies them to the calling process, irrevocably, and verifies the
// result; a process that returns from it is confined. See sandbox.cc for the steps and
// why they come in that order.
#ifndef COOLD_PRIVSEP_SANDBOX_H_
#define COOLD_PRIVSEP_SANDBOX_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privsep/capabilities.h"
#include "privsep/landlock.h"
#include "privsep/seccomp_policy.h"
#include "proto/privsep.pb.h"

namespace coolify::privsep {

struct SandboxSpec {
  coolify::privsep::Role role;
  // Descriptors that stay open (e.g. the channel to the monitor, a descriptor for
  // /proc/self/status). Every other descriptor above 2 is closed; 0, 1 and 2 are left
  // as the caller arranged them. Each must be open.
  std::vector<int> keep_fds;
  // Directory descriptors (also kept open) the role's "@passed-directories" Landlock rule
  // applies to; refused when the role's list has no such rule.
  std::vector<int> passed_dirs;
  // TCP ports the role may connect to, from the monitor's configuration; refused when the
  // role's list has no "@tcp-connect-passed-ports" entry.
  std::vector<uint16_t> tcp_connect_ports;
};

// Confines the calling process to spec.role's policy. The process must be single-threaded
// (credentials, Landlock and seccomp apply per thread) and either root with a full
// capability set, or started as the role's user already, holding no capability beyond
// the role's and no supplementary group but its own primary one (systemd's User= with
// the role's CapabilityBoundingSet=): then no identity change is made or needed. On any
// failure it writes "sandbox(<role>): <step>: <error>" to stderr and
// exits with status 126 without returning: a child that is not fully sandboxed must
// not run at all. A kernel without Landlock is not a failure (one line on stderr;
// capabilities and seccomp still apply).
void EnterSandbox(const SandboxSpec& spec);

// The Landlock ABI of the ruleset EnterSandbox enforced on this process (or on the
// parent it was forked from), 0 when none was (not sandboxed, or a kernel without
// Landlock). For health reports; makes no system call.
int AppliedLandlockAbi();

// A digest of a Landlock rule list as the role's list states it (FNV-1a 64 over each
// rule's path and rights, in order), for health reports: the kernel does not show a
// process's Landlock domain to another process, so the monitor compares the digest a
// child reports with the one of its own copy of the role's list. Never 0.
uint64_t LandlockRulesetDigest(const std::vector<LandlockRule>& rules);

// The digest of the list whose ruleset EnterSandbox enforced on this process (or on the
// parent it was forked from), 0 when none was (see AppliedLandlockAbi).
uint64_t AppliedLandlockRuleset();

// The roles EnterSandbox accepts; hardening/ names their files by RoleName (roles.h).
inline constexpr Role kSandboxedRoles[] = {ROLE_FRONT, ROLE_NETLINK, ROLE_PODMAN, ROLE_BUILD, ROLE_BROKER};
bool HasSandbox(Role role);

// A role's three lists, parsed from the embedded copies.
struct RolePolicy {
  IdentityPolicy identity;
  std::vector<LandlockRule> landlock;
  std::vector<SeccompRule> seccomp;
};
absl::StatusOr<RolePolicy> LoadRolePolicy(Role role);

// The role's seccomp filter, compiled but not loaded (for export and tests).
absl::StatusOr<SeccompFilter> RoleSeccompFilter(Role role);

// The capability set a process of `role` must show in CapEff, CapPrm and CapBnd once
// sandboxed, as a bitmask (bit n = capability n). `role` must be a sandboxed role;
// anything else, like an embedded list that does not parse, is a programming error and
// aborts.
uint64_t CapabilityMask(Role role);

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_SANDBOX_H_
