// The firewall writer beside other programs that write the same tables at the same time,
// as netavark (iptables and nft backends) and a mesh VPN like Tailscale do on a Podman
// host: while coold's writer allows and deletes rules, another process appends and
// deletes its own rules in ip filter (FORWARD and a chain of its own), in the bridge
// table coolify_bridge (a chain of its own) and in a table of its own. Afterwards our
// rules are exactly what the writer was told, once each, on both planes; theirs are
// exactly what that program left; a fresh Load() finds nothing foreign in our chains.
#include <algorithm>
#include <atomic>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "services/netlink/firewall_nft.h"
#include "services/netlink/firewall_testing.h"

namespace coolify::netlink {
namespace {

using testing::CreateBridgeScaffold;
using testing::kIptablesSave;
using testing::kNft;
using testing::NetworkNamespace;
using testing::RandomRules;
using testing::RunOk;

std::vector<std::string> LinesWith(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, needle)) out.emplace_back(absl::StripAsciiWhitespace(line));
  }
  return out;
}

// The other program: `rounds` rounds of appends, every third one deleted again, in four
// places. It prints nothing; what it leaves is computed by ForeignLeft().
constexpr int kForeignRounds = 150;
const char kForeignScript[] = R"(
set -e
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
iptables -N ts-forward
iptables -A FORWARD -j ts-forward
nft add table inet netavark
nft add chain inet netavark forward '{ type filter hook forward priority 0; }'
nft add chain bridge coolify_bridge ts_bridge
for i in $(seq 1 "$1"); do
  a=10.99.$((i / 200)).$((i % 200 + 1))
  iptables -A FORWARD -s "$a" -j ACCEPT -m comment --comment "netavark-$i"
  iptables -A ts-forward -d "$a" -j ACCEPT -m comment --comment "ts-$i"
  nft add rule bridge coolify_bridge ts_bridge ip saddr "$a" accept comment "\"tsb-$i\""
  nft add rule inet netavark forward ip daddr "$a" accept comment "\"nv-$i\""
  if [ $((i % 3)) -eq 0 ]; then
    iptables -D FORWARD -s "$a" -j ACCEPT -m comment --comment "netavark-$i"
    iptables -D ts-forward -d "$a" -j ACCEPT -m comment --comment "ts-$i"
  fi
done
)";

size_t ForeignLeft(bool deletes_apply) {
  size_t left = 0;
  for (int i = 1; i <= kForeignRounds; ++i) left += (deletes_apply && i % 3 == 0) ? 0 : 1;
  return left;
}

TEST(FirewallCoexistenceTest, OursAndTheirsBothSurviveConcurrentWriters) {
  absl::StatusOr<NetworkNamespace> ns = NetworkNamespace::CreateAndEnter();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(CreateBridgeScaffold().ok());
  absl::StatusOr<FirewallWriter> writer = FirewallWriter::Open();
  ASSERT_TRUE(writer.ok()) << writer.status();

  // Threads inherit the network namespace of the thread that creates them.
  std::optional<absl::StatusOr<testing::CommandResult>> foreign;
  std::atomic<bool> foreign_done{false};
  std::thread other([&] {
    foreign = testing::Run({"/bin/bash", "-c", kForeignScript, "foreign", std::to_string(kForeignRounds)});
    foreign_done = true;
  });

  // Our writer works for as long as the other one does (and at least 400 operations).
  std::set<std::string> ours;
  size_t while_foreign_ran = 0;
  const std::vector<Rule> rules = RandomRules(20000, 20261205);
  for (size_t i = 0; i < rules.size() && (i < 400 || !foreign_done); ++i) {
    if (!foreign_done) ++while_foreign_ran;
    absl::StatusOr<std::string> id = writer->Allow(rules[i]);
    ASSERT_TRUE(id.ok()) << id.status();
    ours.insert(*id);
    if (i % 4 == 3) {
      // Delete one allowed earlier: the writer's handles must still name our rules.
      const std::string victim = *std::next(ours.begin(), static_cast<long>(i % ours.size()));
      ASSERT_TRUE(writer->Delete(victim).ok()) << victim;
      ours.erase(victim);
    }
  }
  other.join();
  ASSERT_TRUE(foreign.has_value() && foreign->ok());
  EXPECT_GT(while_foreign_ran, 100u) << "the two writers barely overlapped";
  ASSERT_EQ((*foreign)->exit_code, 0) << (*foreign)->err;

  // Ours: exactly the set, once each, on both planes.
  const std::string saved = *RunOk({kIptablesSave});
  std::vector<std::string> ip_lines = LinesWith(saved, "-A COOLIFY-ALLOW");
  std::multiset<std::string> ip_ids;
  for (const std::string& line : ip_lines) {
    size_t at = line.find("--comment ");
    ASSERT_NE(at, std::string::npos) << line;
    ip_ids.insert(line.substr(at + 10, 12));
  }
  EXPECT_EQ(ip_ids, std::multiset<std::string>(ours.begin(), ours.end()));
  const std::string bridge = *RunOk({kNft, "list", "chain", "bridge", "coolify_bridge", "coolify_allow"});
  EXPECT_EQ(LinesWith(bridge, " accept").size(), ours.size());

  // Theirs: exactly what the other program left, where it left it.
  EXPECT_EQ(LinesWith(saved, "-A FORWARD -s 10.99.").size(), ForeignLeft(true));
  EXPECT_EQ(LinesWith(saved, "-A ts-forward -d 10.99.").size(), ForeignLeft(true));
  const std::string ts_bridge = *RunOk({kNft, "list", "chain", "bridge", "coolify_bridge", "ts_bridge"});
  EXPECT_EQ(LinesWith(ts_bridge, "comment \"tsb-").size(), ForeignLeft(false));
  const std::string netavark = *RunOk({kNft, "list", "table", "inet", "netavark"});
  EXPECT_EQ(LinesWith(netavark, "comment \"nv-").size(), ForeignLeft(false));

  // A writer starting now (coold restarted) reads the same set and nothing foreign in
  // our chains.
  absl::StatusOr<FirewallWriter> fresh = FirewallWriter::Open();
  ASSERT_TRUE(fresh.ok());
  absl::StatusOr<LoadReport> report = fresh->Load();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rules, ours.size());
  EXPECT_TRUE(report->foreign.empty());
  EXPECT_TRUE(report->bridge_plane_active);
}

}  // namespace
}  // namespace coolify::netlink
