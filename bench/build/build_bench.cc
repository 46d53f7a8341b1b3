// Build benchmarks on this machine's real git, buildah and an isolated Podman
// (tests/podman_harness), native backend:
//
//   launch: from a BuildRequest handed to the launcher (Launcher::Start) to the builder
//           running (its events.ndjson created by its main), p50 and p99. The builds fail
//           fast at the clone (a closed port) so only the launch is measured.
//   static: the full STATIC build of a small site end to end through the launcher, against
//           the same `git clone` + `buildah bud` run by hand, alternating, medians and ratio.
//
// Runs as root:
//   bazel build //bench/build:build_bench && bazel-bin/bench/build/build_bench [--launches=N] [--builds=K]
//       [--network=none] [--storage-driver=overlay|vfs]
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/build/launcher.h"
#include "services/builder/build_files.h"
#include "tests/build/build_testing.h"
#include "tests/coold_testing.h"
#include "tests/podman_harness/podman_harness.h"

namespace {

using Clock = std::chrono::steady_clock;
using coolify::testing::Shell;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void SetRunfiles(const char* argv0) {
  if (const char* srcdir = getenv("TEST_SRCDIR"); srcdir != nullptr && *srcdir != '\0') return;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string exe = n > 0 ? std::string(self, static_cast<size_t>(n)) : argv0;
  setenv("TEST_SRCDIR", (exe + ".runfiles").c_str(), 1);
  setenv("TEST_WORKSPACE", "coold", 1);
}

coolify::privsep::BuildSpec Spec(const std::string& id, const std::string& repo, const std::string& image) {
  coolify::privsep::BuildSpec spec;
  spec.set_request_id(id);
  spec.set_kind(coolify::privsep::BUILD_KIND_STATIC);
  spec.set_repo_url(repo);
  spec.set_git_ref("main");
  spec.set_target_image(image);
  spec.set_base_image("localhost/busybox:latest");
  return spec;
}

std::string ReadLoad() {
  coolify::testing::CommandRun run = Shell("cat /proc/loadavg");
  return run.out;
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// With `first_event_ms` and `done_ms`: when the build wrote its first event line and its
// last ("done"), as its events say.
bool WaitDone(coolify::build::Launcher& launcher, const std::string& id, std::string* outcome,
              std::string* outcome_text = nullptr, int64_t* first_event_ms = nullptr, int64_t* done_ms = nullptr) {
  auto deadline = Clock::now() + std::chrono::minutes(3);
  while (Clock::now() < deadline) {
    for (auto& update : launcher.Poll(absl::Milliseconds(20))) {
      for (const std::string& line : update.event_lines) {
        absl::StatusOr<coolify::build::BuildEventRecord> event = coolify::build::ParseEventLine(line);
        if (!event.ok() || update.request_id != id) continue;
        if (first_event_ms != nullptr && *first_event_ms == 0) *first_event_ms = event->unix_ms();
        if (done_ms != nullptr && event->phase() == "done") *done_ms = event->unix_ms();
      }
      if (update.request_id == id && update.finished) {
        *outcome = update.outcome_file;
        if (outcome_text != nullptr) *outcome_text = update.outcome_text;
        return true;
      }
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  int launches = 40, builds = 5;
  bool no_network = false;
  std::string driver = "overlay";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--network=none") no_network = true;
    if (absl::StartsWith(a, "--storage-driver=")) driver = a.substr(17);
    if (absl::StartsWith(a, "--launches=")) (void)absl::SimpleAtoi(a.substr(11), &launches);
    if (absl::StartsWith(a, "--builds=")) (void)absl::SimpleAtoi(a.substr(9), &builds);
  }
  SetRunfiles(argv[0]);
  // Not under /tmp: each build has a /tmp of its own.
  const std::string dir = "/var/tmp/coold-build-bench";
  (void)Shell("rm -rf " + dir + " && mkdir -p " + dir);
  setenv("TEST_TMPDIR", dir.c_str(), 1);
  auto podman = coolify::testing::PodmanHarness::Start();
  if (!podman.ok()) {
    std::fprintf(stderr, "podman: %s\n", std::string(podman.status().message()).c_str());
    return 1;
  }
  coolify::build::LauncherConfig config = coolify::testing::TestLauncherConfig(**podman, dir + "/builds");
  config.capacity = 1;
  if (no_network) config.jail.network = coolify::build::JailNetwork::kNone;
  config.storage_driver = driver;
  auto launcher = coolify::build::Launcher::Create(config);
  if (!launcher.ok()) {
    std::fprintf(stderr, "launcher: %s\n", std::string(launcher.status().message()).c_str());
    return 1;
  }

  std::printf("load average at the start: %s", ReadLoad().c_str());
  // Launch overhead: to the builder running inside its jail (user, mount, network, PID,
  // IPC and UTS namespaces, pivot_root, the network helper up and the routes set).
  std::vector<double> launch_ms;
  for (int i = 0; i < launches; ++i) {
    const std::string id = absl::StrCat("launch-", i);
    const std::string events = absl::StrCat(dir, "/builds/", id, "/events.ndjson");
    auto t0 = Clock::now();
    if (absl::Status s = (*launcher)->Start(Spec(id, "http://127.0.0.1:9/closed.git", "localhost/test/x:v1"));
        !s.ok()) {
      std::fprintf(stderr, "start: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    struct stat st;
    while (stat(events.c_str(), &st) != 0) {
      if (Clock::now() - t0 > std::chrono::seconds(10)) {
        std::fprintf(stderr, "builder %s never ran\n", id.c_str());
        return 1;
      }
    }
    launch_ms.push_back(Ms(Clock::now() - t0));
    std::string outcome;
    if (!WaitDone(**launcher, id, &outcome)) return 1;
  }
  std::printf("launch (BuildRequest -> builder running in its jail), native backend, %d launches: p50 %.2f ms, p99 %.2f ms\n",
              launches, Percentile(launch_ms, 0.5), Percentile(launch_ms, 0.99));

  // A small site (STATIC) and a Dockerfile with a RUN step (DOCKERFILE), each built end
  // to end through the launcher (jail, own storage, the base image from the slot's store
  // of COOLD_BUILD_IMAGES_DIR, or loaded from it on the slot's first build, the image
  // committed into its archive, the storage removed after the report) and by hand (git clone +
  // buildah bud into the harness's warm storage, where the base image already is).
  std::string site = coolify::testing::MakeRepo(dir + "/site", {{"dist/index.html", "<h1>bench</h1>\n"},
                                                                {"dist/style.css", "body{margin:0}\n"}});
  std::string app = coolify::testing::MakeRepo(
      dir + "/app", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN echo built > /built && ls / > /listing\n"
                                    "COPY greeting /greeting\n"},
                     {"greeting", "hello\n"}});
  // The builder's storage flags, spelled as buildah's own.
  std::vector<std::string> storage;
  for (std::string arg : coolify::testing::StorageArgs(**podman)) {
    if (absl::StartsWith(arg, "--storage-root=")) arg = "--root=" + arg.substr(15);
    if (absl::StartsWith(arg, "--storage-runroot=")) arg = "--runroot=" + arg.substr(18);
    storage.push_back(arg);
  }
  const std::string conf = coolify::testing::ContainersConf(**podman);
  for (bool dockerfile : {false, true}) {
    if (builds <= 0) break;
    const char* kind = dockerfile ? "dockerfile" : "static";
    std::vector<double> via_launcher, by_hand;
    // Where a build through the launcher spends its time: the builder's own phases (its
    // result.json) and the rest (the launch, the teardown, the launcher's polling).
    std::vector<double> clone_ms, base_ms, build_ms, export_ms, builder_ms, outside_ms;
    std::vector<double> to_first_event_ms, after_done_ms;
    for (int i = 0; i < builds; ++i) {
      const std::string id = absl::StrCat(kind, "-", i);
      coolify::privsep::BuildSpec spec = Spec(id, dockerfile ? app : site, absl::StrCat("localhost/test/", kind, ":", i));
      if (dockerfile) {
        spec.set_kind(coolify::privsep::BUILD_KIND_DOCKERFILE);
        spec.clear_base_image();
      }
      auto t0 = Clock::now();
      const int64_t started_ms = UnixMs();
      if (!(*launcher)->Start(spec).ok()) return 1;
      std::string outcome, outcome_text;
      int64_t first_event_ms = 0, done_ms = 0;
      if (!WaitDone(**launcher, id, &outcome, &outcome_text, &first_event_ms, &done_ms) || outcome != "result.json") {
        std::fprintf(stderr, "build %s: %s\n", id.c_str(), outcome.c_str());
        return 1;
      }
      via_launcher.push_back(Ms(Clock::now() - t0));
      absl::StatusOr<coolify::build::BuildResultFile> result = coolify::build::ParseResultFile(outcome_text);
      if (!result.ok()) {
        std::fprintf(stderr, "build %s: %s\n", id.c_str(), std::string(result.status().message()).c_str());
        return 1;
      }
      const coolify::build::BuildDurations& d = result->durations();
      clone_ms.push_back(static_cast<double>(d.clone_ms()));
      base_ms.push_back(static_cast<double>(d.base_ms()));
      build_ms.push_back(static_cast<double>(d.build_ms()));
      export_ms.push_back(static_cast<double>(d.export_ms()));
      builder_ms.push_back(static_cast<double>(d.total_ms()));
      outside_ms.push_back(via_launcher.back() - static_cast<double>(d.total_ms()));
      to_first_event_ms.push_back(static_cast<double>(first_event_ms - started_ms));
      after_done_ms.push_back(static_cast<double>(UnixMs() - done_ms));

      const std::string work = absl::StrCat(dir, "/hand-", kind, "-", i);
      const std::string containerfile =
          dockerfile ? work + "/src/Dockerfile" : work + "/Containerfile";
      const std::string script = absl::StrCat(
          "set -e; mkdir -p ", work, "; git clone -q --depth=1 --single-branch --no-tags --branch main ",
          dockerfile ? app : site, " ", work, "/src; ",
          dockerfile ? "" : absl::StrCat("printf 'FROM localhost/busybox:latest\\nCOPY dist/ /usr/share/nginx/html/\\n' > ",
                                         containerfile, "; "),
          "CONTAINERS_CONF=", conf, " buildah ", absl::StrJoin(storage, " "),
          " bud -q --isolation=oci --layers=false --file=", containerfile, " --tag=localhost/bench/hand-", kind, ":", i,
          " ", work, "/src >/dev/null");
      auto t1 = Clock::now();
      coolify::testing::CommandRun run = Shell(script);
      by_hand.push_back(Ms(Clock::now() - t1));
      if (run.status != 0) {
        std::fprintf(stderr, "by hand (status %d): %s\n%s\n", run.status, script.c_str(), run.out.c_str());
        return 1;
      }
    }
    double launcher_p50 = Percentile(via_launcher, 0.5), hand_p50 = Percentile(by_hand, 0.5);
    std::printf("%s build, %d each: via launcher p50 %.0f ms, git clone + buildah bud by hand p50 %.0f ms, ratio %.2f\n",
                kind, builds, launcher_p50, hand_p50, launcher_p50 / hand_p50);
    std::printf("  via launcher, p50 of each part: clone %.0f, base images %.0f, bud %.0f, export %.0f (builder %.0f); "
                "outside the builder %.0f ms (to its first event %.0f, from its last to the outcome reported %.0f)\n",
                Percentile(clone_ms, 0.5), Percentile(base_ms, 0.5), Percentile(build_ms, 0.5),
                Percentile(export_ms, 0.5), Percentile(builder_ms, 0.5), Percentile(outside_ms, 0.5),
                Percentile(to_first_event_ms, 0.5), Percentile(after_done_ms, 0.5));
  }
  std::printf("load average at the end: %s", ReadLoad().c_str());
  podman->reset();
  (void)Shell("rm -rf " + dir);
  return 0;
}
