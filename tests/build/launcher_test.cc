// The build launcher's native backend against real git, buildah and Podman: builds run in
// their own namespaces and cgroup, are cancelled and stopped whole, are adopted after a
// restart, and every failure ends in an outcome that says why.
#include "services/build/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "services/builder/build_files.h"
#include "services/podman/image_load.h"
#include "services/podman/libpod_client.h"
#include "tests/build/build_testing.h"
#include "tests/coold_testing.h"
#include "tests/podman_harness/podman_harness.h"

namespace coolify::build {
namespace {

using coolify::testing::CommandRun;
using coolify::testing::PodmanHarness;
using coolify::testing::Shell;

class LauncherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = PodmanHarness::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    podman_ = started->release();
  }
  static void TearDownTestSuite() {
    delete podman_;
    podman_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(podman_, nullptr);
    dir_name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = coolify::testing::TempDir(dir_name_);
    config_ = coolify::testing::TestLauncherConfig(*podman_, dir_ + "/builds");
  }

  std::unique_ptr<Launcher> NewLauncher() {
    auto launcher = Launcher::Create(config_);
    EXPECT_TRUE(launcher.ok()) << launcher.status();
    return launcher.ok() ? std::move(*launcher) : nullptr;
  }

  privsep::BuildSpec Request(const std::string& id, privsep::BuildKind stack, const std::string& repo) {
    privsep::BuildSpec request;
    request.set_request_id(id);
    request.set_kind(stack);
    request.set_repo_url(repo);
    request.set_git_ref("main");
    request.set_target_image("localhost/test/" + id + ":v1");
    if (stack == privsep::BUILD_KIND_STATIC) request.set_base_image(PodmanHarness::kBusyboxImage);
    return request;
  }

  std::string Repo(const std::string& name, const std::map<std::string, std::string>& files) {
    return coolify::testing::MakeRepo(coolify::testing::SearchableDir(dir_name_ + "-" + name), files);
  }

  // What coold does with a finished build's image (services/podman/image_load.h): its
  // unnamed archive, handed over by the launcher, loaded into Podman and named there,
  // under the test's namespace.
  absl::Status HandOver(const coolify::testing::Finished& f, const std::string& name) {
    const privsep::UniqueFd& fd = f.outcome.image_archive;
    if (!fd) return absl::NotFoundError("no image archive with " + f.outcome.request_id);
    podman::ClientOptions options;
    options.socket_path = podman_->socket_path();
    absl::StatusOr<privsep::PodmanImageLoaded> loaded =
        podman::LoadImage(podman::LibpodClient(options), {"test"}, name, fd.get());
    return loaded.status();
  }

  static BuildErrorFile ErrorOf(const coolify::testing::Finished& f) {
    EXPECT_EQ(f.outcome.outcome_file, "error.json") << f.outcome.outcome_text << " " << absl::StrJoin(f.events, "\n");
    absl::StatusOr<BuildErrorFile> error = ParseErrorFile(f.outcome.outcome_text);
    EXPECT_TRUE(error.ok()) << error.status() << ": " << f.outcome.outcome_text;
    return error.ok() ? *error : BuildErrorFile();
  }

  // No process of the build and no cgroup of it are left, once `launcher` has removed
  // the storage of every build it reported (it holds none any more).
  void ExpectGone(Launcher& launcher, const std::string& id) {
    EXPECT_TRUE(coolify::testing::WaitIdle(launcher)) << "a build's storage is still being removed";
    std::string cgroup = config_.cgroup_parent + "/coolify-build-" + id;
    for (const char* hierarchy : {"unified", "memory", "cpu", "pids", ""}) {
      std::string path = absl::StrCat("/sys/fs/cgroup/", hierarchy, hierarchy[0] ? "/" : "", cgroup);
      struct stat st;
      EXPECT_NE(stat(path.c_str(), &st), 0) << path << " is still there";
    }
    // No process runs as one of the builds' host uids (the builder, buildah, RUN steps
    // and the network helper all do), and the build's storage is gone. (A launcher this
    // test dropped to play a restart leaves its children unreaped: zombies hold nothing.)
    const uint64_t base = config_.jail.uid_base, end = base + 64ULL * kJailIds;
    CommandRun left = Shell(coolify::testing::ProcessesInUidRange(base, end));
    EXPECT_EQ(left.out, "") << "processes left behind";
    for (const char* scratch : {"storage", "src", "tmp", "home"}) {
      const std::string path = absl::StrCat(dir_, "/builds/", id, "/", scratch);
      EXPECT_TRUE(coolify::testing::EventuallyFails("test -e '" + path + "'")) << path << " is still there";
    }
  }

  static PodmanHarness* podman_;
  std::string dir_name_;
  std::string dir_;
  LauncherConfig config_;
};

PodmanHarness* LauncherTest::podman_ = nullptr;

TEST_F(LauncherTest, StaticSiteIsBuiltAndServedByPodman) {
  std::string repo = Repo("site", {{"site/dist/index.html", "<h1>built by coold</h1>\n"}, {"README", "x"}});
  auto launcher = NewLauncher();
  privsep::BuildSpec request = Request("static-1", privsep::BUILD_KIND_STATIC, repo);
  request.set_subdirectory("site");
  ASSERT_TRUE(launcher->Start(request).ok());
  coolify::testing::Finished f = coolify::testing::WaitFinished(*launcher, "static-1");
  ASSERT_TRUE(f.finished);
  ASSERT_EQ(f.outcome.outcome_file, "result.json") << f.outcome.outcome_text << absl::StrJoin(f.events, "\n");
  absl::StatusOr<BuildResultFile> result = ParseResultFile(f.outcome.outcome_text);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->tags(0), "localhost/test/static-1:v1");
  // Every event line parses, and the phases come in order.
  std::vector<std::string> phases;
  for (const std::string& line : f.events) {
    absl::StatusOr<BuildEventRecord> event = ParseEventLine(line);
    ASSERT_TRUE(event.ok()) << event.status() << ": " << line;
    if (phases.empty() || phases.back() != event->phase()) phases.push_back(event->phase());
  }
  EXPECT_EQ(absl::StrJoin(phases, ","), "clone,build,export,done");
  ExpectGone(*launcher, "static-1");

  // The build named nothing in Podman; the hand-over does.
  EXPECT_FALSE(podman_->Podman({"image", "exists", "localhost/test/static-1:v1"}).ok());
  ASSERT_TRUE(HandOver(f, "localhost/test/static-1:v1").ok());
  // Podman serves the page from the image it was handed.
  auto id = podman_->Podman({"run", "-d", "--name", "static-web", "-p", "127.0.0.1:18931:8080",
                             "localhost/test/static-1:v1", "httpd", "-f", "-p", "8080", "-h", "/usr/share/nginx/html"});
  ASSERT_TRUE(id.ok()) << id.status();
  CommandRun page = Shell("for i in $(seq 50); do curl -sf --max-time 2 http://127.0.0.1:18931/ && exit 0; sleep 0.1; done; exit 1");
  EXPECT_EQ(page.status, 0) << page.out;
  EXPECT_EQ(page.out, "<h1>built by coold</h1>\n");
  (void)podman_->Podman({"rm", "-f", "static-web"});
}

// A slot's store of the base images: loaded after the slot's first build, read by the
// next instead of loading the archives, loaded again once an archive changes; an image
// built on it runs as one built without it.
TEST_F(LauncherTest, TheSlotsBaseImageStoreIsLoadedOnceAndAgainWhenTheImagesChange) {
  std::string repo = Repo("store", {{"dist/index.html", "<h1>from the store</h1>\n"}});
  const std::string archive = config_.jail.images_dir + "/busybox.tar";
  auto launcher = NewLauncher();
  int n = 0;
  // Builds in slot 0 (no other build is held) and says whether it read the store.
  auto build = [&](coolify::testing::Finished* f) {
    const std::string id = absl::StrCat("store-", ++n);
    EXPECT_TRUE(launcher->Start(Request(id, privsep::BUILD_KIND_STATIC, repo)).ok());
    *f = coolify::testing::WaitFinished(*launcher, id);
    EXPECT_EQ(f->outcome.outcome_file, "result.json") << f->outcome.outcome_text << absl::StrJoin(f->events, "\n");
    EXPECT_TRUE(coolify::testing::WaitIdle(*launcher));
    return absl::StrContains(absl::StrJoin(f->events, "\n"), "base images from the read-only store");
  };
  coolify::testing::Finished f;
  // Whatever store earlier tests left is stale once the archive changed.
  ASSERT_EQ(Shell("touch '" + archive + "'").status, 0);
  EXPECT_FALSE(build(&f)) << "a store loaded before the archive changed was used";
  EXPECT_TRUE(build(&f)) << "the store loaded after the first build was not used";
  ASSERT_TRUE(HandOver(f, "localhost/test/store:v1").ok());
  auto page = podman_->Podman({"run", "--rm", "localhost/test/store:v1", "cat", "/usr/share/nginx/html/index.html"});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(*page, "<h1>from the store</h1>\n");
  ASSERT_EQ(Shell("touch '" + archive + "'").status, 0);
  EXPECT_FALSE(build(&f)) << "a stale store was used";
  EXPECT_TRUE(build(&f)) << "the store was not loaded again";
  ExpectGone(*launcher, "store-4");
}

TEST_F(LauncherTest, DockerfileIsBuiltAndRuns) {
  std::string repo = Repo("app", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN echo made-in-build > /made\n"
                                                 "COPY greeting /greeting\nCMD [\"cat\", \"/made\", \"/greeting\"]\n"},
                                  {"greeting", "hello\n"}});
  auto launcher = NewLauncher();
  ASSERT_TRUE(launcher->Start(Request("docker-1", privsep::BUILD_KIND_DOCKERFILE, repo)).ok());
  coolify::testing::Finished f = coolify::testing::WaitFinished(*launcher, "docker-1");
  ASSERT_TRUE(f.finished);
  ASSERT_EQ(f.outcome.outcome_file, "result.json") << f.outcome.outcome_text << absl::StrJoin(f.events, "\n");
  ASSERT_TRUE(HandOver(f, "localhost/test/docker-1:v1").ok());
  auto out = podman_->Podman({"run", "--rm", "localhost/test/docker-1:v1"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "made-in-build\nhello\n");
  ExpectGone(*launcher, "docker-1");
}

TEST_F(LauncherTest, CancelStopsTheWholeBuildAndLeavesNothing) {
  std::string repo = Repo("slow", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN echo sleeping && sleep 2997\n"}});
  auto launcher = NewLauncher();
  ASSERT_TRUE(launcher->Start(Request("cancel-1", privsep::BUILD_KIND_DOCKERFILE, repo)).ok());
  // Wait until the RUN step's process is running inside the build.
  bool sleeping = false;
  std::vector<std::string> events;
  for (int i = 0; i < 600 && !sleeping; ++i) {
    for (BuildUpdate& update : launcher->Poll(absl::Milliseconds(100))) {
      for (std::string& line : update.event_lines) events.push_back(std::move(line));
      if (update.finished) events.push_back("finished: " + update.outcome_file + " " + update.outcome_text);
    }
    sleeping = Shell(coolify::testing::BuildProcessRuns("sleep 2997")).status == 0;
  }
  ASSERT_TRUE(sleeping) << absl::StrJoin(events, "\n") << "\n" << Shell("ps -e -o uid=,stat=,args=").out;
  ASSERT_TRUE(launcher->Cancel("cancel-1").ok());
  coolify::testing::Finished f = coolify::testing::WaitFinished(*launcher, "cancel-1", absl::Seconds(60));
  ASSERT_TRUE(f.finished);
  BuildErrorFile error = ErrorOf(f);
  EXPECT_EQ(error.code(), 499u);
  EXPECT_EQ(error.reason(), "cancelled");
  EXPECT_TRUE(testing::EventuallyFails(coolify::testing::BuildProcessRuns("sleep 2997"))) << "the RUN step survived the cancel";
  ExpectGone(*launcher, "cancel-1");
  EXPECT_TRUE(absl::IsNotFound(launcher->Cancel("cancel-1")));
}

TEST_F(LauncherTest, RestartAdoptsARunningBuildAndReportsItOnce) {
  std::string repo = Repo("adopt", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN sleep 4\n"}});
  pid_t builder = 0;
  {
    auto first = NewLauncher();
    ASSERT_TRUE(first->Start(Request("adopt-1", privsep::BUILD_KIND_DOCKERFILE, repo)).ok());
    builder = first->builder_pid("adopt-1");
    first->Poll(absl::Milliseconds(500));
    // The launcher goes away (as when coold dies); the build does not.
  }
  ASSERT_EQ(kill(builder, 0), 0) << "the build died with its launcher";
  auto second = NewLauncher();
  std::vector<std::string> adopted = second->Adopt();
  ASSERT_EQ(adopted, std::vector<std::string>{"adopt-1"});
  coolify::testing::Finished f = coolify::testing::WaitFinished(*second, "adopt-1");
  ASSERT_TRUE(f.finished);
  EXPECT_EQ(f.outcome.outcome_file, "result.json") << f.outcome.outcome_text;
  ExpectGone(*second, "adopt-1");
  // The builder was this test's child: reap it.
  waitpid(builder, nullptr, 0);
  // Reported once: a third launcher finds nothing to report.
  auto third = NewLauncher();
  EXPECT_TRUE(third->Adopt().empty());

  // A launcher that stopped after the report but before the storage was gone left the
  // slot record and storage of the build's ids: the next removes them, reports nothing.
  const std::string work = dir_ + "/builds/adopt-1";
  const uid_t owner = config_.jail.uid_base;
  ASSERT_EQ(Shell(absl::StrCat("echo 0 > ", dir_, "/builds/adopt-1.slot && mkdir -p ", work, "/storage/overlay && ",
                               "chown -R ", owner, ":", owner, " ", work, "/storage"))
                .status,
            0);
  auto fourth = NewLauncher();
  EXPECT_EQ(fourth->Adopt(), std::vector<std::string>{"adopt-1"});
  EXPECT_EQ(fourth->running(), 0u);
  std::vector<BuildUpdate> updates;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (fourth->held() > 0 && absl::Now() < deadline) {
    for (BuildUpdate& update : fourth->Poll(absl::Milliseconds(100))) updates.push_back(std::move(update));
  }
  EXPECT_TRUE(updates.empty()) << "a reported build was reported again";
  ExpectGone(*fourth, "adopt-1");
  struct stat st;
  EXPECT_NE(stat((dir_ + "/builds/adopt-1.slot").c_str(), &st), 0) << "its slot record is left";
  EXPECT_EQ(stat((work + "/result.json").c_str(), &st), 0) << "its outcome went with its storage";
}

TEST_F(LauncherTest, WallClockLimitStopsTheBuild) {
  config_.timeout = absl::Seconds(3);
  config_.kill_grace = absl::Seconds(2);
  std::string repo = Repo("forever", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN sleep 2997\n"}});
  auto launcher = NewLauncher();
  ASSERT_TRUE(launcher->Start(Request("timeout-1", privsep::BUILD_KIND_DOCKERFILE, repo)).ok());
  coolify::testing::Finished f = coolify::testing::WaitFinished(*launcher, "timeout-1", absl::Seconds(60));
  ASSERT_TRUE(f.finished);
  EXPECT_EQ(f.outcome.note, "timed out after 3s");
  BuildErrorFile error = ErrorOf(f);
  EXPECT_EQ(error.code(), 499u);  // the builder saw SIGTERM; the front end answers 504 with the note
  EXPECT_TRUE(testing::EventuallyFails(coolify::testing::BuildProcessRuns("sleep 2997"))) << "the RUN step outlived the limit";
  ExpectGone(*launcher, "timeout-1");
}

TEST_F(LauncherTest, BuilderKilledWithoutResultIsReportedWithoutOutcome) {
  std::string repo = Repo("killed", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN sleep 2997\n"}});
  auto launcher = NewLauncher();
  ASSERT_TRUE(launcher->Start(Request("killed-1", privsep::BUILD_KIND_DOCKERFILE, repo)).ok());
  bool sleeping = false;
  for (int i = 0; i < 600 && !sleeping; ++i) {
    launcher->Poll(absl::Milliseconds(100));
    sleeping = Shell(coolify::testing::BuildProcessRuns("sleep 2997")).status == 0;
  }
  ASSERT_TRUE(sleeping);
  ASSERT_EQ(kill(launcher->builder_pid("killed-1"), SIGKILL), 0);
  coolify::testing::Finished f = coolify::testing::WaitFinished(*launcher, "killed-1", absl::Seconds(60));
  ASSERT_TRUE(f.finished);
  EXPECT_EQ(f.outcome.outcome_file, "");  // the front end answers 500 builder exited without result file
  EXPECT_EQ(f.outcome.note, "builder killed by signal 9");
  ExpectGone(*launcher, "killed-1");
}

TEST_F(LauncherTest, MemoryLimitHitIsReported) {
  config_.limits.memory_bytes = 160ULL << 20;
  std::string repo = Repo("hog", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN head -c 1000m /dev/zero | tail > /dev/null\n"}});
  auto launcher = NewLauncher();
  ASSERT_TRUE(launcher->Start(Request("memory-1", privsep::BUILD_KIND_DOCKERFILE, repo)).ok());
  coolify::testing::Finished f = coolify::testing::WaitFinished(*launcher, "memory-1");
  ASSERT_TRUE(f.finished);
  BuildErrorFile error = ErrorOf(f);
  EXPECT_EQ(error.code(), 507u);
  EXPECT_TRUE(absl::StartsWith(error.reason(), "memory limit hit")) << error.reason();
  ExpectGone(*launcher, "memory-1");
}

TEST_F(LauncherTest, BadRequestsEndInErrorJsonWithTheReason) {
  std::string repo = Repo("plain", {{"index.html", "x"}});
  struct Case {
    std::string id;
    privsep::BuildSpec request;
    uint32_t code;
    std::string phase, reason;
  };
  std::vector<Case> cases;
  privsep::BuildSpec r = Request("unreachable", privsep::BUILD_KIND_STATIC, "http://127.0.0.1:9/nothing.git");
  cases.push_back({"unreachable", r, 502, "clone", "git clone of http://127.0.0.1:9/nothing.git failed"});
  r = Request("missing-ref", privsep::BUILD_KIND_STATIC, repo);
  r.set_git_ref("release-9");
  cases.push_back({"missing-ref", r, 404, "clone", "ref \"release-9\" not found in " + repo});
  r = Request("missing-dockerfile", privsep::BUILD_KIND_DOCKERFILE, repo);
  cases.push_back({"missing-dockerfile", r, 404, "build", "no Dockerfile or Containerfile in the repository's root"});
  r = Request("missing-output", privsep::BUILD_KIND_STATIC, repo);
  cases.push_back({"missing-output", r, 404, "build", "output directory \"dist\" not found in the repository"});
  auto launcher = NewLauncher();
  for (const Case& c : cases) {
    ASSERT_TRUE(launcher->Start(c.request).ok()) << c.id;
    coolify::testing::Finished f = coolify::testing::WaitFinished(*launcher, c.id);
    ASSERT_TRUE(f.finished) << c.id;
    BuildErrorFile error = ErrorOf(f);
    EXPECT_EQ(error.code(), c.code) << c.id;
    EXPECT_EQ(error.phase(), c.phase) << c.id;
    EXPECT_TRUE(absl::StartsWith(error.reason(), c.reason)) << c.id << ": " << error.reason();
    ExpectGone(*launcher, c.id);
  }
  EXPECT_NE(access("/tmp/pwned", F_OK), 0);
}

// Every field of a request is checked by the builder's own grammar before anything starts:
// the refusal names the field, and no work directory, cgroup or process is made for it.
TEST_F(LauncherTest, RequestsOutsideTheGrammarAreRefusedBeforeAnythingStarts) {
  const std::string repo = Repo("grammar", {{"Dockerfile", "FROM localhost/busybox:latest\n"}});
  const std::string nul("a\0b", 3);
  struct Case {
    std::string field, value, message;
    privsep::BuildKind kind = privsep::BUILD_KIND_DOCKERFILE;
  };
  std::vector<Case> cases = {
      {"request_id", "../etc", "request_id: "},
      {"request_id", nul, "request_id: "},
      {"kind", "", "kind: must be STATIC or DOCKERFILE", privsep::BUILD_KIND_UNSPECIFIED},
      {"repo_url", "ext::sh -c touch% /tmp/pwned", "repo_url: "},
      {"repo_url", "ext::true", "repo_url: not an https://, http:// or git:// URL"},
      {"repo_url", "fd::3", "repo_url: "},
      {"repo_url", "--upload-pack=touch /tmp/pwned", "repo_url: "},
      {"repo_url", "-uhttps://example.com/x.git", "repo_url: "},
      {"repo_url", "ssh://git@example.com/x.git", "repo_url: not an https://, http:// or git:// URL"},
      {"repo_url", "https://example.com/" + nul, "repo_url: holds whitespace or control characters"},
      {"git_ref", "--upload-pack=touch /tmp/pwned", "git_ref: not a branch or tag name"},
      {"git_ref", "-b", "git_ref: "},
      {"git_ref", "../main", "git_ref: "},
      {"git_ref", "/main", "git_ref: "},
      {"git_ref", nul, "git_ref: "},
      {"subdirectory", "..", "subdirectory: must not contain .."},
      {"subdirectory", "a/../../etc", "subdirectory: must not contain .."},
      {"subdirectory", "/etc", "subdirectory: "},
      {"subdirectory", "-x", "subdirectory: "},
      {"subdirectory", nul, "subdirectory: "},
      {"dockerfile_path", "../Dockerfile", "dockerfile_path: must not contain .."},
      {"dockerfile_path", "/etc/passwd", "dockerfile_path: "},
      {"dockerfile_path", nul, "dockerfile_path: "},
      {"output_dir", "..", "output_dir: must not contain ..", privsep::BUILD_KIND_STATIC},
      {"output_dir", "/usr/share", "output_dir: ", privsep::BUILD_KIND_STATIC},
      {"output_dir", nul, "output_dir: ", privsep::BUILD_KIND_STATIC},
      {"base_image", "--pull=always", "base_image: ", privsep::BUILD_KIND_STATIC},
      {"base_image", "x\nRUN rm -rf /", "base_image: ", privsep::BUILD_KIND_STATIC},
      {"target_image", "--tag=x", "target_image: "},
      {"target_image", "localhost/busybox:latest", "target_image: no namespace"},
      {"target_image", "docker.io/library/nginx:alpine", "target_image: not under localhost/"},
      {"target_image", "localhost/other/app:v1", "target_image: \"other\" is not a namespace of this host"},
      {"target_image", "localhost/test/app", "target_image: no tag"},
      {"target_image", nul, "target_image: "},
  };
  // An image of another namespace, and the base image every test uses: their ids before.
  ASSERT_TRUE(podman_->Podman({"tag", PodmanHarness::kBusyboxImage, "localhost/other/app:v1"}).ok());
  cases.push_back({"target_image", "localhost/other/app:v1", "target_image: \"other\" is not a namespace of this host"});
  auto id_of = [](const std::string& name) {
    return podman_->Podman({"image", "inspect", "--format", "{{.Id}} {{.Digest}}", name}).value_or("missing");
  };
  const std::string busybox = id_of(PodmanHarness::kBusyboxImage), other = id_of("localhost/other/app:v1");
  auto launcher = NewLauncher();
  int n = 0;
  for (const Case& c : cases) {
    const std::string id = absl::StrCat("grammar-", ++n);
    privsep::BuildSpec r = Request(id, c.kind, repo);
    const google::protobuf::FieldDescriptor* field = r.GetDescriptor()->FindFieldByName(c.field);
    ASSERT_NE(field, nullptr) << c.field;
    if (field->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      r.GetReflection()->SetString(&r, field, c.value);
    }
    absl::Status s = launcher->Start(r);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.field << "=" << absl::CHexEscape(c.value) << ": " << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), c.message)) << c.field << "=" << absl::CHexEscape(c.value) << ": " << s;
    struct stat st;
    EXPECT_NE(stat((dir_ + "/builds/" + id).c_str(), &st), 0) << "a work directory was made for " << c.field;
    EXPECT_EQ(launcher->running(), 0u);
    ExpectGone(*launcher, id);
  }
  EXPECT_NE(access("/tmp/pwned", F_OK), 0);
  EXPECT_EQ(id_of(PodmanHarness::kBusyboxImage), busybox);
  EXPECT_EQ(id_of("localhost/other/app:v1"), other);
  (void)podman_->Podman({"untag", "localhost/other/app:v1", "localhost/other/app:v1"});

  // file:// only where the host allows it (COOLD_BUILDER_ALLOW_FILE_URLS).
  config_.builder_args.erase(std::remove(config_.builder_args.begin(), config_.builder_args.end(), "--allow-file-urls"),
                             config_.builder_args.end());
  auto strict = NewLauncher();
  absl::Status s = strict->Start(Request("grammar-file", privsep::BUILD_KIND_DOCKERFILE, repo));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(s.message(), "repo_url: file:// URLs are not allowed on this host");
  EXPECT_EQ(strict->running(), 0u);
}

TEST_F(LauncherTest, CapacityRefusesTheBuildBeyondIt) {
  config_.capacity = 1;
  std::string repo = Repo("cap", {{"Dockerfile", "FROM localhost/busybox:latest\nRUN sleep 2997\n"}});
  auto launcher = NewLauncher();
  ASSERT_TRUE(launcher->Start(Request("cap-1", privsep::BUILD_KIND_DOCKERFILE, repo)).ok());
  absl::Status refused = launcher->Start(Request("cap-2", privsep::BUILD_KIND_DOCKERFILE, repo));
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_EQ(refused.message(), "builder at capacity: 1 of 1 builds running");
  EXPECT_TRUE(absl::IsAlreadyExists(launcher->Start(Request("cap-1", privsep::BUILD_KIND_DOCKERFILE, repo))));
  privsep::BuildSpec bad = Request("../etc", privsep::BUILD_KIND_DOCKERFILE, repo);
  EXPECT_TRUE(absl::IsInvalidArgument(launcher->Start(bad)));
  ASSERT_TRUE(launcher->Cancel("cap-1").ok());
  ASSERT_TRUE(coolify::testing::WaitFinished(*launcher, "cap-1", absl::Seconds(60)).finished);
  ExpectGone(*launcher, "cap-1");
}

TEST(SystemdBackend, RunsTheBuilderInATransientUnitWithItsLimits) {
  LauncherConfig config;
  config.backend = Backend::kSystemd;
  config.builder_path = "/usr/libexec/coold/builder";
  config.read_write_paths = {"/var/lib/containers/storage", "/run/containers/storage"};
  config.deny_cidrs = {"100.64.0.0/10", "10.210.0.0/16"};
  config.limits = {2ULL << 30, 1500, 2048};
  config.timeout = absl::Minutes(30);
  privsep::BuildSpec request;
  request.set_request_id("b-7");
  request.set_kind(privsep::BUILD_KIND_STATIC);
  request.set_repo_url("https://example.com/site.git");
  request.set_git_ref("main");
  request.set_target_image("localhost/site:v1");
  std::vector<std::string> argv = Launcher::SystemdRunArgv(config, request);
  std::string joined = absl::StrJoin(argv, " ");
  for (const char* expected : {
           "systemd-run --unit=coolify-build-b-7 ",
           " --pipe --wait --collect ",
           " --property=PrivateTmp=yes ",
           " --property=ProtectSystem=strict ",
           " --property=ReadWritePaths=/var/lib/coolify/builds/b-7 /var/lib/containers/storage /run/containers/storage ",
           " --property=MemoryMax=2147483648 ",
           " --property=CPUQuota=150% ",
           " --property=TasksMax=2048 ",
           " --property=RuntimeMaxSec=1800 ",
           " --property=IPAddressDeny=100.64.0.0/10 10.210.0.0/16 ",
           " -- /usr/libexec/coold/builder --work-dir=/var/lib/coolify/builds/b-7 --request-id=b-7 --stack=static "
           "--repo=https://example.com/site.git --ref=main --image=localhost/site:v1",
       }) {
    EXPECT_TRUE(absl::StrContains(joined, expected)) << expected << "\nin: " << joined;
  }
  // Every property is one argv entry: a value with spaces cannot become another option.
  for (const std::string& a : argv) {
    if (absl::StartsWith(a, "--property=ReadWritePaths=")) {
      EXPECT_EQ(a.find("--", 2), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace coolify::build
