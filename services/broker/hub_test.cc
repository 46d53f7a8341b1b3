// The Hub's bounds, driven directly with a recording stream and explicit times.
#include "services/broker/hub.h"

#include "services/broker/broker_metrics.h"
#include "services/metrics/exposition_parse.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coolify::broker {
namespace {

using ::testing::HasSubstr;

class RecordingStream : public HostStream {
 public:
  bool Send(v1::ServerMsg message) override {
    sent.push_back(std::move(message));
    return true;
  }
  void Close(const std::string&) override {}
  std::vector<v1::ServerMsg> sent;
};

HostHello Builder(const std::string& id) {
  HostHello hello;
  hello.host_id = id;
  hello.token_caps = {"builder"};
  hello.token_expires = absl::InfiniteFuture();
  hello.capabilities = {v1::CAPABILITY_BUILDER};
  hello.builder_capacity = 1;
  return hello;
}

TEST(HubTest, ALongPollIsClampedToThirtySeconds) {
  Hub hub(HubOptions{});
  auto stream = std::make_shared<RecordingStream>();
  hub.Register(Builder("builder-1"), stream);
  commands::BuildDispatch dispatch;
  dispatch.request_id = "b-1";
  dispatch.build.set_request_id("b-1");
  dispatch.build.set_repo_url("https://example.com/site.git");
  ASSERT_EQ(hub.DispatchBuild(dispatch).http_status, 202u);

  std::vector<commands::Envelope> answers;
  const absl::Time asked = absl::Now();
  hub.BuildResult("b-1", absl::Minutes(5), [&](commands::Envelope e) { answers.push_back(std::move(e)); });
  hub.Sweep(asked + absl::Seconds(29));
  EXPECT_TRUE(answers.empty());
  hub.Sweep(asked + absl::Seconds(31));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].http_status, 408u);
  EXPECT_THAT(answers[0].body, HasSubstr("result poll timed out"));
}

TEST(BrokerMetricsTest, HubStateAndDispatchesReadBackByNameAndLabels) {
  Hub hub(HubOptions{});
  AgentServiceStats agent;
  BrokerMetrics metrics(hub, &agent);
  auto first = std::make_shared<RecordingStream>();
  hub.Register(Builder("host-1"), first);
  hub.Register(Builder("host-1"), std::make_shared<RecordingStream>());  // a reconnect replacing the first
  hub.Register(Builder("host-2"), std::make_shared<RecordingStream>());
  ++agent.refused_proofs;
  metrics.Dispatched("firewall.allow", 201, 0.003);
  metrics.Dispatched("firewall.allow", 201, 0.2);
  metrics.Dispatched("containers.create", 403, 0.01);
  metrics.Answered("dispatch", 201);

  absl::StatusOr<metrics::Exposition> parsed = metrics::ParseExposition(metrics.Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status() << metrics.Text();
  EXPECT_EQ(parsed->Sum("broker_connected_hosts"), 2);
  EXPECT_EQ(parsed->Sum("broker_host_reconnects_total"), 1);
  EXPECT_EQ(parsed->Sum("broker_host_streams_closed_total", {{"reason", "replaced"}}), 1);
  EXPECT_EQ(parsed->Sum("broker_refusals_total", {{"reason", "proof"}}), 1);
  EXPECT_EQ(parsed->Sum("broker_pending_entries"), 0);
  EXPECT_EQ(parsed->Sum("broker_dispatches_total", {{"verb", "firewall.allow"}, {"status", "201"}}), 2);
  EXPECT_EQ(parsed->Sum("broker_dispatch_duration_seconds_count", {{"verb", "firewall.allow"}}), 2);
  EXPECT_EQ(parsed->Sum("broker_dispatch_duration_seconds_bucket", {{"verb", "firewall.allow"}, {"le", "0.005"}}), 1);
  EXPECT_EQ(parsed->Sum("broker_uds_requests_total", {{"route", "dispatch"}, {"status", "201"}}), 1);
  EXPECT_EQ(parsed->types.at("broker_dispatch_duration_seconds"), "histogram");
}

}  // namespace
}  // namespace coolify::broker
