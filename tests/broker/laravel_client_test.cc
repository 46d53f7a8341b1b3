// Central's real client library against the real broker: Laravel's HTTP client over the
// Unix socket (tests/broker/laravel_client.php), two real gRPC hosts behind the broker.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"

namespace coolify::testing {
namespace {

TEST(LaravelClient, HealthDispatchBuildPollAndCancel) {
  TestKeys keys;
  std::string socket = keys.Path("broker.sock");
  BrokerUnderTest broker({"BROKER_UNIX_SOCKET=" + socket, "BROKER_GRPC_BIND=127.0.0.1:0",
                          "BROKER_TLS_CERT=" + keys.Path("tls.crt"), "BROKER_TLS_KEY=" + keys.Path("tls.key"),
                          "BROKER_JWT_KEYS=" + keys.KeySpec()});
  ASSERT_TRUE(broker.listening()) << broker.log();
  auto options = [&](const std::string& host_id) {
    FakeHost::Options o;
    o.host_id = host_id;
    o.token = SignJwt("ES256", "es", keys.Read("es.key"), Claims(host_id, AllCaps()));
    o.target = absl::StrCat("127.0.0.1:", broker.port());
    o.root_pem = keys.Read("tls.crt");
    return o;
  };
  FakeHost web(options("web-1"), FakeHost::Echo());
  FakeHost::Options builder_options = options("builder-1");
  builder_options.capabilities.push_back(v1::CAPABILITY_BUILDER);
  builder_options.builder_capacity = 2;
  // A builder that takes a moment, so the long-poll really waits and the cancel lands
  // while the build runs.
  FakeHost::Answer echo = FakeHost::Echo();
  FakeHost builder(builder_options, [echo](const v1::ServerMsg& message, v1::CommandResult* result) {
    if (message.has_build()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return echo(message, result);
  });
  ASSERT_TRUE(WaitForHosts(socket, 2)) << broker.log();

  std::string php = Runfile("tests/broker/laravel_client.php");
  CommandRun php_run = Shell(absl::StrCat("php ", php, " ", socket));
  const std::string& out = php_run.out;
  EXPECT_EQ(php_run.status, 0) << out;
  EXPECT_THAT(out, ::testing::Not(::testing::HasSubstr("FAILED"))) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("ok: cancel is 204")) << out;

  for (int i = 0; i < 200; ++i) {
    auto received = builder.received();
    if (!received.empty() && received.back().has_cancel()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto received = builder.received();
  ASSERT_FALSE(received.empty());
  EXPECT_EQ(received.back().cancel().request_id(), "laravel-build-2");
}

}  // namespace
}  // namespace coolify::testing
