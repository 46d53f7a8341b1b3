// Landlock: the filesystem a sandboxed process may still reach.
//
// A Landlock domain is deny-by-default for every access right the ruleset handles; a
// rule re-allows some rights beneath one path. The policy of a role is a list of such
// rules (hardening/landlock/<role>.list); an empty list leaves no filesystem access.
//
// The constants below are the kernel's UAPI values, defined here rather than taken
// from <linux/landlock.h> because Debian's headers lag the running kernel: rights of a
// newer ABI must be nameable even when the build machine's headers predate them.
#ifndef COOLD_PRIVSEP_LANDLOCK_H_
#define COOLD_PRIVSEP_LANDLOCK_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "privsep/unique_fd.h"

namespace coolify::privsep {

// Filesystem access rights (LANDLOCK_ACCESS_FS_*), with the ABI that introduced each.
inline constexpr uint64_t kLandlockExecute = 1ULL << 0;      // ABI 1
inline constexpr uint64_t kLandlockWriteFile = 1ULL << 1;    // ABI 1
inline constexpr uint64_t kLandlockReadFile = 1ULL << 2;     // ABI 1
inline constexpr uint64_t kLandlockReadDir = 1ULL << 3;      // ABI 1
inline constexpr uint64_t kLandlockRemoveDir = 1ULL << 4;    // ABI 1
inline constexpr uint64_t kLandlockRemoveFile = 1ULL << 5;   // ABI 1
inline constexpr uint64_t kLandlockMakeChar = 1ULL << 6;     // ABI 1
inline constexpr uint64_t kLandlockMakeDir = 1ULL << 7;      // ABI 1
inline constexpr uint64_t kLandlockMakeReg = 1ULL << 8;      // ABI 1
inline constexpr uint64_t kLandlockMakeSock = 1ULL << 9;     // ABI 1
inline constexpr uint64_t kLandlockMakeFifo = 1ULL << 10;    // ABI 1
inline constexpr uint64_t kLandlockMakeBlock = 1ULL << 11;   // ABI 1
inline constexpr uint64_t kLandlockMakeSym = 1ULL << 12;     // ABI 1
inline constexpr uint64_t kLandlockRefer = 1ULL << 13;       // ABI 2
inline constexpr uint64_t kLandlockTruncate = 1ULL << 14;    // ABI 3
inline constexpr uint64_t kLandlockIoctlDev = 1ULL << 15;    // ABI 5

// Rights that make sense on a rule for a single file; the others concern directory
// contents and the kernel rejects them on a non-directory.
inline constexpr uint64_t kLandlockFileRights =
    kLandlockExecute | kLandlockWriteFile | kLandlockReadFile | kLandlockTruncate |
    kLandlockIoctlDev;

// One rule: `access` is allowed on `path` and, for a directory, everything beneath it.
// The path a landlock list uses for "each directory the monitor passed to this role".
// Snapshot directories are configurable, so their rule is granted through the
// descriptors the monitor opened rather than through a fixed path in the list.
inline constexpr char kPassedDirectories[] = "@passed-directories";

// The only entry of a list whose role enforces no Landlock ruleset at all: Landlock
// forbids mount(2) and pivot_root(2) to a domain and to every process it starts, and a
// role whose children must mount (the build launcher's builds) cannot have one.
inline constexpr char kNoRuleset[] = "@no-ruleset";

// The entry of a list whose role's TCP is governed too (Landlock ABI 4): it may bind no
// TCP port and connect only to the ports the monitor passes it from its own
// configuration (SandboxSpec::tcp_connect_ports). A role without it leaves TCP to its
// seccomp list (which denies the other roles AF_INET sockets altogether).
inline constexpr char kTcpConnectPassedPorts[] = "@tcp-connect-passed-ports";

struct LandlockRule {
  std::string path;  // Absolute, or kPassedDirectories.
  uint64_t access = 0;
  std::string origin;  // "file:line" of the list entry, for error messages.
};

// The best Landlock ABI the running kernel supports, 0 when it has none (not built in,
// or disabled at boot). Asked once per process and remembered, so calling it from a
// process whose seccomp filter forbids the Landlock system calls is safe as long as
// it was called once before (EnterSandbox does).
int LandlockAbi();

// A ruleset built but not yet enforced. Built while the process can still open every
// path of the policy; enforced later with Enforce().
class LandlockRuleset {
 public:
  // Creates a ruleset for LandlockAbi() handling every filesystem right of that ABI
  // and, from ABI 6 on, scoping signals and abstract UNIX sockets to the domain, then
  // adds `rules`. A rule's rights are trimmed to those the ABI handles (a right the
  // kernel does not know is not enforced either way); a rule left with none is
  // dropped. A path that does not exist is dropped too, with a line in `*notes`:
  // omitting a rule only ever removes access. Directory rights on a non-directory,
  // and any other failure, are errors. On a kernel without Landlock the result is an
  // empty ruleset (abi() == 0) whose Enforce() does nothing.
  // `passed_dirs` are directory descriptors the rule for kPassedDirectories applies to;
  // passing any when no rule names kPassedDirectories is an error (fail closed). So are
  // `tcp_connect_ports` without a kTcpConnectPassedPorts entry. On a kernel before ABI 4
  // the TCP rules are not enforced (a line in `*notes` says so).
  static absl::StatusOr<LandlockRuleset> Build(const std::vector<LandlockRule>& rules,
                                               const std::vector<int>& passed_dirs,
                                               const std::vector<uint16_t>& tcp_connect_ports,
                                               std::vector<std::string>* notes);

  // Restricts the calling thread (and its future children) to the ruleset.
  // Requires PR_SET_NO_NEW_PRIVS (or CAP_SYS_ADMIN). Closes the ruleset.
  absl::Status Enforce();

  // The ABI the ruleset was built for; 0 = no Landlock.
  int abi() const { return abi_; }

 private:
  LandlockRuleset(int abi, UniqueFd fd) : abi_(abi), fd_(std::move(fd)) {}

  int abi_;
  UniqueFd fd_;
};

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_LANDLOCK_H_
