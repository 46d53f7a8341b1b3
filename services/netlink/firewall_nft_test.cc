// FirewallWriter against the real kernel. Every test runs in a network namespace of its
// own (created in SetUp, before anything else happens) and reads the result back with
// iptables-save, iptables -S and nft, run as subprocesses inside that namespace.
#include "services/netlink/firewall_nft.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/netlink/firewall_snapshot.h"
#include "services/netlink/firewall_testing.h"

namespace coolify::netlink {
namespace {

using ::testing::HasSubstr;
using testing::CreateBridgeScaffold;
using testing::kIptables;
using testing::kIptablesSave;
using testing::kNft;
using testing::NetworkNamespace;
using testing::RandomRules;
using testing::RunOk;
using testing::StderrCapture;
using testing::StripIptablesSave;

#define ASSERT_OK(expr)                              \
  do {                                               \
    const absl::Status status_ = (expr);             \
    ASSERT_TRUE(status_.ok()) << #expr << ": " << status_; \
  } while (0)

// Unwraps a StatusOr in a test, failing it with the status.
template <typename T>
T Must(absl::StatusOr<T> value) {
  EXPECT_TRUE(value.ok()) << value.status();
  if (!value.ok()) std::abort();
  return std::move(*value);
}

Rule MakeRule(const std::string& ns, const std::string& src, const std::string& dst,
              Protocol protocol, uint16_t port) {
  coolify::v1::FirewallRule proto;
  proto.set_namespace_(ns);
  proto.set_src(src);
  proto.set_dst(dst);
  proto.set_proto(protocol == Protocol::kTcp ? "tcp" : "udp");
  proto.set_port(port);
  return Must(ValidateRule(proto));
}

// Everything the kernel holds, as the tools print it: iptables-save (timestamps and
// counters aside) and nft's JSON listing, which includes every handle.
std::string Ruleset() {
  return StripIptablesSave(Must(RunOk({kIptablesSave}))) + "\n" +
         Must(RunOk({kNft, "-j", "list", "ruleset"}));
}

std::vector<std::string> Lines(const std::string& text, const std::string& prefix) {
  std::vector<std::string> result;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, prefix)) result.emplace_back(line);
  }
  return result;
}

std::vector<std::string> IptablesRuleLines() {
  return Lines(Must(RunOk({kIptablesSave})), "-A COOLIFY-ALLOW");
}

std::vector<std::string> BridgeRuleLines() {
  std::vector<std::string> result;
  for (absl::string_view line :
       absl::StrSplit(Must(RunOk({kNft, "list", "chain", "bridge", "coolify_bridge",
                                  "coolify_allow"})),
                      '\n')) {
    if (absl::StrContains(line, " accept")) result.emplace_back(absl::StripAsciiWhitespace(line));
  }
  return result;
}

// The iptables-save line for `rule`, as iptables prints it.
std::string SavedLine(const Rule& rule) {
  std::string line = "-A COOLIFY-ALLOW";
  if (rule.src.length > 0) line += " -s " + FormatIpv4Prefix(rule.src);
  if (rule.dst.length > 0) line += " -d " + FormatIpv4Prefix(rule.dst);
  const std::string proto(ProtocolName(rule.protocol));
  return line + " -p " + proto + " -m " + proto + " --dport " + std::to_string(rule.port) +
         " -m comment --comment " + RuleId(rule) + " -j ACCEPT";
}

class FirewallNftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<NetworkNamespace> ns = NetworkNamespace::CreateAndEnter();
    ASSERT_TRUE(ns.ok()) << ns.status();
    namespace_.emplace(std::move(*ns));
  }

  std::optional<NetworkNamespace> namespace_;
};

// The golden test: for a few hundred random tuples, the kernel after our writer prints
// exactly what it prints after the equivalent iptables -A (and nft add rule) commands
// run in another fresh namespace.
TEST_F(FirewallNftTest, GoldenSameAsIptablesAndNft) {
  const std::vector<Rule> rules = RandomRules(300, /*seed=*/20240601);
  ASSERT_OK(CreateBridgeScaffold());
  FirewallWriter writer = Must(FirewallWriter::Open());
  Must(writer.Load());
  // The first rules one at a time, the rest in one bulk: both paths, one result.
  for (size_t i = 0; i < 20; ++i) Must(writer.Allow(rules[i]));
  Must(writer.Bulk(std::vector<Rule>(rules.begin() + 20, rules.end())));
  const std::string ours_save = Must(RunOk({kIptablesSave}));
  const std::string ours_rules = Must(RunOk({kIptables, "-S"}));
  const std::string ours_netlink = Must(RunOk({kNft, "--debug=netlink", "list", "ruleset"}));
  const std::string ours_json = Must(RunOk({kNft, "-j", "list", "ruleset"}));
  EXPECT_THAT(ours_rules, HasSubstr("-N COOLIFY-ALLOW\n"));
  NamespaceHints hints;
  for (const Rule& rule : rules) hints[RuleId(rule)] = rule.namespace_name;
  const std::vector<FirewallEntry> ours_index = writer.List("");

  NetworkNamespace theirs = Must(NetworkNamespace::CreateAndEnter());
  ASSERT_OK(CreateBridgeScaffold());
  ASSERT_OK(RunOk({kIptables, "-N", "COOLIFY-ALLOW"}).status());
  std::string nft_script;
  for (const Rule& rule : rules) {
    ASSERT_OK(RunOk(testing::IptablesAppend(rule)).status());
    nft_script += testing::NftAddRule(rule) + "\n";
  }
  ASSERT_OK(RunOk({kNft, "-f", "-"}, nft_script).status());
  const std::string their_save = Must(RunOk({kIptablesSave}));

  EXPECT_EQ(StripIptablesSave(ours_save), StripIptablesSave(their_save));
  EXPECT_EQ(Lines(ours_save, "-A").size(), rules.size());
  EXPECT_EQ(ours_rules, Must(RunOk({kIptables, "-S"})));
  // Expression by expression, user data and handles included.
  EXPECT_EQ(ours_netlink, Must(RunOk({kNft, "--debug=netlink", "list", "ruleset"})));
  EXPECT_EQ(ours_json, Must(RunOk({kNft, "-j", "list", "ruleset"})));

  // The tools' rules are, attribute for attribute, what our writer would write: a
  // writer loading them finds them all its own, with the same ids, tuples and handles.
  FirewallWriter reader = Must(FirewallWriter::Open());
  LoadReport report = Must(reader.Load(hints));
  EXPECT_TRUE(report.foreign.empty()) << report.foreign.front().reason << ": "
                                      << report.foreign.front().description;
  EXPECT_EQ(report.without_namespace, 0u);
  EXPECT_EQ(reader.List(""), ours_index);
}

// With the table in place (created by an iptables rule elsewhere in it), only the
// chain is created, again exactly as iptables does.
TEST_F(FirewallNftTest, CreatesChainInExistingTableLikeIptables) {
  ASSERT_OK(RunOk({kIptables, "-A", "FORWARD", "-s", "192.0.2.0/24", "-j", "DROP"}).status());
  FirewallWriter writer = Must(FirewallWriter::Open());
  const Rule rule = MakeRule("web", "10.0.0.1", "10.1.0.0/16", Protocol::kTcp, 80);
  Must(writer.Allow(rule));
  EXPECT_FALSE(writer.bridge_plane_active());
  const std::string ours = Ruleset();

  NetworkNamespace theirs = Must(NetworkNamespace::CreateAndEnter());
  ASSERT_OK(RunOk({kIptables, "-A", "FORWARD", "-s", "192.0.2.0/24", "-j", "DROP"}).status());
  ASSERT_OK(RunOk({kIptables, "-N", "COOLIFY-ALLOW"}).status());
  ASSERT_OK(RunOk(testing::IptablesAppend(rule)).status());
  EXPECT_EQ(ours, Ruleset());
}

TEST_F(FirewallNftTest, AllowIsIdempotent) {
  ASSERT_OK(CreateBridgeScaffold());
  FirewallWriter writer = Must(FirewallWriter::Open());
  const Rule rule = MakeRule("web", "10.0.0.0/8", "10.1.2.3", Protocol::kUdp, 53);
  const std::string id = Must(writer.Allow(rule));
  EXPECT_EQ(id, RuleId(rule));
  const std::string before = Ruleset();
  EXPECT_EQ(Must(writer.Allow(rule)), id);
  // Spelled differently, same tuple: same id, nothing added.
  EXPECT_EQ(Must(writer.Allow(MakeRule("web", "10.0.0.0/8", "10.1.2.3/32", Protocol::kUdp, 53))),
            id);
  EXPECT_EQ(Ruleset(), before);
  EXPECT_EQ(IptablesRuleLines(), std::vector<std::string>{SavedLine(rule)});
  EXPECT_EQ(BridgeRuleLines(),
            std::vector<std::string>{"ip saddr 10.0.0.0/8 ip daddr 10.1.2.3 udp dport 53 accept "
                                     "comment \"" + id + "\""});
  ASSERT_EQ(writer.List("web").size(), 1u);
  EXPECT_TRUE(writer.List("web")[0].ip_handle.has_value());
  EXPECT_TRUE(writer.List("web")[0].bridge_handle.has_value());
  EXPECT_TRUE(writer.List("other").empty());
}

TEST_F(FirewallNftTest, ACallersIdNamesOneTupleBesideTheDerivedIds) {
  ASSERT_OK(CreateBridgeScaffold());
  FirewallWriter writer = Must(FirewallWriter::Open());
  Rule named = MakeRule("default", "0.0.0.0/0", "10.88.0.5", Protocol::kTcp, 80);
  named.caller_id = "v5-caddy-ingress:80";
  EXPECT_EQ(Must(writer.Allow(named)), "v5-caddy-ingress:80");
  // The same tuple under its derived id is a rule of its own: each id is revoked alone.
  const Rule derived = MakeRule("default", "0.0.0.0/0", "10.88.0.5", Protocol::kTcp, 80);
  EXPECT_EQ(Must(writer.Allow(derived)), RuleId(derived));
  EXPECT_EQ(IptablesRuleLines().size(), 2u);
  EXPECT_THAT(IptablesRuleLines()[0], HasSubstr("--comment \"v5-caddy-ingress:80\" -j ACCEPT"));
  EXPECT_THAT(absl::StrJoin(BridgeRuleLines(), "\n"), HasSubstr("comment \"v5-caddy-ingress:80\""));
  // The id names that tuple: another tuple under it is refused, the kernel untouched.
  const std::string before = Ruleset();
  Rule moved = MakeRule("default", "0.0.0.0/0", "10.88.0.6", Protocol::kTcp, 80);
  moved.caller_id = "v5-caddy-ingress:80";
  EXPECT_EQ(writer.Allow(moved).status().code(), absl::StatusCode::kAlreadyExists);
  Rule elsewhere = named;
  elsewhere.namespace_name = "web";
  EXPECT_EQ(writer.Allow(elsewhere).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Ruleset(), before);
  ASSERT_OK(writer.Delete("v5-caddy-ingress:80"));
  EXPECT_EQ(IptablesRuleLines(), std::vector<std::string>{SavedLine(derived)});
  EXPECT_EQ(writer.Delete("v5-caddy-ingress:80").message(), "rule v5-caddy-ingress:80 not found");
}

TEST_F(FirewallNftTest, DeleteRemovesBothPlanes) {
  ASSERT_OK(CreateBridgeScaffold());
  FirewallWriter writer = Must(FirewallWriter::Open());
  const Rule a = MakeRule("web", "10.0.0.1", "10.0.0.2", Protocol::kTcp, 1);
  const Rule b = MakeRule("web", "10.0.0.3", "10.0.0.4", Protocol::kTcp, 2);
  const Rule c = MakeRule("db", "10.0.0.5", "0.0.0.0/0", Protocol::kUdp, 3);
  Must(writer.Bulk({a, b, c}));
  ASSERT_OK(writer.Delete(RuleId(b)));
  EXPECT_EQ(IptablesRuleLines(), (std::vector<std::string>{SavedLine(a), SavedLine(c)}));
  EXPECT_EQ(BridgeRuleLines().size(), 2u);
  EXPECT_THAT(absl::StrJoin(BridgeRuleLines(), "\n"), ::testing::Not(HasSubstr(RuleId(b))));
  EXPECT_EQ(writer.List("").size(), 2u);

  const std::string before = Ruleset();
  EXPECT_EQ(writer.Delete(RuleId(b)).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(writer.Delete("not an id").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ruleset(), before);
}

TEST_F(FirewallNftTest, BulkRefusesDuplicatesBeforeTheKernel) {
  ASSERT_OK(CreateBridgeScaffold());
  FirewallWriter writer = Must(FirewallWriter::Open());
  Must(writer.Bulk(RandomRules(10, 1)));
  const std::string before = Ruleset();
  std::vector<Rule> rules = RandomRules(20, 2);
  rules.push_back(rules[3]);
  absl::StatusOr<std::vector<std::string>> ids = writer.Bulk(rules);
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ids.status().message()), HasSubstr("rules[20] duplicates rules[3]"));
  EXPECT_EQ(Ruleset(), before);
}

// The kernel itself refuses one message of a bulk: the bridge chain was removed behind
// the writer's back, so the first bridge-plane add fails. nf_tables rolls the whole
// batch back, ip-plane adds included.
TEST_F(FirewallNftTest, BulkIsAllOrNothingWhenTheKernelRefusesOneRule) {
  ASSERT_OK(CreateBridgeScaffold());
  FirewallWriter writer = Must(FirewallWriter::Open());
  Must(writer.Load());
  Must(writer.Bulk(RandomRules(5, 3)));
  ASSERT_OK(RunOk({kNft, "delete", "table", "bridge", "coolify_bridge"}).status());
  const std::string before = Ruleset();

  const std::vector<Rule> rules = RandomRules(100, 4);
  absl::StatusOr<std::vector<std::string>> ids = writer.Bulk(rules);
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ids.status().message()),
              HasSubstr("to bridge coolify_bridge coolify_allow"));
  EXPECT_THAT(std::string(ids.status().message()), HasSubstr("rolled back"));
  EXPECT_EQ(Ruleset(), before);
  EXPECT_EQ(writer.List("").size(), 5u);

  // The refusal told the writer its view was stale: the next bulk reads the kernel
  // again, finds the bridge plane gone and writes the ip plane alone.
  Must(writer.Bulk(rules));
  EXPECT_FALSE(writer.bridge_plane_active());
  EXPECT_EQ(IptablesRuleLines().size(), 105u);
}

// The kernel refuses one delete of a reconcile (its rule was removed behind the
// writer's back): nothing of the batch happens, adds included.
TEST_F(FirewallNftTest, ReconcileIsAllOrNothingWhenTheKernelRefusesOneDelete) {
  ASSERT_OK(CreateBridgeScaffold());
  FirewallWriter writer = Must(FirewallWriter::Open());
  const std::vector<Rule> old_rules = RandomRules(5, 5);
  Must(writer.Bulk(old_rules));
  const uint64_t handle = *writer.index().Find(RuleId(old_rules[2]))->ip_handle;
  ASSERT_OK(RunOk({kNft, "delete", "rule", "ip", "filter", "COOLIFY-ALLOW", "handle",
                   std::to_string(handle)})
                .status());
  const std::string before = Ruleset();

  absl::StatusOr<ApplyResult> result = writer.Reconcile(RandomRules(50, 6));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("delete rule " + RuleId(old_rules[2]) + " (handle " +
                        std::to_string(handle) + ")"));
  EXPECT_EQ(Ruleset(), before);
}

TEST_F(FirewallNftTest, ReconcileAddsMissingAndRemovesExtra) {
  ASSERT_OK(CreateBridgeScaffold());
  FirewallWriter writer = Must(FirewallWriter::Open());
  const std::vector<Rule> rules = RandomRules(30, 7);
  Must(writer.Bulk(std::vector<Rule>(rules.begin(), rules.begin() + 20)));
  const std::vector<Rule> desired(rules.begin() + 10, rules.end());
  ApplyResult result = Must(writer.Reconcile(desired));
  EXPECT_EQ(result.added.size(), 10u);
  EXPECT_EQ(result.removed.size(), 10u);
  std::vector<std::string> expected;
  for (const Rule& rule : desired) expected.push_back(SavedLine(rule));
  EXPECT_EQ(IptablesRuleLines(), expected);
  EXPECT_EQ(BridgeRuleLines().size(), 20u);

  const std::string before = Ruleset();
  result = Must(writer.Reconcile(desired));
  EXPECT_TRUE(result.added.empty());
  EXPECT_TRUE(result.removed.empty());
  EXPECT_EQ(Ruleset(), before);

  std::vector<Rule> duplicated = desired;
  duplicated.push_back(desired[0]);
  EXPECT_EQ(writer.Reconcile(duplicated).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ruleset(), before);
}

// Apply is the one primitive underneath: deletes and adds of any number of ids, one
// batch, with what can be refused refused before the kernel is asked.
TEST_F(FirewallNftTest, ApplyDeletesAndAddsInOneBatch) {
  ASSERT_OK(CreateBridgeScaffold());
  FirewallWriter writer = Must(FirewallWriter::Open());
  const std::vector<Rule> rules = RandomRules(6, 10);
  Must(writer.Bulk({rules[0], rules[1], rules[2]}));
  ApplyResult result =
      Must(writer.Apply({rules[3], rules[1], rules[4]}, {RuleId(rules[0]), RuleId(rules[2])}));
  EXPECT_EQ(result.added, (std::vector<std::string>{RuleId(rules[3]), RuleId(rules[4])}));
  EXPECT_EQ(result.removed, (std::vector<std::string>{RuleId(rules[0]), RuleId(rules[2])}));
  EXPECT_EQ(IptablesRuleLines(), (std::vector<std::string>{SavedLine(rules[1]), SavedLine(rules[3]),
                                                           SavedLine(rules[4])}));
  EXPECT_EQ(BridgeRuleLines().size(), 3u);

  const std::string before = Ruleset();
  EXPECT_EQ(writer.Apply({rules[5]}, {RuleId(rules[5])}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(writer.Apply({rules[1]}, {RuleId(rules[1])}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer.Apply({}, {RuleId(rules[1]), RuleId(rules[1])}).status().code(),
            absl::StatusCode::kInvalidArgument);
  Rule invalid = rules[5];
  invalid.port = 0;
  EXPECT_EQ(writer.Apply({invalid}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ruleset(), before);
}

TEST_F(FirewallNftTest, PermissiveModeWithoutBridgeScaffold) {
  StderrCapture stderr_capture;
  FirewallWriter writer = Must(FirewallWriter::Open());
  LoadReport report = Must(writer.Load());
  EXPECT_FALSE(report.bridge_plane_active);
  EXPECT_FALSE(report.ip_chain_exists);
  const std::vector<Rule> rules = RandomRules(4, 8);
  for (const Rule& rule : rules) Must(writer.Allow(rule));
  ASSERT_OK(writer.Delete(RuleId(rules[0])));
  Must(writer.Load());
  EXPECT_EQ(IptablesRuleLines().size(), 3u);
  EXPECT_THAT(Must(RunOk({kNft, "list", "tables"})), ::testing::Not(HasSubstr("bridge")));
  const std::vector<std::string> warnings = Lines(stderr_capture.Text(), "");
  int permissive_warnings = 0;
  for (const std::string& line : warnings) {
    if (absl::StrContains(line, "WARN") && absl::StrContains(line, "permissive")) {
      ++permissive_warnings;
    }
  }
  EXPECT_EQ(permissive_warnings, 1) << stderr_capture.Text();

  // Once the scaffold exists, Load() sees it and a reconcile completes the bridge plane.
  ASSERT_OK(CreateBridgeScaffold());
  EXPECT_TRUE(Must(writer.Load()).bridge_plane_active);
  ApplyResult result =
      Must(writer.Reconcile(std::vector<Rule>(rules.begin() + 1, rules.end())));
  EXPECT_EQ(result.added.size(), 3u);
  EXPECT_TRUE(result.removed.empty());
  EXPECT_EQ(BridgeRuleLines().size(), 3u);
  EXPECT_EQ(IptablesRuleLines().size(), 3u);
}

TEST_F(FirewallNftTest, LoadRebuildsTheIndexAndReportsForeignRules) {
  ASSERT_OK(CreateBridgeScaffold());
  char dir_template[] = "/tmp/firewall-load-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  privsep::UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir_fd);
  const SnapshotNames names{"rules.v4", "bridge.nft"};

  FirewallWriter writer = Must(FirewallWriter::Open());
  const std::vector<Rule> rules = RandomRules(60, 9);
  Must(writer.Bulk(std::vector<Rule>(rules.begin(), rules.begin() + 40)));
  for (size_t i = 40; i < rules.size(); ++i) Must(writer.Allow(rules[i]));
  ASSERT_OK(writer.Delete(RuleId(rules[7])));
  ASSERT_OK(WriteSnapshots(dir_fd.get(), names, writer.index()));
  // Rules we did not write, in both chains.
  ASSERT_OK(RunOk({kIptables, "-A", "COOLIFY-ALLOW", "-s", "192.0.2.1", "-j", "ACCEPT"}).status());
  ASSERT_OK(RunOk({kIptables, "-A", "COOLIFY-ALLOW", "-p", "tcp", "--dport", "22", "-m",
                   "comment", "--comment", "not an id", "-j", "ACCEPT"})
                .status());
  ASSERT_OK(RunOk({kNft, "add rule bridge coolify_bridge coolify_allow ip saddr 192.0.2.1 "
                         "counter accept"})
                .status());

  FirewallWriter reloaded = Must(FirewallWriter::Open());
  LoadReport report =
      Must(reloaded.Load(Must(ReadSnapshotNamespaces(dir_fd.get(), names.iptables))));
  EXPECT_TRUE(report.ip_chain_exists);
  EXPECT_TRUE(report.bridge_plane_active);
  EXPECT_EQ(report.rules, 59u);
  EXPECT_EQ(report.without_namespace, 0u);
  EXPECT_EQ(reloaded.List(""), writer.List(""));
  EXPECT_EQ(reloaded.List("web"), writer.List("web"));
  ASSERT_EQ(report.foreign.size(), 3u);
  EXPECT_EQ(report.foreign[0].plane, Plane::kIp);
  EXPECT_EQ(report.foreign[2].plane, Plane::kBridge);
  EXPECT_THAT(report.foreign[1].reason, HasSubstr("comment is not a rule id"));

  // Without hints the namespaces are unknown; the first allow naming a rule restores
  // its namespace and writes nothing.
  FirewallWriter blind = Must(FirewallWriter::Open());
  report = Must(blind.Load());
  EXPECT_EQ(report.without_namespace, 59u);
  EXPECT_TRUE(blind.List("web").empty());
  const std::string before = Ruleset();
  Must(blind.Allow(rules[0]));
  EXPECT_EQ(Ruleset(), before);
  ASSERT_EQ(blind.List(rules[0].namespace_name).size(), 1u);

  // Reconciling to nothing removes every rule of ours and nothing else.
  ApplyResult result = Must(reloaded.Reconcile({}));
  EXPECT_EQ(result.removed.size(), 59u);
  EXPECT_EQ(IptablesRuleLines().size(), 2u);
  EXPECT_EQ(BridgeRuleLines().size(), 1u);
}

TEST_F(FirewallNftTest, AdoptsAnOpenSocket) {
  privsep::UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  ASSERT_TRUE(fd);
  FirewallWriter writer = Must(FirewallWriter::Adopt(std::move(fd)));
  const Rule rule = MakeRule("web", "10.0.0.1", "10.0.0.2", Protocol::kTcp, 443);
  Must(writer.Allow(rule));
  EXPECT_EQ(IptablesRuleLines(), std::vector<std::string>{SavedLine(rule)});

  privsep::UniqueFd wrong(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  EXPECT_EQ(FirewallWriter::Adopt(std::move(wrong)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coolify::netlink
