// The real coold enrolling with the real broker: first start with a one-time token
// generates the host key in the monitor, proves it over the outbound stream and keeps
// it (0600) once admitted; the token file is gone; a restart authenticates with the
// host's own token and the same proof; a revoked host is refused from then on. In a
// private network namespace, like coold_broker_e2e_test.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"
#include "tests/coold_testing.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;

class CooldEnrollmentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "needs root: " << strerror(errno);
    ASSERT_EQ(Shell("ip link set lo up").status, 0);
  }

  void SetUp() override {
    port_ = FreeLoopbackPort();
    socket_ = keys_.Path("broker.sock");
    char tmpl[] = "/tmp/coold-enroll-state-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    state_dir_ = tmpl;
    broker_ = std::make_unique<BrokerUnderTest>(std::vector<std::string>{
        "BROKER_UNIX_SOCKET=" + socket_, absl::StrCat("BROKER_GRPC_BIND=127.0.0.1:", port_),
        "BROKER_TLS_CERT=" + keys_.Path("tls.crt"), "BROKER_TLS_KEY=" + keys_.Path("tls.key"),
        "BROKER_JWT_KEYS=" + keys_.KeySpec(), "BROKER_STATE_DIR=" + state_dir_, "BROKER_REQUIRE_ENROLLMENT=1"});
    ASSERT_TRUE(broker_->listening()) << broker_->log();
  }
  void TearDown() override {
    coold_.reset();
    broker_.reset();
    Shell("rm -rf " + state_dir_);
  }

  void StartCoold() {
    coold_ = std::make_unique<CooldUnderTest>(std::vector<std::string>{
        "COOLD_HOST_MGMT_IP=127.0.0.1",
        absl::StrCat("COOLD_BROKER_URL=grpcs://localhost:", port_, "/v1/agent"),
        "COOLD_BROKER_TOKEN_FILE=" + keys_.Path("no-central-token"),
        "COOLD_HOST_KEY_FILE=" + keys_.Path("host.key"),
        "COOLD_ENROLLMENT_TOKEN_FILE=" + keys_.Path("enrollment-token"),
        "COOLD_BROKER_CA_FILE=" + keys_.Path("tls.crt"),
        "COOLD_PODMAN_SOCKET=" + keys_.Path("no-podman.sock"),
        "COOLD_RULES_PATH=" + keys_.Path("etc/allow.rules"),
        "COOLD_BRIDGE_RULES_PATH=" + keys_.Path("etc/allow.nft"),
    });
  }

  HttpAnswer Dispatch(const std::string& id) {
    return UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                    absl::StrCat(R"({"host_id":"host-127-0-0-1","request_id":")", id,
                                 R"(","command":{"type":"firewall.list"}})"));
  }

  TestKeys keys_;
  int port_ = 0;
  std::string socket_;
  std::string state_dir_;
  std::unique_ptr<BrokerUnderTest> broker_;
  std::unique_ptr<CooldUnderTest> coold_;
};

TEST_F(CooldEnrollmentTest, FirstStartEnrollsWithAKeyOfItsOwnAndLaterStartsProveIt) {
  HttpAnswer enrolled = UnixHttp(socket_, "POST", "/v1/hosts/enroll",
                                 R"({"host_id":"host-127-0-0-1","caps":["firewall.list","host.info"]})");
  ASSERT_EQ(enrolled.status, 201) << enrolled.body;
  size_t at = enrolled.body.find(R"("enrollment_token":")") + 20;
  std::string token = enrolled.body.substr(at, enrolled.body.find('"', at) - at);
  int fd = open(keys_.Path("enrollment-token").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, token.data(), token.size()), static_cast<ssize_t>(token.size()));
  close(fd);

  StartCoold();
  ASSERT_TRUE(WaitForHosts(socket_, 1, std::chrono::seconds(20))) << broker_->log() << coold_->log();
  EXPECT_TRUE(broker_->WaitForLog("host host-127-0-0-1 enrolled from")) << broker_->log();
  EXPECT_TRUE(coold_->WaitForLog("host key written to")) << coold_->log();
  HttpAnswer listed = Dispatch("fw-1");
  EXPECT_EQ(listed.status, 200) << listed.body;
  struct stat st;
  ASSERT_EQ(stat(keys_.Path("host.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_NE(access(keys_.Path("enrollment-token").c_str(), F_OK), 0) << "the used token is removed";

  // A restart: no enrollment token, no central token; the host's own token and key.
  coold_.reset();
  ASSERT_TRUE(WaitForHosts(socket_, 0));
  StartCoold();
  ASSERT_TRUE(WaitForHosts(socket_, 1, std::chrono::seconds(20))) << broker_->log() << coold_->log();
  EXPECT_TRUE(broker_->WaitForLog("key proven, token host:host-127-0-0-1")) << broker_->log();
  EXPECT_EQ(Dispatch("fw-2").status, 200);

  // Revoked: cut off at once; coold keeps dialling on its backoff and is refused.
  ASSERT_EQ(UnixHttp(socket_, "POST", "/v1/hosts/host-127-0-0-1/revoke").status, 200);
  ASSERT_TRUE(WaitForHosts(socket_, 0, std::chrono::seconds(2)));
  EXPECT_TRUE(broker_->WaitForLog("names no enrolled host", std::chrono::seconds(15))) << broker_->log();
  EXPECT_TRUE(coold_->WaitForLog("names no enrolled host", std::chrono::seconds(15))) << coold_->log();
  EXPECT_EQ(Dispatch("fw-3").status, 404);
}

}  // namespace
}  // namespace coolify::testing
