// The build launcher's engine: starts each build's builder in its own sandbox, follows
// its events file, stops it on cancel or at its deadline, and reports its outcome once.
//
// Single-threaded and poll-driven: the caller (coold-build's main loop, or a test) calls
// Poll(), which waits at most the given time and returns what happened since the last
// call. It never parses what a build wrote: event lines and the outcome file go out as
// bytes (length-capped), to be parsed by the unprivileged front end.
//
// A build is `<builds_dir>/<request_id>/` (the builder's work directory) plus, with the
// native backend, the cgroup `coolify-builds/coolify-build-<request_id>`. Both outlive the
// launcher: Adopt() finds them again after a restart (resume_or_reap).
#ifndef COOLD_SERVICES_BUILD_LAUNCHER_H_
#define COOLD_SERVICES_BUILD_LAUNCHER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "privsep/unique_fd.h"
#include "services/build/build_cgroup.h"
#include "proto/privsep.pb.h"
#include "services/build/build_cgroup.h"
#include "services/build/build_jail.h"

namespace coolify::build {

enum class Backend { kNative, kSystemd };

struct LauncherConfig {
  Backend backend = Backend::kNative;
  std::string builds_dir = "/var/lib/coolify/builds";
  std::string builder_path;  // the builder binary
  // The builder binary already opened (O_PATH) by whoever checked it, or -1: then
  // builder_path is opened at Create(). Create() takes a duplicate.
  int builder_fd = -1;
  uint32_t capacity = 2;     // builds at once; one more is refused (RESOURCE_EXHAUSTED)
  CgroupLimits limits = {4ULL << 30, 2000, 4096};
  absl::Duration timeout = absl::Hours(1);      // wall clock per build
  absl::Duration kill_grace = absl::Seconds(10);  // SIGTERM, then SIGKILL after this
  // Passed to every builder: storage location (--storage-root, --storage-runroot,
  // --storage-driver) and --allow-file-urls when configured.
  std::vector<std::string> builder_args;
  // "NAME=value" entries of the builder's environment (CONTAINERS_CONF and friends).
  std::vector<std::string> builder_env;
  // systemd backend: what the unit may write besides the work directory (storage), and
  // the networks a build must not reach (management and container CIDRs).
  std::vector<std::string> read_write_paths;
  std::vector<std::string> deny_cidrs;
  // Ranges opened although a default deny covers them (both backends).
  std::vector<std::string> allow_cidrs;
  std::string cgroup_parent = kBuildCgroupParent;
  // Native backend: each build's jail (build_jail.h): its uid slot, network, deny list,
  // the base images offered to it, and its capabilities (from
  // hardening/capabilities/build.list when left 0).
  JailConfig jail;
  // The driver of each build's own containers-storage: overlay (the kernel's, inside the
  // build's user namespace) or vfs.
  std::string storage_driver = "overlay";
  // Native backend with jail.images_dir: where the launcher keeps each slot's store of
  // those images (`<dir>/<slot>/storage`), which that slot's builds read as an
  // additional image store instead of loading the archives themselves; "" for none.
  // Root's, mode 0711.
  std::string base_store_dir;
};

// At most this many bytes of one build's progress lines are held for the reader, in one
// update and in coold-build's queue for the build stream each: beyond it the oldest are
// dropped and counted (events.ndjson keeps them), so a build that prints fast while
// nobody reads costs the launcher a bounded amount of memory.
inline constexpr size_t kMaxHeldProgressBytes = 256 * 1024;

// What happened to one build since the last Poll().
struct BuildUpdate {
  std::string request_id;
  std::vector<std::string> event_lines;  // new lines of events.ndjson, as written
  uint64_t dropped_lines = 0;            // new lines before event_lines not kept (see above)
  bool finished = false;
  // With finished: "result.json", "error.json", or "" when the builder left neither.
  std::string outcome_file;
  std::string outcome_text;
  std::string note;  // the launcher's own reason when there is no outcome file
  // With finished and result.json: the build's image archive (kImageArchiveFile), opened
  // and then unlinked by the launcher (the work directory is the build's own, which only
  // its ids may read), so it lives as long as this descriptor that hands it over.
  privsep::UniqueFd image_archive;
};

class Launcher {
 public:
  static absl::StatusOr<std::unique_ptr<Launcher>> Create(LauncherConfig config);
  ~Launcher();

  // Starts a build. INVALID_ARGUMENT for a request that fails validation,
  // ALREADY_EXISTS for a request id already running or used, RESOURCE_EXHAUSTED at
  // capacity.
  absl::Status Start(const privsep::BuildSpec& request);
  // SIGTERM to every process of the build, SIGKILL after the grace period. NOT_FOUND for
  // a build that is not running.
  absl::Status Cancel(const std::string& request_id);
  // Scans the builds directory (at start): a build still running (its cgroup, or with the
  // systemd backend its unit's cgroup, has processes) is watched again; one
  // that finished is reported by the next Poll() with its outcome, once; the work
  // directory of a build reported is marked so a later restart does not report it again.
  std::vector<std::string> Adopt();
  // Waits up to `timeout` for something to happen, then reports every change.
  std::vector<BuildUpdate> Poll(absl::Duration timeout);

  // Builds not yet reported: what `capacity` bounds.
  size_t running() const;
  // Builds held: running, or reported with their storage still being removed (which
  // holds their uid slot until it is gone).
  size_t held() const { return builds_.size(); }
  // The pid of the running build's builder (0 when adopted), for tests and benchmarks.
  pid_t builder_pid(const std::string& request_id) const;

  // The builder's argv for `request` (validated), without the program.
  static std::vector<std::string> BuilderArgs(const LauncherConfig& config, const privsep::BuildSpec& request);
  // The systemd backend's command: systemd-run with the unit's properties.
  static std::vector<std::string> SystemdRunArgv(const LauncherConfig& config, const privsep::BuildSpec& request);
  // The checks a BuildRequest must pass before anything is started: its kind, then every
  // field with the builder's own grammar (services/builder/options.h CheckBuilderArgs) on
  // the argv `config` would give the builder. INVALID_ARGUMENT naming the field.
  static absl::Status ValidateRequest(const LauncherConfig& config, const privsep::BuildSpec& request);

 private:
  struct Running;
  explicit Launcher(LauncherConfig config);
  absl::Status StartNative(const privsep::BuildSpec& request, Running& build);
  // Reads the build's new event lines into `update`: at most `max_read` bytes of the file
  // (0: to its end), keeping the newest kMaxHeldProgressBytes.
  void Collect(Running& build, BuildUpdate& update, size_t max_read);
  void Finish(const std::string& id, Running& build, BuildUpdate& update);
  // The lowest slot no build holds, or -1.
  int FreeSlot() const;
  // What the slot's base image store must have been loaded from to be used: the image
  // archives offered (names, sizes, modification times) and the storage driver. With
  // `archives`, their paths.
  std::string BaseStoreKey(std::vector<std::string>* archives = nullptr) const;
  // The slot's base image store holds the images offered now.
  bool BaseStoreReady(int slot) const;
  // After a build in `build.slot`: loads the slot's store if it is not ready. True once
  // nothing (more) is to be done.
  bool LoadBaseStore(const std::string& id, Running& build);

  LauncherConfig config_;
  privsep::UniqueFd builds_dir_;
  privsep::UniqueFd builder_;
  privsep::UniqueFd base_store_;  // config_.base_store_dir, or none
  std::map<std::string, std::unique_ptr<Running>> builds_;
  std::vector<BuildUpdate> adopted_done_;  // finished before the restart; reported next Poll
};

}  // namespace coolify::build

#endif  // COOLD_SERVICES_BUILD_LAUNCHER_H_
