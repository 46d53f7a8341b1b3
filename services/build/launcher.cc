#include "services/build/launcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
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

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "privsep/log.h"
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
  std::string note;
};

namespace {

// Marks a work directory whose outcome has been reported, so no restart reports it again.
constexpr char kReportedFile[] = "reported";
constexpr char kCgroupPrefix[] = "coolify-build-";
// At most this much of a running build's events file is read per Poll(): a chatty build
// cannot hold up the others; the rest comes with the next. A finished build's is read to
// its end.
constexpr size_t kMaxReadPerPoll = 1 << 20;

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
  std::vector<std::string> args = {
      absl::StrCat("--work-dir=", config.builds_dir, "/", r.request_id()),
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
  for (const std::string& a : config.builder_args) args.push_back(a);
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
  if (builds_.size() >= config_.capacity) {
    return absl::ResourceExhaustedError(
        absl::StrCat("builder at capacity: ", builds_.size(), " of ", config_.capacity, " builds running"));
  }
  if (mkdirat(builds_dir_.get(), id.c_str(), 0700) != 0) return absl::ErrnoToStatus(errno, "mkdir work directory");
  auto build = std::make_unique<Running>();
  build->dir.reset(openat(builds_dir_.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!build->dir) return absl::ErrnoToStatus(errno, "open work directory");
  build->deadline = absl::Now() + config_.timeout;
  if (config_.backend == Backend::kNative) {
    if (absl::Status s = StartNative(request, *build); !s.ok()) return s;
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

absl::Status Launcher::StartNative(const privsep::BuildSpec& request, Running& build) {
  const std::string& id = request.request_id();
  absl::StatusOr<BuildCgroup> cgroup = BuildCgroup::Create(config_.cgroup_parent, kCgroupPrefix + id, config_.limits);
  if (!cgroup.ok()) return cgroup.status();
  build.cgroup = *cgroup;

  // Everything the child needs, prepared before it exists: after clone only
  // async-signal-safe calls.
  std::vector<std::string> args = BuilderArgs(config_, request);
  std::vector<std::string> argv_strings = {"builder"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = config_.builder_env;
  env.push_back("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  UniqueFd log(openat(build.dir.get(), "builder.log", O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  UniqueFd null_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!log || !null_fd) return absl::ErrnoToStatus(errno, "open builder.log or /dev/null");
  int sync[2];
  if (pipe2(sync, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  UniqueFd sync_read(sync[0]), sync_write(sync[1]);
  const int builder_fd = builder_.get();

  // New mount, PID, IPC and UTS namespaces. The builder is PID 1 of its own: when it
  // exits, the kernel kills whatever of the build is left (git, buildah, runc's
  // containers), and nothing of it can see or signal the host's processes.
  long pid = syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD, nullptr, nullptr,
                     nullptr, nullptr);
  if (pid < 0) {
    (void)build.cgroup->Remove();
    return absl::ErrnoToStatus(errno, "clone");
  }
  if (pid == 0) {
    sync_write.reset();
    char go;
    // The parent says go once the child is in the build's cgroup: nothing runs outside it.
    if (read(sync_read.get(), &go, 1) != 1) _exit(127);
    // Its own session: a signal to the launcher's process group never reaches a build.
    setsid();
    // Mounts made here stay here; a fresh /proc shows the build's own processes; its own
    // /tmp (PrivateTmp).
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(127);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) _exit(127);
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=1g") != 0) _exit(127);
    static const char kHost[] = "coolify-build";
    if (sethostname(kHost, sizeof(kHost) - 1) != 0) _exit(127);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (dup2(null_fd.get(), 0) < 0 || dup2(log.get(), 1) < 0 || dup2(log.get(), 2) < 0 || dup2(builder_fd, 3) < 0) {
      _exit(127);
    }
    fcntl(3, F_SETFD, FD_CLOEXEC);
    syscall(SYS_close_range, 4, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    syscall(SYS_execveat, 3, "", argv.data(), envp.data(), AT_EMPTY_PATH);
    _exit(127);
  }
  sync_read.reset();
  build.pid = static_cast<pid_t>(pid);
  build.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, build.pid, 0)));
  if (absl::Status s = build.cgroup->Add(build.pid); !s.ok()) {
    // Never let it run outside its limits.
    kill(build.pid, SIGKILL);
    waitpid(build.pid, nullptr, 0);
    (void)build.cgroup->Remove();
    return s;
  }
  if (write(sync_write.get(), "g", 1) != 1) return absl::ErrnoToStatus(errno, "starting the builder");
  return absl::OkStatus();
}

absl::Status Launcher::Cancel(const std::string& request_id) {
  auto it = builds_.find(request_id);
  if (it == builds_.end()) return absl::NotFoundError(absl::StrCat("no running build ", request_id));
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
  std::vector<std::string> adopted;
  for (const std::string& name : BuildCgroup::List(config_.cgroup_parent)) {
    if (!absl::StartsWith(name, kCgroupPrefix)) continue;
    std::string id = name.substr(sizeof(kCgroupPrefix) - 1);
    if (!IsRequestId(id) || builds_.count(id) != 0) continue;
    auto build = std::make_unique<Running>();
    build->dir.reset(openat(builds_dir_.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    absl::StatusOr<BuildCgroup> cgroup = BuildCgroup::Open(config_.cgroup_parent, name);
    if (!build->dir || !cgroup.ok()) continue;
    build->cgroup = *cgroup;
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
      UniqueFd dir(openat(builds_dir_.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir || FileExists(dir.get(), kReportedFile)) continue;
      auto build = std::make_unique<Running>();
      build->dir = std::move(dir);
      build->exited = true;
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
      LogInfo("build %s adopted (%s)", id, build->exited ? "finished" : "running");
      adopted.push_back(id);
      builds_[id] = std::move(build);
    }
    closedir(d);
  }
  return adopted;
}

void Launcher::Collect(Running& build, BuildUpdate& update, size_t max_read) {
  if (!build.events) {
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
  for (const char* name : {kResultFile, kErrorFile}) {
    if (std::optional<std::string> text = ReadBuildFile(build.dir.get(), name, kMaxOutcomeBytes)) {
      update.outcome_file = name;
      update.outcome_text = *std::move(text);
      break;
    }
  }
  update.note = build.note;
  if (update.outcome_file.empty() && build.cgroup && build.cgroup->OomKills() > 0) {
    update.note = "memory limit hit";
  }
  // Reported: a restart must not report it again.
  UniqueFd marker(openat(build.dir.get(), kReportedFile, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (marker) fsync(build.dir.get());
  LogInfo("build %s finished: %s%s%s", id, update.outcome_file.empty() ? "no outcome file" : update.outcome_file,
          update.note.empty() ? "" : ", ", update.note);
}

std::vector<BuildUpdate> Launcher::Poll(absl::Duration timeout) {
  std::vector<pollfd> fds;
  for (auto& [id, build] : builds_) {
    if (build->pidfd) fds.push_back({build->pidfd.get(), POLLIN, 0});
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
    Collect(build, update, kMaxReadPerPoll);
    if (!build.exited && build.pid > 0) {
      int status = 0;
      if (waitpid(build.pid, &status, WNOHANG) == build.pid) {
        build.exited = true;
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
    bool done = build.exited;
    if (done && build.cgroup && build.owns_cgroup) {
      // The builder is gone, and with its PID namespace everything it started; the cgroup
      // empties a moment later. Only then is the build over and its cgroup removed.
      if (build.cgroup->Populated()) {
        build.cgroup->Signal(SIGKILL);
        done = false;
      } else if (!build.cgroup->Remove().ok()) {
        done = false;  // runc's leftovers: retried on the next tick
      }
    }
    if (done) {
      Collect(build, update, /*max_read=*/0);
      Finish(id, build, update);
    }
    if (!update.event_lines.empty() || update.dropped_lines > 0 || update.finished) updates.push_back(std::move(update));
    if (done) {
      it = builds_.erase(it);
    } else {
      ++it;
    }
  }
  return updates;
}

}  // namespace coolify::build
