// The jail a build runs in: no host root, no host filesystem, no host network.
//
// Each running build holds a slot; slot s owns the host uid and gid range
// [uid_base + s*65536, uid_base + (s+1)*65536), mapped to 0..65535 of a user namespace
// of its own. The builder is root only there: on the host it is an unprivileged uid that
// owns nothing but the build's work directory, and its capabilities (the list in
// hardening/capabilities/build.list, `namespace` entries) reach only namespaces that
// user namespace owns.
//
// How a build starts (StartJailed), and why in this order:
//   1. The launcher forks an intermediate process, puts it into the build's cgroup
//      (everything after runs inside the limits) and lets it go.
//   2. The intermediate becomes the slot's host uid B, keeping CAP_SETUID/CAP_SETGID
//      only, and clones the builder with new user, mount, network, PID, IPC and UTS
//      namespaces and CLONE_PARENT: the user namespace is owned by B (so the network
//      helper, also uid B, may join it), and the builder is the launcher's own child
//      (waitpid and its pidfd keep working).
//   3. The intermediate writes the builder's uid_map and gid_map ("0 B 65536", which
//      takes CAP_SETUID/CAP_SETGID of the host), then drops every capability and either
//      exits or becomes the network helper (slirp4netns as uid B, in the build's cgroup).
//   4. The builder, root of its user namespace, makes its root: a tmpfs holding
//      read-only binds of /usr and a few /etc files, the work directory at /build, a
//      private /tmp, /run and /var/tmp, its PID namespace's /proc, a minimal /dev; it
//      pivots into it and detaches the host's tree. Then its network: only loopback, or
//      the helper's tap with `prohibit` routes for every denied range. Last, it drops
//      from its bounding set everything the build's list does not name (CAP_NET_ADMIN
//      and CAP_NET_RAW among them, so nothing it starts can change those routes) and
//      executes the builder.
//   5. Before that drop it moves into a second user namespace nested in the first, with
//      the same ids and a copy of its mount namespace: there the kernel locks every
//      mount of the jail, so a read-only one (the slot's base image store, /usr) cannot
//      be made writable by anything the build runs, and the build holds no capability
//      over its network namespace at all.
#ifndef COOLD_SERVICES_BUILD_BUILD_JAIL_H_
#define COOLD_SERVICES_BUILD_BUILD_JAIL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "privsep/unique_fd.h"

namespace coolify::build {

inline constexpr uint32_t kJailIds = 65536;  // uids (and gids) per slot
// Slots above the uid base (COOLD_BUILD_UID_BASE keeps room for all of them): at most
// the capacity run at once, and a build whose storage is still being removed holds one.
inline constexpr uint32_t kJailSlots = 64;
inline constexpr uid_t kDefaultUidBase = 0x70000000;  // 1879048192
// Where the build's work directory appears inside its jail.
inline constexpr char kJailWorkDir[] = "/build";
// Where the base images offered to every build appear (read-only).
inline constexpr char kJailImagesDir[] = "/images";
// Where the slot's store of those images, loaded by the launcher, appears: bound
// read-only, and locked so (build_jail.cc NestUserNamespace).
inline constexpr char kJailBaseStoreDir[] = "/base";

// An IPv4 range, host byte order.
struct Cidr {
  uint32_t address = 0;
  int prefix = 0;
  bool Contains(const Cidr& other) const;
  bool Overlaps(const Cidr& other) const;
};
// "a.b.c.d/n" (or "a.b.c.d", a /32); the address is masked to its prefix.
absl::StatusOr<Cidr> ParseCidr(const std::string& text);
std::string FormatCidr(const Cidr& cidr);

enum class JailNetwork { kSlirp, kNone };

struct JailConfig {
  uid_t uid_base = kDefaultUidBase;
  JailNetwork network = JailNetwork::kSlirp;
  // Routed to nowhere inside the build (`prohibit`): connecting answers EACCES.
  std::vector<Cidr> deny;
  // Routed through the helper although a wider `deny` covers them.
  std::vector<Cidr> allow;
  // A host directory bound read-only at /images, or "".
  std::string images_dir;
  // The bounding set inside the build's user namespace (bit n = capability n).
  uint64_t capabilities = 0;
};

// The host uid (and gid) that is root of slot `slot`'s user namespace.
uid_t SlotHostId(const JailConfig& config, uint32_t slot);

struct JailedBuild {
  pid_t builder = 0;  // the launcher's child (CLONE_PARENT)
  privsep::UniqueFd pidfd;
  pid_t helper = 0;   // slirp4netns (the intermediate, after exec), or 0
};

// What StartJailed needs, all opened and built by the caller before anything forks.
struct JailLaunch {
  std::string request_id;
  uint32_t slot = 0;
  int work_dir = -1;   // the work directory (bound read-write at /build), owned by B
  int executable = -1; // the builder, executed from this descriptor
  int log = -1;        // the builder's stdout and stderr
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  // Host directories bound read-only at the same path inside (a file:// repository).
  std::vector<std::string> read_only_paths;
  // The slot's base image store (a containers-storage directory), bound read-only at
  // kJailBaseStoreDir, or "".
  std::string base_store;
  // The build's own cgroup directories under /sys/fs/cgroup, bound read-only at the same
  // path: the builder reads its memory counters there to tell a memory kill.
  std::vector<std::string> cgroup_dirs;
  // Called in the launcher with the intermediate's pid, before it may go on: puts it
  // in the build's cgroup. An error stops the start.
  std::function<absl::Status(pid_t)> enter_cgroup;
};

// Starts the builder in a new jail (see above). On error nothing of it runs.
absl::StatusOr<JailedBuild> StartJailed(const JailConfig& config, const JailLaunch& launch);

// Removes what a build left in its work directory that only its own user namespace may
// remove (`names`, relative to the directory: storage with files of many owners and
// modes), as root of a fresh user namespace with the slot's mapping. Returns the
// remover's pid, the launcher's child; it exits 0 once done.
absl::StatusOr<pid_t> StartCleaner(const JailConfig& config, uint32_t slot, int work_dir,
                                   const std::vector<std::string>& names);

// Fills the slot's base image store: in `store_dir` (opened; `store_path` is its path),
// owned by the slot's host uid, empties it and loads every docker-archive in
// `archives` with buildah into `<store_path>/storage`, as root of a fresh user namespace
// with the slot's mapping (so the files have the ids the slot's builds see as theirs)
// and fresh mount and network namespaces. `env` is buildah's environment. Returns the
// loader's pid, the launcher's child; it exits 0 once every archive is loaded.
absl::StatusOr<pid_t> StartBaseStoreLoader(const JailConfig& config, uint32_t slot, int store_dir,
                                           const std::string& store_path, const std::string& storage_driver,
                                           const std::vector<std::string>& archives,
                                           const std::vector<std::string>& env);

}  // namespace coolify::build

#endif  // COOLD_SERVICES_BUILD_BUILD_JAIL_H_
