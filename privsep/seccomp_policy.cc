#include "privsep/seccomp_policy.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "privsep/unique_fd.h"

namespace coolify::privsep {
namespace {

// libseccomp returns -errno.
absl::Status SeccompError(int rc, absl::string_view what) {
  return absl::ErrnoToStatus(-rc, what);
}

}  // namespace

absl::StatusOr<SeccompFilter> SeccompFilter::Build(const std::vector<SeccompRule>& rules) {
  // Killing the process rather than the thread: a multi-threaded front end with one
  // thread silently gone would keep running in an undefined state.
  scmp_filter_ctx raw = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (raw == nullptr) return absl::InternalError("seccomp_init failed");
  SeccompFilter filter(raw);
  // A call through another ABI (x32, or the 32-bit int 0x80 table) would bypass every
  // rule below, which are written against x86-64 numbers.
  if (int rc = seccomp_attr_set(raw, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc != 0) {
    return SeccompError(rc, "seccomp_attr_set(ACT_BADARCH)");
  }
  // Report the kernel's own errno from seccomp_load rather than libseccomp's -ECANCELED.
  if (int rc = seccomp_attr_set(raw, SCMP_FLTATR_API_SYSRAWRC, 1); rc != 0) {
    return SeccompError(rc, "seccomp_attr_set(API_SYSRAWRC)");
  }
  for (const SeccompRule& rule : rules) {
    std::vector<scmp_arg_cmp> cmps;
    for (const SeccompCondition& c : rule.conditions) {
      scmp_arg_cmp cmp = {};
      cmp.arg = c.arg;
      if (c.mask == ~uint64_t{0}) {
        cmp.op = SCMP_CMP_EQ;
        cmp.datum_a = c.value;
      } else {
        cmp.op = SCMP_CMP_MASKED_EQ;
        cmp.datum_a = c.mask;
        cmp.datum_b = c.value;
      }
      cmps.push_back(cmp);
    }
    const uint32_t action = rule.error == 0 ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(rule.error);
    // _exact: the rule is installed as written, never rewritten by libseccomp.
    if (int rc = seccomp_rule_add_exact_array(raw, action, rule.number,
                                              static_cast<unsigned>(cmps.size()), cmps.data());
        rc != 0) {
      return SeccompError(rc, absl::StrCat(rule.origin, ": seccomp_rule_add ", rule.syscall));
    }
  }
  return filter;
}

SeccompFilter::SeccompFilter(SeccompFilter&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)) {}

SeccompFilter& SeccompFilter::operator=(SeccompFilter&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) seccomp_release(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

SeccompFilter::~SeccompFilter() {
  if (ctx_ != nullptr) seccomp_release(ctx_);
}

absl::Status SeccompFilter::Load() const {
  if (int rc = seccomp_load(ctx_); rc != 0) return SeccompError(rc, "seccomp_load");
  return absl::OkStatus();
}

absl::StatusOr<std::string> SeccompFilter::ExportPfc() const {
  UniqueFd fd(memfd_create("seccomp-pfc", MFD_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "memfd_create");
  if (int rc = seccomp_export_pfc(ctx_, fd.get()); rc != 0) {
    return SeccompError(rc, "seccomp_export_pfc");
  }
  std::string text;
  char buf[4096];
  for (off_t offset = 0;;) {
    const ssize_t n = pread(fd.get(), buf, sizeof(buf), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "read exported filter");
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return text;
}

}  // namespace coolify::privsep
