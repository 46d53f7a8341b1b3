// Metrics and logs end to end: the real broker and the real coold (REST API, DNS on a real
// bridge, the broker stream, the build lane) in a private network namespace. Requests go
// through both edges; each /metrics is read back with the exposition parser and the
// counters the requests should move are checked by name and labels. The logs of both
// processes are checked for the request and event lines, and for every secret the
// requests carried: none may appear.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/metrics/exposition_parse.h"
#include "tests/broker/broker_testing.h"
#include "tests/coold_testing.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "metrics-e2e-token-0123456789";
constexpr char kGateway[] = "10.210.9.1";
constexpr char kHost[] = "host-127-0-0-1";

class MetricsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Before any thread exists: the namespace is per thread until then.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "needs root: " << strerror(errno);
    ASSERT_EQ(Shell(absl::StrCat("ip link set lo up && ip link add coolbr9 type bridge && ip addr add ", kGateway,
                                 "/24 dev coolbr9 && ip link set coolbr9 up"))
                  .status,
              0);
  }

  void SetUp() override {
    grpc_port_ = FreeLoopbackPort();
    api_port_ = FreeLoopbackPort();
    socket_ = keys_.Path("broker.sock");
    broker_ = std::make_unique<BrokerUnderTest>(std::vector<std::string>{
        "BROKER_UNIX_SOCKET=" + socket_, absl::StrCat("BROKER_GRPC_BIND=127.0.0.1:", grpc_port_),
        "BROKER_TLS_CERT=" + keys_.Path("tls.crt"), "BROKER_TLS_KEY=" + keys_.Path("tls.key"),
        "BROKER_JWT_KEYS=" + keys_.KeySpec()});
    ASSERT_TRUE(broker_->listening()) << broker_->log();
    host_jwt_ = SignJwt("ES256", "es", keys_.Read("es.key"), Claims(kHost, AllCaps()));
    WriteSecret("host-jwt", host_jwt_);
    WriteSecret("token", kToken);
    StartCoold();
  }

  void WriteSecret(const std::string& name, const std::string& content) {
    int fd = open(keys_.Path(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(fd);
  }

  void StartCoold() {
    coold_ = std::make_unique<CooldUnderTest>(std::vector<std::string>{
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        absl::StrCat("COOLD_BROKER_URL=grpcs://localhost:", grpc_port_, "/v1/agent"),
        "COOLD_BROKER_TOKEN_FILE=" + keys_.Path("host-jwt"),
        "COOLD_BROKER_CA_FILE=" + keys_.Path("tls.crt"),
        absl::StrCat("COOLD_API_BIND=127.0.0.1:", api_port_),
        "COOLD_API_TOKEN_FILE=" + keys_.Path("token"),
        absl::StrCat("COOLD_NAMESPACES=default:coolify-default-mesh:", kGateway),
        // Nothing listens there: out-of-zone names are SERVFAIL.
        "COOLD_DNS_UPSTREAM=127.0.0.1:5",
        "COOLD_BUILDER_ENABLED=1",
        "COOLD_BUILDS_DIR=" + keys_.Path("builds"),
        // No Podman: policy refusals come before the gatekeeper would reach it.
        "COOLD_PODMAN_SOCKET=" + keys_.Path("no-podman.sock"),
        "COOLD_RULES_PATH=" + keys_.Path("etc/allow.rules"),
        "COOLD_BRIDGE_RULES_PATH=" + keys_.Path("etc/allow.nft"),
    });
    ASSERT_TRUE(coold_->WaitForLog("REST API on")) << coold_->log();
    ASSERT_TRUE(coold_->WaitForLog("broker stream open")) << coold_->log();
    ASSERT_TRUE(WaitForHosts(socket_, 1)) << broker_->log() << coold_->log();
    // The DNS listener binds on its own thread, possibly after the API is up.
    bool serving = false;
    for (int i = 0; i < 100 && !serving; ++i) {
      serving = Api("GET", "/api/v1/dns/stats").body.find("\"serving\":true") != std::string::npos;
      if (!serving) usleep(50 * 1000);
    }
    ASSERT_TRUE(serving) << coold_->log();
  }

  RestAnswer Api(const std::string& method, const std::string& path, const std::string& body = "") {
    return RestCall(api_port_, kToken, method, path, body);
  }

  HttpAnswer Dispatch(const std::string& id, const std::string& command) {
    return UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                    absl::StrCat(R"({"host_id":")", kHost, R"(","request_id":")", id, R"(","command":)", command, "}"));
  }

  metrics::Exposition BrokerMetrics() {
    HttpAnswer answer = UnixHttp(socket_, "GET", "/metrics");
    EXPECT_EQ(answer.status, 200) << answer.body;
    absl::StatusOr<metrics::Exposition> parsed = metrics::ParseExposition(answer.body);
    EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << answer.body;
    return parsed.ok() ? *parsed : metrics::Exposition{};
  }

  metrics::Exposition CooldMetrics() {
    RestAnswer answer = Api("GET", "/metrics");
    EXPECT_EQ(answer.status, 200) << answer.body;
    absl::StatusOr<metrics::Exposition> parsed = metrics::ParseExposition(answer.body);
    EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << answer.body;
    return parsed.ok() ? *parsed : metrics::Exposition{};
  }

  std::string Dig(const std::string& name) {
    return Shell(absl::StrCat("dig +tries=1 +time=2 @", kGateway, " ", name, " A")).out;
  }

  TestKeys keys_;
  int grpc_port_ = 0;
  int api_port_ = 0;
  std::string socket_;
  std::string host_jwt_;
  std::unique_ptr<BrokerUnderTest> broker_;
  std::unique_ptr<CooldUnderTest> coold_;
};

TEST_F(MetricsE2E, CooldsMetricsNeedTheBearerToken) {
  const std::string url = absl::StrCat("http://127.0.0.1:", api_port_, "/metrics");
  EXPECT_EQ(Shell("curl -s -o /dev/null -w '%{http_code}' " + url).out, "401");
  EXPECT_EQ(Shell("curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong-token-0123456789' " + url).out,
            "401");
  EXPECT_EQ(Api("GET", "/metrics").status, 200);
}

TEST_F(MetricsE2E, CountersMoveAsRequestsAreAnswered) {
  const metrics::Exposition broker_before = BrokerMetrics();
  const metrics::Exposition coold_before = CooldMetrics();
  EXPECT_EQ(broker_before.Sum("broker_connected_hosts"), 1);
  EXPECT_EQ(broker_before.Sum("broker_host_streams_opened_total"), 1);

  // Firewall: one allow applied through the broker, one refused by policy over REST.
  HttpAnswer allowed = Dispatch("fw-1", R"({"type":"firewall.allow","namespace":"default","src":"10.210.5.2","dst":"10.210.6.3","proto":"tcp","port":80})");
  ASSERT_LT(allowed.status, 300) << allowed.body << coold_->log();
  RestAnswer outside = Api("POST", "/api/v1/firewall/allow",
                           R"({"namespace":"default","src":"10.210.5.2","dst":"8.8.8.8","proto":"tcp","port":80})");
  EXPECT_EQ(outside.status, 403) << outside.body;
  // An unknown host: refused by the broker itself.
  HttpAnswer nowhere = UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                                R"({"host_id":"host-nowhere","request_id":"fw-2","command":{"type":"firewall.list"}})");
  EXPECT_EQ(nowhere.status, 404) << nowhere.body;

  // A create the policy denies: the gatekeeper answers before it would reach Podman.
  RestAnswer denied = Api("POST", "/api/v1/containers",
                          R"({"name":"web","namespace":"default","image":"localhost/web:v1","privileged":true})");
  ASSERT_EQ(denied.status, 403) << denied.body;
  EXPECT_THAT(denied.body, HasSubstr(R"("rule":"allow_privileged")"));

  // DNS: a registered name answers, an unknown one is NXDOMAIN, the bare form too.
  RestAnswer registered = Api("POST", "/api/v1/services/register",
                              R"({"service_id":"shop","namespace":"default","container_id":"0123456789ab",)"
                              R"("container_name":"web","ip":"10.210.9.20","port":80,"state":"running","health":"healthy"})");
  ASSERT_EQ(registered.status, 201) << registered.body;
  EXPECT_THAT(Dig("web.default.coolify.internal"), HasSubstr("status: NOERROR"));
  EXPECT_THAT(Dig("nothing.default.coolify.internal"), HasSubstr("status: NXDOMAIN"));
  EXPECT_THAT(Dig("web.coolify.internal"), HasSubstr("status: NXDOMAIN"));

  // A build that cannot clone (no network here) ends with an error outcome.
  HttpAnswer build = UnixHttp(socket_, "POST", "/v1/build/dispatch",
                              R"({"request_id":"b-1","command":{"type":"static_build","repo_url":"https://example.invalid/s.git","git_ref":"main","target_image":"localhost/default/s:1"}})");
  ASSERT_EQ(build.status, 202) << build.body;
  HttpAnswer result = PollBuildResult(socket_, "b-1", std::chrono::seconds(60));
  ASSERT_GE(result.status, 400) << result.body << coold_->log();

  const metrics::Exposition broker = BrokerMetrics();
  const metrics::Exposition coold = CooldMetrics();
  auto moved = [](const metrics::Exposition& after, const metrics::Exposition& before, const std::string& name,
                  const std::map<std::string, std::string>& labels) {
    return after.Sum(name, labels) - before.Sum(name, labels);
  };
  // The broker: each dispatch by verb and the status it answered, with its latency.
  EXPECT_EQ(moved(broker, broker_before, "broker_dispatches_total",
                  {{"verb", "firewall.allow"}, {"status", std::to_string(allowed.status)}}),
            1);
  EXPECT_EQ(moved(broker, broker_before, "broker_dispatches_total", {{"verb", "firewall.list"}, {"status", "404"}}), 1);
  EXPECT_EQ(moved(broker, broker_before, "broker_dispatch_duration_seconds_count", {{"verb", "firewall.allow"}}), 1);
  EXPECT_EQ(moved(broker, broker_before, "broker_build_dispatches_total", {{"status", "202"}}), 1);
  EXPECT_EQ(moved(broker, broker_before, "broker_uds_requests_total", {{"route", "dispatch"}}), 2);
  EXPECT_EQ(broker.types.at("broker_dispatch_duration_seconds"), "histogram");

  // coold: the commands of both lanes, the firewall, the policy, DNS and the build.
  EXPECT_EQ(moved(coold, coold_before, "coold_commands_total", {{"lane", "broker"}, {"verb", "firewall.allow"}}), 1);
  EXPECT_EQ(moved(coold, coold_before, "coold_commands_total",
                  {{"lane", "rest"}, {"verb", "firewall.allow"}, {"status", "403"}}),
            1);
  EXPECT_EQ(moved(coold, coold_before, "coold_commands_total",
                  {{"lane", "rest"}, {"verb", "containers.create"}, {"status", "403"}}),
            1);
  EXPECT_EQ(moved(coold, coold_before, "coold_firewall_mutations_total", {{"op", "allow"}, {"result", "applied"}}), 1);
  EXPECT_EQ(moved(coold, coold_before, "coold_firewall_mutations_total", {{"op", "allow"}, {"result", "refused"}}), 1);
  EXPECT_EQ(moved(coold, coold_before, "coold_policy_denials_total", {{"rule", "allow_privileged"}}), 1);
  EXPECT_GE(moved(coold, coold_before, "coold_dns_queries_total", {{"namespace", "default"}, {"rcode", "NOERROR"}}), 1);
  EXPECT_GE(moved(coold, coold_before, "coold_dns_queries_total", {{"namespace", "default"}, {"rcode", "NXDOMAIN"}}), 2);
  EXPECT_EQ(moved(coold, coold_before, "coold_builds_total", {}), 1);
  const std::string outcome = result.status == 499 ? "cancelled" : result.status == 504 ? "timed_out"
                              : result.status < 500                                     ? "failed"
                                                                                        : "error";
  EXPECT_EQ(moved(coold, coold_before, "coold_builds_total", {{"outcome", outcome}}), 1) << result.body;
  // A duration is observed for a build the launcher started; one it could not start (a
  // jail this test's host refuses) ends at once, at stage "dispatch".
  const bool started = result.body.find(R"("stage":"dispatch")") == std::string::npos;
  EXPECT_EQ(moved(coold, coold_before, "coold_build_duration_seconds_count", {{"outcome", outcome}}), started ? 1 : 0);

  // The request and event lines of both processes.
  EXPECT_TRUE(broker_->WaitForLog("host_id=host-127-0-0-1 request_id=fw-1 verb=firewall.allow")) << broker_->log();
  EXPECT_TRUE(broker_->WaitForLog("event=http_request server=uds method=POST path=/v1/coold/dispatch status="))
      << broker_->log();
  EXPECT_TRUE(coold_->WaitForLog("event=command lane=broker verb=firewall.allow status=201")) << coold_->log();
  EXPECT_TRUE(coold_->WaitForLog("event=http_request server=rest method=POST path=/api/v1/containers status=403"))
      << coold_->log();
  EXPECT_THAT(coold_->log(), ::testing::ContainsRegex(
                                 "event=http_request server=rest method=POST path=/api/v1/containers status=403 "
                                 "duration_ms=[0-9]+ verb=containers.create"));
  EXPECT_THAT(broker_->log(), ::testing::ContainsRegex(
                                  "event=http_request server=uds method=POST path=/v1/coold/dispatch status=[0-9]+ "
                                  "duration_ms=[0-9]+ host_id=host-127-0-0-1 request_id=fw-1 verb=firewall.allow"));

  // A reconnect: coold comes back after a crash; the broker counts the host again.
  coold_->Kill();
  coold_.reset();
  ASSERT_TRUE(WaitForHosts(socket_, 0)) << broker_->log();
  StartCoold();
  EXPECT_EQ(moved(BrokerMetrics(), broker_before, "broker_host_reconnects_total", {}), 1);
}

// Secrets that requests carry (the API token, env values, registry credentials, the host
// JWT) never reach either process's log, while the requests themselves are logged.
TEST_F(MetricsE2E, NoSecretReachesTheLogs) {
  const std::vector<std::string> secrets = {kToken, "env-secret-7305", "registry-password-7305",
                                            "registry-token-7305", "git-secret-7305", host_jwt_};
  RestAnswer create = Api("POST", "/api/v1/containers",
                          R"({"name":"web","namespace":"default","image":"localhost/web:v1","privileged":true,)"
                          R"("env":[{"key":"DB_PASSWORD","value":"env-secret-7305"}]})");
  EXPECT_EQ(create.status, 403) << create.body;
  RestAnswer pull = Api("POST", "/api/v1/images/pull",
                        R"({"ref":"registry.example.invalid/web:v1","auth":{"username":"u","password":"registry-password-7305"}})");
  EXPECT_GE(pull.status, 400) << pull.body;
  HttpAnswer exec = Dispatch("ex-1", R"({"type":"containers.exec","id":"web","cmd":["true"],"env":[{"key":"API_KEY","value":"env-secret-7305"}]})");
  EXPECT_GE(exec.status, 400) << exec.body;
  HttpAnswer pull_token = Dispatch("pl-1", R"({"type":"images.pull","ref":"registry.example.invalid/web:v1","auth":{"identity_token":"registry-token-7305"}})");
  EXPECT_GE(pull_token.status, 400) << pull_token.body;
  // Credentials in a build's repository URL: the build fails (no network here), and its
  // outcome and progress travel through both processes.
  HttpAnswer build = UnixHttp(socket_, "POST", "/v1/build/dispatch",
                              R"({"request_id":"b-7305","command":{"type":"static_build",)"
                              R"("repo_url":"https://deploy:git-secret-7305@example.invalid/s.git","git_ref":"main",)"
                              R"("target_image":"localhost/default/s:1"}})");
  ASSERT_EQ(build.status, 202) << build.body;
  HttpAnswer built = PollBuildResult(socket_, "b-7305", std::chrono::seconds(60));
  EXPECT_GE(built.status, 400) << built.body;
  // An Authorization header sent to the broker's socket, where none is looked at.
  std::string raw = UnixRaw(socket_, absl::StrCat("GET /v1/health HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer ",
                                                  kToken, "\r\nConnection: close\r\n\r\n"));
  EXPECT_THAT(raw, HasSubstr("200 OK"));
  // The token in a query is dropped from the request line with the rest of the query.
  EXPECT_EQ(Api("GET", absl::StrCat("/metrics?token=", kToken)).status, 400);

  ASSERT_TRUE(broker_->WaitForLog("host_id=host-127-0-0-1 request_id=pl-1")) << broker_->log();
  ASSERT_TRUE(coold_->WaitForLog("event=command lane=broker verb=images.pull")) << coold_->log();
  EXPECT_TRUE(coold_->WaitForLog("event=http_request server=rest method=POST path=/api/v1/images/pull status="));
  EXPECT_TRUE(coold_->WaitForLog("event=http_request server=rest method=GET path=/metrics status=400"));
  EXPECT_TRUE(broker_->WaitForLog("event=http_request server=uds method=GET path=/v1/health status=200"));
  // What coold.logs shows central is the same log: none there either. Its own lines are
  // the last either process writes here, so both logs are read whole after them.
  HttpAnswer logs = Dispatch("lg-1", R"({"type":"coold.logs","tail":1000})");
  EXPECT_EQ(logs.status, 200) << logs.body;
  ASSERT_TRUE(coold_->WaitForLog("event=command lane=broker verb=coold.logs")) << coold_->log();
  ASSERT_TRUE(broker_->WaitForLog("request_id=lg-1")) << broker_->log();
  EXPECT_THAT(logs.body, HasSubstr("event=http_request server=rest method=POST path=/api/v1/containers status=403"));
  for (const std::string& secret : secrets) {
    EXPECT_THAT(logs.body, Not(HasSubstr(secret))) << "coold.logs showed a secret";
    EXPECT_THAT(coold_->log(), Not(HasSubstr(secret))) << "coold logged a secret";
    EXPECT_THAT(broker_->log(), Not(HasSubstr(secret))) << "the broker logged a secret";
  }
}

}  // namespace
}  // namespace coolify::testing
