#include "services/front/broker_link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "boost/asio/executor_work_guard.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"

namespace coolify::front {
namespace {

using ::testing::HasSubstr;
using testing::BrokerUnderTest;
using testing::TestKeys;
using testing::UnixHttp;

TEST(BrokerLinkBackoff, DoublesUpToTheCapWithJitter) {
  BrokerLinkOptions o;
  o.initial_backoff = absl::Seconds(1);
  o.max_backoff = absl::Seconds(60);
  EXPECT_EQ(BrokerLink::Backoff(o, 0, 1.0), absl::Seconds(1));
  EXPECT_EQ(BrokerLink::Backoff(o, 0, 0.0), absl::ZeroDuration());
  EXPECT_EQ(BrokerLink::Backoff(o, 0, 0.5), absl::Milliseconds(500));
  EXPECT_EQ(BrokerLink::Backoff(o, 3, 1.0), absl::Seconds(8));
  EXPECT_EQ(BrokerLink::Backoff(o, 6, 1.0), absl::Seconds(60));
  EXPECT_EQ(BrokerLink::Backoff(o, 1000, 1.0), absl::Seconds(60));
  EXPECT_EQ(BrokerLink::Backoff(o, 1000, 0.25), absl::Seconds(15));
}

class BrokerLinkTest : public ::testing::Test {
 protected:
  BrokerLinkTest() : work_(boost::asio::make_work_guard(io_)) {
    io_thread_ = std::thread([this] { io_.run(); });
  }
  ~BrokerLinkTest() override {
    work_.reset();
    io_.stop();
    io_thread_.join();
  }

  std::unique_ptr<BrokerUnderTest> StartBroker(int port) {
    socket_ = keys_.Path("broker.sock");
    return std::make_unique<BrokerUnderTest>(std::vector<std::string>{
        "BROKER_UNIX_SOCKET=" + socket_, absl::StrCat("BROKER_GRPC_BIND=127.0.0.1:", port),
        "BROKER_TLS_CERT=" + keys_.Path("tls.crt"), "BROKER_TLS_KEY=" + keys_.Path("tls.key"),
        "BROKER_JWT_KEYS=" + keys_.KeySpec()});
  }

  BrokerLinkOptions Options(int port, bool builder = false) {
    BrokerLinkOptions o;
    o.address = absl::StrCat("127.0.0.1:", port);
    o.server_name = "localhost";
    o.root_pem = keys_.Read("tls.crt");
    o.token = testing::SignJwt("ES256", "es", keys_.Read("es.key"), testing::Claims("host-a", testing::AllCaps()));
    o.hello.set_host_id("host-a");
    o.hello.add_capabilities(v1::CAPABILITY_PODMAN);
    if (builder) {
      o.hello.add_capabilities(v1::CAPABILITY_BUILDER);
      o.hello.set_builder_capacity(1);
    }
    o.initial_backoff = absl::Milliseconds(50);
    o.max_backoff = absl::Milliseconds(400);
    return o;
  }

  TestKeys keys_;
  std::string socket_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread io_thread_;
};

TEST_F(BrokerLinkTest, RunsCommandsOnTheIoContextAndAnswers) {
  int port = testing::FreeLoopbackPort();
  auto broker = StartBroker(port);
  ASSERT_TRUE(broker->listening()) << broker->log();
  std::thread::id io_id = io_thread_.get_id();
  std::atomic<bool> on_io{true};
  BrokerLink link(io_, Options(port), [&](const v1::ServerMsg& message) -> std::optional<v1::CommandResult> {
    if (std::this_thread::get_id() != io_id) on_io = false;
    v1::CommandResult result;
    result.set_code(200);
    (*result.mutable_data()->mutable_struct_value()->mutable_fields())["ref"].set_string_value(
        message.command().images_pull().ref());
    return result;
  });
  link.Start();
  ASSERT_TRUE(testing::WaitForHosts(socket_, 1)) << broker->log();
  auto answer = UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                         R"({"host_id":"host-a","request_id":"r-1","command":{"type":"images.pull","reference":"busybox"}})");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, R"({"request_id":"r-1","status":"ok","data":{"ref":"busybox"}})");
  EXPECT_TRUE(on_io);
}

TEST_F(BrokerLinkTest, ReconnectsAfterTheBrokerRestarts) {
  int port = testing::FreeLoopbackPort();
  auto broker = StartBroker(port);
  ASSERT_TRUE(broker->listening()) << broker->log();
  BrokerLink link(io_, Options(port), [](const v1::ServerMsg&) -> std::optional<v1::CommandResult> {
    v1::CommandResult result;
    result.set_code(200);
    return result;
  });
  link.Start();
  ASSERT_TRUE(testing::WaitForHosts(socket_, 1));
  broker.reset();  // SIGKILL: the stream breaks without a goodbye
  broker = StartBroker(port);
  ASSERT_TRUE(broker->listening()) << broker->log();
  ASSERT_TRUE(testing::WaitForHosts(socket_, 1, std::chrono::seconds(10))) << broker->log();
  EXPECT_GE(link.connects(), 2u);
  EXPECT_EQ(UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                     R"({"host_id":"host-a","request_id":"r-2","command":{"type":"host.info"}})")
                .status,
            200);
}

TEST_F(BrokerLinkTest, RefusedCredentialKeepsRetryingWithoutServing) {
  int port = testing::FreeLoopbackPort();
  auto broker = StartBroker(port);
  ASSERT_TRUE(broker->listening());
  BrokerLinkOptions o = Options(port);
  o.token = testing::SignJwt("ES256", "es", keys_.Read("other.key"), testing::Claims("host-a", testing::AllCaps()));
  BrokerLink link(io_, o, [](const v1::ServerMsg&) -> std::optional<v1::CommandResult> { return std::nullopt; });
  link.Start();
  // Refused again and again on the backoff schedule, never locked out.
  auto refusals = [&] {
    std::string log = broker->log();
    size_t n = 0;
    for (size_t at = log.find("bad signature"); at != std::string::npos; at = log.find("bad signature", at + 1)) ++n;
    return n;
  };
  for (int i = 0; i < 200 && refusals() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_GE(refusals(), 3u) << broker->log();
  EXPECT_THAT(UnixHttp(socket_, "GET", "/v1/health").body, HasSubstr("\"hosts\":0"));
  link.Stop();
}

}  // namespace
}  // namespace coolify::front
