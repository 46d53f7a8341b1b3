// The monitor's confinement check against real processes: each test builds a process
// whose kernel state differs from a confinement in exactly the field under test (the
// fields before it in the check's order all match), and the check, reading that
// process's /proc/<pid>/status, names that field.
#include "privsep/health_check.h"

#include <cap-ng.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privsep/proc_status.h"
#include "privsep/sandbox.h"

namespace coolify::privsep {
namespace {

using ::testing::HasSubstr;

constexpr uid_t kUid = 65534;  // nobody
constexpr gid_t kGid = 65534;  // nogroup
constexpr gid_t kOtherGid = 4242;
constexpr uint64_t kNetAdmin = uint64_t{1} << CAP_NET_ADMIN;
constexpr uint64_t kNetRaw = uint64_t{1} << CAP_NET_RAW;

enum class Deviation {
  kNone, kRealUid, kEffectiveUid, kSavedUid, kFsUid, kRealGid, kEffectiveGid, kSavedGid, kFsGid, kGroups,
  kCapEff, kCapPrm, kCapBnd, kCapAmb, kCapInh, kNoNewPrivs, kNoSeccomp, kTwoFilters,
};

// In the forked child: the ids, with the deviation if it concerns them. Returns false on
// any failure.
bool SetIds(Deviation d) {
  if (d == Deviation::kGroups) {
    const gid_t extra = kOtherGid;
    if (setgroups(1, &extra) != 0) return false;
  } else if (setgroups(0, nullptr) != 0) {
    return false;
  }
  const gid_t rg = d == Deviation::kRealGid ? 0 : kGid;
  const gid_t eg = d == Deviation::kEffectiveGid ? 0 : kGid;
  const gid_t sg = d == Deviation::kSavedGid ? 0 : kGid;
  if (setresgid(rg, eg, sg) != 0) return false;
  if (d == Deviation::kFsGid) {
    setfsgid(0);
    if (setfsgid(static_cast<gid_t>(-1)) != 0) return false;  // reads it back
  }
  const uid_t ru = d == Deviation::kRealUid ? 0 : kUid;
  const uid_t eu = d == Deviation::kEffectiveUid ? 0 : kUid;
  const uid_t su = d == Deviation::kSavedUid ? 0 : kUid;
  if (d == Deviation::kFsUid) {
    // Keep the permitted set across the change, raise CAP_SETUID again, and move only
    // the filesystem uid back to 0.
    if (prctl(PR_SET_KEEPCAPS, 1) != 0) return false;
    if (setresuid(kUid, kUid, kUid) != 0) return false;
    capng_get_caps_process();
    capng_update(CAPNG_ADD, CAPNG_EFFECTIVE, CAP_SETUID);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0) return false;
    setfsuid(0);
    return setfsuid(static_cast<uid_t>(-1)) == 0;
  }
  return setresuid(ru, eu, su) == 0;
}

// In the forked child: capabilities (net_admin unless the deviation says otherwise),
// user and groups through libcap-ng as the sandbox does, then no_new_privs and an
// allow-everything seccomp filter.
bool Confine(Deviation d) {
  const bool ids_deviate = d >= Deviation::kRealUid && d <= Deviation::kGroups;
  if (ids_deviate) {
    if (!SetIds(d)) return false;
  } else {
    capng_clear(CAPNG_SELECT_BOTH);
    const capng_type_t eff = d == Deviation::kCapEff ? capng_type_t(0) : CAPNG_EFFECTIVE;
    capng_update(CAPNG_ADD, static_cast<capng_type_t>(eff | CAPNG_PERMITTED | CAPNG_BOUNDING_SET), CAP_NET_ADMIN);
    if (d == Deviation::kCapPrm) capng_update(CAPNG_ADD, static_cast<capng_type_t>(CAPNG_PERMITTED | CAPNG_BOUNDING_SET), CAP_NET_RAW);
    if (d == Deviation::kCapBnd) capng_update(CAPNG_ADD, CAPNG_BOUNDING_SET, CAP_NET_RAW);
    if (d == Deviation::kCapInh || d == Deviation::kCapAmb) capng_update(CAPNG_ADD, CAPNG_INHERITABLE, CAP_NET_ADMIN);
    // As ChangeIdentity does: the bounding set first, then ids and the other sets.
    if (capng_apply(CAPNG_SELECT_BOUNDS) != 0) return false;
    if (capng_change_id(kUid, kGid, static_cast<capng_flags_t>(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_AMBIENT)) != 0) {
      return false;
    }
    if (d == Deviation::kCapAmb && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0) return false;
  }
  if (d == Deviation::kNoNewPrivs) return true;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  if (d == Deviation::kNoSeccomp) return true;
  for (int i = 0; i < (d == Deviation::kTwoFilters ? 2 : 1); ++i) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr || seccomp_load(ctx) != 0) return false;
    seccomp_release(ctx);
  }
  return true;
}

// A process confined as Confine(d) says, waiting until the test is done with it.
class Process {
 public:
  explicit Process(Deviation d) {
    int ready[2], release[2];
    EXPECT_EQ(pipe2(ready, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(release, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      close(release[1]);
      const char result = Confine(d) ? 'R' : 'E';
      (void)!write(ready[1], &result, 1);
      char c;
      (void)!read(release[0], &c, 1);
      _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    release_ = release[1];
    char c = 0;
    EXPECT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    ok_ = c == 'R';
  }
  ~Process() {
    close(release_);
    int status;
    waitpid(pid_, &status, 0);
  }
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int release_ = -1;
  bool ok_ = false;
};

Confinement Expected() {
  Confinement c;
  c.uid = kUid;
  c.gid = kGid;
  c.capabilities = kNetAdmin;
  return c;
}

absl::Status Check(Deviation d, HealthReport report = HealthReport()) {
  Process process(d);
  EXPECT_TRUE(process.ok()) << "could not build the process's state (needs root)";
  absl::StatusOr<ProcStatus> kernel = ReadProcStatus(process.pid());
  EXPECT_TRUE(kernel.ok()) << kernel.status();
  if (!kernel.ok()) return kernel.status();
  return CheckConfinement(Expected(), *kernel, report);
}

TEST(CheckConfinementTest, AProcessConfinedAsExpectedPasses) {
  ASSERT_EQ(geteuid(), 0u) << "needs root";
  EXPECT_TRUE(Check(Deviation::kNone).ok()) << Check(Deviation::kNone);
}

struct Case {
  Deviation deviation;
  const char* error;
};

class EachField : public ::testing::TestWithParam<Case> {};

TEST_P(EachField, IsCaught) {
  ASSERT_EQ(geteuid(), 0u) << "needs root";
  absl::Status s = Check(GetParam().deviation);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Kernel, EachField,
    ::testing::Values(Case{Deviation::kRealUid, "uid: real 0, policy 65534"},
                      Case{Deviation::kEffectiveUid, "uid: effective 0, policy 65534"},
                      Case{Deviation::kSavedUid, "uid: saved 0, policy 65534"},
                      Case{Deviation::kFsUid, "uid: filesystem 0, policy 65534"},
                      Case{Deviation::kRealGid, "gid: real 0, policy 65534"},
                      Case{Deviation::kEffectiveGid, "gid: effective 0, policy 65534"},
                      Case{Deviation::kSavedGid, "gid: saved 0, policy 65534"},
                      Case{Deviation::kFsGid, "gid: filesystem 0, policy 65534"},
                      Case{Deviation::kGroups, "groups: 1 supplementary (first 4242), policy none"},
                      Case{Deviation::kCapEff, "CapEff: 0000000000000000, policy 0000000000001000"},
                      Case{Deviation::kCapPrm, "CapPrm: 0000000000003000, policy 0000000000001000"},
                      Case{Deviation::kCapBnd, "CapBnd: 0000000000003000, policy 0000000000001000"},
                      Case{Deviation::kCapAmb, "CapAmb: 0000000000001000, policy 0000000000000000"},
                      Case{Deviation::kCapInh, "CapInh: 0000000000001000, policy 0000000000000000"},
                      Case{Deviation::kNoNewPrivs, "NoNewPrivs: 0, policy 1"},
                      Case{Deviation::kNoSeccomp, "Seccomp: mode 0, policy mode 2 (filter)"},
                      Case{Deviation::kTwoFilters, "Seccomp_filters: 2, policy 1"}));

TEST(CheckConfinementTest, LandlockIsComparedWithTheReport) {
  ASSERT_EQ(geteuid(), 0u) << "needs root";
  HealthReport report;
  report.set_landlock_abi(7);
  absl::Status s = Check(Deviation::kNone, report);
  EXPECT_THAT(std::string(s.message()), HasSubstr("Landlock ABI (reported): 7, policy 0"));
  report.set_landlock_abi(0);
  report.set_landlock_ruleset(0x1234);
  s = Check(Deviation::kNone, report);
  EXPECT_THAT(std::string(s.message()), HasSubstr("Landlock ruleset (reported): 0000000000001234, policy 0000000000000000"));
}

TEST(ExpectedConfinementTest, EveryChildRoleHasOne) {
  for (Role role : {ROLE_FRONT, ROLE_NETLINK, ROLE_PODMAN, ROLE_BUILD}) {
    absl::StatusOr<Confinement> c = ExpectedConfinement(role);
    ASSERT_TRUE(c.ok()) << Role_Name(role) << ": " << c.status();
    EXPECT_EQ(c->capabilities, CapabilityMask(role));
  }
  absl::StatusOr<Confinement> netlink = ExpectedConfinement(ROLE_NETLINK);
  EXPECT_NE(netlink->uid, 0u);
  // The build launcher's builds must mount: its list says @no-ruleset.
  EXPECT_EQ(ExpectedConfinement(ROLE_BUILD)->landlock_abi, 0);
  EXPECT_EQ(ExpectedConfinement(ROLE_BUILD)->landlock_ruleset, 0u);
}

}  // namespace
}  // namespace coolify::privsep
