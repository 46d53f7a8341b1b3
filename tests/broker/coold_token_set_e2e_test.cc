// host.jwt.set, central's mode, with the real coold behind the real broker: a pushed
// token that coold checks (central's key, this host, not expired) replaces the token file
// (0600) and becomes the live stream's credential without dropping it; a token for
// another host, an expired one and one signed by an unknown key are refused with the
// reason and change nothing. In a private network namespace, like coold_broker_e2e_test.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"
#include "tests/coold_testing.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kHost[] = "host-127-0-0-1";

class CooldTokenSetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "needs root: " << strerror(errno);
    ASSERT_EQ(Shell("ip link set lo up").status, 0);
  }

  void SetUp() override {
    port_ = FreeLoopbackPort();
    socket_ = keys_.Path("broker.sock");
    broker_ = std::make_unique<BrokerUnderTest>(std::vector<std::string>{
        "BROKER_UNIX_SOCKET=" + socket_, absl::StrCat("BROKER_GRPC_BIND=127.0.0.1:", port_),
        "BROKER_TLS_CERT=" + keys_.Path("tls.crt"), "BROKER_TLS_KEY=" + keys_.Path("tls.key"),
        "BROKER_JWT_KEYS=" + keys_.KeySpec()});
    ASSERT_TRUE(broker_->listening()) << broker_->log();
    std::string token = Central(kHost, 3600);
    int fd = open(keys_.Path("host-jwt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, token.data(), token.size()), static_cast<ssize_t>(token.size()));
    close(fd);
    coold_ = std::make_unique<CooldUnderTest>(std::vector<std::string>{
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        absl::StrCat("COOLD_BROKER_URL=grpcs://localhost:", port_, "/v1/agent"),
        "COOLD_BROKER_TOKEN_FILE=" + keys_.Path("host-jwt"),
        "COOLD_BROKER_JWT_KEYS=es=" + keys_.Path("es.pub"),
        "COOLD_HOST_KEY_FILE=" + keys_.Path("no-host.key"),
        "COOLD_ENROLLMENT_TOKEN_FILE=" + keys_.Path("no-enrollment-token"),
        "COOLD_BROKER_CA_FILE=" + keys_.Path("tls.crt"),
        "COOLD_PODMAN_SOCKET=" + keys_.Path("no-podman.sock"),
        "COOLD_RULES_PATH=" + keys_.Path("etc/allow.rules"),
        "COOLD_BRIDGE_RULES_PATH=" + keys_.Path("etc/allow.nft"),
    });
    ASSERT_TRUE(WaitForHosts(socket_, 1, std::chrono::seconds(20))) << broker_->log() << coold_->log();
  }

  std::string Central(const std::string& host, long ttl, const std::string& kid = "es",
                      const std::string& key = "es.key") {
    std::vector<std::string> caps = AllCaps();
    caps.push_back("host.jwt.set");
    return SignJwt("ES256", kid, keys_.Read(key), Claims(host, caps, ttl));
  }

  HttpAnswer Push(const std::string& id, const std::string& jwt) {
    return UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                    absl::StrCat(R"({"host_id":")", kHost, R"(","request_id":")", id,
                                 R"(","command":{"type":"host.jwt.set","jwt":")", jwt, R"("}})"));
  }

  std::string TokenFile() {
    std::ifstream in(keys_.Path("host-jwt"));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  TestKeys keys_;
  int port_ = 0;
  std::string socket_;
  std::unique_ptr<BrokerUnderTest> broker_;
  std::unique_ptr<CooldUnderTest> coold_;
};

TEST_F(CooldTokenSetTest, APushedTokenIsCheckedKeptAndPresentedOnTheLiveStream) {
  const std::string before = TokenFile();
  struct Bad {
    const char* name;
    std::string jwt;
    const char* reason;
  } bad[] = {
      {"for another host", Central("host-10-0-0-9", 600), "not this host"},
      {"expired", Central(kHost, -120), "expired"},
      {"signed by an unknown key", Central(kHost, 600, "other", "other.key"), "unknown kid"},
      {"signed by another key under central's kid", Central(kHost, 600, "es", "other.key"), "bad signature"},
  };
  for (const Bad& b : bad) {
    HttpAnswer refused = Push(absl::StrCat("bad-", &b - bad), b.jwt);
    EXPECT_GE(refused.status, 400) << b.name << ": " << refused.body;
    EXPECT_THAT(refused.body, HasSubstr(b.reason)) << b.name;
    EXPECT_TRUE(coold_->WaitForLog(b.reason)) << b.name;
    EXPECT_EQ(TokenFile(), before) << b.name;
  }
  const std::string fresh = Central(kHost, 1800);
  HttpAnswer set = Push("good-1", fresh);
  ASSERT_EQ(set.status, 200) << set.body << coold_->log();
  EXPECT_EQ(TokenFile(), fresh + "\n");
  struct stat st;
  ASSERT_EQ(stat(keys_.Path("host-jwt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The broker took it as the stream's renewal; the stream never dropped.
  for (int i = 0; i < 200; ++i) {
    if (UnixHttp(socket_, "GET", "/v1/identity/stats").body.find(R"("tokens_renewed":1)") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT(UnixHttp(socket_, "GET", "/v1/identity/stats").body, HasSubstr(R"("tokens_renewed":1)"));
  EXPECT_THAT(broker_->log(), ::testing::Not(HasSubstr("disconnected")));
  HttpAnswer after = UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                              absl::StrCat(R"({"host_id":")", kHost, R"(","request_id":"fw-1","command":{"type":"firewall.list"}})"));
  EXPECT_EQ(after.status, 200) << after.body;
}

}  // namespace
}  // namespace coolify::testing
