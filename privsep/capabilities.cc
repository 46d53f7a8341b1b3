#include "privsep/capabilities.h"

#include <cap-ng.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace coolify::privsep {

uint64_t CapabilityBits(const std::vector<int>& capabilities) {
  uint64_t bits = 0;
  for (int cap : capabilities) bits |= uint64_t{1} << cap;
  return bits;
}

absl::StatusOr<UserIds> ResolveUser(const std::string& name) {
  errno = 0;
  const passwd* pw = getpwnam(name.c_str());
  if (pw == nullptr) {
    if (errno != 0) return absl::ErrnoToStatus(errno, absl::StrCat("getpwnam ", name));
    return absl::NotFoundError(
        absl::StrCat("user ", name, " does not exist (run tools/install-deps.sh)"));
  }
  return UserIds{pw->pw_uid, pw->pw_gid};
}

absl::Status ChangeIdentity(const UserIds& ids, const std::vector<int>& capabilities) {
  // Start from nothing: libcap-ng's state is only what this function puts in it.
  capng_clear(CAPNG_SELECT_ALL);
  for (int cap : capabilities) {
    const auto where =
        static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET);
    if (capng_update(CAPNG_ADD, where, static_cast<unsigned>(cap)) != 0) {
      return absl::InternalError(absl::StrCat("capng_update(", cap, ") failed"));
    }
  }
  // The bounding set first, while the process still has CAP_SETPCAP. It is applied
  // here rather than through capng_change_id's CAPNG_CLEAR_BOUNDING, which empties the
  // bounding set instead of reducing it to the role's capabilities.
  if (int rc = capng_apply(CAPNG_SELECT_BOUNDS); rc != 0) {
    return absl::InternalError(absl::StrCat("capng_apply(bounding set) returned ", rc));
  }
  // setresgid, setgroups(0, NULL), setresuid with PR_SET_KEEPCAPS around the uid
  // change, then the role's effective/permitted sets with inheritable and ambient
  // empty. The same call serves uid 0: its set*id calls are then no-ops, and dropping
  // supplementary groups and capabilities is what remains. A nonzero return can leave
  // PR_SET_KEEPCAPS set or the ids half-changed, hence the caller's abort.
  const auto flags = static_cast<capng_flags_t>(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_AMBIENT);
  if (int rc = capng_change_id(static_cast<int>(ids.uid), static_cast<int>(ids.gid), flags);
      rc != 0) {
    return absl::InternalError(absl::StrCat("capng_change_id returned ", rc));
  }
  return absl::OkStatus();
}

StartedAs HowStarted(const UserIds& ids) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0) return StartedAs::kOther;
  if (ruid == 0 && euid == 0 && suid == 0) return StartedAs::kRoot;
  if (ids.uid != 0 && ruid == ids.uid && euid == ids.uid && suid == ids.uid && rgid == ids.gid && egid == ids.gid &&
      sgid == ids.gid) {
    return StartedAs::kTargetUser;
  }
  return StartedAs::kOther;
}

namespace {

// None, or the primary group alone.
absl::Status CheckSupplementaryGroups(const UserIds& ids) {
  gid_t groups[2];
  const int n = getgroups(2, groups);
  if (n < 0 && errno == EINVAL) return absl::InternalError("more than one supplementary group");
  if (n < 0) return absl::ErrnoToStatus(errno, "getgroups");
  if (n == 0 || (n == 1 && groups[0] == ids.gid)) return absl::OkStatus();
  return absl::InternalError(absl::StrFormat("a supplementary group other than the user's own (%d)", ids.gid));
}

}  // namespace

absl::Status CheckStartedAsUser(const UserIds& ids, uint64_t capabilities, const ProcStatus& status) {
  if (absl::Status s = CheckSupplementaryGroups(ids); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("started as uid ", ids.uid, " with ", s.message(),
                                                      ": the role's user is in no group"));
  }
  const struct {
    const char* name;
    uint64_t bits;
  } sets[] = {{"CapEff", status.cap_eff}, {"CapPrm", status.cap_prm}, {"CapBnd", status.cap_bnd},
              {"CapInh", status.cap_inh}, {"CapAmb", status.cap_amb}};
  for (const auto& set : sets) {
    if ((set.bits & ~capabilities) != 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "started as uid %d holding %s %016x beyond the role's %016x, and no way to drop them without "
          "CAP_SETPCAP: start it with only the role's (systemd: CapabilityBoundingSet= the role's, or empty)",
          ids.uid, set.name, set.bits, capabilities));
    }
  }
  return absl::OkStatus();
}

absl::Status VerifyIdentity(const UserIds& ids, uint64_t capabilities, const ProcStatus& status) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0) {
    return absl::ErrnoToStatus(errno, "getresuid/getresgid");
  }
  if (ruid != ids.uid || euid != ids.uid || suid != ids.uid) {
    return absl::InternalError(
        absl::StrFormat("uids are %d/%d/%d, want %d", ruid, euid, suid, ids.uid));
  }
  if (rgid != ids.gid || egid != ids.gid || sgid != ids.gid) {
    return absl::InternalError(
        absl::StrFormat("gids are %d/%d/%d, want %d", rgid, egid, sgid, ids.gid));
  }
  if (absl::Status s = CheckSupplementaryGroups(ids); !s.ok()) return s;
  if (ids.uid != 0 && setuid(0) == 0) {
    return absl::InternalError("setuid(0) succeeded after dropping root");
  }
  if (prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) != 0) {
    return absl::InternalError("PR_SET_KEEPCAPS is still set");
  }
  if (status.uid != ids.uid || status.gid != ids.gid) {
    return absl::InternalError(absl::StrFormat("kernel reports uid %d gid %d, want %d %d",
                                               status.uid, status.gid, ids.uid, ids.gid));
  }
  if (status.groups > 1) {
    return absl::InternalError("kernel reports supplementary groups");
  }
  auto check = [&](const char* name, uint64_t got, uint64_t want) -> absl::Status {
    if (got == want) return absl::OkStatus();
    return absl::InternalError(absl::StrFormat("%s is %016x, want %016x", name, got, want));
  };
  for (absl::Status s : {check("CapEff", status.cap_eff, capabilities),
                         check("CapPrm", status.cap_prm, capabilities),
                         check("CapBnd", status.cap_bnd, capabilities),
                         check("CapInh", status.cap_inh, 0),
                         check("CapAmb", status.cap_amb, 0)}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace coolify::privsep
