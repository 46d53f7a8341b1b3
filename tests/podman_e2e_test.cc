// The Podman gatekeeper end to end: the real coold, its REST API, its gatekeeper and an
// isolated real Podman (tests/podman_harness). What Podman ends up holding is read back
// with Podman's own CLI, not with coold.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "gtest/gtest.h"
#include "policy/catalogue.h"
#include "tests/coold_testing.h"
#include "tests/podman_harness/podman_harness.h"
#include "tests/shell_testing.h"

namespace coolify {
namespace {

constexpr char kToken[] = "podman-e2e-token-0123456789";
const int kPort = coolify::testing::FreeLoopbackPort();

using Answer = testing::RestAnswer;

Answer Api(const std::string& method, const std::string& path, const std::string& body = "") {
  return testing::RestCall(kPort, kToken, method, path, body);
}

class PodmanE2E : public ::testing::Test {
 public:
  // The catalogue files, from the test's arguments.
  static inline int argc_ = 0;
  static inline char** argv_ = nullptr;

 protected:
  static void SetUpTestSuite() {
    auto harness = testing::PodmanHarness::Start();
    ASSERT_TRUE(harness.ok()) << harness.status();
    harness_ = std::move(*harness).release();
    // coold (and its firewall writer) in a private network namespace; Podman keeps its own.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0);
    ASSERT_EQ(system("ip link set lo up"), 0);
    dir_ = std::string(getenv("TEST_TMPDIR")) + "/podman-e2e";
    ASSERT_EQ(system(("mkdir -p " + dir_ + "/etc").c_str()), 0);
    std::ofstream(dir_ + "/token") << kToken;
    chmod((dir_ + "/token").c_str(), 0600);
    // The baseline policy, with the runtime this machine's kernel runs (crun refuses its
    // hybrid cgroups): exercises COOLD_POLICY_FILE as an operator would use it.
    ASSERT_EQ(system(("sed 's/^default_runtime: \"crun\"/default_runtime: \"runc\"/' " +
                      testing::Runfile("policy/baseline.textproto") + " > " + dir_ + "/policy.textproto && chmod 0644 " + dir_ +
                      "/policy.textproto")
                         .c_str()),
              0);
    // The namespace's bridge network exists before its first container, as on a host
    // provisioned by `coolify init`.
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

  // What Podman itself says, through its CLI on the harness's storage.
  static std::string PodmanCli(const std::vector<std::string>& args) {
    auto out = harness_->Podman(args);
    return out.ok() ? *out : std::string("error: ") + std::string(out.status().message());
  }

  static inline testing::PodmanHarness* harness_ = nullptr;
  static inline std::unique_ptr<testing::CooldUnderTest> coold_;
  static inline std::string dir_;
};

TEST_F(PodmanE2E, ContainerLifecycleWithTheCanonicalSpec) {
  Answer pull = Api("POST", "/api/v1/images/pull", R"({"ref":"localhost/busybox:latest"})");
  ASSERT_EQ(pull.status, 200) << pull.body;
  EXPECT_NE(pull.body.find("\"id\""), std::string::npos) << pull.body;
  Answer missing = Api("POST", "/api/v1/images/pull", R"({"ref":"localhost/no-such-image:latest"})");
  EXPECT_GE(missing.status, 400) << missing.body;

  Answer create = Api("POST", "/api/v1/containers",
                      R"({"name":"e2e-web","image":"localhost/busybox:latest",)"
                      R"("command":["sh","-c","echo hello-from-e2e; trap '' TERM; while true; do sleep 1; done"]})");
  ASSERT_EQ(create.status, 201) << create.body;
  ASSERT_EQ(Api("POST", "/api/v1/containers/e2e-web/start").status, 200);

  Answer inspect = Api("GET", "/api/v1/containers/e2e-web");
  ASSERT_EQ(inspect.status, 200) << inspect.body;
  // Podman's own view of what was created: the gatekeeper's canonical spec, not defaults.
  std::string security = PodmanCli({"inspect", "e2e-web", "--format",
                                     "{{.HostConfig.Privileged}}|{{.HostConfig.CapAdd}}|{{.HostConfig.SecurityOpt}}"});
  EXPECT_NE(security.find("false|"), std::string::npos) << security;
  EXPECT_NE(security.find("no-new-privileges"), std::string::npos) << security;
  std::string caps = PodmanCli({"inspect", "e2e-web", "--format", "{{.EffectiveCaps}}"});
  EXPECT_EQ(caps.find("CAP_SYS_ADMIN"), std::string::npos) << caps;
  EXPECT_EQ(caps.find("CAP_NET_ADMIN"), std::string::npos) << caps;

  Answer exec = Api("POST", "/api/v1/containers/e2e-web/exec", R"({"cmd":["sh","-c","echo out; exit 3"],"user":"1000"})");
  ASSERT_EQ(exec.status, 200) << exec.body;
  EXPECT_NE(exec.body.find("\"exit_code\":3"), std::string::npos) << exec.body;
  EXPECT_NE(exec.body.find("out"), std::string::npos) << exec.body;

  Answer logs = Api("GET", "/api/v1/containers/e2e-web/logs");
  ASSERT_EQ(logs.status, 200) << logs.body;
  EXPECT_NE(logs.body.find("hello-from-e2e"), std::string::npos) << logs.body;

  // The container ignores SIGTERM: a 1 s timeout must end it with SIGKILL, not 10 s.
  auto begin = std::chrono::steady_clock::now();
  Answer stop = Api("POST", "/api/v1/containers/e2e-web/stop", R"({"timeout_seconds":1})");
  auto took = std::chrono::steady_clock::now() - begin;
  ASSERT_EQ(stop.status, 200) << stop.body;
  EXPECT_LT(took, std::chrono::seconds(8));
  EXPECT_NE(PodmanCli({"inspect", "e2e-web", "--format", "{{.State.Status}}"}).find("exited"), std::string::npos);

  ASSERT_EQ(Api("DELETE", "/api/v1/containers/e2e-web").status, 200);
  EXPECT_EQ(Api("GET", "/api/v1/containers/e2e-web").status, 404);
}

// coolctl's read-only commands show what the API created, as a table and as parseable JSON.
TEST_F(PodmanE2E, CoolctlListsAndInspectsWhatTheApiCreated) {
  ASSERT_EQ(Api("POST", "/api/v1/images/pull", R"({"ref":"localhost/busybox:latest"})").status, 200);
  Answer create = Api("POST", "/api/v1/containers",
                      R"({"name":"e2e-ctl","image":"localhost/busybox:latest","command":["sleep","600"]})");
  ASSERT_EQ(create.status, 201) << create.body;
  Answer volume = Api("POST", "/api/v1/volumes", R"({"name":"e2e-ctl-vol"})");
  ASSERT_LT(volume.status, 300) << volume.body;
  auto coolctl = [](const std::string& args) {
    return testing::Shell("timeout 60 " + testing::Runfile("tools/coolctl/coolctl") + " --api http://127.0.0.1:" +
                          std::to_string(kPort) + " --token-file " + dir_ + "/token " + args);
  };

  testing::CommandRun table = coolctl("containers list");
  ASSERT_EQ(table.status, 0) << table.out;
  EXPECT_EQ(table.out.rfind("ID", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("NAMESPACE"), std::string::npos) << table.out;
  size_t row = table.out.find("e2e-ctl");
  ASSERT_NE(row, std::string::npos) << table.out;
  std::string line = table.out.substr(row, table.out.find('\n', row) - row);
  EXPECT_NE(line.find("localhost/busybox:latest"), std::string::npos) << line;
  EXPECT_NE(line.find("default"), std::string::npos) << line;
  EXPECT_EQ(coolctl("containers list --namespace other").out.find("e2e-ctl"), std::string::npos);

  testing::CommandRun raw = coolctl("containers list --json");
  ASSERT_EQ(raw.status, 0) << raw.out;
  boost::system::error_code ec;
  boost::json::value listed = boost::json::parse(raw.out, ec);
  ASSERT_FALSE(ec) << raw.out;
  ASSERT_TRUE(listed.is_array()) << raw.out;
  bool found = false;
  for (const auto& item : listed.get_array()) {
    const auto* names = item.is_object() ? item.get_object().if_contains("Names") : nullptr;
    if (names != nullptr && names->is_array()) {
      for (const auto& name : names->get_array()) found = found || (name.is_string() && name.get_string() == "e2e-ctl");
    }
  }
  EXPECT_TRUE(found) << raw.out;

  testing::CommandRun inspect = coolctl("containers inspect e2e-ctl");
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  EXPECT_NE(inspect.out.find("e2e-ctl"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("RUNTIME"), std::string::npos) << inspect.out;
  testing::CommandRun vol = coolctl("volumes inspect e2e-ctl-vol");
  ASSERT_EQ(vol.status, 0) << vol.out;
  EXPECT_NE(vol.out.find("e2e-ctl-vol"), std::string::npos) << vol.out;
  testing::CommandRun images = coolctl("images list");
  ASSERT_EQ(images.status, 0) << images.out;
  EXPECT_NE(images.out.find("localhost/busybox:latest"), std::string::npos) << images.out;
  testing::CommandRun networks = coolctl("networks list");
  ASSERT_EQ(networks.status, 0) << networks.out;
  EXPECT_NE(networks.out.find("coolify-default-mesh"), std::string::npos) << networks.out;

  // Refused: exit 1 with the server's own error, not a paraphrase.
  Answer missing = Api("GET", "/api/v1/containers/no-such-ctl");
  ASSERT_EQ(missing.status, 404) << missing.body;
  boost::json::value error = boost::json::parse(missing.body, ec);
  ASSERT_FALSE(ec) << missing.body;
  testing::CommandRun refused = coolctl("containers inspect no-such-ctl");
  EXPECT_EQ(refused.status, 1) << refused.out;
  EXPECT_NE(refused.out.find("HTTP 404: " + std::string(error.at("error").as_string())), std::string::npos)
      << refused.out;
  // Another namespace's container is the gatekeeper's 403, passed on.
  testing::CommandRun other = coolctl("containers inspect e2e-ctl --namespace other");
  EXPECT_EQ(other.status, 1) << other.out;
  EXPECT_NE(other.out.find("HTTP 403"), std::string::npos) << other.out;

  EXPECT_EQ(Api("DELETE", "/api/v1/containers/e2e-ctl?force=true").status, 200);
  EXPECT_LT(Api("DELETE", "/api/v1/volumes/e2e-ctl-vol").status, 300);
}

// Tenancy is what the gatekeeper recorded at create, never what a caller says: another
// namespace's container, one coold did not create, exec as root and the host network are
// each refused through the live API naming the rule, and nothing changes in Podman.
TEST_F(PodmanE2E, TenancyIsTheGatekeepersRecordNotTheCallersWord) {
  ASSERT_TRUE(harness_->Podman({"network", "create", "coolify-alpha-mesh"}).ok());
  Answer create = Api("POST", "/api/v1/containers",
                      R"({"name":"e2e-alpha","namespace":"alpha","image":"localhost/busybox:latest",)"
                      R"("command":["sleep","300"]})");
  ASSERT_EQ(create.status, 201) << create.body;
  EXPECT_NE(PodmanCli({"inspect", "e2e-alpha", "--format", "{{json .Config.Labels}}"})
                .find(R"("coolify.coold.namespace":"alpha")"),
            std::string::npos);
  ASSERT_EQ(Api("POST", "/api/v1/containers/e2e-alpha/start?namespace=alpha").status, 200);
  const std::string started = PodmanCli({"inspect", "e2e-alpha", "--format", "{{.State.StartedAt}}"});

  // Acting in another namespace (the default one when none is named).
  for (const auto& [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", "/api/v1/containers/e2e-alpha", ""},
           {"GET", "/api/v1/containers/e2e-alpha/logs", ""},
           {"GET", "/api/v1/containers/e2e-alpha/logs?follow=true&namespace=beta", ""},
           {"POST", "/api/v1/containers/e2e-alpha/stop", R"({"timeout_seconds":0})"},
           {"POST", "/api/v1/containers/e2e-alpha/restart?namespace=default", ""},
           {"POST", "/api/v1/containers/e2e-alpha/exec", R"({"cmd":["touch","/tmp/x"],"user":"1000","namespace":"beta"})"},
           {"POST", "/api/v1/containers/e2e-alpha/healthcheck/run", ""},
           {"DELETE", "/api/v1/containers/e2e-alpha?force=true", ""}}) {
    Answer a = Api(method, path, body);
    EXPECT_EQ(a.status, 403) << method << " " << path << ": " << a.body;
    EXPECT_NE(a.body.find(R"("rule":"namespace")"), std::string::npos) << path << ": " << a.body;
  }
  EXPECT_EQ(PodmanCli({"inspect", "e2e-alpha", "--format", "{{.State.StartedAt}}"}), started);
  EXPECT_EQ(Api("GET", "/api/v1/containers/e2e-alpha?namespace=alpha").status, 200);

  // Exec as the container's own user (root in busybox) is refused; a numeric uid runs.
  Answer root = Api("POST", "/api/v1/containers/e2e-alpha/exec?namespace=alpha", R"({"cmd":["touch","/root-was-here"]})");
  EXPECT_EQ(root.status, 403) << root.body;
  EXPECT_NE(root.body.find(R"("rule":"allow_exec_as_root")"), std::string::npos) << root.body;
  EXPECT_NE(PodmanCli({"exec", "e2e-alpha", "test", "-e", "/root-was-here"}).find("error"), std::string::npos);
  Answer user = Api("POST", "/api/v1/containers/e2e-alpha/exec?namespace=alpha", R"({"cmd":["id","-u"],"user":"1000"})");
  EXPECT_EQ(user.status, 200) << user.body;

  // A container coold did not create.
  PodmanCli({"run", "-d", "--name", "e2e-infra", "--runtime", "runc", "localhost/busybox:latest", "sleep", "300"});
  const std::string infra_started = PodmanCli({"inspect", "e2e-infra", "--format", "{{.State.StartedAt}}"});
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/v1/containers/e2e-infra"},
           {"GET", "/api/v1/containers/e2e-infra/logs"},
           {"POST", "/api/v1/containers/e2e-infra/stop"},
           {"POST", "/api/v1/containers/e2e-infra/exec"},
           {"DELETE", "/api/v1/containers/e2e-infra?force=true"}}) {
    Answer a = Api(method, path, method == "POST" && path.find("exec") != std::string::npos
                                     ? R"({"cmd":["true"],"user":"1000"})"
                                     : "");
    EXPECT_EQ(a.status, 403) << path << ": " << a.body;
    EXPECT_NE(a.body.find(R"("rule":"adopt_unlabelled")"), std::string::npos) << path << ": " << a.body;
  }
  EXPECT_EQ(PodmanCli({"inspect", "e2e-infra", "--format", "{{.State.StartedAt}}"}), infra_started);
  Answer listed = Api("GET", "/api/v1/host/containers");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.body.find("e2e-infra"), std::string::npos) << listed.body;
  EXPECT_NE(listed.body.find("e2e-alpha"), std::string::npos) << listed.body;
  EXPECT_NE(listed.body.find(R"("coolify.coold.namespace":"alpha")"), std::string::npos) << listed.body;

  // Nothing a caller says gets a container the host network or coold's labels.
  const std::string before = PodmanCli({"ps", "-a", "--format", "{{.Names}}"});
  Answer host = Api("POST", "/api/v1/containers", R"({"name":"e2e-host","image":"localhost/busybox:latest","hostNetwork":true})");
  EXPECT_EQ(host.status, 403) << host.body;
  EXPECT_NE(host.body.find(R"("rule":"allow_host_network")"), std::string::npos) << host.body;
  Answer forged = Api("POST", "/api/v1/containers",
                      R"({"name":"e2e-forged","image":"localhost/busybox:latest","labels":[{"key":"coolify.coold.namespace","value":"default"}]})");
  EXPECT_EQ(forged.status, 403) << forged.body;
  EXPECT_NE(forged.body.find(R"("rule":"reserved_labels")"), std::string::npos) << forged.body;
  EXPECT_EQ(PodmanCli({"ps", "-a", "--format", "{{.Names}}"}), before);

  EXPECT_EQ(Api("DELETE", "/api/v1/containers/e2e-alpha?force=true&namespace=alpha").status, 200);
  PodmanCli({"rm", "-f", "-t", "0", "e2e-infra"});
}

TEST_F(PodmanE2E, DeniedCreatesLeavePodmanUntouched) {
  const std::string before = PodmanCli({"ps", "-a", "--format", "{{.Names}}"});
  struct Case {
    const char* name;
    const char* spec;
    const char* field;
  } cases[] = {
      {"privileged", R"({"name":"bad1","image":"localhost/busybox:latest","privileged":true})", "privileged"},
      {"cap sys_admin", R"({"name":"bad2","image":"localhost/busybox:latest","cap_add":["sys_admin"]})", "cap_add"},
      {"bind /etc", R"({"name":"bad3","image":"localhost/busybox:latest","binds":[{"source":"/etc","destination":"/h"}]})",
       "binds"},
      {"host network", R"({"name":"bad4","image":"localhost/busybox:latest","host_network":true})", "host_network"},
      {"runtime", R"({"name":"bad5","image":"localhost/busybox:latest","runtime":"runsc"})", "runtime"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Answer answer = Api("POST", "/api/v1/containers", c.spec);
    EXPECT_EQ(answer.status, 403) << answer.body;
    EXPECT_NE(answer.body.find(std::string("\"field\":\"") + c.field), std::string::npos) << answer.body;
    EXPECT_NE(answer.body.find("\"rule\""), std::string::npos) << answer.body;
  }
  // Malformed, not merely forbidden: 400 naming the field.
  Answer path = Api("POST", "/api/v1/containers", R"({"name":"bad6","image":"localhost/busybox:latest","runtime":"/tmp/evil"})");
  EXPECT_EQ(path.status, 400) << path.body;
  EXPECT_NE(path.body.find("\"field\":\"runtime\""), std::string::npos) << path.body;
  EXPECT_EQ(PodmanCli({"ps", "-a", "--format", "{{.Names}}"}), before);

  // Allowed by the policy, but this Podman (4.3) runs its default, runc, whatever a create
  // names: refused once Podman shows what it made, which is removed.
  Answer crun = Api("POST", "/api/v1/containers", R"({"name":"bad7","image":"localhost/busybox:latest","runtime":"crun"})");
  EXPECT_EQ(crun.status, 502) << crun.body;
  EXPECT_NE(crun.body.find("runtime runc, not crun"), std::string::npos) << crun.body;
  EXPECT_EQ(PodmanCli({"ps", "-a", "--format", "{{.Names}}"}), before);
}

// The adversarial catalogue (tests/policy_catalogue/) through the live API: every case the
// REST API can express (baseline policy, a caller that is not coold) gets the verdict it
// gets from the engine and the audit tool, and Podman holds nothing from a refused one.
TEST_F(PodmanE2E, AdversarialCatalogueThroughTheLiveApi) {
  std::vector<std::string> paths;
  for (int i = 1; i < argc_; ++i) paths.push_back(argv_[i]);
  auto cases = policy::LoadCatalogue(paths);
  ASSERT_TRUE(cases.ok()) << cases.status();
  const std::string before = PodmanCli({"ps", "-a", "--format", "{{.Names}}"});
  int live = 0;
  for (const policy::CatalogueCase& c : *cases) {
    if (c.profile != "baseline" || !c.caller_namespace.empty()) continue;
    // An allowed bind needs its host path to exist, and the gatekeeper pins the real one;
    // this machine has none of the catalogue's host trees.
    if (c.outcome == policy::CatalogueCase::Outcome::kAllowed && c.request.find("\"binds\"") != std::string::npos) {
      continue;
    }
    SCOPED_TRACE(c.name);
    ++live;
    Answer answer = Api("POST", "/api/v1/containers", c.request);
    switch (c.outcome) {
      case policy::CatalogueCase::Outcome::kDenied:
        EXPECT_EQ(answer.status, 403) << answer.body;
        for (const auto& [rule, field] : c.violations) {
          EXPECT_NE(answer.body.find("\"field\":\"" + field + "\""), std::string::npos) << field << ": " << answer.body;
          EXPECT_NE(answer.body.find("\"rule\":\"" + rule + "\""), std::string::npos) << rule << ": " << answer.body;
        }
        break;
      case policy::CatalogueCase::Outcome::kInvalid:
        EXPECT_EQ(answer.status, 400) << answer.body;
        EXPECT_NE(answer.body.find(c.error_contains), std::string::npos) << answer.body;
        break;
      case policy::CatalogueCase::Outcome::kAllowed:
        // Allowed by policy; Podman may still refuse for its own reasons (an image this
        // host lacks), but never with the gatekeeper's 400 or 403.
        EXPECT_NE(answer.status, 400) << answer.body;
        EXPECT_NE(answer.status, 403) << answer.body;
        if (answer.status == 201) {
          auto name = answer.body.find("\"id\":\"");
          ASSERT_NE(name, std::string::npos);
          Api("DELETE", "/api/v1/containers/" + answer.body.substr(name + 7, 64) + "?force=true");
        }
        break;
    }
  }
  EXPECT_GE(live, 40) << "cases run through the live API";
  EXPECT_EQ(PodmanCli({"ps", "-a", "--format", "{{.Names}}"}), before);
}

// Reads from `fd` until `needle` shows up in what was read, for at most `limit`.
std::string ReadUntil(int fd, const std::string& needle, std::chrono::milliseconds limit) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (got.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

TEST_F(PodmanE2E, FollowedLogsStreamUntilTheCallerLeaves) {
  ASSERT_EQ(Api("POST", "/api/v1/containers",
                R"({"name":"e2e-follow","image":"localhost/busybox:latest",)"
                R"("command":["sh","-c","i=0; while true; do echo tick-$i; echo err-$i >&2; i=$((i+1)); sleep 0.2; done"]})")
                .status,
            201);
  const Answer started = Api("POST", "/api/v1/containers/e2e-follow/start");
  ASSERT_EQ(started.status, 200) << started.body;

  // A raw connection, so the test decides when the caller goes away.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kPort);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = std::string("GET /api/v1/containers/e2e-follow/logs?follow=true HTTP/1.1\r\n") +
                              "Host: coold\r\nAuthorization: Bearer " + kToken + "\r\n\r\n";
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  // Lines keep arriving while the container runs: tick-5 is written a second after start.
  std::string got = ReadUntil(fd, "tick-5", std::chrono::seconds(30));
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos) << got;
  EXPECT_NE(got.find("text/plain"), std::string::npos) << got;
  EXPECT_NE(got.find("tick-0"), std::string::npos) << got;
  EXPECT_NE(got.find("err-0"), std::string::npos) << got;
  EXPECT_NE(got.find("tick-5"), std::string::npos) << got;
  // Plain text: no multiplexing headers from Podman's stream reach the caller.
  EXPECT_EQ(got.find(std::string("\x01\x00\x00\x00", 4)), std::string::npos);
  EXPECT_EQ(got.find(std::string("\x02\x00\x00\x00", 4)), std::string::npos);

  // The caller leaves: the gatekeeper's follow ends (its thread and Podman connection).
  close(fd);
  EXPECT_TRUE(coold_->WaitForLog("podman stream verb=containers_logs status=CANCELLED")) << coold_->log();

  // The REST API keeps serving, and a new follow works as the first did.
  Answer tail = Api("GET", "/api/v1/containers/e2e-follow/logs?tail=2&timestamps=true");
  ASSERT_EQ(tail.status, 200) << tail.body;
  // timestamps=true prefixes each line with its RFC 3339 time, as `podman logs -t` does.
  EXPECT_NE(tail.body.find("T"), std::string::npos) << tail.body;
  EXPECT_NE(tail.body.find("Z tick-"), std::string::npos) << tail.body;

  ASSERT_EQ(Api("DELETE", "/api/v1/containers/e2e-follow?force=true").status, 200);
}

TEST_F(PodmanE2E, FollowedLogEndsWithTheContainer) {
  ASSERT_EQ(Api("POST", "/api/v1/containers",
                R"({"name":"e2e-follow-exit","image":"localhost/busybox:latest",)"
                R"("command":["sh","-c","echo one; echo two >&2; sleep 1; echo three"]})")
                .status,
            201);
  ASSERT_EQ(Api("POST", "/api/v1/containers/e2e-follow-exit/start").status, 200);
  // curl returns only when the body ends: the stream closes when the container stops.
  Answer follow = Api("GET", "/api/v1/containers/e2e-follow-exit/logs?follow=true");
  EXPECT_EQ(follow.status, 200) << follow.body;
  EXPECT_NE(follow.body.find("one"), std::string::npos) << follow.body;
  EXPECT_NE(follow.body.find("two"), std::string::npos) << follow.body;
  EXPECT_NE(follow.body.find("three"), std::string::npos) << follow.body;

  Answer missing = Api("GET", "/api/v1/containers/no-such-container/logs?follow=true");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_NE(missing.body.find("\"error\""), std::string::npos) << missing.body;
  Answer bad = Api("GET", "/api/v1/containers/e2e-follow-exit/logs?follow=maybe");
  EXPECT_EQ(bad.status, 400) << bad.body;

  ASSERT_EQ(Api("DELETE", "/api/v1/containers/e2e-follow-exit?force=true").status, 200);
}

TEST_F(PodmanE2E, PodmanGoneIs503AndCooldRecovers) {
  ASSERT_EQ(Api("GET", "/api/v1/host/info").status, 200);
  ASSERT_TRUE(harness_->StopService().ok());
  Answer down = Api("GET", "/api/v1/host/info");
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_NE(down.body.find("podman"), std::string::npos) << down.body;
  ASSERT_TRUE(harness_->StartService().ok());
  EXPECT_EQ(Api("GET", "/api/v1/host/info").status, 200);
}

}  // namespace
}  // namespace coolify

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  coolify::PodmanE2E::argc_ = argc;
  coolify::PodmanE2E::argv_ = argv;
  return RUN_ALL_TESTS();
}
