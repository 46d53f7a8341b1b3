// The real coold behind the real broker over loopback TLS: central's envelopes reach
// coold's router through the stream and its answers come back; builds are answered with
// a clear error; coold dials again when the broker restarts. Everything runs in a private
// network namespace, so coold's firewall writer changes that namespace's kernel only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"
#include "tests/coold_testing.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CooldBrokerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Before any thread exists: the namespace is per thread until then.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "needs root: " << strerror(errno);
    ASSERT_EQ(Shell("ip link set lo up").status, 0);
  }

  void SetUp() override {
    port_ = FreeLoopbackPort();
    socket_ = keys_.Path("broker.sock");
    StartBroker();
    std::string token = SignJwt("ES256", "es", keys_.Read("es.key"), Claims("host-127-0-0-1", AllCaps()));
    int fd = open(keys_.Path("host-jwt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, token.data(), token.size()), static_cast<ssize_t>(token.size()));
    close(fd);
    coold_ = std::make_unique<CooldUnderTest>(std::vector<std::string>{
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        absl::StrCat("COOLD_BROKER_URL=grpcs://localhost:", port_, "/v1/agent"),
        "COOLD_BROKER_TOKEN_FILE=" + keys_.Path("host-jwt"),
        "COOLD_BROKER_CA_FILE=" + keys_.Path("tls.crt"),
        "COOLD_BUILDER_ENABLED=1",
        "COOLD_BUILDS_DIR=" + keys_.Path("builds"),
        "COOLD_PODMAN_SOCKET=" + keys_.Path("no-podman.sock"),
        "COOLD_RULES_PATH=" + keys_.Path("etc/allow.rules"),
        "COOLD_BRIDGE_RULES_PATH=" + keys_.Path("etc/allow.nft"),
    });
    ASSERT_TRUE(coold_->WaitForLog("broker stream open")) << coold_->log();
    ASSERT_TRUE(WaitForHosts(socket_, 1)) << broker_->log() << coold_->log();
  }

  void StartBroker() {
    broker_ = std::make_unique<BrokerUnderTest>(std::vector<std::string>{
        "BROKER_UNIX_SOCKET=" + socket_, absl::StrCat("BROKER_GRPC_BIND=127.0.0.1:", port_),
        "BROKER_TLS_CERT=" + keys_.Path("tls.crt"), "BROKER_TLS_KEY=" + keys_.Path("tls.key"),
        "BROKER_JWT_KEYS=" + keys_.KeySpec()});
    ASSERT_TRUE(broker_->listening()) << broker_->log();
  }

  HttpAnswer Dispatch(const std::string& id, const std::string& command) {
    return UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                    absl::StrCat(R"({"host_id":"host-127-0-0-1","request_id":")", id, R"(","command":)", command, "}"));
  }

  TestKeys keys_;
  int port_ = 0;
  std::string socket_;
  std::unique_ptr<BrokerUnderTest> broker_;
  std::unique_ptr<CooldUnderTest> coold_;
};

TEST_F(CooldBrokerTest, CommandsReachTheRouterAndAnswersComeBack) {
  HttpAnswer allowed = Dispatch("fw-1", R"({"type":"firewall.allow","namespace":"default","src":"10.210.5.2","dst":"10.210.6.3","proto":"tcp","port":80})");
  EXPECT_EQ(allowed.status, 200) << allowed.body << coold_->log();
  EXPECT_THAT(allowed.body, HasSubstr(R"("status":"ok")"));
  // The id the Go CLI computes for this tuple.
  EXPECT_THAT(allowed.body, HasSubstr(Shell("printf '%s' 'default|10.210.5.2|10.210.6.3|tcp|80' | sha256sum | cut -c1-12")
                                          .out.substr(0, 12)));
  HttpAnswer listed = Dispatch("fw-2", R"({"type":"firewall.list"})");
  EXPECT_EQ(listed.status, 200);
  EXPECT_THAT(listed.body, HasSubstr(R"("dst":"10.210.6.3")"));
  EXPECT_THAT(Shell("iptables-save -t filter").out, HasSubstr("10.210.6.3"));
  HttpAnswer revoked = Dispatch("fw-3", R"({"type":"firewall.revoke","id":"ffffffffffff"})");
  EXPECT_EQ(revoked.status, 404) << revoked.body;
  EXPECT_THAT(revoked.body, HasSubstr(R"("status":"error","code":404)"));
  // Podman is not running here: coold's own answer says so, through the broker.
  HttpAnswer info = Dispatch("host-1", R"({"type":"host.info"})");
  EXPECT_EQ(info.status, 503) << info.body;
  EXPECT_THAT(info.body, HasSubstr("podman"));
  // Refused by coold's own strict validation, after the broker's.
  HttpAnswer bad = Dispatch("fw-4", R"({"type":"firewall.allow","namespace":"default","src":"10.210.5.2","dst":"10.210.6.3","proto":"icmp","port":80})");
  EXPECT_EQ(bad.status, 400) << bad.body;
}

TEST_F(CooldBrokerTest, ABuildThatCannotCloneEndsWithAnErrorResult) {
  // No network here: the clone fails, and the result says so through the broker.
  HttpAnswer accepted = UnixHttp(socket_, "POST", "/v1/build/dispatch",
                                 R"({"request_id":"b-1","command":{"type":"static_build","repo_url":"https://example.invalid/s.git","git_ref":"main","target_image":"localhost/s:1"}})");
  EXPECT_EQ(accepted.status, 202) << accepted.body;
  HttpAnswer result = PollBuildResult(socket_, "b-1", std::chrono::seconds(60));
  EXPECT_GE(result.status, 400) << result.body << coold_->log();
  EXPECT_NE(result.status, 408) << result.body << coold_->log();
  EXPECT_THAT(result.body, HasSubstr(R"({"request_id":"b-1","status":"error","code":)"));
  // Every poller within the TTL gets the same result.
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/build/result/b-1").body, result.body);
}

TEST_F(CooldBrokerTest, CooldDialsAgainWhenTheBrokerRestarts) {
  broker_.reset();
  StartBroker();
  ASSERT_TRUE(WaitForHosts(socket_, 1, std::chrono::seconds(15))) << coold_->log();
  EXPECT_EQ(Dispatch("fw-1", R"({"type":"firewall.list"})").status, 200);
  // coold is still whole: nothing it ran crashed a child.
  EXPECT_EQ(coold_->WaitExit(std::chrono::milliseconds(10)), -1);
}

// An answer larger than a message on the stream may be (the broker's 4 MiB) is answered
// as an error naming the size, from coold itself; the stream stays up and the next
// command is served on it.
TEST_F(CooldBrokerTest, AnAnswerTooLargeForTheStreamIsAClearErrorAndTheStreamStays) {
  // 36,000 rules: their list is about 5 MB of JSON.
  for (int batch = 0; batch < 3; ++batch) {
    std::string rules;
    for (int i = 0; i < 12000; ++i) {
      if (!rules.empty()) rules += ",";
      absl::StrAppend(&rules, R"({"namespace":"big","src":"10.)", 100 + batch, ".", i / 250, ".", i % 250 + 1,
                      R"(","dst":"10.8.0.1","proto":"udp","port":)", 1000 + i, "}");
    }
    HttpAnswer bulk = Dispatch(absl::StrCat("bulk-", batch), absl::StrCat(R"({"type":"firewall.bulk","rules":[)", rules, "]}"));
    ASSERT_EQ(bulk.status, 200) << bulk.body.substr(0, 300) << coold_->log();
  }
  const std::string connects_before = broker_->log();
  HttpAnswer listed = Dispatch("list-all", R"({"type":"firewall.list"})");
  EXPECT_EQ(listed.status, 413) << listed.body.substr(0, 300);
  EXPECT_THAT(listed.body, HasSubstr("over the 4194304 bytes a message on the broker stream may carry"));
  // The same stream serves the next command: no new connection was needed.
  HttpAnswer narrow = Dispatch("list-none", R"({"type":"firewall.list","namespace":"none"})");
  EXPECT_EQ(narrow.status, 200) << narrow.body << coold_->log();
  EXPECT_THAT(coold_->log(), Not(HasSubstr("broker stream to")));  // "... ended"
  EXPECT_EQ(coold_->WaitExit(std::chrono::milliseconds(10)), -1);
}

}  // namespace
}  // namespace coolify::testing
