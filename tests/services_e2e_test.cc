// Service endpoints and DNS end to end: the real coold in a private network namespace
// with a real bridge, its REST API writing the SQLite store, its DNS listener (sockets
// opened by the monitor on the gateway) answering `dig`, and the rows surviving a restart.
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "gtest/gtest.h"
#include "tests/coold_testing.h"

namespace coolify {
namespace {

constexpr char kToken[] = "services-e2e-token-0123456789";
const int kPort = coolify::testing::FreeLoopbackPort();
constexpr char kGateway[] = "10.210.7.1";

using Answer = testing::RestAnswer;

Answer Api(const std::string& method, const std::string& path, const std::string& body = "") {
  return testing::RestCall(kPort, kToken, method, path, body);
}

// dig's short answer for `name` at the gateway ("" for none), and its status line.
std::string Dig(const std::string& name, const std::string& type = "A", const std::string& extra = "") {
  return testing::Shell("dig +tries=1 +time=2 " + extra + " @" + kGateway + " " + name + " " + type).out;
}

class ServicesE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(unshare(CLONE_NEWNET), 0);
    ASSERT_EQ(testing::Shell("ip link set lo up && ip link add coolbr0 type bridge && "
                             "ip addr add " + std::string(kGateway) + "/24 dev coolbr0 && ip link set coolbr0 up")
                  .status,
              0);
    dir_ = std::string(getenv("TEST_TMPDIR")) + "/services-e2e";
    ASSERT_EQ(testing::Shell("mkdir -p " + dir_ + "/etc").status, 0);
    std::ofstream(dir_ + "/token") << kToken;
    chmod((dir_ + "/token").c_str(), 0600);
    char db[] = "/tmp/coold-services-e2e.XXXXXX";
    ASSERT_NE(mkdtemp(db), nullptr);
    chmod(db, 0755);
    db_dir_ = db;
  }
  static void TearDownTestSuite() { testing::Shell("rm -rf '" + db_dir_ + "'"); }

  static std::unique_ptr<testing::CooldUnderTest> StartCoold() {
    auto coold = std::make_unique<testing::CooldUnderTest>(std::vector<std::string>{
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        "COOLD_HOST_ID=host-e2e",
        "COOLD_API_BIND=127.0.0.1:" + std::to_string(kPort),
        "COOLD_API_TOKEN_FILE=" + dir_ + "/token",
        "COOLD_RULES_PATH=" + dir_ + "/etc/allow.rules",
        "COOLD_BRIDGE_RULES_PATH=" + dir_ + "/etc/allow.nft",
        "COOLD_NAMESPACES=default:coolify-default-mesh:" + std::string(kGateway) + ",alpha:coolify-alpha-mesh:0.0.0.0",
        "COOLD_ENDPOINT_DB=" + db_dir_ + "/endpoints.db",
        // Nothing listens there: out-of-zone names must fail as SERVFAIL, not hang.
        "COOLD_DNS_UPSTREAM=127.0.0.1:5",
        // No Podman: the reconcile cannot list containers, so it writes nothing and rows
        // registered by hand stay (tests/sync_e2e_test.cc has the reconcile with Podman).
        "COOLD_PODMAN_SOCKET=" + db_dir_ + "/no-podman.sock",
    });
    EXPECT_TRUE(coold->WaitForLog("REST API on")) << coold->log();
    // The listener binds on its own thread, possibly after the API is up.
    bool serving = false;
    for (int i = 0; i < 100 && !serving; ++i) {
      serving = Api("GET", "/api/v1/dns/stats").body.find("\"serving\":true") != std::string::npos;
      if (!serving) usleep(50 * 1000);
    }
    EXPECT_TRUE(serving) << coold->log();
    return coold;
  }

  static inline std::string dir_;
  static inline std::string db_dir_;
};

TEST_F(ServicesE2E, RegisteredEndpointsAnswerDnsAndSurviveARestart) {
  auto coold = StartCoold();
  // The listener is on the gateway only, never the wildcard.
  std::string listening = testing::Shell("ss -lnu 'sport = :53'").out;
  EXPECT_NE(listening.find(std::string(kGateway) + ":53"), std::string::npos) << listening;
  EXPECT_EQ(listening.find("0.0.0.0:53"), std::string::npos) << listening;

  Answer reg = Api("POST", "/api/v1/services/register",
                   R"({"service_id":"shop","namespace":"default","container_id":"0123456789ab",)"
                   R"("container_name":"web","ip":"10.210.7.20","port":8080,"state":"running","health":"healthy"})");
  ASSERT_EQ(reg.status, 201) << reg.body << coold->log();
  EXPECT_NE(reg.body.find("\"host_id\":\"host-e2e\""), std::string::npos) << reg.body;

  EXPECT_NE(Dig("web.default.coolify.internal", "A", "+short").find("10.210.7.20"), std::string::npos)
      << coold->log();
  // Case-insensitive; bare names are NXDOMAIN on purpose; AAAA is NODATA.
  EXPECT_NE(Dig("WEB.Default.Coolify.Internal", "A", "+short").find("10.210.7.20"), std::string::npos);
  EXPECT_NE(Dig("web.coolify.internal").find("status: NXDOMAIN"), std::string::npos);
  std::string aaaa = Dig("web.default.coolify.internal", "AAAA");
  EXPECT_NE(aaaa.find("status: NOERROR"), std::string::npos) << aaaa;
  EXPECT_NE(aaaa.find("ANSWER: 0"), std::string::npos) << aaaa;
  // Out of zone goes upstream; the upstream is down, so SERVFAIL.
  EXPECT_NE(Dig("example.org").find("status: SERVFAIL"), std::string::npos);

  Answer endpoints = Api("GET", "/api/v1/services/shop/endpoints");
  ASSERT_EQ(endpoints.status, 200) << endpoints.body;
  EXPECT_NE(endpoints.body.find("10.210.7.20"), std::string::npos) << endpoints.body;
  Answer lookup = Api("GET", "/api/v1/dns/lookup/web.default.coolify.internal");
  ASSERT_EQ(lookup.status, 200) << lookup.body;
  EXPECT_NE(lookup.body.find("10.210.7.20"), std::string::npos) << lookup.body;
  Answer stats = Api("GET", "/api/v1/dns/stats");
  ASSERT_EQ(stats.status, 200) << stats.body;
  EXPECT_NE(stats.body.find("\"answers\""), std::string::npos) << stats.body;

  // The operator's view of the same through coolctl: tables by default, the answer with --json.
  auto coolctl = [](const std::string& args) {
    return testing::Shell("timeout 60 " + testing::Runfile("tools/coolctl/coolctl") + " --api http://127.0.0.1:" +
                          std::to_string(kPort) + " --token-file " + dir_ + "/token " + args);
  };
  testing::CommandRun shown = coolctl("services endpoints shop");
  ASSERT_EQ(shown.status, 0) << shown.out;
  EXPECT_NE(shown.out.find("10.210.7.20"), std::string::npos) << shown.out;
  EXPECT_EQ(shown.out.find("{"), std::string::npos) << shown.out;
  testing::CommandRun raw = coolctl("services endpoints shop --json");
  ASSERT_EQ(raw.status, 0) << raw.out;
  boost::system::error_code ec;
  boost::json::value parsed = boost::json::parse(raw.out, ec);
  ASSERT_FALSE(ec) << raw.out;
  EXPECT_EQ(parsed.at("endpoints").at(0).at("ip"), "10.210.7.20") << raw.out;
  testing::CommandRun looked = coolctl("dns lookup web.default.coolify.internal");
  ASSERT_EQ(looked.status, 0) << looked.out;
  EXPECT_NE(looked.out.find("10.210.7.20"), std::string::npos) << looked.out;
  testing::CommandRun counted = coolctl("dns stats");
  ASSERT_EQ(counted.status, 0) << counted.out;
  EXPECT_NE(counted.out.find("serving"), std::string::npos) << counted.out;
  EXPECT_NE(counted.out.find("true"), std::string::npos) << counted.out;
  // Refused: exit 1 with the server's own error.
  testing::CommandRun refused = coolctl("dns lookup web.nowhere.example");
  EXPECT_EQ(refused.status, 1) << refused.out;
  EXPECT_NE(refused.out.find("HTTP 404: \"web.nowhere.example\" is outside the zone"), std::string::npos) << refused.out;

  // Bad input: a clear 400 naming the field, and nothing written.
  Answer bad = Api("POST", "/api/v1/services/register",
                   R"({"service_id":"shop","namespace":"default","container_id":"0123456789ac",)"
                   R"("container_name":"web2","ip":"10.210.7.300","state":"running"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("ip"), std::string::npos) << bad.body;
  EXPECT_EQ(Api("GET", "/api/v1/services/shop/endpoints").body.find("0123456789ac"), std::string::npos);
  Answer unknown = Api("POST", "/api/v1/services/register", R"({"service_id":"shop","colour":"red"})");
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_NE(unknown.body.find("colour"), std::string::npos) << unknown.body;

  // A crash and a restart: the row is still there and still answered.
  coold->Kill();
  coold.reset();
  coold = StartCoold();
  EXPECT_NE(Dig("web.default.coolify.internal", "A", "+short").find("10.210.7.20"), std::string::npos)
      << coold->log();

  // netavark tears the bridge down and brings it back: the listener comes back with it,
  // on sockets the monitor binds again.
  ASSERT_EQ(testing::Shell("ip link del coolbr0").status, 0);
  EXPECT_EQ(Dig("web.default.coolify.internal", "A", "+short").find("10.210.7.20"), std::string::npos);
  ASSERT_EQ(testing::Shell("ip link add coolbr0 type bridge && ip addr add " + std::string(kGateway) +
                           "/24 dev coolbr0 && ip link set coolbr0 up")
                .status,
            0);
  bool back = false;
  for (int i = 0; i < 40 && !back; ++i) {
    back = Dig("web.default.coolify.internal", "A", "+short").find("10.210.7.20") != std::string::npos;
    if (!back) usleep(250 * 1000);
  }
  EXPECT_TRUE(back) << coold->log();

  ASSERT_EQ(Api("DELETE", "/api/v1/services/shop/endpoints/0123456789ab").status, 200);
  EXPECT_NE(Dig("web.default.coolify.internal").find("status: NXDOMAIN"), std::string::npos);
  EXPECT_EQ(Api("DELETE", "/api/v1/services/shop/endpoints/0123456789ab").status, 404);
  coold->Stop();
}

}  // namespace
}  // namespace coolify
