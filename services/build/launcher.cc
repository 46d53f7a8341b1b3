#include "services/build/launcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <deque>
#include <iterator>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_join.h"
#include "privsep/log.h"
#include "privsep/sandbox.h"
#include "privsep/spawn.h"
#include "services/builder/build_files.h"
#include "services/builder/options.h"

namespace coolify::build {

using privsep::UniqueFd;

// A build of this launcher, started here or adopted after a restart.
struct Launcher::Running {
  pid_t pid = 0;  // the builder (native) or systemd-run (systemd); 0 when adopted
  UniqueFd pidfd;
  std::optional<BuildCgroup> cgroup;
  // False for a systemd unit's cgroup: systemd removes it, and the launcher only watches
  // and signals it.
  bool owns_cgroup = true;
  UniqueFd dir;
  UniqueFd events;
  off_t events_offset = 0;
  std::string partial;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Time kill_at = absl::InfiniteFuture();
  bool exited = false;
  // How our child the builder ended (waitpid's status), -1 when unknown (adopted).
  int exit_status = -1;
  std::string note;
  // Native backend: the build's uid slot (build_jail.h), its network helper (our child
  // unless adopted), and the remover of its storage once it is over.
  int slot = -1;
  pid_t helper = 0;
  pid_t cleaner = 0;
  bool cleaned = false;
  // Its outcome went out; only its storage may still be being removed.
  bool reported = false;
  // Loading the slot's base image store after the build, when it is not ready.
  pid_t loader = 0;
  std::string base_store_key;  // what it loads (Launcher::BaseStoreKey)
  bool base_store_done = false;
  // Their pidfds: Poll() wakes when one ends, so a finished build is reported without
  // waiting out a tick per step of its teardown.
  UniqueFd helper_pidfd, cleaner_pidfd, loader_pidfd;
};

namespace {

// Marks a work directory whose outcome has been reported, so no restart reports it again.
constexpr char kReportedFile[] = "reported";
constexpr char kCgroupPrefix[] = "coolify-build-";
// At most this much of a running build's events file is read per Poll(): a chatty build
// cannot hold up the others; the rest comes with the next. A finished build's is read to
// its end.
constexpr size_t kMaxReadPerPoll = 1 << 20;

// What the jail leaves in a work directory that is removed once the build is over: its
// containers-storage, the clone, HOME and TMPDIR. The outcome, events, log and the
// exported image stay.
const std::vector<std::string>& Scratch() {
  static const std::vector<std::string> names = {"storage", "src", "home", "tmp"};
  return names;
}

// `<builds>/<id>.slot`: the build's uid slot, written by the launcher in its own
// directory (root's; the build cannot reach it), so a restarted launcher knows which
// ids a build it adopts runs as.
std::string SlotFile(const std::string& id) { return id + ".slot"; }

int ReadSlot(int builds_dir, const std::string& id) {
  UniqueFd fd(openat(builds_dir, SlotFile(id).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  char text[16] = {};
  if (!fd || read(fd.get(), text, sizeof(text) - 1) <= 0) return -1;
  int slot = -1;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &slot) && slot >= 0 && slot < static_cast<int>(kJailSlots) ? slot
                                                                                                                : -1;
}

// Files of a jailed build are opened with its ids as file-system ids: the launcher holds
// no CAP_DAC_OVERRIDE, and so cannot be led by a planted name to anything the build's
// own uid may not read.
class AsBuild {
 public:
  AsBuild(const LauncherConfig& config, int slot) : active_(slot >= 0) {
    if (!active_) return;
    const uid_t id = SlotHostId(config.jail, static_cast<uint32_t>(slot));
    setfsgid(id);
    setfsuid(id);
  }
  ~AsBuild() {
    if (!active_) return;
    setfsuid(0);
    setfsgid(0);
  }
  AsBuild(const AsBuild&) = delete;
  AsBuild& operator=(const AsBuild&) = delete;

 private:
  bool active_;
};

bool FileExists(int dir, const char* name) {
  struct stat st;
  return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

// A file the build wrote, read without following a link it may have planted, capped.
std::optional<std::string> ReadBuildFile(int dir, const char* name, size_t limit) {
  UniqueFd fd(openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return std::nullopt;
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::string text(limit + 1, '\0');
  ssize_t n = pread(fd.get(), text.data(), text.size(), 0);
  if (n < 0) return std::nullopt;
  text.resize(static_cast<size_t>(n));
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Launcher>> Launcher::Create(LauncherConfig config) {
  std::unique_ptr<Launcher> launcher(new Launcher(std::move(config)));
  const LauncherConfig& c = launcher->config_;
  if (c.capacity < 1) return absl::InvalidArgumentError("build capacity must be at least 1");
  // Its parents as `mkdir -p` makes them (0755: /var/lib/coolify on a fresh host); the
  // directory itself private.
  for (size_t slash = c.builds_dir.find('/', 1); slash != std::string::npos; slash = c.builds_dir.find('/', slash + 1)) {
    const std::string parent = c.builds_dir.substr(0, slash);
    if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", parent));
    }
  }
  if (mkdir(c.builds_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", c.builds_dir));
  }
  launcher->builds_dir_.reset(open(c.builds_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!launcher->builds_dir_) return absl::ErrnoToStatus(errno, absl::StrCat("open ", c.builds_dir));
  // Opened once: the binary every build runs is the one checked now.
  if (c.builder_fd >= 0) {
    launcher->builder_.reset(fcntl(c.builder_fd, F_DUPFD_CLOEXEC, 0));
    if (!launcher->builder_) return absl::ErrnoToStatus(errno, "dup of the builder descriptor");
  } else {
    absl::StatusOr<UniqueFd> builder = privsep::OpenExecutable(c.builder_path);
    if (!builder.ok()) return builder.status();
    launcher->builder_ = std::move(*builder);
  }
  if (c.backend == Backend::kNative && !c.jail.images_dir.empty() && !c.base_store_dir.empty()) {
    // Searchable by every slot's uid (a build binds its own slot's store by path), listed
    // and written by root only.
    for (size_t slash = c.base_store_dir.find('/', 1); slash != std::string::npos;
         slash = c.base_store_dir.find('/', slash + 1)) {
      const std::string parent = c.base_store_dir.substr(0, slash);
      if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", parent));
    }
    if (mkdir(c.base_store_dir.c_str(), 0711) != 0 && errno != EEXIST) {
      return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", c.base_store_dir));
    }
    launcher->base_store_.reset(open(c.base_store_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (!launcher->base_store_ || fstat(launcher->base_store_.get(), &st) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("open ", c.base_store_dir));
    }
    if (st.st_uid != 0 || (st.st_mode & 0022) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(c.base_store_dir, ": must be root's and writable by root only (its records say which store is ready)"));
    }
    // A build binds its slot's store by path, as its slot's uid: every directory on the
    // way must be searchable by others, else a build with a store could not start.
    std::string unsearchable;
    for (size_t slash = c.base_store_dir.find('/', 1); unsearchable.empty(); slash = c.base_store_dir.find('/', slash + 1)) {
      const std::string path = c.base_store_dir.substr(0, slash);
      struct stat dir;
      if (stat(path.c_str(), &dir) != 0 || (dir.st_mode & S_IXOTH) == 0) unsearchable = path;
      if (slash == std::string::npos) break;
    }
    if (!unsearchable.empty()) {
      LogWarn("no base image store: %s is not searchable by every user; each build loads the base images itself",
              unsearchable);
      launcher->base_store_.reset();
    } else {
      (void)fchmod(launcher->base_store_.get(), 0711);
    }
  }
  JailConfig& jail = launcher->config_.jail;
  if (jail.capabilities == 0) {
    absl::StatusOr<privsep::RolePolicy> policy = privsep::LoadRolePolicy(privsep::ROLE_BUILD);
    if (!policy.ok()) return policy.status();
    jail.capabilities = privsep::CapabilityBits(policy->identity.namespace_capabilities);
  }
  // Every address this host holds is out of a build's reach unless an allowed range
  // names it: through the network helper they would be the host's own services.
  ifaddrs* addresses = nullptr;
  if (getifaddrs(&addresses) == 0) {
    for (ifaddrs* a = addresses; a != nullptr; a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
      Cidr own{ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr), 32};
      bool allowed = false;
      for (const Cidr& range : jail.allow) allowed = allowed || range.Contains(own);
      if (!allowed) jail.deny.push_back(own);
    }
    freeifaddrs(addresses);
  }
  return launcher;
}

Launcher::Launcher(LauncherConfig config) : config_(std::move(config)) {}
Launcher::~Launcher() = default;

absl::Status Launcher::ValidateRequest(const LauncherConfig& config, const privsep::BuildSpec& request) {
  // The request id first: it becomes a path in the argv checked below.
  if (!IsRequestId(request.request_id())) return absl::InvalidArgumentError("request_id: must be 1..64 of [A-Za-z0-9_-]");
  if (request.kind() != privsep::BUILD_KIND_STATIC && request.kind() != privsep::BUILD_KIND_DOCKERFILE) {
    return absl::InvalidArgumentError("kind: must be STATIC or DOCKERFILE");
  }
  // The builder's own parser and grammar on the argv it would get: one grammar, and a
  // request the builder would refuse is refused here, before any sandbox is made for it.
  return CheckBuilderArgs(BuilderArgs(config, request));
}

std::vector<std::string> Launcher::BuilderArgs(const LauncherConfig& config, const privsep::BuildSpec& r) {
  const bool jailed = config.backend == Backend::kNative;
  std::vector<std::string> args = {
      jailed ? absl::StrCat("--work-dir=", kJailWorkDir)
             : absl::StrCat("--work-dir=", config.builds_dir, "/", r.request_id()),
      absl::StrCat("--request-id=", r.request_id()),
      r.kind() == privsep::BUILD_KIND_DOCKERFILE ? "--stack=dockerfile" : "--stack=static",
      absl::StrCat("--repo=", r.repo_url()),
      absl::StrCat("--ref=", r.git_ref()),
      absl::StrCat("--image=", r.target_image()),
  };
  if (!r.subdirectory().empty()) args.push_back(absl::StrCat("--subdirectory=", r.subdirectory()));
  if (r.kind() == privsep::BUILD_KIND_STATIC) {
    if (!r.base_image().empty()) args.push_back(absl::StrCat("--base-image=", r.base_image()));
    if (!r.output_dir().empty()) args.push_back(absl::StrCat("--output-dir=", r.output_dir()));
  } else if (!r.dockerfile_path().empty()) {
    args.push_back(absl::StrCat("--dockerfile=", r.dockerfile_path()));
  }
  for (const std::string& a : config.builder_args) {
    // A jailed build has storage of its own, inside its work directory.
    if (jailed && absl::StartsWith(a, "--storage-")) continue;
    args.push_back(a);
  }
  if (jailed) {
    args.push_back(absl::StrCat("--storage-root=", kJailWorkDir, "/storage"));
    args.push_back("--storage-runroot=/run/storage");
    args.push_back("--storage-driver=" + config.storage_driver);
  }
  return args;
}

std::vector<std::string> Launcher::SystemdRunArgv(const LauncherConfig& c, const privsep::BuildSpec& r) {
  const std::string work = absl::StrCat(c.builds_dir, "/", r.request_id());
  // A transient service, not a scope: PrivateTmp, ProtectSystem and ReadWritePaths are
  // execution settings that systemd accepts for services only. --pipe --wait keeps the
  // build's output and exit status with systemd-run; the unit outlives a coold restart
  // and --collect removes it once it is over, whatever its result.
  std::vector<std::string> argv = {
      "systemd-run",
      absl::StrCat("--unit=", kCgroupPrefix, r.request_id()),
      "--description=coolify build",
      "--pipe",
      "--wait",
      "--collect",
      "--quiet",
      "--property=Type=exec",
      "--property=PrivateTmp=yes",
      "--property=ProtectSystem=strict",
      "--property=ProtectHome=yes",
      "--property=ProtectKernelModules=yes",
      "--property=ProtectKernelLogs=yes",
      "--property=ProtectClock=yes",
      "--property=LimitCORE=0",
      absl::StrCat("--property=ReadWritePaths=", absl::StrJoin(
          [&] {
            std::vector<std::string> paths = {work};
            for (const std::string& p : c.read_write_paths) paths.push_back(p);
            return paths;
          }(), " ")),
      absl::StrCat("--property=RuntimeMaxSec=", absl::ToInt64Seconds(c.timeout)),
      absl::StrCat("--property=TimeoutStopSec=", absl::ToInt64Seconds(c.kill_grace)),
      "--property=KillMode=control-group",
      "--property=KillSignal=SIGTERM",
  };
  if (c.limits.memory_bytes > 0) {
    argv.push_back(absl::StrCat("--property=MemoryMax=", c.limits.memory_bytes));
    argv.push_back("--property=MemorySwapMax=0");
  }
  if (c.limits.cpu_millis > 0) argv.push_back(absl::StrCat("--property=CPUQuota=", c.limits.cpu_millis / 10, "%"));
  if (c.limits.pids > 0) argv.push_back(absl::StrCat("--property=TasksMax=", c.limits.pids));
  if (!c.deny_cidrs.empty()) {
    argv.push_back(absl::StrCat("--property=IPAddressDeny=", absl::StrJoin(c.deny_cidrs, " ")));
  }
  if (!c.allow_cidrs.empty()) {
    // systemd lets an allowed address through whatever the deny list says; an allowed
    // range never overlaps one that must stay denied (launcher_config.cc).
    argv.push_back(absl::StrCat("--property=IPAddressAllow=", absl::StrJoin(c.allow_cidrs, " ")));
  }
  for (const std::string& e : c.builder_env) argv.push_back(absl::StrCat("--setenv=", e));
  argv.push_back("--");
  argv.push_back(c.builder_path);
  for (const std::string& a : BuilderArgs(c, r)) argv.push_back(a);
  return argv;
}

pid_t Launcher::builder_pid(const std::string& request_id) const {
  auto it = builds_.find(request_id);
  return it == builds_.end() ? 0 : it->second->pid;
}

absl::Status Launcher::Start(const privsep::BuildSpec& request) {
  if (absl::Status s = ValidateRequest(config_, request); !s.ok()) return s;
  const std::string& id = request.request_id();
  if (builds_.count(id) != 0 || FileExists(builds_dir_.get(), id.c_str())) {
    return absl::AlreadyExistsError(absl::StrCat("build ", id, " exists already"));
  }
  if (running() >= config_.capacity) {
    return absl::ResourceExhaustedError(
        absl::StrCat("builder at capacity: ", running(), " of ", config_.capacity, " builds running"));
  }
  auto build = std::make_unique<Running>();
  if (config_.backend == Backend::kNative) {
    // Its uid slot, recorded before anything of the build exists.
    build->slot = FreeSlot();
    if (build->slot < 0) return absl::ResourceExhaustedError("no free uid slot");
    UniqueFd slot(openat(builds_dir_.get(), SlotFile(id).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    const std::string text = absl::StrCat(build->slot, "\n");
    if (!slot || write(slot.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      return absl::ErrnoToStatus(errno, "write the build's slot file");
    }
  }
  if (mkdirat(builds_dir_.get(), id.c_str(), 0700) != 0) return absl::ErrnoToStatus(errno, "mkdir work directory");
  build->dir.reset(openat(builds_dir_.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!build->dir) return absl::ErrnoToStatus(errno, "open work directory");
  if (build->slot >= 0) {
    // The build's own: root of its user namespace writes it (and only it) on the host.
    const uid_t owner = SlotHostId(config_.jail, static_cast<uint32_t>(build->slot));
    if (fchown(build->dir.get(), owner, owner) != 0) return absl::ErrnoToStatus(errno, "chown work directory");
  }
  build->deadline = absl::Now() + config_.timeout;
  if (config_.backend == Backend::kNative) {
    if (absl::Status s = StartNative(request, *build); !s.ok()) {
      unlinkat(builds_dir_.get(), SlotFile(id).c_str(), 0);
      return s;
    }
  } else {
    std::vector<std::string> argv = SystemdRunArgv(config_, request);
    UniqueFd exe(open("/usr/bin/systemd-run", O_PATH | O_CLOEXEC));
    if (!exe) return absl::ErrnoToStatus(errno, "open systemd-run");
    auto child = privsep::Spawn(exe.get(), argv[0], std::vector<std::string>(argv.begin() + 1, argv.end()), {});
    if (!child.ok()) return child.status();
    build->pid = child->pid;
    build->pidfd = std::move(child->pidfd);
  }
  LogInfo("build %s started (pid %d)", id, build->pid);
  builds_[id] = std::move(build);
  return absl::OkStatus();
}

size_t Launcher::running() const {
  return static_cast<size_t>(
      std::count_if(builds_.begin(), builds_.end(), [](const auto& entry) { return !entry.second->reported; }));
}

std::string Launcher::BaseStoreKey(std::vector<std::string>* archives) const {
  std::vector<std::pair<std::string, std::string>> found;  // name, what identifies its contents
  if (DIR* d = opendir(config_.jail.images_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      struct stat st;
      // The archives the builder would load (services/builder/builder.cc).
      if (!absl::EndsWith(name, ".tar") || name[0] == '.' ||
          stat(absl::StrCat(config_.jail.images_dir, "/", name).c_str(), &st) != 0) {
        continue;
      }
      found.emplace_back(name, absl::StrCat(st.st_size, " ", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec));
    }
    closedir(d);
  }
  std::sort(found.begin(), found.end());
  std::string key = absl::StrCat("driver ", config_.storage_driver, "\n");
  for (const auto& [name, identity] : found) {
    absl::StrAppend(&key, absl::CEscape(name), " ", identity, "\n");
    if (archives != nullptr) archives->push_back(absl::StrCat(config_.jail.images_dir, "/", name));
  }
  return key;
}

bool Launcher::BaseStoreReady(int slot) const {
  if (!base_store_ || slot < 0) return false;
  std::optional<std::string> key = ReadBuildFile(base_store_.get(), absl::StrCat(slot, ".ready").c_str(), 1 << 20);
  return key && *key == BaseStoreKey();
}

bool Launcher::LoadBaseStore(const std::string& id, Running& build) {
  if (!base_store_ || build.base_store_done) return true;
  const std::string slot = absl::StrCat(build.slot), ready = slot + ".ready";
  if (build.loader == 0) {
    if (BaseStoreReady(build.slot)) {
      build.base_store_done = true;
      return true;
    }
    // The record goes first: a store being loaded is never taken for a ready one.
    unlinkat(base_store_.get(), ready.c_str(), 0);
    // What is loaded is what the record will say, whatever changes meanwhile.
    std::vector<std::string> archives;
    build.base_store_key = BaseStoreKey(&archives);
    const uid_t owner = SlotHostId(config_.jail, static_cast<uint32_t>(build.slot));
    if (mkdirat(base_store_.get(), slot.c_str(), 0700) != 0 && errno != EEXIST) {
      LogWarn("build %s: no base image store for slot %s: mkdir: %s", id, slot, strerror(errno));
      build.base_store_done = true;
      return true;
    }
    // O_PATH: once the slot's uid owns it (mode 0700), root without CAP_DAC_OVERRIDE may
    // not read it; the loader enters it as that uid.
    UniqueFd dir(openat(base_store_.get(), slot.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    absl::StatusOr<pid_t> loader = absl::InternalError("no directory");
    if (dir && fchownat(base_store_.get(), slot.c_str(), owner, owner, AT_SYMLINK_NOFOLLOW) == 0) {
      loader = StartBaseStoreLoader(config_.jail, static_cast<uint32_t>(build.slot), dir.get(),
                                    absl::StrCat(config_.base_store_dir, "/", slot), config_.storage_driver, archives,
                                    config_.builder_env);
    }
    if (!loader.ok()) {
      LogWarn("build %s: the base image store of slot %s is not loaded: %s", id, slot, loader.status().ToString());
      build.base_store_done = true;
      return true;
    }
    build.loader = *loader;
    build.loader_pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, build.loader, 0)));
    return false;
  }
  int status = 0;
  if (waitpid(build.loader, &status, WNOHANG) != build.loader) return false;
  build.loader_pidfd.reset();
  build.base_store_done = true;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    LogWarn("build %s: loading the base image store of slot %s failed", id, slot);
    return true;
  }
  // Root's record in root's directory: what the store was loaded from. A build never
  // writes here, and a store whose images changed since is loaded again.
  const std::string temporary = ready + ".new", key = build.base_store_key;
  UniqueFd record(openat(base_store_.get(), temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!record || write(record.get(), key.data(), key.size()) != static_cast<ssize_t>(key.size()) ||
      renameat(base_store_.get(), temporary.c_str(), base_store_.get(), ready.c_str()) != 0) {
    LogWarn("build %s: the base image store of slot %s is not recorded: %s", id, slot, strerror(errno));
  }
  return true;
}

int Launcher::FreeSlot() const {
  // Among all of them, not only `capacity`: a build whose storage is still being removed
  // holds its slot, and the next build takes another.
  for (uint32_t slot = 0; slot < kJailSlots; ++slot) {
    bool used = false;
    for (const auto& [id, build] : builds_) used = used || build->slot == static_cast<int>(slot);
    if (!used) return static_cast<int>(slot);
  }
  return -1;
}

absl::Status Launcher::StartNative(const privsep::BuildSpec& request, Running& build) {
  const std::string& id = request.request_id();
  absl::StatusOr<BuildCgroup> cgroup = BuildCgroup::Create(config_.cgroup_parent, kCgroupPrefix + id, config_.limits);
  if (!cgroup.ok()) return cgroup.status();
  build.cgroup = *cgroup;

  JailLaunch launch;
  launch.request_id = id;
  launch.slot = static_cast<uint32_t>(build.slot);
  launch.work_dir = build.dir.get();
  launch.executable = builder_.get();
  launch.argv = {"builder"};
  for (std::string& a : BuilderArgs(config_, request)) launch.argv.push_back(std::move(a));
  launch.envp = config_.builder_env;
  launch.envp.push_back("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
  // Configuration files named in the environment are bound where they are named.
  for (const std::string& e : config_.builder_env) {
    size_t eq = e.find('=');
    if (eq != std::string::npos && e.compare(eq + 1, 1, "/") == 0) launch.read_only_paths.push_back(e.substr(eq + 1));
  }
  // A local repository (hosts that allow file:// URLs): bound read-only where its URL
  // says, the one host directory a build may then read.
  const bool file_urls =
      std::find(config_.builder_args.begin(), config_.builder_args.end(), "--allow-file-urls") != config_.builder_args.end();
  if (file_urls && absl::StartsWith(request.repo_url(), "file:///") && !absl::StrContains(request.repo_url(), "/../") &&
      !absl::StrContains(request.repo_url(), "/./")) {
    launch.read_only_paths.push_back(request.repo_url().substr(7));
  }
  if (BaseStoreReady(build.slot)) launch.base_store = absl::StrCat(config_.base_store_dir, "/", build.slot, "/storage");
  if (build.cgroup->hybrid()) {
    // The builder reads its memory counters there (to tell a memory kill from a crash):
    // its own directory readable, the parent only searchable, whatever the umask made.
    const std::string& memory = build.cgroup->memory_dir();
    (void)chmod(memory.substr(0, memory.rfind('/')).c_str(), 0711);
    (void)chmod(memory.c_str(), 0755);
    launch.cgroup_dirs.push_back(memory);
  }
  UniqueFd log;
  {
    AsBuild as_build(config_, build.slot);
    log.reset(openat(build.dir.get(), "builder.log", O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  }
  if (!log) return absl::ErrnoToStatus(errno, "open builder.log");
  launch.log = log.get();
  const BuildCgroup& cg = *build.cgroup;
  launch.enter_cgroup = [&cg](pid_t pid) { return cg.Add(pid); };
  absl::StatusOr<JailedBuild> started = StartJailed(config_.jail, launch);
  if (!started.ok()) {
    cg.Signal(SIGKILL);
    (void)build.cgroup->Remove();
    return started.status();
  }
  build.pid = started->builder;
  build.pidfd = std::move(started->pidfd);
  build.helper = started->helper;
  if (build.helper > 0) build.helper_pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, build.helper, 0)));
  return absl::OkStatus();
}

absl::Status Launcher::Cancel(const std::string& request_id) {
  auto it = builds_.find(request_id);
  if (it == builds_.end() || it->second->reported) return absl::NotFoundError(absl::StrCat("no running build ", request_id));
  Running& build = *it->second;
  if (build.kill_at != absl::InfiniteFuture()) return absl::OkStatus();  // already stopping
  if (build.cgroup) {
    build.cgroup->Signal(SIGTERM);
  } else if (build.pid > 0) {
    kill(build.pid, SIGTERM);  // systemd-run passes it on to the unit
  }
  build.kill_at = absl::Now() + config_.kill_grace;
  if (build.note.empty()) build.note = "cancelled";
  LogInfo("build %s: SIGTERM sent", request_id);
  return absl::OkStatus();
}

std::vector<std::string> Launcher::Adopt() {
  // Work directories are opened O_PATH: a jailed build's belongs to its uid (mode 0700),
  // which root without CAP_DAC_OVERRIDE may not read, only look up in; what is inside
  // is opened with the build's ids (AsBuild).
  std::vector<std::string> adopted;
  for (const std::string& name : BuildCgroup::List(config_.cgroup_parent)) {
    if (!absl::StartsWith(name, kCgroupPrefix)) continue;
    std::string id = name.substr(sizeof(kCgroupPrefix) - 1);
    if (!IsRequestId(id) || builds_.count(id) != 0) continue;
    auto build = std::make_unique<Running>();
    build->dir.reset(openat(builds_dir_.get(), id.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    absl::StatusOr<BuildCgroup> cgroup = BuildCgroup::Open(config_.cgroup_parent, name);
    if (!build->dir || !cgroup.ok()) continue;
    build->cgroup = *cgroup;
    build->slot = ReadSlot(builds_dir_.get(), id);
    // Its start is not known across a restart: it gets a full timeout from now.
    build->deadline = absl::Now() + config_.timeout;
    LogInfo("build %s adopted (%s)", id, build->cgroup->Populated() ? "running" : "finished");
    adopted.push_back(id);
    builds_[id] = std::move(build);
  }
  // Work directories whose build ended while no launcher watched and whose cgroup is gone.
  if (DIR* d = fdopendir(fcntl(builds_dir_.get(), F_DUPFD_CLOEXEC, 0))) {
    while (dirent* e = readdir(d)) {
      std::string id = e->d_name;
      if (!IsRequestId(id) || builds_.count(id) != 0) continue;
      UniqueFd dir(openat(builds_dir_.get(), id.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir) continue;
      const int slot = ReadSlot(builds_dir_.get(), id);
      // A jailed build's slot record goes last, once it is reported and its storage
      // removed: without one there is nothing left to do (and its directory is its uid's,
      // which the launcher may not search without knowing it).
      if (config_.backend == Backend::kNative && slot < 0) continue;
      bool reported;
      {
        AsBuild as_build(config_, slot);
        reported = FileExists(dir.get(), kReportedFile);
      }
      // Reported, and its slot still held: the launcher stopped before its storage was
      // removed. It is removed now, and nothing is reported again.
      if (reported && slot < 0) continue;
      auto build = std::make_unique<Running>();
      build->dir = std::move(dir);
      build->exited = true;
      build->reported = reported;
      build->slot = slot;
      if (config_.backend == Backend::kSystemd) {
        // A build of the systemd backend runs in its unit's cgroup (unified hierarchy);
        // while that has processes, the build is still running.
        absl::StatusOr<BuildCgroup> unit = BuildCgroup::Open("system.slice", absl::StrCat(kCgroupPrefix, id, ".service"));
        if (unit.ok() && unit->Populated()) {
          build->cgroup = *unit;
          build->owns_cgroup = false;
          build->exited = false;
          build->deadline = absl::Now() + config_.timeout;
        }
      }
      LogInfo("build %s adopted (%s)", id,
              build->reported ? "reported, its storage to be removed" : build->exited ? "finished" : "running");
      adopted.push_back(id);
      builds_[id] = std::move(build);
    }
    closedir(d);
  }
  return adopted;
}

void Launcher::Collect(Running& build, BuildUpdate& update, size_t max_read) {
  if (!build.events) {
    AsBuild as_build(config_, build.slot);
    build.events.reset(openat(build.dir.get(), kEventsFile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    struct stat st;
    if (!build.events || fstat(build.events.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      build.events.reset();
      return;
    }
  }
  std::deque<std::string> kept(std::make_move_iterator(update.event_lines.begin()),
                               std::make_move_iterator(update.event_lines.end()));
  size_t kept_bytes = 0;
  for (const std::string& line : kept) kept_bytes += line.size();
  char buf[65536];
  size_t read_now = 0;
  // Never past what the builder writes at most (its cap and its closing lines): a file
  // grown beyond that was not written by the builder and is not read.
  const off_t end = static_cast<off_t>(kMaxEventsFileBytes + kMaxEventsClosingBytes);
  while ((max_read == 0 || read_now < max_read) && build.events_offset < end) {
    size_t want = std::min<size_t>(sizeof(buf), static_cast<size_t>(end - build.events_offset));
    ssize_t n = pread(build.events.get(), buf, want, build.events_offset);
    if (n <= 0) break;
    build.events_offset += n;
    read_now += static_cast<size_t>(n);
    build.partial.append(buf, static_cast<size_t>(n));
    size_t start = 0, newline;
    while ((newline = build.partial.find('\n', start)) != std::string::npos) {
      // A line longer than any the builder writes is dropped, not passed on.
      if (newline - start <= kMaxEventRecordBytes) {
        kept.push_back(build.partial.substr(start, newline - start));
        kept_bytes += kept.back().size();
        while (kept_bytes > kMaxHeldProgressBytes) {
          kept_bytes -= kept.front().size();
          kept.pop_front();
          ++update.dropped_lines;
        }
      }
      start = newline + 1;
    }
    build.partial.erase(0, start);
    if (build.partial.size() > kMaxEventRecordBytes) build.partial.clear();
  }
  update.event_lines.assign(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
}

void Launcher::Finish(const std::string& id, Running& build, BuildUpdate& update) {
  update.finished = true;
  AsBuild as_build(config_, build.slot);
  for (const char* name : {kResultFile, kErrorFile}) {
    if (std::optional<std::string> text = ReadBuildFile(build.dir.get(), name, kMaxOutcomeBytes)) {
      update.outcome_file = name;
      update.outcome_text = *std::move(text);
      break;
    }
  }
  update.note = build.note;
  if (update.outcome_file == kResultFile) {
    // Once the build is over (every process of it gone, so nothing can change the file
    // any more): without following a link, a regular file with no other name (a hard
    // link planted by the build could point at a host file its ids may read).
    UniqueFd archive(openat(build.dir.get(), kImageArchiveFile, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st;
    if (archive && fstat(archive.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) {
      unlinkat(build.dir.get(), kImageArchiveFile, 0);
      update.image_archive = std::move(archive);
    } else {
      LogWarn("build %s: no image archive to hand over", id);
    }
  }
  if (update.outcome_file.empty() && build.cgroup && build.cgroup->OomKills() > 0) {
    update.note = "memory limit hit";
  } else if (update.outcome_file.empty() && update.note.empty() && build.exit_status >= 0) {
    // Said to the operator: a builder that ends without an outcome has crashed or was killed.
    const int status = build.exit_status;
    update.note = WIFSIGNALED(status) ? absl::StrCat("builder killed by signal ", WTERMSIG(status))
                                      : absl::StrCat("builder exited with status ", WEXITSTATUS(status));
  }
  // Reported: a restart must not report it again.
  UniqueFd marker(openat(build.dir.get(), kReportedFile, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (marker) {
    UniqueFd dir(openat(build.dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) fsync(dir.get());
  }
  LogInfo("build %s finished: %s%s%s", id, update.outcome_file.empty() ? "no outcome file" : update.outcome_file,
          update.note.empty() ? "" : ", ", update.note);
}

std::vector<BuildUpdate> Launcher::Poll(absl::Duration timeout) {
  std::vector<pollfd> fds;
  for (auto& [id, build] : builds_) {
    for (const UniqueFd* fd : {&build->pidfd, &build->helper_pidfd, &build->cleaner_pidfd, &build->loader_pidfd}) {
      if (*fd) fds.push_back({fd->get(), POLLIN, 0});
    }
  }
  // Event files are read on a short tick: progress reaches the caller within 100 ms.
  int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(std::min(timeout, absl::Milliseconds(100))));
  if (builds_.empty()) wait_ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  if (poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) LogWarn("poll: %s", strerror(errno));

  std::vector<BuildUpdate> updates;
  absl::Time now = absl::Now();
  for (auto it = builds_.begin(); it != builds_.end();) {
    const std::string& id = it->first;
    Running& build = *it->second;
    BuildUpdate update;
    update.request_id = id;
    if (!build.reported) Collect(build, update, kMaxReadPerPoll);
    if (build.helper > 0 && waitpid(build.helper, nullptr, WNOHANG) == build.helper) {
      build.helper = 0;
      build.helper_pidfd.reset();
    }
    if (!build.exited && build.pid > 0) {
      int status = 0;
      if (waitpid(build.pid, &status, WNOHANG) == build.pid) {
        build.exited = true;
        build.exit_status = status;
        build.pidfd.reset();
      }
    } else if (!build.exited && build.cgroup) {
      build.exited = !build.cgroup->Populated();  // adopted: not our child, its cgroup tells
    }
    if (!build.exited && now >= build.deadline && build.kill_at == absl::InfiniteFuture()) {
      (void)Cancel(id);
      build.note = absl::StrCat("timed out after ", absl::FormatDuration(config_.timeout));
    }
    if (now >= build.kill_at && build.cgroup) build.cgroup->Signal(SIGKILL);
    bool over = build.exited && !build.reported;
    if (over && build.cgroup && build.owns_cgroup) {
      // The builder is gone, and with its PID namespace everything it started; the cgroup
      // empties a moment later. Only then is the build over and its cgroup removed.
      if (build.cgroup->Populated()) {
        build.cgroup->Signal(SIGKILL);
        over = false;
      } else if (!build.cgroup->Remove().ok()) {
        over = false;  // runc's leftovers: retried on the next tick
      }
    }
    if (over) {
      // Reported as soon as nothing of the build runs any more: its outcome and image
      // cannot change from here on. Its storage is removed afterwards (below).
      Collect(build, update, /*max_read=*/0);
      Finish(id, build, update);
      build.reported = true;
    }
    if (build.reported && build.slot >= 0 && !build.cleaned) {
      // Its storage goes, removed inside a user namespace with the slot's ids (the
      // launcher itself may not remove files of the build's many owners). The slot stays
      // held until then: a slot's ids are never in the hands of two builds at once.
      if (build.cleaner == 0) {
        absl::StatusOr<pid_t> cleaner = StartCleaner(config_.jail, static_cast<uint32_t>(build.slot), build.dir.get(), Scratch());
        if (cleaner.ok()) {
          build.cleaner = *cleaner;
          build.cleaner_pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, build.cleaner, 0)));
        } else {
          LogWarn("build %s: its storage is not removed: %s", id, cleaner.status().ToString());
          build.cleaned = true;
        }
      } else {
        int status = 0;
        if (waitpid(build.cleaner, &status, WNOHANG) == build.cleaner) {
          if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) LogWarn("build %s: removing its storage failed", id);
          build.cleaned = true;
          build.cleaner_pidfd.reset();
        }
      }
    }
    const bool gone = build.reported && (build.slot < 0 || (build.cleaned && LoadBaseStore(id, build)));
    // The slot is free again once the build is reported and its storage removed.
    if (gone && build.slot >= 0) unlinkat(builds_dir_.get(), SlotFile(id).c_str(), 0);
    if (!update.event_lines.empty() || update.dropped_lines > 0 || update.finished) updates.push_back(std::move(update));
    if (gone) {
      it = builds_.erase(it);
    } else {
      ++it;
    }
  }
  return updates;
}

}  // namespace coolify::build
