// What the build tests share: an isolated Podman (tests/podman_harness) whose storage
// buildah builds into, git repositories made on the spot, and a launcher configured to
// build into that storage.
#ifndef COOLD_TESTS_BUILD_BUILD_TESTING_H_
#define COOLD_TESTS_BUILD_BUILD_TESTING_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/build/launcher.h"
#include "tests/podman_harness/podman_harness.h"

namespace coolify::testing {

// A git repository with `files` (path -> contents) committed on branch "main"; its
// file:// URL.
std::string MakeRepo(const std::string& dir, const std::map<std::string, std::string>& files);

// The harness's storage, for buildah: --storage-root, --storage-runroot, and its
// containers.conf for CONTAINERS_CONF.
std::vector<std::string> StorageArgs(const PodmanHarness& podman);
std::string ContainersConf(const PodmanHarness& podman);

// A directory of base images offered to builds (COOLD_BUILD_IMAGES_DIR): the harness's
// busybox as a docker-archive, written once.
std::string BaseImagesDir(const PodmanHarness& podman);

// A launcher building from `builds_dir` with file:// allowed and the harness's busybox
// offered as a base image.
build::LauncherConfig TestLauncherConfig(const PodmanHarness& podman, const std::string& builds_dir);

struct Finished {
  std::vector<std::string> events;  // every event line, in order
  build::BuildUpdate outcome;       // the finishing update
  bool finished = false;
};

// Polls until `id` finishes (or `timeout`), collecting its events.
Finished WaitFinished(build::Launcher& launcher, const std::string& id, absl::Duration timeout = absl::Minutes(3));

// Polls until `launcher` holds no build any more: every build it reported has had its
// storage removed (Launcher::held). False at `timeout`.
bool WaitIdle(build::Launcher& launcher, absl::Duration timeout = absl::Minutes(1));

// True once `command` fails (a non-zero exit status), polled every 100 ms for at most
// `limit`: what a test sees go away (a killed process, a removed cgroup) goes in its own
// time.
bool EventuallyFails(const std::string& command, std::chrono::milliseconds limit = std::chrono::seconds(10));

// The first host uid of this test process's build slots, a range no other live test
// process holds (a lock per range): tests of this and other checkouts build at the same
// time, and a test looks for what its own builds left by uid.
uint64_t TestUidBase();

// A shell command that prints "uid stat pid args" of every live (not zombie) process whose
// host uid lies in [base, end). ps prints uids of 2^31 and above as negative numbers, which
// are folded back here.
std::string ProcessesInUidRange(uint64_t base, uint64_t end);

// A shell command that succeeds while at least `count` processes of this test's builds
// (uids of its slots) have `text` in their command line.
std::string BuildProcessRuns(const std::string& text, int count = 1);

// A fresh directory every user may search, under /tmp, removed when the test ends:
// a build's jail reaches host paths (file:// repositories, base images) only by paths
// its unprivileged uid may walk, and $TEST_TMPDIR lies under root's home.
std::string SearchableDir(const std::string& name);

// A fresh directory under $TEST_TMPDIR.
std::string TempDir(const std::string& name);

}  // namespace coolify::testing

#endif  // COOLD_TESTS_BUILD_BUILD_TESTING_H_
