// Hardening lists: the one text format of every seccomp, capability and Landlock
// policy under hardening/, and its parsers.
//
// A list is UTF-8 text, read line by line:
//
//   # A comment line.
//   [group name]
//   ENTRY  # Why the role needs this.
//
// Blank lines and comment lines are ignored. An entry belongs to the group heading
// above it; an entry before any heading, a group named twice, an entry without a
// reason after `#`, and an entry the list's kind does not define are errors, so every
// permission a role holds is both grouped and explained. Errors read
// "<path>:<line>: <what>".
//
// Seccomp entries (hardening/seccomp/<role>.list):
//
//   SYSCALL [COND [&& COND]...] [return ERRNO]
//   COND  := aN == VALUE  |  aN & VALUE == VALUE        N in 0..5, one COND per N
//   VALUE := TERM[|TERM]...                             no spaces around |
//   TERM  := decimal | 0xhex | a symbol of the table in policy_list.cc
//            (AF_UNIX, SOCK_STREAM, SOCK_TYPE_MASK, F_GETFL, CLONE_THREAD, ...)
//
//   Several entries for one system call are alternatives. An entry without `return`
//   allows the call; `return ENOSYS` makes it fail with that errno instead (for calls
//   whose callers then fall back to an older, filterable one). A system call may not
//   have both an unconditional entry and conditional ones, nor entries with different
//   outcomes.
//
// Capability entries (hardening/capabilities/<role>.list):
//
//   user NAME     exactly once: the user the role runs as ("root" or a system user)
//   CAP_NAME      a capability the role keeps (names as libcap-ng knows them)
//   namespace CAP_NAME
//                 a capability that processes the role starts in a user namespace of
//                 their own keep there (their bounding set), and that the role itself
//                 does not hold (IdentityPolicy::namespace_capabilities)
//
// Landlock entries (hardening/landlock/<role>.list):
//
//   /ABSOLUTE/PATH ACCESS[,ACCESS]...
//   ACCESS := execute | read_file | read_dir | write_file | truncate | ioctl_dev |
//             remove_file | remove_dir | make_reg | make_dir | make_sym | make_sock |
//             make_fifo | make_char | make_block | refer
//
//   @tcp-connect-passed-ports
//                 the role binds no TCP port and connects only to the ports the monitor
//                 passes (landlock.h kTcpConnectPassedPorts)
//
//   A list without entries grants no filesystem access at all.
//   `@no-ruleset`, as a list's only entry, means the role enforces no Landlock ruleset
//   (landlock.h kNoRuleset says why a role may need that).
#ifndef COOLD_PRIVSEP_POLICY_LIST_H_
#define COOLD_PRIVSEP_POLICY_LIST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privsep/capabilities.h"
#include "privsep/landlock.h"
#include "privsep/seccomp_policy.h"

namespace coolify::privsep {

// One entry line, split but not interpreted.
struct PolicyEntry {
  std::string group;
  std::string text;    // The entry without its comment, whitespace-trimmed.
  std::string reason;  // The comment, trimmed; never empty.
  std::string origin;  // "<path>:<line>".
};

// The grammar shared by all kinds of list.
absl::StatusOr<std::vector<PolicyEntry>> ParsePolicyEntries(absl::string_view path,
                                                            absl::string_view text);

absl::StatusOr<std::vector<SeccompRule>> ParseSeccompList(absl::string_view path,
                                                         absl::string_view text);

absl::StatusOr<IdentityPolicy> ParseCapabilityList(absl::string_view path, absl::string_view text);

absl::StatusOr<std::vector<LandlockRule>> ParseLandlockList(absl::string_view path,
                                                           absl::string_view text);

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_POLICY_LIST_H_
