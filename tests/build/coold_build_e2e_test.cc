// Builds through the whole chain: Laravel's request to the real broker, the broker's
// stream to the real coold, its front end to the sandboxed coold-build (seccomp list
// hardening/seccomp/build.list), the builder with real git and buildah into an isolated
// Podman's storage, and the result back to Laravel's long-poll; then Podman runs the
// image. Also: coold killed mid-build and started again adopts the build and sends its
// Response once. Runs in a private network namespace.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"
#include "tests/build/build_testing.h"
#include "tests/coold_testing.h"
#include "tests/podman_harness/podman_harness.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;

class CooldBuildTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Before any thread exists: the namespace is per thread until then.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "needs root: " << strerror(errno);
    ASSERT_EQ(Shell("ip link set lo up").status, 0);
  }

  void SetUp() override {
    auto podman = PodmanHarness::Start();
    ASSERT_TRUE(podman.ok()) << podman.status();
    podman_ = std::move(*podman);
    dir_ = TempDir("coold-build-e2e");
    port_ = FreeLoopbackPort();
    socket_ = keys_.Path("broker.sock");
    broker_ = std::make_unique<BrokerUnderTest>(std::vector<std::string>{
        "BROKER_UNIX_SOCKET=" + socket_, absl::StrCat("BROKER_GRPC_BIND=127.0.0.1:", port_),
        "BROKER_TLS_CERT=" + keys_.Path("tls.crt"), "BROKER_TLS_KEY=" + keys_.Path("tls.key"),
        "BROKER_JWT_KEYS=" + keys_.KeySpec()});
    ASSERT_TRUE(broker_->listening()) << broker_->log();
    std::string token = SignJwt("ES256", "es", keys_.Read("es.key"), Claims("host-127-0-0-1", AllCaps()));
    int fd = open(keys_.Path("host-jwt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, token.data(), token.size()), static_cast<ssize_t>(token.size()));
    close(fd);
    StartCoold();
  }

  void StartCoold() {
    std::vector<std::string> env = {
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        absl::StrCat("COOLD_BROKER_URL=grpcs://localhost:", port_, "/v1/agent"),
        "COOLD_BROKER_TOKEN_FILE=" + keys_.Path("host-jwt"),
        "COOLD_BROKER_CA_FILE=" + keys_.Path("tls.crt"),
        "COOLD_PODMAN_SOCKET=" + podman_->socket_path(),
        "COOLD_RULES_PATH=" + keys_.Path("etc/allow.rules"),
        "COOLD_BRIDGE_RULES_PATH=" + keys_.Path("etc/allow.nft"),
        "COOLD_BUILDER_ENABLED=1",
        "COOLD_BUILDER_CAPACITY=2",
        "COOLD_BUILDS_DIR=" + dir_ + "/builds",
        "COOLD_BUILD_BACKEND=native",
        "COOLD_BUILD_MEMORY_MAX=1G",
        "COOLD_BUILDER_ALLOW_FILE_URLS=1",
        "COOLD_BUILD_IMAGES_DIR=" + BaseImagesDir(*podman_),
        absl::StrCat("COOLD_BUILD_UID_BASE=", TestUidBase()),
    };
    coold_ = std::make_unique<CooldUnderTest>(env);
    ASSERT_TRUE(coold_->WaitForLog("broker stream open", std::chrono::seconds(30))) << coold_->log();
    ASSERT_TRUE(WaitForHosts(socket_, 1)) << broker_->log() << coold_->log();
  }

  HttpAnswer DispatchBuild(const std::string& id, const std::string& fields) {
    return UnixHttp(socket_, "POST", "/v1/build/dispatch",
                    absl::StrCat(R"({"request_id":")", id, R"(","command":{)", fields, "}}"));
  }

  TestKeys keys_;
  std::unique_ptr<PodmanHarness> podman_;
  std::string dir_;
  int port_ = 0;
  std::string socket_;
  std::unique_ptr<BrokerUnderTest> broker_;
  std::unique_ptr<CooldUnderTest> coold_;
};

TEST_F(CooldBuildTest, StaticBuildThroughTheBrokerIsServedByPodman) {
  std::string repo = MakeRepo(SearchableDir("e2e-site"), {{"dist/index.html", "<p>via broker</p>\n"}});
  HttpAnswer accepted = DispatchBuild("e2e-static", absl::StrCat(R"("type":"static_build","repo_url":")", repo,
                                                                 R"(","git_ref":"main","target_image":"localhost/default/site:v1","base_image":"localhost/busybox:latest")"));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  HttpAnswer result = PollBuildResult(socket_, "e2e-static", std::chrono::seconds(120));
  ASSERT_EQ(result.status, 200) << result.body << coold_->log();
  EXPECT_THAT(result.body, HasSubstr(R"("status":"ok","digest":"sha256:)"));
  EXPECT_THAT(result.body, HasSubstr(R"("registry_ref":"localhost/default/site:v1")"));
  auto out = podman_->Podman({"run", "--rm", "localhost/default/site:v1", "cat", "/usr/share/nginx/html/index.html"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<p>via broker</p>\n");
  // Nothing of the sandbox killed the launcher or a build (seccomp would have).
  EXPECT_EQ(coold_->WaitExit(std::chrono::milliseconds(10)), -1) << coold_->log();
}

TEST_F(CooldBuildTest, BadRequestsComeBackWithTheirReason) {
  std::string repo = MakeRepo(SearchableDir("e2e-plain"), {{"index.html", "x"}});
  ASSERT_EQ(DispatchBuild("e2e-ref", absl::StrCat(R"("type":"static_build","repo_url":")", repo,
                                                   R"(","git_ref":"nope","target_image":"localhost/default/x:v1")"))
                .status,
            202);
  HttpAnswer result = PollBuildResult(socket_, "e2e-ref", std::chrono::seconds(60));
  EXPECT_EQ(result.status, 404) << result.body;
  EXPECT_THAT(result.body, HasSubstr(absl::StrCat(R"(ref \"nope\" not found in )", repo)));
  EXPECT_THAT(result.body, HasSubstr(R"("stage":"clone")"));
  ASSERT_EQ(DispatchBuild("e2e-df", absl::StrCat(R"("type":"dockerfile_build","repo_url":")", repo,
                                                  R"(","git_ref":"main","target_image":"localhost/default/x:v1")"))
                .status,
            202);
  result = PollBuildResult(socket_, "e2e-df", std::chrono::seconds(60));
  EXPECT_EQ(result.status, 404) << result.body;
  EXPECT_THAT(result.body, HasSubstr("no Dockerfile or Containerfile in the repository's root"));
}

TEST_F(CooldBuildTest, BuilderKilledWithoutResultIs500AndCancelStopsABuild) {
  // A duration of its own: the test looks for the RUN step among all processes.
  std::string repo = MakeRepo(SearchableDir("e2e-long"), {{"Dockerfile", "FROM localhost/busybox:latest\nRUN sleep 2997\n"}});
  for (const char* id : {"e2e-killed", "e2e-cancel"}) {
    ASSERT_EQ(DispatchBuild(id, absl::StrCat(R"("type":"dockerfile_build","repo_url":")", repo,
                                              R"(","git_ref":"main","target_image":"localhost/default/long:v1")"))
                  .status,
              202);
  }
  // Both RUN steps are running.
  bool both = false;
  for (int i = 0; i < 600 && !both; ++i) {
    both = Shell(BuildProcessRuns("sleep 2997", 2)).status == 0;
    if (!both) usleep(100 * 1000);
  }
  ASSERT_TRUE(both);
  ASSERT_EQ(Shell("kill -KILL $(pgrep -f '[-]-request-id=e2e-killed' | head -1)").status, 0);
  HttpAnswer killed = PollBuildResult(socket_, "e2e-killed", std::chrono::seconds(60));
  EXPECT_EQ(killed.status, 500) << killed.body;
  EXPECT_THAT(killed.body, HasSubstr(R"x("message":"builder exited without result file (builder killed by signal 9)")x"));
  EXPECT_EQ(UnixHttp(socket_, "POST", "/v1/build/e2e-cancel/cancel").status, 204);
  HttpAnswer cancelled = PollBuildResult(socket_, "e2e-cancel", std::chrono::seconds(60));
  EXPECT_EQ(cancelled.status, 499) << cancelled.body;
  EXPECT_THAT(cancelled.body, HasSubstr(R"("message":"cancelled")"));
  EXPECT_TRUE(EventuallyFails(coolify::testing::BuildProcessRuns("sleep 2997"))) << "a RUN step outlived its build";
  EXPECT_TRUE(EventuallyFails("ls /sys/fs/cgroup/unified/coolify-builds | grep -q coolify-build-e2e"));
}

TEST_F(CooldBuildTest, CooldKilledMidBuildAdoptsItAndReportsOnce) {
  std::string repo = MakeRepo(SearchableDir("e2e-slow"), {{"Dockerfile", "FROM localhost/busybox:latest\nRUN sleep 6\n"}});
  ASSERT_EQ(DispatchBuild("e2e-adopt", absl::StrCat(R"("type":"dockerfile_build","repo_url":")", repo,
                                                     R"(","git_ref":"main","target_image":"localhost/default/slow:v1")"))
                .status,
            202);
  ASSERT_TRUE(coold_->WaitForLog("build e2e-adopt started", std::chrono::seconds(20))) << coold_->log();
  // A poller waiting meanwhile sees the build move: the builder's lines, streamed by coold.
  HttpAnswer running = UnixHttp(socket_, "GET", "/v1/build/result/e2e-adopt?timeout_ms=2000");
  EXPECT_EQ(running.status, 408) << running.body;
  EXPECT_THAT(running.body, HasSubstr(R"("progress":[{"phase":")")) << running.body;
  coold_->Kill();
  // The build goes on without coold.
  ASSERT_EQ(Shell("pgrep -f '[-]-request-id=e2e-adopt'").status, 0);
  StartCoold();
  ASSERT_TRUE(coold_->WaitForLog("build e2e-adopt adopted", std::chrono::seconds(10))) << coold_->log();
  ASSERT_TRUE(coold_->WaitForLog("event=build_finished request_id=e2e-adopt status=200", std::chrono::seconds(120)))
      << coold_->log() << Shell("cat " + dir_ + "/builds/e2e-adopt/builder.log " + dir_ + "/builds/e2e-adopt/events.ndjson").out;
  // Through the broker too: the build outlived coold's first stream and landed from the next.
  HttpAnswer landed = UnixHttp(socket_, "GET", "/v1/build/result/e2e-adopt?timeout_ms=30000");
  EXPECT_EQ(landed.status, 200) << landed.body;
  EXPECT_THAT(landed.body, HasSubstr(R"("status":"ok")"));
  // Reported once: a third coold finds nothing to report (at most the build's storage
  // to remove, when the second stopped before it was gone).
  coold_->Stop();
  StartCoold();
  EXPECT_FALSE(coold_->WaitForLog("build e2e-adopt finished", std::chrono::seconds(3))) << coold_->log();
  EXPECT_FALSE(coold_->WaitForLog("build e2e-adopt adopted (finished)", std::chrono::seconds(1))) << coold_->log();
  auto images = podman_->Podman({"images", "--format", "{{.Repository}}:{{.Tag}}"});
  ASSERT_TRUE(images.ok());
  EXPECT_THAT(*images, HasSubstr("localhost/default/slow:v1"));
}

}  // namespace
}  // namespace coolify::testing
