// The firewall writer's request handler against the real kernel, in a network namespace of
// its own: allows the policy refuses (firewall_policy.h) come back with their reason and
// leave iptables, nft and the snapshots exactly as they were; a permitted allow is written.
// The requests are what a compromised front end could send: well-formed, grammar-valid,
// and hostile.
#include "services/netlink/firewall_service.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <optional>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "privsep/channel.h"
#include "privsep/unique_fd.h"
#include "privsep/validate.h"
#include "services/netlink/firewall_testing.h"

namespace coolify::netlink {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::CreateBridgeScaffold;
using testing::kIptables;
using testing::kIptablesSave;
using testing::kNft;
using testing::NetworkNamespace;
using testing::RunOk;
using testing::StderrCapture;
using testing::StripIptablesSave;

template <typename T>
T Must(absl::StatusOr<T> value) {
  EXPECT_TRUE(value.ok()) << value.status();
  if (!value.ok()) std::abort();
  return std::move(*value);
}

v1::FirewallRule Proto(const std::string& src, const std::string& dst, uint32_t port) {
  v1::FirewallRule rule;
  rule.set_namespace_("default");
  rule.set_src(src);
  rule.set_dst(dst);
  rule.set_proto("tcp");
  rule.set_port(port);
  return rule;
}

privsep::NetlinkRequest AllowRequest(const v1::FirewallRule& rule) {
  privsep::NetlinkRequest request;
  request.set_role(privsep::ROLE_NETLINK);
  *request.mutable_allow()->mutable_rule() = rule;
  return request;
}

// Both planes as the tools print them, and both snapshot files.
struct KernelState {
  std::string iptables_rules;  // iptables -S
  std::string iptables_save;
  std::string bridge;  // nft list table bridge coolify_bridge
  std::string snapshots;
  bool operator==(const KernelState& o) const {
    return iptables_rules == o.iptables_rules && iptables_save == o.iptables_save && bridge == o.bridge &&
           snapshots == o.snapshots;
  }
};

std::string ReadFile(const std::string& path) {
  std::string text;
  privsep::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "(absent)";
  char buf[4096];
  for (ssize_t n; (n = read(fd.get(), buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  return text;
}

class FirewallServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<NetworkNamespace> ns = NetworkNamespace::CreateAndEnter();
    ASSERT_TRUE(ns.ok()) << ns.status();
    namespace_.emplace(std::move(*ns));
    ASSERT_TRUE(CreateBridgeScaffold().ok());
    char pattern[] = "/tmp/fwpolicy-service-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    dir_fd_.reset(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir_fd_);
    // The management IP inside the private ranges, as a wg0 address is.
    service_.emplace(Must(FirewallWriter::Open()), SnapshotTarget{dir_fd_.get(), "allow.rules"},
                     SnapshotTarget{dir_fd_.get(), "allow.nft"}, DefaultFirewallPolicy((10u << 24) | (99u << 16) | 1));
    ASSERT_TRUE(service_->Start().ok());
  }
  void TearDown() override {
    unlinkat(dir_fd_.get(), "allow.rules", 0);
    unlinkat(dir_fd_.get(), "allow.nft", 0);
    rmdir(dir_.c_str());
  }

  KernelState State() const {
    return {Must(RunOk({kIptables, "-S"})), StripIptablesSave(Must(RunOk({kIptablesSave}))),
            Must(RunOk({kNft, "list", "table", "bridge", "coolify_bridge"})),
            ReadFile(dir_ + "/allow.rules") + ReadFile(dir_ + "/allow.nft")};
  }

  std::optional<NetworkNamespace> namespace_;
  std::string dir_;
  privsep::UniqueFd dir_fd_;
  std::optional<FirewallService> service_;
};

TEST_F(FirewallServiceTest, ForbiddenAllowsAreRefusedWithTheirReasonAndWriteNothing) {
  // A first permitted rule, so "nothing changed" is checked against a non-empty chain.
  privsep::NetlinkReply first = service_->AnswerAllow(AllowRequest(Proto("10.210.0.5", "10.210.0.6", 80)));
  ASSERT_FALSE(first.has_status()) << first.status().message();
  const KernelState before = State();
  ASSERT_THAT(before.iptables_rules, HasSubstr("-A COOLIFY-ALLOW -s 10.210.0.5/32 -d 10.210.0.6/32"));

  struct Case {
    v1::FirewallRule rule;
    std::string reason;
  };
  const Case cases[] = {
      {Proto("0.0.0.0/0", "0.0.0.0/0", 80), "dst: 0.0.0.0/0 is wider than /8 (rule firewall_destination_prefix)"},
      {Proto("10.210.0.5", "0.0.0.0/0", 5432), "dst: 0.0.0.0/0 is wider than /8"},
      {Proto("0.0.0.0/0", "10.210.0.6", 5432),
       "src: 0.0.0.0/0 is outside the firewall's source networks"},
      {Proto("10.210.0.5", "8.8.8.8", 53), "dst: 8.8.8.8/32 is not within the firewall's destination networks"},
      {Proto("10.210.0.5", "10.99.0.1", 8443), "dst: 10.99.0.1/32 covers the management IP 10.99.0.1"},
      {Proto("10.210.0.5", "10.0.0.0/8", 80), "covers the management IP"},
  };
  for (const Case& c : cases) {
    privsep::NetlinkReply reply = service_->AnswerAllow(AllowRequest(c.rule));
    EXPECT_EQ(reply.status().code(), static_cast<int>(absl::StatusCode::kPermissionDenied)) << c.reason;
    EXPECT_THAT(reply.status().message(), HasSubstr(c.reason));
    EXPECT_FALSE(reply.has_allowed());
  }
  // Through a staged set too (bulk and reconcile): the set is refused naming the rule,
  // and its commit, if a hostile front sends one anyway, cannot write the refused rule.
  privsep::NetlinkRequest stage;
  stage.set_role(privsep::ROLE_NETLINK);
  *stage.mutable_stage()->add_rules() = Proto("10.210.0.5", "10.210.0.7", 80);
  *stage.mutable_stage()->add_rules() = Proto("0.0.0.0/0", "10.210.0.7", 22);
  privsep::NetlinkReply staged = service_->AnswerStage(stage);
  EXPECT_EQ(staged.status().code(), static_cast<int>(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(staged.status().message(), HasSubstr("rules[1].src: 0.0.0.0/0 is outside"));
  privsep::NetlinkRequest commit;
  commit.set_role(privsep::ROLE_NETLINK);
  commit.mutable_commit()->set_mode(privsep::FIREWALL_COMMIT_MODE_BULK);
  privsep::NetlinkReply committed = service_->AnswerCommit(commit);
  EXPECT_FALSE(committed.has_status()) << committed.status().message();
  EXPECT_EQ(committed.changes().added_size(), 0);

  const KernelState after = State();
  EXPECT_EQ(after.iptables_rules, before.iptables_rules);
  EXPECT_EQ(after.iptables_save, before.iptables_save);
  EXPECT_EQ(after.bridge, before.bridge);
  EXPECT_EQ(after.snapshots, before.snapshots);
  EXPECT_THAT(after.iptables_rules, Not(HasSubstr("8.8.8.8")));
  EXPECT_THAT(after.iptables_rules, Not(HasSubstr("10.99.0.1")));
}

// A commit's changes can be far more than one channel frame (a bulk of thousands of
// rules names each twice): its reply is the first page, and only the pages follow.
TEST_F(FirewallServiceTest, LargeCommitsAnswerInPagesThatEachFitAFrame) {
  constexpr int kRules = 3000;
  for (int start = 0; start < kRules; start += privsep::kMaxRulesPerFrame) {
    privsep::NetlinkRequest stage;
    stage.set_role(privsep::ROLE_NETLINK);
    for (int i = start; i < start + privsep::kMaxRulesPerFrame; ++i) {
      *stage.mutable_stage()->add_rules() =
          Proto(absl::StrCat("10.211.", i / 250, ".", i % 250 + 1), "10.212.0.1", 443);
    }
    privsep::NetlinkReply staged = service_->AnswerStage(stage);
    ASSERT_FALSE(staged.has_status()) << staged.status().message();
  }
  // Every page of a commit, read as the front end reads them; each must pass the
  // reply's validator and fit one frame.
  auto commit_and_read = [this](privsep::FirewallCommitMode mode) {
    privsep::NetlinkRequest request;
    request.set_role(privsep::ROLE_NETLINK);
    request.mutable_commit()->set_mode(mode);
    privsep::NetlinkReply reply = service_->AnswerCommit(request);
    privsep::FirewallChanges all;
    int pages = 1;
    for (;;) {
      EXPECT_FALSE(reply.has_status()) << reply.status().message();
      reply.set_request_id(1);  // as the dispatch table stamps it
      EXPECT_TRUE(privsep::Validate(reply).ok()) << privsep::Validate(reply);
      EXPECT_LE(reply.ByteSizeLong() + privsep::kFrameHeaderBytes, privsep::kMaxFrameBytes);
      all.mutable_ids()->MergeFrom(reply.changes().ids());
      all.mutable_added()->MergeFrom(reply.changes().added());
      all.mutable_removed()->MergeFrom(reply.changes().removed());
      if (reply.changes().done() || pages > 100) break;
      EXPECT_EQ(reply.changes().next_offset(), all.ids_size() + all.added_size() + all.removed_size());
      privsep::NetlinkRequest next;
      next.set_role(privsep::ROLE_NETLINK);
      next.mutable_changes()->set_offset(reply.changes().next_offset());
      reply = service_->AnswerChangesPage(next);
      ++pages;
    }
    return std::pair{all, pages};
  };
  auto [bulk, bulk_pages] = commit_and_read(privsep::FIREWALL_COMMIT_MODE_BULK);
  EXPECT_EQ(bulk.ids_size(), kRules);
  EXPECT_EQ(bulk.added_size(), kRules);
  EXPECT_EQ(bulk_pages, 2 * kRules / privsep::kMaxRulesPerFrame);
  EXPECT_EQ(bulk.ids(7), bulk.added(7));  // the same rules, in the order sent
  EXPECT_EQ(bulk.ids(kRules - 1), bulk.added(kRules - 1));

  // Reconcile to nothing: every rule removed, named across pages.
  auto [emptied, emptied_pages] = commit_and_read(privsep::FIREWALL_COMMIT_MODE_RECONCILE);
  EXPECT_EQ(emptied.removed_size(), kRules);
  EXPECT_EQ(emptied_pages, kRules / privsep::kMaxRulesPerFrame);
  std::set<std::string> added(bulk.added().begin(), bulk.added().end());
  std::set<std::string> removed(emptied.removed().begin(), emptied.removed().end());
  EXPECT_EQ(added, removed);
  EXPECT_THAT(State().iptables_rules, Not(HasSubstr("10.211.")));
}

TEST_F(FirewallServiceTest, PermittedAllowsAreWritten) {
  // A container-to-container rule, as tools/deploy/deploy.sh makes, and central's
  // ingress rule (the world to the proxy on 80).
  privsep::NetlinkReply mesh = service_->AnswerAllow(AllowRequest(Proto("10.210.5.2", "10.210.6.3", 5432)));
  ASSERT_FALSE(mesh.has_status()) << mesh.status().message();
  EXPECT_TRUE(mesh.allowed().created());
  v1::FirewallAllow ingress;
  *ingress.mutable_rule() = Proto("0.0.0.0/0", "10.210.0.7", 80);
  ingress.set_id("v5-caddy-ingress:80");
  privsep::NetlinkRequest request;
  request.set_role(privsep::ROLE_NETLINK);
  *request.mutable_allow() = ingress;
  privsep::NetlinkReply open = service_->AnswerAllow(request);
  ASSERT_FALSE(open.has_status()) << open.status().message();
  EXPECT_EQ(open.allowed().id(), "v5-caddy-ingress:80");

  const KernelState state = State();
  EXPECT_THAT(state.iptables_rules,
              HasSubstr(absl::StrCat("-A COOLIFY-ALLOW -s 10.210.5.2/32 -d 10.210.6.3/32 -p tcp -m tcp --dport 5432 "
                                     "-m comment --comment ",
                                     mesh.allowed().id(), " -j ACCEPT")));
  EXPECT_THAT(state.iptables_rules,
              HasSubstr("-A COOLIFY-ALLOW -d 10.210.0.7/32 -p tcp -m tcp --dport 80 -m comment --comment "
                        "\"v5-caddy-ingress:80\" -j ACCEPT"));
  EXPECT_THAT(state.bridge, HasSubstr("ip saddr 10.210.5.2 ip daddr 10.210.6.3 tcp dport 5432"));
  EXPECT_THAT(state.snapshots, HasSubstr("v5-caddy-ingress:80"));
}

TEST_F(FirewallServiceTest, RulesOutsideThePolicyFoundInTheKernelAreKeptAndReported) {
  // A rule written under a wider policy (a public destination), as an earlier
  // configuration of this host may have allowed.
  FirewallPolicy wider = DefaultFirewallPolicy((10u << 24) | (99u << 16) | 1);
  wider.destinations.push_back(Must(ParseIpv4Prefix("test", "8.0.0.0/8")));
  FirewallService earlier(Must(FirewallWriter::Open()), SnapshotTarget{dir_fd_.get(), "allow.rules"},
                          SnapshotTarget{dir_fd_.get(), "allow.nft"}, wider);
  ASSERT_TRUE(earlier.Start().ok());
  privsep::NetlinkReply written = earlier.AnswerAllow(AllowRequest(Proto("10.210.0.5", "8.8.8.8", 53)));
  ASSERT_FALSE(written.has_status()) << written.status().message();
  const KernelState before = State();

  FirewallService now(Must(FirewallWriter::Open()), SnapshotTarget{dir_fd_.get(), "allow.rules"},
                      SnapshotTarget{dir_fd_.get(), "allow.nft"}, DefaultFirewallPolicy((10u << 24) | (99u << 16) | 1));
  std::string log;
  {
    StderrCapture capture;
    ASSERT_TRUE(now.Start().ok());
    log = capture.Text();
  }
  EXPECT_THAT(log, HasSubstr(absl::StrCat("rule ", written.allowed().id(),
                                          " in the kernel is outside the firewall policy (dst: 8.8.8.8/32 is not within")));
  const KernelState after = State();
  EXPECT_EQ(after.iptables_rules, before.iptables_rules);
  EXPECT_EQ(after.bridge, before.bridge);
  EXPECT_THAT(after.iptables_rules, HasSubstr("-d 8.8.8.8/32"));
  // Allowing it again is refused like any new rule; deleting it is not.
  privsep::NetlinkReply again = now.AnswerAllow(AllowRequest(Proto("10.210.0.5", "8.8.8.8", 53)));
  EXPECT_EQ(again.status().code(), static_cast<int>(absl::StatusCode::kPermissionDenied));
  privsep::NetlinkRequest remove;
  remove.set_role(privsep::ROLE_NETLINK);
  remove.mutable_delete_()->set_id(written.allowed().id());
  privsep::NetlinkReply removed = now.AnswerDelete(remove);
  EXPECT_FALSE(removed.has_status()) << removed.status().message();
  EXPECT_THAT(State().iptables_rules, Not(HasSubstr("8.8.8.8")));
}

}  // namespace
}  // namespace coolify::netlink
