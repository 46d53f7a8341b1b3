// Coolify central's contract, end to end: the real broker, the real coold and an isolated
// real Podman, spoken to by a raw-socket client that writes the bytes central's client
// writes (HTTP/1.1, Connection: close, read to the end of the stream, no chunked
// decoding) for every verb of central's capability catalogue, and reads the answers the
// way central reads them. coold's firewall writer works in a private network namespace.
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <utility>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "boost/json.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"
#include "tests/coold_testing.h"
#include "tests/podman_harness/podman_harness.h"

namespace coolify::testing {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kHost[] = "host-127-0-0-1";

// central's host capability catalogue (its config/flux.php `host_capabilities`), the
// verbs its host tokens carry.
const std::vector<std::string>& CentralCatalogue() {
  static const auto* verbs = new std::vector<std::string>{
      "images.pull",      "images.list",        "images.delete",      "containers.create",
      "containers.start", "containers.stop",    "containers.restart", "containers.delete",
      "containers.inspect", "containers.list",  "containers.logs",    "containers.exec",
      "containers.healthcheck.run", "ingress.apply", "ingress.stop",  "firewall.allow",
      "firewall.revoke",  "firewall.list",      "firewall.reconcile", "coold.logs",
      "corrosion.tables", "host.jwt.set"};
  return *verbs;
}

// What central gets back from one exchange, read as central reads it.
struct CentralAnswer {
  std::string raw;      // every byte until the broker closed the connection
  int status = 0;       // from ^HTTP/\d(\.\d)? (\d{3})
  std::string headers;  // up to the blank line
  std::string body;     // after the first blank line, undecoded
  json::value payload;  // json_decode(body), null when it is not JSON
};

// A fresh v4 UUID as Str::uuid() spells it.
std::string Uuid() {
  static unsigned counter = 0;
  return absl::StrFormat("%08x-0000-4000-8000-%012x", getpid(), ++counter);
}

class CentralContractTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto harness = PodmanHarness::Start();
    ASSERT_TRUE(harness.ok()) << harness.status();
    harness_ = std::move(*harness).release();
    // An image whose own command serves, like the nginx images central deploys: central
    // sends no command.
    ASSERT_TRUE(harness_->Podman({"create", "--name", "contract-seed", PodmanHarness::kBusyboxImage}).ok());
    auto committed = harness_->Podman({"commit", "--change",
                                       R"(CMD ["sh","-c","echo web-started; echo web-warning >&2; exec httpd -f -p 80"])",
                                       "contract-seed", "localhost/web:latest"});
    ASSERT_TRUE(committed.ok()) << committed.status();
    ASSERT_TRUE(harness_->Podman({"rm", "contract-seed"}).ok());
    // The namespaces' bridges exist before their first container, as on a provisioned host.
    ASSERT_TRUE(harness_->Podman({"network", "create", "coolify-default-mesh"}).ok());
    ASSERT_TRUE(harness_->Podman({"network", "create", "coolify-shop-mesh"}).ok());

    // coold (and so its firewall writer) in a private network namespace; Podman keeps its own.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "needs root: " << strerror(errno);
    ASSERT_EQ(Shell("ip link set lo up").status, 0);

    keys_ = new TestKeys();
    socket_ = keys_->Path("broker.sock");
    const int port = FreeLoopbackPort();
    broker_ = new BrokerUnderTest({"BROKER_UNIX_SOCKET=" + socket_, absl::StrCat("BROKER_GRPC_BIND=127.0.0.1:", port),
                                   "BROKER_TLS_CERT=" + keys_->Path("tls.crt"),
                                   "BROKER_TLS_KEY=" + keys_->Path("tls.key"), "BROKER_JWT_KEYS=" + keys_->KeySpec()});
    ASSERT_TRUE(broker_->listening()) << broker_->log();
    // The token central mints: exactly its catalogue as caps.
    token_ = SignJwt("ES256", "es", keys_->Read("es.key"), Claims(kHost, CentralCatalogue()));
    std::ofstream(keys_->Path("host-jwt")) << token_;
    ASSERT_EQ(chmod(keys_->Path("host-jwt").c_str(), 0600), 0);
    ASSERT_EQ(Shell("sed 's/^default_runtime: \"crun\"/default_runtime: \"runc\"/' " +
                    Runfile("policy/baseline.textproto") + " > " + keys_->Path("policy.textproto") +
                    " && chmod 0644 " + keys_->Path("policy.textproto"))
                  .status,
              0);
    coold_ = new CooldUnderTest({
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        absl::StrCat("COOLD_BROKER_URL=grpcs://localhost:", port, "/v1/agent"),
        "COOLD_BROKER_TOKEN_FILE=" + keys_->Path("host-jwt"),
        "COOLD_BROKER_CA_FILE=" + keys_->Path("tls.crt"),
        "COOLD_PODMAN_SOCKET=" + harness_->socket_path(),
        "COOLD_POLICY_FILE=" + keys_->Path("policy.textproto"),
        "COOLD_RULES_PATH=" + keys_->Path("etc/allow.rules"),
        "COOLD_BRIDGE_RULES_PATH=" + keys_->Path("etc/allow.nft"),
    });
    ASSERT_TRUE(coold_->WaitForLog("broker stream open")) << coold_->log();
    ASSERT_TRUE(WaitForHosts(socket_, 1)) << broker_->log() << coold_->log();
  }

  static void TearDownTestSuite() {
    delete coold_;
    delete broker_;
    delete keys_;
    delete harness_;
  }

  // One exchange on a new connection, bytes as central's client writes them; everything
  // until the broker closes the connection is the answer. A broker that kept the
  // connection open would leave central waiting: that fails here after central's own
  // dispatch timeout (config flux.dispatch_timeout_seconds, 35 s).
  static CentralAnswer Exchange(const std::string& request) {
    CentralAnswer answer;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_.c_str());
    timeval timeout{35, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << strerror(errno);
    EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    char buffer[65536];
    for (;;) {
      ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n > 0) {
        answer.raw.append(buffer, static_cast<size_t>(n));
        continue;
      }
      EXPECT_EQ(n, 0) << "the broker did not close the connection: " << strerror(errno) << "\n" << answer.raw;
      break;
    }
    close(fd);
    std::smatch match;
    if (std::regex_search(answer.raw, match, std::regex(R"(^HTTP/\d(?:\.\d)?\s+(\d{3}))"))) {
      answer.status = std::stoi(match[1]);
    }
    const size_t blank = answer.raw.find("\r\n\r\n");
    if (blank != std::string::npos) {
      answer.headers = answer.raw.substr(0, blank);
      answer.body = answer.raw.substr(blank + 4);
    }
    json::error_code ec;
    answer.payload = json::parse(answer.body, ec);
    if (ec) answer.payload = nullptr;
    // Central never decodes chunked framing: a body must arrive as it is.
    EXPECT_THAT(answer.headers, Not(HasSubstr("chunked"))) << answer.raw;
    return answer;
  }

  // FluxClient::dispatch: POST /v1/coold/dispatch with {"host_id","request_id","command"}.
  CentralAnswer Dispatch(const std::string& command_json, std::string* request_id = nullptr) {
    const std::string id = Uuid();
    if (request_id != nullptr) *request_id = id;
    const std::string body =
        absl::StrCat(R"({"host_id":")", kHost, R"(","request_id":")", id, R"(","command":)", command_json, "}");
    CentralAnswer answer = Exchange(absl::StrCat("POST /v1/coold/dispatch HTTP/1.1\r\n", "Host: flux\r\n",
                                                 "Accept: application/json\r\n", "Content-Type: application/json\r\n",
                                                 "Content-Length: ", body.size(), "\r\n", "Connection: close\r\n",
                                                 "\r\n", body));
    json::error_code ec;
    json::value command = json::parse(command_json, ec);
    if (!ec && command.is_object() && command.as_object().contains("type")) {
      exercised_.insert(std::string(command.as_object().at("type").as_string()));
    }
    // Every envelope, error or not, names the request it answers.
    if (answer.payload.is_object()) {
      const json::object& o = answer.payload.as_object();
      EXPECT_TRUE(o.contains("request_id") && o.at("request_id") == json::value(id)) << answer.raw;
      EXPECT_TRUE(o.contains("status")) << answer.raw;
    } else {
      ADD_FAILURE() << "not a JSON envelope: " << answer.raw;
    }
    return answer;
  }

  // What central's FluxClient accepts as success: a 2xx and "status" other than "error".
  static bool Succeeded(const CentralAnswer& answer) {
    return answer.status >= 200 && answer.status < 300 && answer.payload.is_object() &&
           answer.payload.as_object().at("status") != json::value("error");
  }
  static const json::value& Data(const CentralAnswer& answer) { return answer.payload.as_object().at("data"); }
  static std::string Message(const CentralAnswer& answer) {
    const json::value* m = answer.payload.is_object() ? answer.payload.as_object().if_contains("message") : nullptr;
    return m != nullptr && m->is_string() ? std::string(m->as_string()) : "";
  }
  // FluxClient::dispatchException: a 501, or this wording, is UnsupportedCooldVerb.
  static bool Unsupported(const CentralAnswer& answer) {
    return answer.status == 501 ||
           std::regex_search(Message(answer), std::regex("primitive .+ is not supported by host", std::regex::icase));
  }

  static std::string PodmanCli(const std::vector<std::string>& args) {
    auto out = harness_->Podman(args);
    return out.ok() ? *out : std::string("error: ") + std::string(out.status().message());
  }

  static inline PodmanHarness* harness_ = nullptr;
  static inline TestKeys* keys_ = nullptr;
  static inline BrokerUnderTest* broker_ = nullptr;
  static inline CooldUnderTest* coold_ = nullptr;
  static inline std::string socket_;
  static inline std::string token_;
  static inline std::set<std::string> exercised_;
};

TEST_F(CentralContractTest, HealthIsWhatFluxHealthRequires) {
  CentralAnswer health = Exchange("GET /v1/health HTTP/1.1\r\nHost: flux\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(health.raw.rfind("HTTP/1.1 200", 0), 0u) << health.raw;
  ASSERT_TRUE(health.payload.is_object()) << health.raw;
  EXPECT_EQ(health.payload.as_object().at("ok"), json::value(true)) << health.raw;
}

// The nginx deploy (DeployNginxApplication), the status refresh (containers.list), the
// logs view and the ingress and connection firewall syncs, in central's order.
TEST_F(CentralContractTest, EveryVerbOfTheCatalogueAnswersAsCentralReadsIt) {
  // ---- deploy
  ASSERT_TRUE(Succeeded(Dispatch(R"({"type":"images.pull","reference":"localhost/web:latest"})")));
  CentralAnswer created = Dispatch(R"({"type":"containers.create","name":"web","image":"localhost/web:latest",)"
                                   R"("networks":["coolify-default-mesh"],"network_aliases":["web"],)"
                                   R"("dns_search":["default.coolify.internal"],"restart_policy":"unless-stopped"})");
  ASSERT_TRUE(Succeeded(created)) << created.raw << coold_->log();
  ASSERT_TRUE(Data(created).as_object().at("id").is_string());
  const std::string id(Data(created).as_object().at("id").as_string());
  ASSERT_FALSE(id.empty());
  // Podman holds what central asked for: the alias on the mesh and the search domain.
  EXPECT_THAT(PodmanCli({"inspect", "web", "--format", "{{.HostConfig.DnsSearch}}"}),
              HasSubstr("default.coolify.internal"));
  EXPECT_THAT(PodmanCli({"inspect", "web", "--format",
                         "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.Aliases}} {{end}}"}),
              HasSubstr("coolify-default-mesh=[web"));
  ASSERT_TRUE(Succeeded(Dispatch(absl::StrCat(R"({"type":"containers.start","id":")", id, R"("})"))));
  CentralAnswer inspected = Dispatch(absl::StrCat(R"({"type":"containers.inspect","id":")", id, R"("})"));
  ASSERT_TRUE(Succeeded(inspected));
  EXPECT_EQ(Data(inspected).as_object().at("State").as_object().at("Running"), json::value(true));

  // A second container of the default namespace, and one of another namespace.
  ASSERT_TRUE(Succeeded(Dispatch(R"({"type":"containers.create","name":"api","image":"localhost/web:latest",)"
                                 R"("networks":["coolify-default-mesh"],"network_aliases":["api"]})")));
  ASSERT_TRUE(Succeeded(Dispatch(R"({"type":"containers.start","id":"api"})")));
  const std::string shop_create = R"({"type":"containers.create","name":"shopdb","image":"localhost/web:latest",)"
                                  R"("namespace":"shop","networks":["coolify-shop-mesh"]})";
  ASSERT_TRUE(Succeeded(Dispatch(shop_create))) << coold_->log();
  ASSERT_TRUE(Succeeded(Dispatch(R"({"type":"containers.start","id":"shopdb","namespace":"shop"})")));

  // ---- status refresh: one entry per container, in central's shape
  CentralAnswer listed = Dispatch(R"({"type":"containers.list"})");
  ASSERT_TRUE(Succeeded(listed)) << listed.raw;
  ASSERT_TRUE(Data(listed).is_array()) << listed.raw;
  const json::object* web = nullptr;
  for (const json::value& entry : Data(listed).as_array()) {
    if (entry.as_object().at("name") == json::value("web")) web = &entry.as_object();
  }
  ASSERT_NE(web, nullptr) << listed.raw;
  EXPECT_EQ(web->at("id"), json::value(id));
  EXPECT_EQ(web->at("state"), json::value("running"));
  EXPECT_EQ(web->at("image"), json::value("localhost/web:latest"));
  EXPECT_EQ(web->at("networks"), json::array({"coolify-default-mesh"}));

  // ---- logs: one text
  CentralAnswer logs;
  for (int i = 0; i < 50; ++i) {
    logs = Dispatch(absl::StrCat(R"({"type":"containers.logs","id":")", id, R"(","tail":200,"stdout":true,"stderr":true})"));
    if (Succeeded(logs) && std::string(Data(logs).as_object().at("output").as_string()).find("web-warning") != std::string::npos) break;
    usleep(100000);
  }
  ASSERT_TRUE(Succeeded(logs)) << logs.raw;
  EXPECT_THAT(std::string(Data(logs).as_object().at("output").as_string()), HasSubstr("web-started"));
  EXPECT_THAT(std::string(Data(logs).as_object().at("output").as_string()), HasSubstr("web-warning"));

  // ---- the ingress's firewall rule (StartCaddyIngress): caller id, CIDR source, named target
  const std::string web_ip = PodmanCli({"inspect", "web", "--format",
                                        R"({{(index .NetworkSettings.Networks "coolify-default-mesh").IPAddress}})"});
  ASSERT_THAT(web_ip, ::testing::ContainsRegex("^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+"));
  const std::string web_address = web_ip.substr(0, web_ip.find_first_of(" \n"));
  CentralAnswer allowed = Dispatch(R"({"type":"firewall.allow","id":"v5-caddy-ingress:80","namespace":"default",)"
                                   R"("src":"0.0.0.0/0","dst":"web","proto":"tcp","port":80})");
  ASSERT_TRUE(Succeeded(allowed)) << allowed.raw;
  EXPECT_EQ(Data(allowed).as_object().at("id"), json::value("v5-caddy-ingress:80"));
  EXPECT_THAT(Shell("iptables-save -t filter").out,
              HasSubstr(absl::StrCat("-d ", web_address, "/32 -p tcp -m tcp --dport 80 -m comment --comment \"v5-caddy-ingress:80\" -j ACCEPT")));
  // Allowed again, as every ingress start does: the same id, nothing added.
  EXPECT_TRUE(Succeeded(Dispatch(R"({"type":"firewall.allow","id":"v5-caddy-ingress:80","namespace":"default",)"
                                 R"("src":"0.0.0.0/0","dst":"web","proto":"tcp","port":80})")));
  // A connection rule (ConnectionFirewallSync): both ends named.
  CentralAnswer connection = Dispatch(R"({"type":"firewall.allow","id":"v5-resource-connection:1:1:2:tcp:5432",)"
                                      R"("namespace":"default","src":"api","dst":"web","proto":"tcp","port":5432})");
  ASSERT_TRUE(Succeeded(connection)) << connection.raw;
  // A name never reaches another namespace's container, nor a container that is not there.
  CentralAnswer foreign = Dispatch(R"({"type":"firewall.allow","id":"v5-x:1","namespace":"default",)"
                                   R"("src":"api","dst":"shopdb","proto":"tcp","port":5432})");
  EXPECT_EQ(foreign.status, 400) << foreign.raw;
  EXPECT_THAT(Message(foreign), HasSubstr("dst: container shopdb is not one of namespace default's containers"));
  CentralAnswer missing = Dispatch(R"({"type":"firewall.allow","id":"v5-x:1","namespace":"default",)"
                                   R"("src":"api","dst":"nobody","proto":"tcp","port":5432})");
  EXPECT_EQ(missing.status, 400) << missing.raw;
  EXPECT_THAT(Shell("iptables-save -t filter").out, Not(HasSubstr("v5-x:1")));
  // A rule without an id keeps the Go CLI's derived id.
  CentralAnswer derived = Dispatch(R"({"type":"firewall.allow","namespace":"default","src":"10.210.5.2",)"
                                   R"("dst":"10.210.6.3","proto":"tcp","port":80})");
  ASSERT_TRUE(Succeeded(derived));
  const std::string derived_id =
      Shell("printf '%s' 'default|10.210.5.2|10.210.6.3|tcp|80' | sha256sum | cut -c1-12").out.substr(0, 12);
  EXPECT_EQ(Data(derived).as_object().at("id"), json::value(derived_id));

  // ---- firewall.list: the data is the list, with the callers' ids
  CentralAnswer rules = Dispatch(R"({"type":"firewall.list","namespace":""})");
  ASSERT_TRUE(Succeeded(rules)) << rules.raw;
  ASSERT_TRUE(Data(rules).is_array()) << rules.raw;
  std::set<std::string> ids;
  for (const json::value& rule : Data(rules).as_array()) {
    ids.insert(std::string(rule.as_object().at("id").as_string()));
    if (rule.as_object().at("id") == json::value("v5-caddy-ingress:80")) {
      EXPECT_EQ(rule.as_object().at("dst"), json::value(web_address));
      EXPECT_EQ(rule.as_object().at("namespace"), json::value("default"));
      EXPECT_EQ(rule.as_object().at("port"), json::value(80));
    }
  }
  EXPECT_EQ(ids, (std::set<std::string>{"v5-caddy-ingress:80", "v5-resource-connection:1:1:2:tcp:5432", derived_id}));

  // ---- revoke by the caller's id; a second revoke is "not found", which central skips
  ASSERT_TRUE(Succeeded(Dispatch(R"({"type":"firewall.revoke","id":"v5-caddy-ingress:80"})")));
  EXPECT_THAT(Shell("iptables-save -t filter").out, Not(HasSubstr("v5-caddy-ingress:80")));
  CentralAnswer again = Dispatch(R"({"type":"firewall.revoke","id":"v5-caddy-ingress:80"})");
  EXPECT_EQ(again.status, 404) << again.raw;
  EXPECT_THAT(Message(again), HasSubstr("not found"));
  EXPECT_FALSE(Unsupported(again));

  // ---- reconcile to the full desired set
  CentralAnswer reconciled = Dispatch(R"({"type":"firewall.reconcile","rules":[{"namespace":"default",)"
                                      R"("src":"10.210.5.2","dst":"10.210.6.3","proto":"tcp","port":80}]})");
  ASSERT_TRUE(Succeeded(reconciled)) << reconciled.raw;
  EXPECT_EQ(Data(reconciled).as_object().at("removed"), json::array({"v5-resource-connection:1:1:2:tcp:5432"}));

  // ---- the rest of the container verbs
  // Exec as root (the image's own user here) is the policy's to allow; baseline does not.
  CentralAnswer as_root = Dispatch(absl::StrCat(R"({"type":"containers.exec","id":")", id, R"(","command":["true"]})"));
  EXPECT_EQ(as_root.status, 403) << as_root.raw;
  CentralAnswer exec = Dispatch(absl::StrCat(R"({"type":"containers.exec","id":")", id,
                                             R"(","command":["sh","-c","echo hi; exit 3"],"user":"1000"})"));
  ASSERT_TRUE(Succeeded(exec)) << exec.raw;
  EXPECT_EQ(Data(exec).as_object().at("exit_code"), json::value(3));
  CentralAnswer health_run = Dispatch(absl::StrCat(R"({"type":"containers.healthcheck.run","id":")", id, R"("})"));
  EXPECT_FALSE(Unsupported(health_run)) << health_run.raw;  // no healthcheck defined: Podman's own refusal
  EXPECT_TRUE(Succeeded(Dispatch(absl::StrCat(R"({"type":"containers.restart","id":")", id, R"("})"))));
  // As central's clean-up does: stop (httpd as PID 1 ignores SIGTERM), then remove.
  for (const auto& [name, ns] : {std::pair{"web", "default"}, std::pair{"api", "default"}, std::pair{"shopdb", "shop"}}) {
    EXPECT_TRUE(Succeeded(Dispatch(absl::StrCat(R"({"type":"containers.stop","id":")", name, R"(","namespace":")", ns,
                                                R"(","timeout_seconds":1})"))));
    EXPECT_TRUE(Succeeded(Dispatch(absl::StrCat(R"({"type":"containers.delete","id":")", name, R"(","namespace":")", ns,
                                                R"(","force":true})"))));
  }
  CentralAnswer images = Dispatch(R"({"type":"images.list"})");
  EXPECT_TRUE(Succeeded(images));
  EXPECT_THAT(images.body, HasSubstr("localhost/web"));
  CentralAnswer deleted_image = Dispatch(R"({"type":"images.delete","reference":"localhost/web:latest","force":true})");
  EXPECT_TRUE(Succeeded(deleted_image)) << deleted_image.raw;

  // ---- coold's own log lines: one text, and no secret in it
  CentralAnswer own = Dispatch(R"({"type":"coold.logs","tail":200})");
  ASSERT_TRUE(Succeeded(own)) << own.raw;
  const std::string own_output(Data(own).as_object().at("output").as_string());
  EXPECT_THAT(own_output, HasSubstr("broker stream open"));
  EXPECT_THAT(own_output, Not(HasSubstr(token_.substr(0, 40))));
  CentralAnswer one = Dispatch(R"({"type":"coold.logs","tail":1})");
  ASSERT_TRUE(Succeeded(one));
  EXPECT_EQ(Data(one).as_object().at("lines").as_array().size(), 1u);

  // ---- what no coold serves: 501, in the wording central degrades on
  for (const char* command :
       {R"({"type":"ingress.apply","kind":"caddy","config":":80 {\n}\n","apps":[{"name":"web","config":"web.example {\n}\n"}],"mesh_network":"coolify-default-mesh"})",
        R"({"type":"ingress.stop","kind":"caddy"})", R"({"type":"corrosion.tables","limit":200})",
        R"({"type":"host.jwt.set","jwt":"e30.e30.sig"})"}) {
    CentralAnswer unsupported = Dispatch(command);
    EXPECT_EQ(unsupported.status, 501) << unsupported.raw;
    EXPECT_TRUE(Unsupported(unsupported)) << unsupported.raw;
    const std::string verb(json::parse(command).as_object().at("type").as_string());
    // host.jwt.set is served by a coold that holds central's keys (COOLD_BROKER_JWT_KEYS),
    // which this one does not: the broker says so, naming the host after the same words.
    EXPECT_THAT(Message(unsupported), ::testing::StartsWith(absl::StrCat("primitive ", verb, " is not supported by host")))
        << unsupported.raw;
  }

  // Every verb of the catalogue went through the broker above.
  for (const std::string& verb : CentralCatalogue()) EXPECT_TRUE(exercised_.count(verb) > 0) << verb;
}

TEST_F(CentralContractTest, ErrorsEchoTheRequestIdEvenWhenTheCommandDoesNotParse) {
  std::string id;
  CentralAnswer bad = Dispatch(R"({"type":"containers.create","image":"localhost/web:latest","no_such_field":1})", &id);
  EXPECT_EQ(bad.status, 400) << bad.raw;
  EXPECT_EQ(bad.payload.as_object().at("request_id"), json::value(id));
  EXPECT_EQ(bad.payload.as_object().at("status"), json::value("error"));
  EXPECT_EQ(bad.payload.as_object().at("code"), json::value(400));
  EXPECT_THAT(Message(bad), HasSubstr("no_such_field"));
  CentralAnswer refused = Dispatch(R"({"type":"containers.create","image":"localhost/web:latest","privileged":true})", &id);
  EXPECT_EQ(refused.status, 403) << refused.raw;
  EXPECT_EQ(refused.payload.as_object().at("request_id"), json::value(id));
}

}  // namespace
}  // namespace coolify::testing
