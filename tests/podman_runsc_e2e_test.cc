// gVisor through the runtime allowlist, end to end: a policy that adds "runsc" to
// allowed_runtimes, the real coold and its REST API, an isolated real Podman
// (tests/podman_harness, whose containers.conf names runsc) and the real runsc. What ran
// is read from inside the container (gVisor's kernel reports itself as Linux 4.4.0) and
// from Podman's CLI, not from coold.
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <iterator>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/coold_testing.h"
#include "tests/podman_harness/podman_harness.h"

namespace coolify {
namespace {

constexpr char kToken[] = "podman-runsc-e2e-token-0123456789";
// What gVisor's sentry answers for /proc/version; no host kernel reports this build line.
constexpr char kGvisorKernel[] = "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016";
const int kPort = coolify::testing::FreeLoopbackPort();

using Answer = testing::RestAnswer;

Answer Api(const std::string& method, const std::string& path, const std::string& body = "") {
  return testing::RestCall(kPort, kToken, method, path, body);
}

class PodmanRunscE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // No runsc, no test: this must fail on such a machine, never pass by skipping.
    ASSERT_EQ(system("command -v runsc >/dev/null"), 0) << "runsc (gVisor) is not installed";
    // runsc is the service's default runtime: Podman 4.3 ignores the runtime a create
    // through its API names (see README, "gVisor"), so it is the only one it runs.
    auto harness = testing::PodmanHarness::Start("runsc");
    ASSERT_TRUE(harness.ok()) << harness.status();
    harness_ = std::move(*harness).release();
    ASSERT_EQ(unshare(CLONE_NEWNET), 0);
    ASSERT_EQ(system("ip link set lo up"), 0);
    dir_ = std::string(getenv("TEST_TMPDIR")) + "/podman-runsc-e2e";
    ASSERT_EQ(system(("mkdir -p " + dir_ + "/etc").c_str()), 0);
    std::ofstream(dir_ + "/token") << kToken;
    chmod((dir_ + "/token").c_str(), 0600);
    // The baseline policy as its runtimes section tells an operator to extend it for a
    // host whose Podman runs runsc.
    ASSERT_EQ(system(("sed 's/^default_runtime: \"crun\"/default_runtime: \"runsc\"/' " +
                      testing::Runfile("policy/baseline.textproto") + " > " + dir_ +
                      "/policy.textproto && echo 'allowed_runtimes: \"runsc\"' >> " + dir_ +
                      "/policy.textproto && chmod 0644 " + dir_ + "/policy.textproto")
                         .c_str()),
              0);
    ASSERT_TRUE(harness_->Podman({"network", "create", "coolify-default-mesh"}).ok());
    coold_ = std::make_unique<testing::CooldUnderTest>(std::vector<std::string>{
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        "COOLD_API_BIND=127.0.0.1:" + std::to_string(kPort),
        "COOLD_API_TOKEN_FILE=" + dir_ + "/token",
        "COOLD_RULES_PATH=" + dir_ + "/etc/allow.rules",
        "COOLD_BRIDGE_RULES_PATH=" + dir_ + "/etc/allow.nft",
        "COOLD_PODMAN_SOCKET=" + harness_->socket_path(),
        "COOLD_POLICY_FILE=" + dir_ + "/policy.textproto",
    });
    ASSERT_TRUE(coold_->WaitForLog("REST API on")) << coold_->log();
  }

  static void TearDownTestSuite() {
    if (coold_) coold_->Stop();
    coold_.reset();
    delete harness_;
  }

  static std::string PodmanCli(const std::vector<std::string>& args) {
    auto out = harness_->Podman(args);
    return out.ok() ? *out : std::string("error: ") + std::string(out.status().message());
  }

  // The container's logs once they hold `needle`: runsc boots its sentry before the
  // command's first line, so the first read may come too early.
  static std::string LogsHolding(const std::string& name, const std::string& needle) {
    std::string body;
    for (int i = 0; i < 150; ++i) {
      body = Api("GET", "/api/v1/containers/" + name + "/logs").body;
      if (body.find(needle) != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return body;
  }

  static inline testing::PodmanHarness* harness_ = nullptr;
  static inline std::unique_ptr<testing::CooldUnderTest> coold_;
  static inline std::string dir_;
};

TEST_F(PodmanRunscE2E, AllowedRunscRunsTheContainerUnderGvisor) {
  // The control: the host's own kernel does not call itself what gVisor does, so finding
  // the string below inside a container tells the two apart.
  std::ifstream host_version("/proc/version");
  std::string host_kernel((std::istreambuf_iterator<char>(host_version)), std::istreambuf_iterator<char>());
  ASSERT_NE(host_kernel.find("Linux version"), std::string::npos) << host_kernel;
  ASSERT_EQ(host_kernel.find(kGvisorKernel), std::string::npos) << host_kernel;

  Answer create = Api("POST", "/api/v1/containers",
                      R"({"name":"e2e-gvisor","image":"localhost/busybox:latest","runtime":"runsc",)"
                      R"("command":["sh","-c","cat /proc/version; mkdir -p /tmp/www; )"
                      R"(echo served-by-gvisor > /tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www"]})");
  ASSERT_EQ(create.status, 201) << create.body;
  Answer start = Api("POST", "/api/v1/containers/e2e-gvisor/start");
  ASSERT_EQ(start.status, 200) << start.body;

  // Podman ran it with runsc, and what the container sees is gVisor's kernel.
  const std::string runtime = PodmanCli({"inspect", "e2e-gvisor", "--format", "{{.OCIRuntime}}"});
  EXPECT_EQ(runtime, "runsc\n");
  std::string logs = LogsHolding("e2e-gvisor", kGvisorKernel);
  EXPECT_NE(logs.find(kGvisorKernel), std::string::npos) << logs;
  Answer exec = Api("POST", "/api/v1/containers/e2e-gvisor/exec", R"({"cmd":["cat","/proc/version"],"user":"1000"})");
  ASSERT_EQ(exec.status, 200) << exec.body;
  EXPECT_NE(exec.body.find(kGvisorKernel), std::string::npos) << exec.body;

  // The gVisor container sits on the namespace's bridge like any other: a second one (the
  // policy's default runtime, runsc too) fetches the page it serves at the address Podman
  // gave it. (nc, not busybox wget: its read of the answer fails with EAGAIN under
  // runsc --network=host, see README.)
  ASSERT_EQ(Api("POST", "/api/v1/containers",
                R"({"name":"e2e-client","image":"localhost/busybox:latest","command":["sleep","300"]})")
                .status,
            201);
  ASSERT_EQ(Api("POST", "/api/v1/containers/e2e-client/start").status, 200);
  EXPECT_EQ(PodmanCli({"inspect", "e2e-client", "--format", "{{.OCIRuntime}}"}), "runsc\n");
  std::string ip = PodmanCli(
      {"inspect", "e2e-gvisor", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"});
  while (!ip.empty() && (ip.back() == '\n' || ip.back() == ' ')) ip.pop_back();
  ASSERT_FALSE(ip.empty());
  ASSERT_EQ(ip.find("error"), std::string::npos) << ip;
  Answer fetch = Api("POST", "/api/v1/containers/e2e-client/exec",
                     R"({"cmd":["sh","-c","for i in $(seq 100); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc )" +
                         ip + R"( 8080 | grep served-by && exit 0; sleep 0.2; done; exit 1"],"user":"1000"})");
  ASSERT_EQ(fetch.status, 200) << fetch.body;
  EXPECT_NE(fetch.body.find("\"exit_code\":0"), std::string::npos) << fetch.body;
  EXPECT_NE(fetch.body.find("served-by-gvisor"), std::string::npos) << fetch.body;

  ASSERT_EQ(Api("DELETE", "/api/v1/containers/e2e-gvisor?force=true").status, 200);
  ASSERT_EQ(Api("DELETE", "/api/v1/containers/e2e-client?force=true").status, 200);
  EXPECT_EQ(PodmanCli({"ps", "-a", "--format", "{{.Names}}"}), "");
}

// Allowing runsc opens nothing else: a runtime the policy does not list is refused
// naming the rule, and Podman holds nothing from it.
TEST_F(PodmanRunscE2E, RuntimeOutsideTheAllowlistIsStillRefused) {
  const std::string before = PodmanCli({"ps", "-a", "--format", "{{.Names}}"});
  for (const char* runtime : {"kata", "krun", "runsc-debug"}) {
    SCOPED_TRACE(runtime);
    Answer answer = Api("POST", "/api/v1/containers",
                        std::string(R"({"name":"e2e-other","image":"localhost/busybox:latest","runtime":")") +
                            runtime + "\"}");
    EXPECT_EQ(answer.status, 403) << answer.body;
    EXPECT_NE(answer.body.find(R"("field":"runtime")"), std::string::npos) << answer.body;
    EXPECT_NE(answer.body.find(R"("rule":"allowed_runtimes")"), std::string::npos) << answer.body;
  }
  EXPECT_EQ(PodmanCli({"ps", "-a", "--format", "{{.Names}}"}), before);
}

// Podman 4.3 runs its default runtime whatever a create names: a runtime the policy
// allows but Podman does not run is refused after the fact (502), and the container
// Podman made is gone.
TEST_F(PodmanRunscE2E, RuntimePodmanWouldNotRunIsRefusedAndRemoved) {
  const std::string before = PodmanCli({"ps", "-a", "--format", "{{.Names}}"});
  Answer answer = Api("POST", "/api/v1/containers",
                      R"({"name":"e2e-asks-runc","image":"localhost/busybox:latest","runtime":"runc"})");
  EXPECT_EQ(answer.status, 502) << answer.body;
  EXPECT_NE(answer.body.find("runtime runsc, not runc"), std::string::npos) << answer.body;
  EXPECT_EQ(PodmanCli({"ps", "-a", "--format", "{{.Names}}"}), before);
  EXPECT_TRUE(coold_->WaitForLog("with runtime runsc, not runc; deleted")) << coold_->log();
}

}  // namespace
}  // namespace coolify
