#include "tests/build/build_testing.h"

#include <limits.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/coold_testing.h"

namespace coolify::testing {
namespace {

std::string Dirname(const std::string& path) { return path.substr(0, path.rfind('/')); }

// The harness's directory by its real name: builds get a /tmp of their own, so the short
// link under /tmp the harness also uses is not visible to them.
std::string HarnessDir(const PodmanHarness& podman) {
  char resolved[PATH_MAX];
  if (realpath(Dirname(podman.socket_path()).c_str(), resolved) == nullptr) return "";
  return resolved;
}

void WriteFile(const std::string& path, const std::string& contents) {
  (void)Shell("mkdir -p '" + Dirname(path) + "'");
  std::ofstream(path) << contents;
}

}  // namespace

bool EventuallyFails(const std::string& command, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (Shell(command).status != 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    usleep(100 * 1000);
  }
}

std::string TempDir(const std::string& name) {
  const char* base = getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base ? base : "/tmp", "/", name);
  (void)Shell("rm -rf '" + dir + "' && mkdir -p '" + dir + "'");
  return dir;
}

std::string MakeRepo(const std::string& dir, const std::map<std::string, std::string>& files) {
  (void)Shell("mkdir -p '" + dir + "'");
  for (const auto& [path, contents] : files) WriteFile(dir + "/" + path, contents);
  CommandRun run = Shell("cd '" + dir + "' && git init -q -b main && git add -A && git -c user.email=t@t -c user.name=t commit -qm site");
  if (run.status != 0) return "git failed: " + run.out;
  return "file://" + dir;
}

std::vector<std::string> StorageArgs(const PodmanHarness& podman) {
  const std::string dir = HarnessDir(podman);
  return {"--storage-root=" + dir + "/root", "--storage-runroot=" + dir + "/runroot", "--storage-driver=overlay"};
}

std::string ContainersConf(const PodmanHarness& podman) { return HarnessDir(podman) + "/containers.conf"; }

uint64_t TestUidBase() {
  // Test processes run side by side: each holds a lock on the index of its range for as
  // long as it lives (the kernel drops it when the process ends, however it ends), so no
  // two of them ever share build uids, and a range is free again after its holder.
  static const uint64_t base = [] {
    for (int step = 0; step < 256; ++step) {
      const int index = (getpid() + step) % 256;
      const std::string lock = absl::StrCat("/tmp/coold-build-test-uids.", index, ".lock");
      const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) continue;
      if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        return build::kDefaultUidBase + index * 64ULL * build::kJailIds;  // fd stays open
      }
      close(fd);
    }
    abort();  // 256 test processes at once: not on these machines
  }();
  return base;
}

std::string ProcessesInUidRange(uint64_t base, uint64_t end) {
  return absl::StrCat("ps -e -o uid=,stat=,pid=,args= | awk -v b=", base, " -v e=", end,
                      " '{ u = $1 < 0 ? $1 + 4294967296 : $1 } u >= b && u < e && $2 !~ /^Z/ { $1 = u; print }'");
}

std::string BuildProcessRuns(const std::string& text, int count) {
  const uint64_t base = TestUidBase(), end = base + 64ULL * build::kJailIds;
  return absl::StrCat(ProcessesInUidRange(base, end), " | awk -v t='", text, "' -v n=", count,
                      " 'index($0, t) { c++ } END { exit c < n }'");
}

std::string SearchableDir(const std::string& name) {
  static const std::string base = [] {
    std::string dir = absl::StrCat("/tmp/coold-build-test.", getpid());
    (void)Shell("rm -rf '" + dir + "' && mkdir -p -m 0755 '" + dir + "'");
    std::atexit([] { (void)Shell(absl::StrCat("rm -rf /tmp/coold-build-test.", getpid())); });
    return dir;
  }();
  const std::string dir = base + "/" + name;
  (void)Shell("rm -rf '" + dir + "' && mkdir -p -m 0755 '" + dir + "'");
  return dir;
}

std::string BaseImagesDir(const PodmanHarness& podman) {
  static const std::string dir = SearchableDir("build-images");
  struct stat st;
  if (stat((dir + "/busybox.tar").c_str(), &st) == 0) return dir;
  (void)Shell("mkdir -p '" + dir + "'");
  // docker-archive keeps the image's name, so a build's FROM finds it by that name.
  auto saved = podman.Podman(
      {"save", "--format=docker-archive", "-o", dir + "/busybox.tar", PodmanHarness::kBusyboxImage});
  if (!saved.ok()) return "";
  (void)Shell("chmod 0644 '" + dir + "/busybox.tar'");
  return dir;
}

build::LauncherConfig TestLauncherConfig(const PodmanHarness& podman, const std::string& builds_dir) {
  build::LauncherConfig config;
  config.builds_dir = builds_dir;
  config.builder_path = Runfile("services/builder/builder");
  config.builder_args = {"--allow-file-urls"};
  // Images are named localhost/test/<name>:<tag>.
  config.builder_args.push_back("--namespace=test");
  config.jail.images_dir = BaseImagesDir(podman);
  // One for the test process: every slot's store, loaded after the slot's first build.
  static const std::string base_store = SearchableDir("build-base");
  config.base_store_dir = base_store;
  config.jail.uid_base = static_cast<uid_t>(TestUidBase());
  // A name of this test process's own, so tests never meet the host's builds nor those of
  // another test running at the same time (a launcher kills what it finds in a build's
  // cgroup); the empty parents go when the test ends.
  config.cgroup_parent = absl::StrCat("coolify-builds-test-", getpid());
  static const bool cleanup_registered = [] {
    std::atexit([] {
      (void)Shell(absl::StrCat("rmdir /sys/fs/cgroup/*/coolify-builds-test-", getpid(), " 2>/dev/null"));
    });
    return true;
  }();
  (void)cleanup_registered;
  config.limits = {1ULL << 30, 2000, 4096};
  config.kill_grace = absl::Seconds(5);
  return config;
}

Finished WaitFinished(build::Launcher& launcher, const std::string& id, absl::Duration timeout) {
  Finished finished;
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline && !finished.finished) {
    for (build::BuildUpdate& update : launcher.Poll(absl::Milliseconds(200))) {
      if (update.request_id != id) continue;
      for (std::string& line : update.event_lines) finished.events.push_back(line);
      if (update.finished) {
        finished.finished = true;
        finished.outcome = std::move(update);
      }
    }
  }
  return finished;
}

bool WaitIdle(build::Launcher& launcher, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (launcher.held() > 0 && absl::Now() < deadline) (void)launcher.Poll(absl::Milliseconds(100));
  return launcher.held() == 0;
}

}  // namespace coolify::testing
