// The endpoint sync end to end: the real coold following a real (isolated) Podman's
// events and reconciling into the Corrosion backend (tests/corrosion_fake serves
// Corrosion's documented API over SQLite); names checked through the lookup API, which
// reads the same in-memory table the DNS listeners answer from.
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/coold_testing.h"
#include "tests/podman_harness/podman_harness.h"

namespace coolify {
namespace {

constexpr char kToken[] = "sync-e2e-token-0123456789ab";
const int kPort = coolify::testing::FreeLoopbackPort();
constexpr char kCorrosion[] = "127.0.0.1:18600";
constexpr char kName[] = "sync-web.default.coolify.internal";

using Answer = testing::RestAnswer;

Answer Api(const std::string& method, const std::string& path, const std::string& body = "") {
  return testing::RestCall(kPort, kToken, method, path, body);
}

// Polls the lookup API until its answer contains (or, with `absent`, no longer contains)
// `needle`; the time it took, or nothing after `limit`.
std::optional<std::chrono::milliseconds> WaitForLookup(const std::string& needle, bool absent,
                                                       std::chrono::milliseconds limit) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < limit) {
    Answer a = Api("GET", std::string("/api/v1/dns/lookup/") + kName);
    if (a.status == 200 && (a.body.find(needle) == std::string::npos) == absent) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

class SyncE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto harness = testing::PodmanHarness::Start();
    ASSERT_TRUE(harness.ok()) << harness.status();
    harness_ = std::move(*harness).release();
    ASSERT_TRUE(harness_->Podman({"network", "create", "coolify-default-mesh"}).ok());
    ASSERT_EQ(unshare(CLONE_NEWNET), 0);
    ASSERT_EQ(system("ip link set lo up"), 0);
    dir_ = std::string(getenv("TEST_TMPDIR")) + "/sync-e2e";
    ASSERT_EQ(system(("mkdir -p " + dir_ + "/etc").c_str()), 0);
    std::ofstream(dir_ + "/token") << kToken;
    chmod((dir_ + "/token").c_str(), 0600);
    ASSERT_EQ(system(("sed 's/^default_runtime: \"crun\"/default_runtime: \"runc\"/' " +
                      testing::Runfile("policy/baseline.textproto") + " > " + dir_ + "/policy.textproto")
                         .c_str()),
              0);
  }
  static void TearDownTestSuite() {
    StopCorrosion();
    delete harness_;
  }

  static void StartCorrosion() {
    corrosion_pid_ = fork();
    if (corrosion_pid_ == 0) {
      std::string binary = testing::Runfile("tests/corrosion_fake/corrosion_fake");
      std::string db = dir_ + "/corrosion.db";
      execl(binary.c_str(), binary.c_str(), "--db", db.c_str(), "--listen", kCorrosion, nullptr);
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (testing::Shell(std::string("curl -s -o /dev/null http://") + kCorrosion + "/").status == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "corrosion_fake did not start";
  }
  static void StopCorrosion() {
    if (corrosion_pid_ <= 0) return;
    kill(corrosion_pid_, SIGKILL);
    waitpid(corrosion_pid_, nullptr, 0);
    corrosion_pid_ = -1;
  }

  static std::unique_ptr<testing::CooldUnderTest> StartCoold() {
    auto coold = std::make_unique<testing::CooldUnderTest>(std::vector<std::string>{
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        "COOLD_API_BIND=127.0.0.1:" + std::to_string(kPort),
        "COOLD_API_TOKEN_FILE=" + dir_ + "/token",
        "COOLD_RULES_PATH=" + dir_ + "/etc/allow.rules",
        "COOLD_BRIDGE_RULES_PATH=" + dir_ + "/etc/allow.nft",
        "COOLD_PODMAN_SOCKET=" + harness_->socket_path(),
        "COOLD_POLICY_FILE=" + dir_ + "/policy.textproto",
        "COOLD_NAMESPACES=default:coolify-default-mesh:0.0.0.0",
        "COOLD_ENDPOINT_STORE=corrosion",
        std::string("COOLD_CORROSION_API=") + kCorrosion,
        "COOLD_RECONCILE_INTERVAL=2s",
    });
    EXPECT_TRUE(coold->WaitForLog("REST API on")) << coold->log();
    return coold;
  }

  static std::string Ip() {
    auto out = harness_->Podman({"inspect", "sync-web", "--format",
                                 "{{(index .NetworkSettings.Networks \"coolify-default-mesh\").IPAddress}}"});
    std::string ip = out.ok() ? *out : "";
    while (!ip.empty() && (ip.back() == '\n' || ip.back() == ' ')) ip.pop_back();
    return ip;
  }

  static inline testing::PodmanHarness* harness_ = nullptr;
  static inline std::string dir_;
  static inline pid_t corrosion_pid_ = -1;
};

TEST_F(SyncE2E, PodmanLifecycleDrivesTheTableAndNothingIsLost) {
  StartCorrosion();
  auto coold = StartCoold();
  ASSERT_EQ(Api("POST", "/api/v1/containers",
                R"({"name":"sync-web","image":"localhost/busybox:latest","command":["sleep","600"]})")
                .status,
            201);
  const Answer started = Api("POST", "/api/v1/containers/sync-web/start");
  ASSERT_EQ(started.status, 200) << started.body << "\n" << coold->log();
  const std::string ip = Ip();
  ASSERT_FALSE(ip.empty());
  // Resolves within 2 s of the start event (the event triggers the reconcile; the 2 s
  // tick alone could take longer).
  auto resolved = WaitForLookup(ip, /*absent=*/false, std::chrono::seconds(2));
  ASSERT_TRUE(resolved.has_value()) << coold->log();
  std::printf("name resolved %lld ms after start returned\n", static_cast<long long>(resolved->count()));
  Answer endpoints = Api("GET", "/api/v1/services/sync-web/endpoints");
  EXPECT_NE(endpoints.body.find("\"state\":\"running\""), std::string::npos) << endpoints.body;

  // Its death removes the answer (the row stays, as exited, until the container is removed).
  ASSERT_EQ(Api("POST", "/api/v1/containers/sync-web/stop", R"({"timeout_seconds":1})").status, 200);
  EXPECT_TRUE(WaitForLookup(ip, /*absent=*/true, std::chrono::seconds(2)).has_value()) << coold->log();
  Answer stopped = Api("GET", "/api/v1/services/sync-web/endpoints");
  EXPECT_NE(stopped.body.find("sync-web"), std::string::npos) << stopped.body;
  EXPECT_EQ(stopped.body.find("\"state\":\"running\""), std::string::npos) << stopped.body;

  // The store goes down; the container starts meanwhile; nothing is lost once it is back.
  StopCorrosion();
  ASSERT_EQ(Api("POST", "/api/v1/containers/sync-web/start").status, 200);
  EXPECT_TRUE(coold->WaitForLog("endpoint reconcile:", std::chrono::seconds(5))) << coold->log();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  StartCorrosion();
  auto after_outage = WaitForLookup(Ip(), /*absent=*/false, std::chrono::seconds(6));
  EXPECT_TRUE(after_outage.has_value()) << coold->log();

  // A coold restart: the rows are in the store, and the table is loaded from it.
  coold->Kill();
  coold.reset();
  coold = StartCoold();
  EXPECT_TRUE(WaitForLookup(Ip(), /*absent=*/false, std::chrono::seconds(2)).has_value()) << coold->log();

  // Removal deletes the row.
  ASSERT_EQ(Api("DELETE", "/api/v1/containers/sync-web?force=true").status, 200);
  bool gone = false;
  for (int i = 0; i < 40 && !gone; ++i) {
    gone = Api("GET", "/api/v1/services/sync-web/endpoints").body.find("sync-web") == std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(gone) << coold->log();
  coold->Stop();
}

TEST_F(SyncE2E, AStoreDownAtStartIsWaitedFor) {
  StopCorrosion();
  ASSERT_EQ(Api("POST", "/api/v1/containers",
                R"({"name":"sync-web","image":"localhost/busybox:latest","command":["sleep","600"]})")
                .status,
            0);  // no coold yet: nothing answers
  auto coold = StartCoold();
  // coold runs; what needs the store says it is unavailable...
  Answer early = Api("GET", "/api/v1/services/sync-web/endpoints");
  EXPECT_EQ(early.status, 503) << early.body << coold->log();
  ASSERT_EQ(Api("POST", "/api/v1/containers",
                R"({"name":"sync-web","image":"localhost/busybox:latest","command":["sleep","600"]})")
                .status,
            201);
  ASSERT_EQ(Api("POST", "/api/v1/containers/sync-web/start").status, 200);
  // ...and once the store answers, the rows arrive.
  StartCorrosion();
  EXPECT_TRUE(WaitForLookup(Ip(), /*absent=*/false, std::chrono::seconds(6)).has_value()) << coold->log();
  ASSERT_EQ(Api("DELETE", "/api/v1/containers/sync-web?force=true").status, 200);
  coold->Stop();
}

}  // namespace
}  // namespace coolify
