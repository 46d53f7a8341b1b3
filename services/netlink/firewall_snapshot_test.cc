// Snapshot rendering, atomic writing, namespace hints, and a restore through the tools
// the boot services use (iptables-restore --noflush, nft -f) in a fresh network
// namespace.
#include "services/netlink/firewall_snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/netlink/firewall_nft.h"
#include "services/netlink/firewall_testing.h"

namespace coolify::netlink {
namespace {

using testing::kIptablesRestore;
using testing::kIptablesSave;
using testing::kNft;
using testing::RunOk;

template <typename T>
T Must(absl::StatusOr<T> value) {
  EXPECT_TRUE(value.ok()) << value.status();
  if (!value.ok()) std::abort();
  return std::move(*value);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> DirectoryEntries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  for (dirent* e = readdir(d); e != nullptr; e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// A directory of its own under the test's temporary directory.
class SnapshotDir {
 public:
  SnapshotDir() {
    const char* base = getenv("TEST_TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/snapshots-XXXXXX";
    path_ = mkdtemp(pattern.data());
    fd_.reset(open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }

 private:
  std::string path_;
  privsep::UniqueFd fd_;
};

Rule MakeRule(const std::string& ns, Ipv4Prefix src, Ipv4Prefix dst, Protocol protocol,
              uint16_t port) {
  Rule rule;
  rule.namespace_name = ns;
  rule.src = src;
  rule.dst = dst;
  rule.protocol = protocol;
  rule.port = port;
  return rule;
}

TEST(FirewallSnapshotTest, RendersBothFragments) {
  FirewallIndex index;
  const Rule web = MakeRule("web", {0x0a000001, 32}, {0x0a010000, 16}, Protocol::kTcp, 80);
  index.Append(FirewallEntry{RuleId(web), web, 2, 3});
  // Read back without a namespace: no namespace line, the rule itself all the same.
  Rule anonymous = MakeRule("db", {0, 0}, {0xc0a80080, 25}, Protocol::kUdp, 53);
  const std::string anonymous_id = RuleId(anonymous);
  anonymous.namespace_name.clear();
  index.Append(FirewallEntry{anonymous_id, anonymous, 4, std::nullopt});

  EXPECT_EQ(RenderIptablesSnapshot(index),
            "# coold allow rules, ip filter COOLIFY-ALLOW: iptables-restore --noflush FILE\n"
            "*filter\n"
            ":COOLIFY-ALLOW - [0:0]\n"
            "-F COOLIFY-ALLOW\n"
            "# id " + RuleId(web) + " namespace web\n"
            "-A COOLIFY-ALLOW -s 10.0.0.1/32 -d 10.1.0.0/16 -p tcp -m tcp --dport 80 "
            "-m comment --comment " + RuleId(web) + " -j ACCEPT\n"
            "-A COOLIFY-ALLOW -d 192.168.0.128/25 -p udp -m udp --dport 53 "
            "-m comment --comment " + anonymous_id + " -j ACCEPT\n"
            "COMMIT\n");
  EXPECT_EQ(RenderBridgeSnapshot(index),
            "# coold allow rules, bridge coolify_bridge coolify_allow: nft -f FILE\n"
            "add table bridge coolify_bridge\n"
            "add chain bridge coolify_bridge coolify_allow\n"
            "flush chain bridge coolify_bridge coolify_allow\n"
            "add rule bridge coolify_bridge coolify_allow ip saddr 10.0.0.1/32 "
            "ip daddr 10.1.0.0/16 meta l4proto tcp th dport 80 accept comment \"" +
                RuleId(web) + "\"\n"
            "add rule bridge coolify_bridge coolify_allow ip saddr 0.0.0.0/0 "
            "ip daddr 192.168.0.128/25 meta l4proto udp th dport 53 accept comment \"" +
                anonymous_id + "\"\n");
}

TEST(FirewallSnapshotTest, WritesAtomicallyAndDurably) {
  SnapshotDir dir;
  const SnapshotNames names{"rules.v4", "bridge.nft"};
  FirewallIndex index;
  ASSERT_TRUE(WriteSnapshots(dir.fd(), names, index).ok());
  const Rule rule = MakeRule("web", {0x0a000000, 8}, {0, 0}, Protocol::kTcp, 22);
  index.Append(FirewallEntry{RuleId(rule), rule, 2, std::nullopt});
  ASSERT_TRUE(WriteSnapshots(dir.fd(), names, index).ok());

  EXPECT_EQ(DirectoryEntries(dir.path()), (std::vector<std::string>{"bridge.nft", "rules.v4"}));
  EXPECT_EQ(ReadFile(dir.path() + "/rules.v4"), RenderIptablesSnapshot(index));
  EXPECT_EQ(ReadFile(dir.path() + "/bridge.nft"), RenderBridgeSnapshot(index));
  struct stat st {};
  ASSERT_EQ(stat((dir.path() + "/rules.v4").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  for (const SnapshotNames& bad : {SnapshotNames{"a/b", "c"}, SnapshotNames{"", "c"},
                                   SnapshotNames{"..", "c"}, SnapshotNames{"same", "same"}}) {
    EXPECT_EQ(WriteSnapshots(dir.fd(), bad, index).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(DirectoryEntries(dir.path()), (std::vector<std::string>{"bridge.nft", "rules.v4"}));
}

TEST(FirewallSnapshotTest, NamespaceHintsRoundTrip) {
  FirewallIndex index;
  const std::vector<Rule> rules = testing::RandomRules(50, 11);
  for (const Rule& rule : rules) index.Append(FirewallEntry{RuleId(rule), rule, 1, 1});
  const NamespaceHints hints = ParseSnapshotNamespaces(RenderIptablesSnapshot(index));
  ASSERT_EQ(hints.size(), rules.size());
  for (const Rule& rule : rules) EXPECT_EQ(hints.at(RuleId(rule)), rule.namespace_name);

  EXPECT_TRUE(ParseSnapshotNamespaces("# id 0123456789ab namespace Bad\n"
                                      "# id 1xyz namespace web\n"
                                      "# id 0123456789ab namespace web extra\n"
                                      "#id 0123456789ab namespace web\n")
                  .empty());

  SnapshotDir dir;
  EXPECT_TRUE(Must(ReadSnapshotNamespaces(dir.fd(), "missing")).empty());
}

// What the boot services do: flush the namespace, recreate the bridge scaffold, restore
// both snapshots. The kernel must print exactly what it printed before.
class FirewallSnapshotRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::NetworkNamespace> ns = testing::NetworkNamespace::CreateAndEnter();
    ASSERT_TRUE(ns.ok()) << ns.status();
    namespace_.emplace(std::move(*ns));
  }

  std::optional<testing::NetworkNamespace> namespace_;
};

TEST_F(FirewallSnapshotRestoreTest, RestoreReproducesTheKernel) {
  ASSERT_TRUE(testing::CreateBridgeScaffold().ok());
  FirewallWriter writer = Must(FirewallWriter::Open());
  const std::vector<Rule> rules = testing::RandomRules(200, 12);
  Must(writer.Bulk(rules));
  for (size_t i = 0; i < rules.size(); i += 7) ASSERT_TRUE(writer.Delete(RuleId(rules[i])).ok());
  SnapshotDir dir;
  const SnapshotNames names{"rules.v4", "bridge.nft"};
  ASSERT_TRUE(WriteSnapshots(dir.fd(), names, writer.index()).ok());

  const std::string saved = Must(RunOk({kIptablesSave}));
  const std::string before = testing::StripIptablesSave(saved) + "\n" +
                             Must(RunOk({kNft, "list", "ruleset"}));
  // The snapshot's rule lines are iptables-save's.
  std::vector<std::string> saved_rules;
  std::vector<std::string> snapshot_rules;
  for (absl::string_view line : absl::StrSplit(saved, '\n')) {
    if (absl::StartsWith(line, "-A ")) saved_rules.emplace_back(line);
  }
  for (absl::string_view line : absl::StrSplit(ReadFile(dir.path() + "/rules.v4"), '\n')) {
    if (absl::StartsWith(line, "-A ")) snapshot_rules.emplace_back(line);
  }
  EXPECT_EQ(snapshot_rules, saved_rules);

  ASSERT_TRUE(RunOk({kNft, "flush", "ruleset"}).ok());
  ASSERT_EQ(Must(RunOk({kNft, "list", "ruleset"})), "");
  ASSERT_TRUE(testing::CreateBridgeScaffold().ok());
  for (int round = 0; round < 2; ++round) {  // restoring twice changes nothing
    absl::StatusOr<std::string> ip = RunOk({kIptablesRestore, "--noflush", dir.path() + "/rules.v4"});
    ASSERT_TRUE(ip.ok()) << ip.status();
    absl::StatusOr<std::string> bridge = RunOk({kNft, "-f", dir.path() + "/bridge.nft"});
    ASSERT_TRUE(bridge.ok()) << bridge.status();
    EXPECT_EQ(testing::StripIptablesSave(Must(RunOk({kIptablesSave}))) + "\n" +
                  Must(RunOk({kNft, "list", "ruleset"})),
              before);
  }

  // Restored rules are ours, namespaces and all.
  FirewallWriter reloaded = Must(FirewallWriter::Open());
  LoadReport report = Must(reloaded.Load(Must(ReadSnapshotNamespaces(dir.fd(), names.iptables))));
  EXPECT_TRUE(report.foreign.empty());
  EXPECT_EQ(report.without_namespace, 0u);
  ASSERT_EQ(reloaded.index().size(), writer.index().size());
  auto theirs = reloaded.index().begin();
  for (const FirewallEntry& entry : writer.index()) {
    EXPECT_EQ(theirs->id, entry.id);
    EXPECT_EQ(theirs->rule, entry.rule);
    EXPECT_TRUE(theirs->ip_handle.has_value());
    EXPECT_TRUE(theirs->bridge_handle.has_value());
    ++theirs;
  }
}

// A caller's id is the rule's comment: it survives the boot restore and a new writer's
// Load, namespace and all, and the derived ids beside it are untouched.
TEST_F(FirewallSnapshotRestoreTest, CallerIdsSurviveRestoreAndLoad) {
  ASSERT_TRUE(testing::CreateBridgeScaffold().ok());
  FirewallWriter writer = Must(FirewallWriter::Open());
  Rule caddy = testing::RandomRules(1, 14)[0];
  caddy.namespace_name = "default";
  caddy.caller_id = "v5-caddy-ingress:80";
  const Rule derived = testing::RandomRules(1, 15)[0];
  ASSERT_EQ(Must(writer.Allow(caddy)), "v5-caddy-ingress:80");
  ASSERT_EQ(Must(writer.Allow(derived)), RuleId(derived));
  SnapshotDir dir;
  const SnapshotNames names{"rules.v4", "bridge.nft"};
  ASSERT_TRUE(WriteSnapshots(dir.fd(), names, writer.index()).ok());
  EXPECT_THAT(ReadFile(dir.path() + "/rules.v4"), ::testing::HasSubstr("--comment \"v5-caddy-ingress:80\" -j ACCEPT"));
  // Quoted as iptables-save quotes it: the snapshot's rule lines are iptables-save's.
  for (absl::string_view line : absl::StrSplit(ReadFile(dir.path() + "/rules.v4"), '\n')) {
    if (absl::StartsWith(line, "-A ")) {
      EXPECT_THAT(Must(RunOk({kIptablesSave})), ::testing::HasSubstr(std::string(line)));
    }
  }

  ASSERT_TRUE(RunOk({kNft, "flush", "ruleset"}).ok());
  ASSERT_TRUE(testing::CreateBridgeScaffold().ok());
  ASSERT_TRUE(RunOk({kIptablesRestore, "--noflush", dir.path() + "/rules.v4"}).ok());
  ASSERT_TRUE(RunOk({kNft, "-f", dir.path() + "/bridge.nft"}).ok());

  FirewallWriter reloaded = Must(FirewallWriter::Open());
  LoadReport report = Must(reloaded.Load(Must(ReadSnapshotNamespaces(dir.fd(), names.iptables))));
  EXPECT_TRUE(report.foreign.empty());
  EXPECT_EQ(report.without_namespace, 0u);
  const FirewallEntry* entry = reloaded.index().Find("v5-caddy-ingress:80");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->rule, caddy);
  EXPECT_EQ(entry->rule.caller_id, "v5-caddy-ingress:80");
  EXPECT_TRUE(entry->ip_handle.has_value());
  EXPECT_TRUE(entry->bridge_handle.has_value());
  ASSERT_NE(reloaded.index().Find(RuleId(derived)), nullptr);
  // Allowing it again after the restart adds nothing; revoking it by its id removes it.
  const std::string before = Must(RunOk({kIptablesSave}));
  EXPECT_EQ(Must(reloaded.Allow(caddy)), "v5-caddy-ingress:80");
  EXPECT_EQ(testing::StripIptablesSave(Must(RunOk({kIptablesSave}))), testing::StripIptablesSave(before));
  ASSERT_TRUE(reloaded.Delete("v5-caddy-ingress:80").ok());
  EXPECT_THAT(Must(RunOk({kIptablesSave})), ::testing::Not(::testing::HasSubstr("v5-caddy-ingress")));
  EXPECT_NE(reloaded.index().Find(RuleId(derived)), nullptr);
}

// At boot nothing may have created the bridge table yet: the snapshot creates the table
// and a plain chain, and a writer started afterwards finds its rules there.
TEST_F(FirewallSnapshotRestoreTest, BridgeSnapshotRestoresWithoutTheScaffold) {
  FirewallWriter writer = Must(FirewallWriter::Open());
  const std::vector<Rule> rules = testing::RandomRules(3, 13);
  Must(writer.Bulk(rules));
  EXPECT_FALSE(writer.bridge_plane_active());
  SnapshotDir dir;
  ASSERT_TRUE(WriteSnapshots(dir.fd(), {"rules.v4", "bridge.nft"}, writer.index()).ok());
  ASSERT_TRUE(RunOk({kNft, "flush", "ruleset"}).ok());
  ASSERT_TRUE(RunOk({kIptablesRestore, "--noflush", dir.path() + "/rules.v4"}).ok());
  absl::StatusOr<std::string> restored = RunOk({kNft, "-f", dir.path() + "/bridge.nft"});
  ASSERT_TRUE(restored.ok()) << restored.status();

  FirewallWriter reloaded = Must(FirewallWriter::Open());
  LoadReport report = Must(reloaded.Load(Must(ReadSnapshotNamespaces(dir.fd(), "rules.v4"))));
  EXPECT_TRUE(report.bridge_plane_active);
  EXPECT_TRUE(report.foreign.empty());
  ASSERT_EQ(reloaded.index().size(), rules.size());
  for (const FirewallEntry& entry : reloaded.index()) {
    EXPECT_TRUE(entry.ip_handle.has_value());
    EXPECT_TRUE(entry.bridge_handle.has_value());
  }
}

}  // namespace
}  // namespace coolify::netlink
