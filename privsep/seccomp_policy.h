// seccomp: the system calls a sandboxed process may still make.
//
// A role's policy is a list of rules (hardening/seccomp/<role>.list); every system call
// no rule matches kills the whole process (SCMP_ACT_KILL_PROCESS, seen by the parent
// as death by SIGSYS), and so does any call made through another architecture's
// system call table. Several rules for one system call are alternatives (OR); the
// conditions within one rule must all hold (AND).
#ifndef COOLD_PRIVSEP_SECCOMP_POLICY_H_
#define COOLD_PRIVSEP_SECCOMP_POLICY_H_

#include <seccomp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace coolify::privsep {

// Argument `arg` (0-5) satisfies (value_of_arg & mask) == value. mask is all ones for a
// plain equality.
struct SeccompCondition {
  unsigned arg = 0;
  uint64_t mask = ~uint64_t{0};
  uint64_t value = 0;

  bool operator==(const SeccompCondition& o) const {
    return arg == o.arg && mask == o.mask && value == o.value;
  }
};

struct SeccompRule {
  std::string syscall;  // As named in the list.
  int number = -1;      // The native architecture's number for it.
  // 0: the call is allowed. Otherwise the call is not made and fails with this errno
  // (for calls whose callers fall back to an alternative, e.g. clone3 -> clone).
  int error = 0;
  std::vector<SeccompCondition> conditions;
  std::string origin;  // "file:line" of the list entry, for error messages.
};

// A compiled filter, not loaded. Move-only; owns its libseccomp context.
class SeccompFilter {
 public:
  // Compiles `rules` with the defaults described above.
  static absl::StatusOr<SeccompFilter> Build(const std::vector<SeccompRule>& rules);

  SeccompFilter(SeccompFilter&& other) noexcept;
  SeccompFilter& operator=(SeccompFilter&& other) noexcept;
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;
  ~SeccompFilter();

  // Installs the filter on the calling thread, irrevocably. The caller must already
  // have set PR_SET_NO_NEW_PRIVS (libseccomp sets it too).
  absl::Status Load() const;

  // The filter in libseccomp's pseudo-filter-code text, for review and golden tests.
  absl::StatusOr<std::string> ExportPfc() const;

 private:
  explicit SeccompFilter(scmp_filter_ctx ctx) : ctx_(ctx) {}

  scmp_filter_ctx ctx_;
};

}  // namespace coolify::privsep

#endif  // COOLD_PRIVSEP_SECCOMP_POLICY_H_
