#include "privsep/landlock.h"

#include <algorithm>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace coolify::privsep {
namespace {

// UAPI of landlock_create_ruleset(2) and friends (see landlock.h for why it is spelled
// out here). The ruleset attribute grew with ABI 4 (net) and 6 (scoped); the kernel
// accepts the larger struct from older-ABI callers as long as the fields it does not
// know are zero, so one layout serves every ABI.
constexpr uint32_t kCreateRulesetVersion = 1U << 0;
constexpr int kRulePathBeneath = 1;
constexpr int kRuleNetPort = 2;                            // ABI 4
constexpr uint64_t kAccessNetBindTcp = 1ULL << 0;          // ABI 4
constexpr uint64_t kAccessNetConnectTcp = 1ULL << 1;       // ABI 4
constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;              // ABI 6

struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

struct NetPortAttr {
  uint64_t allowed_access;
  uint64_t port;
};

int QueryAbi() {
  const long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  // ENOSYS: not built in; EOPNOTSUPP: built in but disabled at boot.
  return abi < 0 ? 0 : static_cast<int>(abi);
}

// The filesystem rights of `abi`: a ruleset handles all of them. (A right added by an
// ABI newer than 7, the newest this code knows, would stay unhandled, i.e. allowed,
// until it is added here.)
uint64_t HandledAccess(int abi) {
  uint64_t access = (kLandlockMakeSym << 1) - 1;  // ABI 1: execute .. make_sym.
  if (abi >= 2) access |= kLandlockRefer;
  if (abi >= 3) access |= kLandlockTruncate;
  if (abi >= 5) access |= kLandlockIoctlDev;
  return access;
}

}  // namespace

int LandlockAbi() {
  static const int abi = QueryAbi();
  return abi;
}

absl::StatusOr<LandlockRuleset> LandlockRuleset::Build(const std::vector<LandlockRule>& rules,
                                                       const std::vector<int>& passed_dirs,
                                                       const std::vector<uint16_t>& tcp_connect_ports,
                                                       std::vector<std::string>* notes) {
  const bool governs_tcp = std::any_of(rules.begin(), rules.end(), [](const LandlockRule& rule) {
    return rule.path == kTcpConnectPassedPorts;
  });
  if (!tcp_connect_ports.empty() && !governs_tcp) {
    return absl::PermissionDeniedError(
        absl::StrCat("TCP ports were passed, but the role's list has no ", kTcpConnectPassedPorts, " entry"));
  }
  const bool passed_allowed = std::any_of(rules.begin(), rules.end(), [](const LandlockRule& rule) {
    return rule.path == kPassedDirectories;
  });
  if (!passed_dirs.empty() && !passed_allowed) {
    return absl::PermissionDeniedError(
        absl::StrCat("directories were passed, but the role's list has no ", kPassedDirectories, " rule"));
  }
  const int abi = LandlockAbi();
  if (abi == 0) return LandlockRuleset(0, UniqueFd());

  const uint64_t handled = HandledAccess(abi);
  RulesetAttr attr = {};
  attr.handled_access_fs = handled;
  // Network rights (ABI 4) are handled for a role whose list says kTcpConnectPassedPorts
  // (the front end: it binds nothing, its listeners come from the monitor, and connects
  // only to the broker, Corrosion and the DNS upstream). The other roles' seccomp lists
  // deny them AF_INET sockets altogether.
  if (governs_tcp && abi >= 4) {
    attr.handled_access_net = kAccessNetBindTcp | kAccessNetConnectTcp;
  } else if (governs_tcp) {
    notes->push_back(absl::StrCat("Landlock ABI ", abi, " predates TCP rules; ", kTcpConnectPassedPorts,
                                  " is not enforced"));
  }
  // Scoping (ABI 6) closes what paths cannot: connecting to abstract UNIX sockets
  // (which have no file and so no DAC either) and signalling processes outside the
  // domain, such as the monitor or, for uid-0 roles, any other root process.
  if (abi >= 6) attr.scoped = kScopeAbstractUnixSocket | kScopeSignal;
  UniqueFd ruleset(static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0)));
  if (!ruleset.valid()) return absl::ErrnoToStatus(errno, "landlock_create_ruleset");

  if (attr.handled_access_net != 0) {
    for (uint16_t port : tcp_connect_ports) {
      NetPortAttr net = {kAccessNetConnectTcp, port};
      if (syscall(SYS_landlock_add_rule, ruleset.get(), kRuleNetPort, &net, 0) != 0) {
        return absl::ErrnoToStatus(errno, absl::StrCat("landlock_add_rule: TCP connect to port ", port));
      }
    }
  }
  for (const LandlockRule& rule : rules) {
    if (rule.path == kTcpConnectPassedPorts) continue;
    const uint64_t allowed = rule.access & handled;
    if (allowed == 0) continue;  // Only rights this kernel does not enforce anyway.
    if (rule.path == kPassedDirectories) {
      for (int dir : passed_dirs) {
        struct stat st;
        if (fstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
          return absl::InvalidArgumentError(absl::StrCat(rule.origin, ": passed descriptor ", dir,
                                                         " is not a directory"));
        }
        PathBeneathAttr beneath = {allowed, dir};
        if (syscall(SYS_landlock_add_rule, ruleset.get(), kRulePathBeneath, &beneath, 0) != 0) {
          return absl::ErrnoToStatus(errno, absl::StrCat(rule.origin, ": landlock_add_rule on passed directory"));
        }
      }
      continue;
    }
    UniqueFd fd(open(rule.path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) {
        notes->push_back(absl::StrCat(rule.origin, ": ", rule.path,
                                      " does not exist; its rule is left out"));
        continue;
      }
      return absl::ErrnoToStatus(errno, absl::StrCat(rule.origin, ": open ", rule.path));
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat(rule.origin, ": stat ", rule.path));
    }
    if (!S_ISDIR(st.st_mode) && (allowed & ~kLandlockFileRights) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          rule.origin, ": ", rule.path,
          " is not a directory, so only execute, read_file, write_file, truncate and "
          "ioctl_dev apply to it"));
    }
    PathBeneathAttr beneath = {allowed, fd.get()};
    if (syscall(SYS_landlock_add_rule, ruleset.get(), kRulePathBeneath, &beneath, 0) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat(rule.origin, ": landlock_add_rule ",
                                                     rule.path));
    }
  }
  return LandlockRuleset(abi, std::move(ruleset));
}

absl::Status LandlockRuleset::Enforce() {
  if (abi_ == 0) return absl::OkStatus();
  if (syscall(SYS_landlock_restrict_self, fd_.get(), 0) != 0) {
    return absl::ErrnoToStatus(errno, "landlock_restrict_self");
  }
  fd_.reset();
  return absl::OkStatus();
}

}  // namespace coolify::privsep
