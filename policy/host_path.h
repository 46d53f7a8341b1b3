// Host paths a request names (bind sources, devices): their canonical form, lexically
// and on the filesystem, and how the gatekeeper pins one.
//
// The policy compares canonical paths only. CanonicalizeLexically removes what a request
// can spell without touching the filesystem ("..", "//", ".", trailing "/"); a symlink
// planted inside an allowed directory ("/srv/data/x -> /etc") is only visible on the
// filesystem, which is what OpenBeneath and PinningHostPathResolver look at.
//
// The gatekeeper's contract for bind mounts:
//
//   1. Each bind source is opened with OpenBeneath: one component at a time, each with
//      O_PATH|O_NOFOLLOW, symlinks read and resolved by the walk itself (never by the
//      kernel), ".." never above the root. The canonical path is what the kernel says
//      the final descriptor is (/proc/self/fd/N), not a string the walk assembled.
//   2. The policy checks that canonical path (Evaluate, with the resolver in its
//      CallerContext), and the spec sent to Podman carries that canonical path, which
//      has no symlink in it (RenderSpecGenerator with the same resolver).
//   3. The descriptors stay open (the resolver owns them) until Podman has answered.
//      After the create, the gatekeeper opens each source again with OpenBeneath and
//      compares device and inode with the pinned descriptor; on any difference (a
//      component was swapped for a symlink or another directory after the check) it
//      deletes the container before anything starts it.
//
// What no check at create time can do: Podman mounts by path, at create and again at
// every start. A container that can write into a directory another container's bind
// source passes through can swap a component later, between starts. So:
//
//   4. At every start the gatekeeper reads the container's bind sources back from Podman
//      and checks each again (EvaluateBindsAtStart): still allowed, and resolving to
//      exactly itself (a component swapped for a symlink is refused, rule
//      "host_paths.changed").
//   5. A writable bind never names a writable prefix's own root, through which every
//      other source under it passes (rule "host_paths.writable_root").
//
// What is left is the moment between step 4 and Podman's mount, for a directory a
// container can write on the way to another's source: the policy should keep such
// directories out of reach of writable binds (bind leaves, never their parents);
// `coolify-policy lint` reminds of this for every writable prefix.
//
// Lexical checks alone (no resolver) are what the audit tool does when it is not told
// the host's root; they are exact for everything a request spells, but blind to
// symlinks on the host.
#ifndef COOLD_POLICY_HOST_PATH_H_
#define COOLD_POLICY_HOST_PATH_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "privsep/unique_fd.h"

namespace coolify::policy {

// The longest path accepted anywhere (PATH_MAX less the terminating NUL).
inline constexpr size_t kMaxPathBytes = 4095;

// The lexically canonical form of absolute `path`: repeated "/" collapse, "." components
// go, ".." removes the component before it (and is ignored at "/"), and there is no
// trailing "/" except for "/" itself. InvalidArgument when `path` is empty, relative,
// longer than kMaxPathBytes or holds a NUL byte.
absl::StatusOr<std::string> CanonicalizeLexically(std::string_view path);

// Whether canonical `path` is `prefix` or lies below it, comparing whole components:
// "/srv/data" is under "/srv" and "/", not under "/sr". Both must be canonical.
bool IsUnderPrefix(std::string_view path, std::string_view prefix);

// A path opened with O_PATH and what it canonically is.
struct OpenedPath {
  privsep::UniqueFd fd;
  // The absolute canonical path below the root OpenBeneath was given ("/" is the root
  // itself).
  std::string canonical;
  dev_t device = 0;
  ino_t inode = 0;
};

// Opens `path` (absolute, any spelling) below the directory `root_fd`, treating
// `root_fd` as "/": absolute symlink targets restart at it and ".." never climbs above
// it, as openat2's RESOLVE_IN_ROOT does. Symlinks are followed (at most 40, then
// ELOOP), including a symlink in the last component. Needs /proc mounted. Errors: the
// errno of the failing step, naming the component (NotFound for ENOENT,
// PermissionDenied for EACCES, FailedPrecondition otherwise).
absl::StatusOr<OpenedPath> OpenBeneath(int root_fd, std::string_view path);

// Resolves canonical host paths to what they are on the filesystem.
class HostPathResolver {
 public:
  virtual ~HostPathResolver() = default;
  // The canonical filesystem path `lexical_path` (already lexically canonical) names
  // now, every symlink resolved.
  virtual absl::StatusOr<std::string> Resolve(std::string_view lexical_path) = 0;
};

// Resolves with OpenBeneath below a root directory ("/" in the gatekeeper, a test tree
// in tests) and keeps every descriptor it opened until it is destroyed (step 3 above).
// Resolving the same path again returns the pinned answer without reopening it, so the
// policy check and the rendered spec see one and the same resolution.
class PinningHostPathResolver final : public HostPathResolver {
 public:
  static absl::StatusOr<std::unique_ptr<PinningHostPathResolver>> Create(std::string_view root);

  absl::StatusOr<std::string> Resolve(std::string_view lexical_path) override;

  // The pinned path for `lexical_path`, or nullptr if it was not resolved (yet).
  const OpenedPath* Pinned(std::string_view lexical_path) const;

 private:
  explicit PinningHostPathResolver(privsep::UniqueFd root) : root_(std::move(root)) {}

  privsep::UniqueFd root_;
  absl::flat_hash_map<std::string, OpenedPath> pinned_;
};

}  // namespace coolify::policy

#endif  // COOLD_POLICY_HOST_PATH_H_
