// What the front end counts, read back from the exposition by name and labels.
#include "services/front/front_metrics.h"

#include "gtest/gtest.h"
#include "privsep/log.h"
#include "services/metrics/exposition_parse.h"

namespace coolify::front {
namespace {

metrics::Exposition Parse(const FrontMetrics& metrics) {
  absl::StatusOr<metrics::Exposition> parsed = metrics::ParseExposition(metrics.Text());
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << metrics.Text();
  return parsed.ok() ? *parsed : metrics::Exposition{};
}

v1::CommandResult Result(unsigned code) {
  v1::CommandResult result;
  result.set_code(code);
  return result;
}

TEST(FrontMetricsTest, CommandsByLaneVerbAndStatusLeaveAnEventLine) {
  FrontMetrics metrics;
  v1::Command create;
  create.mutable_containers_create()->mutable_spec()->set_name("web");
  v1::KeyValue* env = create.mutable_containers_create()->mutable_spec()->add_env();
  env->set_key("DB_PASSWORD");
  env->set_value("env-secret-4711");
  metrics.Command(Lane::kBroker, create, 201, 0.02);
  v1::Command allow;
  allow.mutable_firewall_allow();
  LogInfo("marker");
  // A REST command's verb is in its request's line: no line of its own here.
  metrics.Command(Lane::kRest, allow, 403, 0.001);
  const std::vector<std::string> lines = RecentLogLines(2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("event=command lane=broker verb=containers.create status=201 duration_ms=20"),
            std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[0].find("env-secret-4711"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("marker"), std::string::npos) << lines[1];
  metrics::Exposition e = Parse(metrics);
  EXPECT_EQ(e.Sum("coold_commands_total", {{"lane", "broker"}, {"verb", "containers.create"}, {"status", "201"}}), 1);
  EXPECT_EQ(e.Sum("coold_commands_total", {{"lane", "rest"}, {"verb", "firewall.allow"}, {"status", "403"}}), 1);
  EXPECT_EQ(e.Sum("coold_command_duration_seconds_count", {{"verb", "containers.create"}}), 1);
  EXPECT_EQ(e.Sum("coold_command_duration_seconds_bucket", {{"verb", "firewall.allow"}, {"le", "0.005"}}), 1);
}

TEST(FrontMetricsTest, FirewallMutationsByResult) {
  FrontMetrics metrics;
  v1::Command allow, remove, bulk, reconcile, list;
  allow.mutable_firewall_allow();
  remove.mutable_firewall_delete();
  bulk.mutable_firewall_bulk();
  reconcile.mutable_firewall_reconcile();
  list.mutable_firewall_list();
  metrics.FirewallMutation(allow, Result(201));
  metrics.FirewallMutation(allow, Result(200));  // existed
  metrics.FirewallMutation(allow, Result(403));
  metrics.FirewallMutation(remove, Result(200));
  metrics.FirewallMutation(remove, Result(500));
  v1::CommandResult added = Result(200);
  (*added.mutable_data()->mutable_struct_value()->mutable_fields())["added"].mutable_list_value()->add_values()->set_string_value("a");
  metrics.FirewallMutation(bulk, added);
  metrics.FirewallMutation(reconcile, Result(200));
  metrics.FirewallMutation(list, Result(200));
  metrics::Exposition e = Parse(metrics);
  EXPECT_EQ(e.Sum("coold_firewall_mutations_total", {{"op", "allow"}, {"result", "applied"}}), 1);
  EXPECT_EQ(e.Sum("coold_firewall_mutations_total", {{"op", "allow"}, {"result", "unchanged"}}), 1);
  EXPECT_EQ(e.Sum("coold_firewall_mutations_total", {{"op", "allow"}, {"result", "refused"}}), 1);
  EXPECT_EQ(e.Sum("coold_firewall_mutations_total", {{"op", "delete"}, {"result", "applied"}}), 1);
  EXPECT_EQ(e.Sum("coold_firewall_mutations_total", {{"op", "delete"}, {"result", "failed"}}), 1);
  EXPECT_EQ(e.Sum("coold_firewall_mutations_total", {{"op", "bulk"}, {"result", "applied"}}), 1);
  EXPECT_EQ(e.Sum("coold_firewall_mutations_total", {{"op", "reconcile"}, {"result", "unchanged"}}), 1);
  EXPECT_EQ(e.Sum("coold_firewall_mutations_total"), 7);  // a list is no mutation
}

TEST(FrontMetricsTest, BuildsByOutcomeWithDurationsOfThoseStartedHere) {
  FrontMetrics metrics;
  metrics.Build(200, 42.0);
  metrics.Build(422, 3.0);
  metrics.Build(499, std::nullopt);  // adopted after a restart: no start known here
  metrics.Build(504, 3600.0);
  metrics.Build(502, 1.0);
  metrics.BuildNotStarted(503);
  metrics.BuildNotStarted(400);
  metrics::Exposition e = Parse(metrics);
  for (const char* outcome : {"built", "cancelled", "timed_out", "error", "refused"}) {
    EXPECT_EQ(e.Sum("coold_builds_total", {{"outcome", outcome}}), 1) << outcome;
  }
  EXPECT_EQ(e.Sum("coold_builds_total", {{"outcome", "failed"}}), 2);
  EXPECT_EQ(e.Sum("coold_build_duration_seconds_count"), 4);
  EXPECT_EQ(e.Sum("coold_build_duration_seconds_bucket", {{"outcome", "built"}, {"le", "60"}}), 1);
  EXPECT_EQ(e.Sum("coold_build_duration_seconds_bucket", {{"outcome", "built"}, {"le", "30"}}), 0);
  EXPECT_EQ(e.Sum("coold_build_duration_seconds_sum", {{"outcome", "timed_out"}}), 3600);
}

TEST(FrontMetricsTest, DnsRcodesChannelsDenialsAndDriftAreReadBack) {
  FrontMetrics metrics;
  dns::Stats stats;
  dns::Stats::Add(stats.answers);
  dns::Stats::Add(stats.nodata);
  dns::Stats::Add(stats.nxdomain);
  dns::Stats::Add(stats.upstream_answers);
  metrics.SetDnsSource([&stats] { return std::vector<std::pair<std::string, const dns::Stats*>>{{"default", &stats}}; });
  metrics.SetChannelSource([] { return std::vector<std::pair<std::string, uint64_t>>{{"netlink", 2}, {"podman", 0}}; });
  metrics.PolicyDenial("privileged");
  metrics.PolicyDenial("privileged");
  metrics.PolicyDenial("-");
  metrics.DriftRepaired(3, 1);
  metrics.RejectedFrame("podman", "followed_log");
  metrics::Exposition e = Parse(metrics);
  EXPECT_EQ(e.Sum("coold_dns_queries_total", {{"namespace", "default"}, {"rcode", "NOERROR"}}), 2);
  EXPECT_EQ(e.Sum("coold_dns_queries_total", {{"namespace", "default"}, {"rcode", "NXDOMAIN"}}), 1);
  EXPECT_EQ(e.Sum("coold_dns_queries_total", {{"rcode", "upstream"}}), 1);
  EXPECT_EQ(e.Sum("coold_dns_queries_total", {{"rcode", "SERVFAIL"}}), 0);
  EXPECT_EQ(e.Sum("coold_channel_refused_sends_total", {{"child", "netlink"}}), 2);
  EXPECT_EQ(e.Sum("coold_policy_denials_total", {{"rule", "privileged"}}), 2);
  EXPECT_EQ(e.Sum("coold_policy_denials_total", {{"rule", "-"}}), 1);
  EXPECT_EQ(e.Sum("coold_endpoint_drift_repaired_total", {{"change", "written"}}), 3);
  EXPECT_EQ(e.Sum("coold_endpoint_drift_repaired_total", {{"change", "removed"}}), 1);
  EXPECT_EQ(e.Sum("coold_channel_rejected_frames_total", {{"child", "podman"}, {"stream", "followed_log"}}), 1);
}

}  // namespace
}  // namespace coolify::front
