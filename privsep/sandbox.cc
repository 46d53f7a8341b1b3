#include "privsep/sandbox.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "hardening/policy_lists.h"
#include "privsep/policy_list.h"
#include "privsep/proc_status.h"
#include "privsep/roles.h"
#include "privsep/unique_fd.h"

namespace coolify::privsep {
namespace {

int applied_landlock_abi = 0;
uint64_t applied_landlock_ruleset = 0;

// Resource limits, set per role because they follow from what each role does.
struct Limits {
  rlim_t nofile;  // Descriptors.
  rlim_t nproc;   // Processes and threads of the role's user; 0 for uid-0 roles,
                  // where the kernel does not enforce it.
};

Limits RoleLimits(Role role) {
  switch (role) {
    case ROLE_FRONT:
      // Client connections, listening sockets, gRPC's and Asio's internal descriptors;
      // threads of gRPC's and Asio's pools.
      return {4096, 256};
    case ROLE_NETLINK:
      // Its channel, a netlink socket, a snapshot being written. Single-threaded.
      return {64, 1};
    case ROLE_PODMAN:
      // Its channels and concurrent connections to the Podman socket.
      return {256, 0};
    case ROLE_BUILD:
      // Builds inherit it (a role cannot raise it later, and RUN steps get the builder's
      // own): compilers and package managers open thousands of files at once.
      return {65536, 0};
    case ROLE_BROKER:
      // A connection per host (thousands) and per Laravel client; gRPC's and Asio's threads.
      return {65536, 256};
    default:
      return {0, 0};  // Not a sandboxed role: EnterSandbox has rejected it already.
  }
}

std::string ListPath(absl::string_view kind, Role role) {
  return absl::StrCat("hardening/", kind, "/", RoleName(role), ".list");
}

absl::StatusOr<absl::string_view> EmbeddedList(absl::string_view kind, Role role) {
  const std::string path = ListPath(kind, role);
  const std::string_view text = coolify::hardening::Embedded(path);
  // An embedded file is never empty: embed_text.sh ends each with a newline.
  if (text.empty()) return absl::NotFoundError(absl::StrCat(path, " is not embedded"));
  return absl::string_view(text.data(), text.size());
}

[[noreturn]] void Fail(absl::string_view role, absl::string_view step, absl::string_view error) {
  std::fprintf(stderr, "sandbox(%.*s): %.*s: %.*s\n", static_cast<int>(role.size()), role.data(),
               static_cast<int>(step.size()), step.data(), static_cast<int>(error.size()),
               error.data());
  _exit(126);
}

[[noreturn]] void Fail(absl::string_view role, absl::string_view step, const absl::Status& s) {
  Fail(role, step, s.ToString());
}

[[noreturn]] void FailErrno(absl::string_view role, absl::string_view step) {
  Fail(role, step, std::strerror(errno));
}

// Closes every descriptor above 2 except `keep`.
std::vector<int> KeptFds(const SandboxSpec& spec) {
  std::vector<int> kept = spec.keep_fds;
  kept.insert(kept.end(), spec.passed_dirs.begin(), spec.passed_dirs.end());
  return kept;
}

absl::Status CloseOtherFds(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  unsigned first = 3;
  for (int fd : keep) {
    if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("keep_fds has ", fd));
    if (fcntl(fd, F_GETFD) < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("keep_fds has ", fd));
    }
    if (fd < 3) continue;
    const unsigned u = static_cast<unsigned>(fd);
    if (u > first && close_range(first, u - 1, 0) != 0) {
      return absl::ErrnoToStatus(errno, "close_range");
    }
    first = u + 1;
  }
  if (close_range(first, ~0U, 0) != 0) return absl::ErrnoToStatus(errno, "close_range");
  return absl::OkStatus();
}

// /proc/self rather than /proc/<getpid()>: the two differ when /proc belongs to another
// pid namespace.
absl::StatusOr<ProcStatus> ReadOwnStatus() {
  UniqueFd fd(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "open /proc/self/status");
  return ReadProcStatusFd(fd.get());
}

absl::Status SetLimit(int resource, const char* name, rlim_t value) {
  rlimit current;
  if (getrlimit(resource, &current) != 0) return absl::ErrnoToStatus(errno, name);
  // Never above the inherited hard limit: raising it would need CAP_SYS_RESOURCE, and
  // the inherited one is already what the administrator allows.
  const rlim_t v = std::min(value, current.rlim_max);
  // Soft and hard alike, so the role cannot raise it again.
  const rlimit limit = {v, v};
  if (setrlimit(resource, &limit) != 0) return absl::ErrnoToStatus(errno, name);
  return absl::OkStatus();
}

}  // namespace

int AppliedLandlockAbi() { return applied_landlock_abi; }

uint64_t AppliedLandlockRuleset() { return applied_landlock_ruleset; }

uint64_t LandlockRulesetDigest(const std::vector<LandlockRule>& rules) {
  constexpr uint64_t kPrime = 0x100000001b3;
  uint64_t h = 0xcbf29ce484222325;
  auto mix = [&h](const void* data, size_t size) {
    for (size_t i = 0; i < size; ++i) h = (h ^ static_cast<const uint8_t*>(data)[i]) * kPrime;
  };
  for (const LandlockRule& rule : rules) {
    // The path's terminating NUL separates it from the rights that follow.
    mix(rule.path.c_str(), rule.path.size() + 1);
    for (int i = 0; i < 8; ++i) {
      const uint8_t byte = static_cast<uint8_t>(rule.access >> (8 * i));
      mix(&byte, 1);
    }
  }
  return h == 0 ? 1 : h;
}

bool HasSandbox(Role role) {
  for (Role sandboxed : kSandboxedRoles) {
    if (sandboxed == role) return true;
  }
  return false;
}

absl::StatusOr<RolePolicy> LoadRolePolicy(Role role) {
  if (!HasSandbox(role)) {
    return absl::InvalidArgumentError(absl::StrCat("role ", Role_Name(role), " has no sandbox"));
  }
  RolePolicy policy;
  absl::StatusOr<absl::string_view> text = EmbeddedList("capabilities", role);
  if (!text.ok()) return text.status();
  absl::StatusOr<IdentityPolicy> identity =
      ParseCapabilityList(ListPath("capabilities", role), *text);
  if (!identity.ok()) return identity.status();
  policy.identity = *std::move(identity);

  text = EmbeddedList("landlock", role);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<LandlockRule>> landlock =
      ParseLandlockList(ListPath("landlock", role), *text);
  if (!landlock.ok()) return landlock.status();
  policy.landlock = *std::move(landlock);

  text = EmbeddedList("seccomp", role);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<SeccompRule>> seccomp =
      ParseSeccompList(ListPath("seccomp", role), *text);
  if (!seccomp.ok()) return seccomp.status();
  policy.seccomp = *std::move(seccomp);
  return policy;
}

absl::StatusOr<SeccompFilter> RoleSeccompFilter(Role role) {
  absl::StatusOr<RolePolicy> policy = LoadRolePolicy(role);
  if (!policy.ok()) return policy.status();
  return SeccompFilter::Build(policy->seccomp);
}

uint64_t CapabilityMask(Role role) {
  absl::StatusOr<RolePolicy> policy = LoadRolePolicy(role);
  if (!policy.ok()) {
    std::fprintf(stderr, "CapabilityMask: %s\n", policy.status().ToString().c_str());
    std::abort();
  }
  return CapabilityBits(policy->identity.capabilities);
}

// The order follows minijail's: everything that can fail for reasons of policy fails
// first, while nothing has changed; privileged operations (reading root-only files,
// set*id, dropping the bounding set) come while the process still has the
// capabilities for them; no_new_privs comes before Landlock and seccomp, which require
// it of an unprivileged process; seccomp comes last so that the system calls of all
// the earlier steps need not be in any list.
void EnterSandbox(const SandboxSpec& spec) {
  if (!HasSandbox(spec.role)) Fail(Role_Name(spec.role), "role", "no sandbox for this role");
  const absl::string_view role = RoleName(spec.role);

  // 1. The role's policy, parsed and compiled. The lists are part of the binary, so
  // an error here is a defect of the build, reported before any change to the process.
  absl::StatusOr<RolePolicy> policy = LoadRolePolicy(spec.role);
  if (!policy.ok()) Fail(role, "policy", policy.status());
  absl::StatusOr<SeccompFilter> filter = SeccompFilter::Build(policy->seccomp);
  if (!filter.ok()) Fail(role, "seccomp filter", filter.status());

  // 2. Single-threaded, because capset(2), Landlock and seccomp (without TSYNC) change
  // only the calling thread: another thread would keep running unconfined.
  {
    absl::StatusOr<ProcStatus> status = ReadOwnStatus();
    if (!status.ok()) Fail(role, "threads", status.status());
    if (status->threads != 1) {
      Fail(role, "threads", absl::StrCat(status->threads, " threads; must be 1"));
    }
  }

  // 3. The role's user, looked up before descriptors are closed: NSS modules may open
  // and keep descriptors of their own, which the next step then closes.
  absl::StatusOr<UserIds> ids = ResolveUser(policy->identity.user);
  if (!ids.ok()) Fail(role, "user", ids.status());

  // 4. Descriptors: only those the caller named survive, so nothing the monitor held
  // (sockets, state files, other children's channels) leaks into the role.
  if (absl::Status s = CloseOtherFds(KeptFds(spec)); !s.ok()) Fail(role, "close fds", s);

  // 5. Process attributes a child must not inherit from whatever started the monitor:
  // the environment (LD_*, proxies, locale), a permissive umask. PR_SET_PDEATHSIG makes
  // the kernel kill the child when the monitor dies, so no child outlives its
  // supervisor; if the parent died before the request was in place, getppid() has
  // already changed and the child stops here.
  const pid_t parent = getppid();
  if (clearenv() != 0) Fail(role, "environment", "clearenv failed");
  umask(077);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) FailErrno(role, "pdeathsig");
  if (getppid() != parent) Fail(role, "pdeathsig", "parent already gone");

  // 6. Resource limits, before the uid change so the role cannot raise them later.
  // No core dumps: they would write the role's memory (tokens, keys) to disk.
  // RLIMIT_NPROC counts processes and threads per real uid and so only means
  // something for a role with its own user.
  const Limits limits = RoleLimits(spec.role);
  if (absl::Status s = SetLimit(RLIMIT_CORE, "RLIMIT_CORE", 0); !s.ok()) Fail(role, "rlimit", s);
  if (absl::Status s = SetLimit(RLIMIT_NOFILE, "RLIMIT_NOFILE", limits.nofile); !s.ok()) {
    Fail(role, "rlimit", s);
  }
  if (ids->uid != 0) {
    if (absl::Status s = SetLimit(RLIMIT_NPROC, "RLIMIT_NPROC", limits.nproc); !s.ok()) {
      Fail(role, "rlimit", s);
    }
  }

  // 7. The Landlock ruleset, built while still root: opening the listed paths must not
  // depend on whether the role's user could traverse their parents. It is enforced in
  // step 11.
  // A role whose list says kNoRuleset gets none (see landlock.h).
  std::vector<std::string> notes;
  const bool no_ruleset = policy->landlock.size() == 1 && policy->landlock[0].path == kNoRuleset;
  absl::StatusOr<LandlockRuleset> ruleset =
      LandlockRuleset::Build(no_ruleset ? std::vector<LandlockRule>() : policy->landlock, spec.passed_dirs,
                             spec.tcp_connect_ports, &notes);
  if (!ruleset.ok()) Fail(role, "landlock", ruleset.status());
  for (const std::string& note : notes) {
    std::fprintf(stderr, "sandbox(%s): landlock: %s\n", std::string(role).c_str(), note.c_str());
  }

  // 8. User, groups and capabilities (capabilities.h). Started as root (the monitor's
  // children, a broker run by hand or by deploy.sh), ChangeIdentity makes the process the
  // role's user; any failure aborts, since libcap-ng can leave PR_SET_KEEPCAPS set or the
  // ids half-changed. Started as the role's user already (broker.service's User=, with
  // an empty bounding set), there is nothing to change and nothing to change it with:
  // no set*id, setgroups or capset call is made, the process must already hold no more
  // than the role's capabilities, and step 10 verifies it like any other. A process
  // started as anyone else can become neither and stops here.
  const std::vector<int>& caps = policy->identity.capabilities;
  switch (HowStarted(*ids)) {
    case StartedAs::kRoot:
      if (absl::Status s = ChangeIdentity(*ids, caps); !s.ok()) Fail(role, "identity", s);
      break;
    case StartedAs::kTargetUser: {
      absl::StatusOr<ProcStatus> status = ReadOwnStatus();
      if (!status.ok()) Fail(role, "identity", status.status());
      if (absl::Status s = CheckStartedAsUser(*ids, CapabilityBits(caps), *status); !s.ok()) {
        Fail(role, "identity", s);
      }
      break;
    }
    case StartedAs::kOther:
      Fail(role, "identity",
           absl::StrCat("started as uid ", getuid(), " (euid ", geteuid(), ", gid ", getgid(), "): must be root or ",
                        policy->identity.user, " (uid ", ids->uid, ", gid ", ids->gid, ")"));
  }

  // 9. The kernel clears the parent-death signal when effective ids change, so it is
  // requested again, and the parent checked again, now that they have. The process is
  // also made non-dumpable: no core, and no ptrace attach by another process of the
  // same user.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) FailErrno(role, "pdeathsig");
  if (getppid() != parent) Fail(role, "pdeathsig", "parent already gone");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) FailErrno(role, "dumpable");

  // 10. Verify the identity from the kernel's point of view rather than trusting the
  // return codes of step 8. /proc is still reachable: Landlock is not enforced yet.
  {
    absl::StatusOr<ProcStatus> status = ReadOwnStatus();
    if (!status.ok()) Fail(role, "verify", status.status());
    if (absl::Status s = VerifyIdentity(*ids, CapabilityBits(caps), *status); !s.ok()) {
      Fail(role, "verify", s);
    }
  }

  // 11. no_new_privs: execve can no longer grant privileges (set-id bits, file
  // capabilities), which is also what lets a process without CAP_SYS_ADMIN enforce
  // Landlock and seccomp. Then Landlock; its ruleset was built in step 7, so nothing
  // needs to open a path any more.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) FailErrno(role, "no_new_privs");
  if (no_ruleset) {
    std::fprintf(stderr, "sandbox(%s): landlock: no ruleset, as its list says\n", std::string(role).c_str());
  } else if (absl::Status s = ruleset->Enforce(); !s.ok()) {
    Fail(role, "landlock", s);
  }
  applied_landlock_abi = no_ruleset ? 0 : ruleset->abi();
  applied_landlock_ruleset = applied_landlock_abi == 0 ? 0 : LandlockRulesetDigest(policy->landlock);
  if (!no_ruleset && ruleset->abi() == 0) {
    std::fprintf(stderr, "sandbox(%s): landlock: kernel has no Landlock; continuing without\n",
                 std::string(role).c_str());
  }

  // 12. seccomp, last: from here on only the role's listed system calls exist. What
  // runs after this (destroying the filter object, returning) needs only free(3),
  // which every list allows.
  if (absl::Status s = filter->Load(); !s.ok()) Fail(role, "seccomp", s);
}

}  // namespace coolify::privsep
