#include "privsep/health_check.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "privsep/capabilities.h"
#include "privsep/landlock.h"
#include "privsep/sandbox.h"

namespace coolify::privsep {
namespace {

absl::Status Differs(absl::string_view field, absl::string_view got, absl::string_view want) {
  return absl::FailedPreconditionError(absl::StrCat(field, ": ", got, ", policy ", want));
}

std::string Hex(uint64_t v) { return absl::StrFormat("%016x", v); }

}  // namespace

absl::StatusOr<Confinement> ExpectedConfinement(Role role) {
  absl::StatusOr<RolePolicy> policy = LoadRolePolicy(role);
  if (!policy.ok()) return policy.status();
  absl::StatusOr<UserIds> ids = ResolveUser(policy->identity.user);
  if (!ids.ok()) return ids.status();
  Confinement c;
  c.uid = ids->uid;
  c.gid = ids->gid;
  c.capabilities = CapabilityBits(policy->identity.capabilities);
  const bool no_ruleset = policy->landlock.size() == 1 && policy->landlock[0].path == kNoRuleset;
  c.landlock_abi = no_ruleset ? 0 : LandlockAbi();
  c.landlock_ruleset = c.landlock_abi == 0 ? 0 : LandlockRulesetDigest(policy->landlock);
  return c;
}

absl::Status CheckConfinement(const Confinement& expected, const ProcStatus& kernel, const HealthReport& report) {
  static constexpr const char* kWhich[4] = {"real", "effective", "saved", "filesystem"};
  for (int i = 0; i < 4; ++i) {
    if (kernel.uids[i] != expected.uid) {
      return Differs("uid", absl::StrCat(kWhich[i], " ", kernel.uids[i]), absl::StrCat(expected.uid));
    }
  }
  for (int i = 0; i < 4; ++i) {
    if (kernel.gids[i] != expected.gid) {
      return Differs("gid", absl::StrCat(kWhich[i], " ", kernel.gids[i]), absl::StrCat(expected.gid));
    }
  }
  if (!kernel.group_ids.empty()) {
    return Differs("groups", absl::StrCat(kernel.group_ids.size(), " supplementary (first ", kernel.group_ids[0], ")"),
                   "none");
  }
  const struct {
    const char* name;
    uint64_t got;
    uint64_t want;
  } sets[] = {{"CapEff", kernel.cap_eff, expected.capabilities},
              {"CapPrm", kernel.cap_prm, expected.capabilities},
              {"CapBnd", kernel.cap_bnd, expected.capabilities},
              {"CapAmb", kernel.cap_amb, 0},
              {"CapInh", kernel.cap_inh, 0}};
  for (const auto& set : sets) {
    if (set.got != set.want) return Differs(set.name, Hex(set.got), Hex(set.want));
  }
  if (!kernel.no_new_privs) return Differs("NoNewPrivs", "0", "1");
  if (kernel.seccomp != 2) return Differs("Seccomp", absl::StrCat("mode ", kernel.seccomp), "mode 2 (filter)");
  // One filter: the role's. Another one stacked on it could only narrow it, but no coold
  // process loads one, so a second says something else ran in this process.
  if (kernel.seccomp_filters != -1 && kernel.seccomp_filters != 1) {
    return Differs("Seccomp_filters", absl::StrCat(kernel.seccomp_filters), "1");
  }
  if (report.landlock_abi() != expected.landlock_abi) {
    return Differs("Landlock ABI (reported)", absl::StrCat(report.landlock_abi()), absl::StrCat(expected.landlock_abi));
  }
  if (report.landlock_ruleset() != expected.landlock_ruleset) {
    return Differs("Landlock ruleset (reported)", Hex(report.landlock_ruleset()), Hex(expected.landlock_ruleset));
  }
  return absl::OkStatus();
}

}  // namespace coolify::privsep
