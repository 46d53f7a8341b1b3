// Validation and canonical form of FirewallRule, and rule ids against coreutils'
// sha256sum.
#include "services/netlink/firewall_rule.h"
#include "privsep/validate.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/netlink/firewall_testing.h"

namespace coolify::netlink {
namespace {

using ::testing::HasSubstr;

coolify::v1::FirewallRule Proto(const std::string& ns, const std::string& src,
                                const std::string& dst, const std::string& proto,
                                uint32_t port) {
  coolify::v1::FirewallRule rule;
  rule.set_namespace_(ns);
  rule.set_src(src);
  rule.set_dst(dst);
  rule.set_proto(proto);
  rule.set_port(port);
  return rule;
}

coolify::v1::FirewallRule Good() {
  return Proto("web", "10.0.0.1", "10.1.0.0/16", "tcp", 80);
}

// The error's text, for matching.
std::string Refusal(const coolify::v1::FirewallRule& proto) {
  absl::StatusOr<Rule> rule = ValidateRule(proto);
  EXPECT_FALSE(rule.ok());
  if (rule.ok()) return "";
  EXPECT_EQ(rule.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(rule.status().message());
}

TEST(FirewallRuleTest, CanonicalForm) {
  absl::StatusOr<Rule> rule = ValidateRule(Good());
  ASSERT_TRUE(rule.ok()) << rule.status();
  EXPECT_EQ(rule->namespace_name, "web");
  EXPECT_EQ(rule->src, (Ipv4Prefix{0x0a000001, 32}));
  EXPECT_EQ(rule->dst, (Ipv4Prefix{0x0a010000, 16}));
  EXPECT_EQ(rule->protocol, Protocol::kTcp);
  EXPECT_EQ(rule->port, 80);
  EXPECT_EQ(RuleIdInput(*rule), "web|10.0.0.1|10.1.0.0/16|tcp|80");

  // A bare address and its /32 are the same tuple, so the same id.
  coolify::v1::FirewallRule explicit_host = Good();
  explicit_host.set_src("10.0.0.1/32");
  absl::StatusOr<Rule> same = ValidateRule(explicit_host);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(*same, *rule);
  EXPECT_EQ(RuleId(*same), RuleId(*rule));

  absl::StatusOr<Rule> everything =
      ValidateRule(Proto("a", "0.0.0.0/0", "255.255.255.255", "udp", 65535));
  ASSERT_TRUE(everything.ok()) << everything.status();
  EXPECT_EQ(RuleIdInput(*everything), "a|0.0.0.0/0|255.255.255.255|udp|65535");
}

TEST(FirewallRuleTest, RefusesBadNamespaces) {
  for (const char* ns : {"Web", "1web", "-web", "we_b", "web.x", "w eb",
                         "abcdefghijklmnopqrstuvwxyz012345" /* 32 */}) {
    coolify::v1::FirewallRule proto = Good();
    proto.set_namespace_(ns);
    const std::string refusal = Refusal(proto);
    EXPECT_THAT(refusal, HasSubstr("namespace: ")) << ns;
    EXPECT_THAT(refusal, HasSubstr(std::string("\"") + ns + "\"")) << ns;
  }
  coolify::v1::FirewallRule unnamed = Good();
  unnamed.set_namespace_("");
  ASSERT_TRUE(ValidateRule(unnamed).ok());
  EXPECT_EQ(ValidateRule(unnamed)->namespace_name, "default");

  coolify::v1::FirewallRule longest = Good();
  longest.set_namespace_("abcdefghijklmnopqrstuvwxyz01234");  // 31
  EXPECT_TRUE(ValidateRule(longest).ok());
  longest.set_namespace_("a-");
  EXPECT_TRUE(ValidateRule(longest).ok());
}

TEST(FirewallRuleTest, RefusesBadAddresses) {
  for (const char* address :
       {"", "10.0.0", "10.0.0.256", "010.0.0.1", "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/08",
        "10.0.0.0/", "/8", "10.0.0.0/8/8", "0x0a.0.0.1", " 10.0.0.1", "10.0.0.1 ", "::1",
        "10.0.0.0/-1"}) {
    coolify::v1::FirewallRule src = Good();
    src.set_src(address);
    EXPECT_THAT(Refusal(src), HasSubstr("src: \"")) << address;
    coolify::v1::FirewallRule dst = Good();
    dst.set_dst(address);
    EXPECT_THAT(Refusal(dst), HasSubstr("dst: \"")) << address;
  }
  coolify::v1::FirewallRule host_bits = Good();
  host_bits.set_src("10.0.0.1/8");
  EXPECT_THAT(Refusal(host_bits), HasSubstr("host bits"));
}

TEST(FirewallRuleTest, RefusesBadProtocolsAndPorts) {
  coolify::v1::FirewallRule proto = Good();
  for (const char* bad : {"", "icmp", "tcp ", "sctp", "t\x01cp"}) {
    proto.set_proto(bad);
    EXPECT_THAT(Refusal(proto), HasSubstr("proto: \"")) << bad;
  }
  // Any case spells the same protocol, and so the same id.
  proto.set_proto("TCP");
  ASSERT_TRUE(ValidateRule(proto).ok());
  EXPECT_EQ(RuleId(*ValidateRule(proto)), RuleId(*ValidateRule(Good())));

  for (uint32_t port : {0u, 65536u, 4294967295u}) {
    coolify::v1::FirewallRule bad = Good();
    bad.set_port(port);
    EXPECT_THAT(Refusal(bad), HasSubstr("port: " + std::to_string(port)));
  }
}

TEST(FirewallRuleTest, IdsMatchSha256sum) {
  const coolify::v1::FirewallRule vectors[] = {
      Good(),
      Proto("tenant-a", "10.0.0.0/8", "0.0.0.0/0", "udp", 53),
      Proto("z9", "192.168.1.128/25", "172.16.0.1", "tcp", 65535),
      Proto("abcdefghijklmnopqrstuvwxyz01234", "0.0.0.0/0", "10.2.3.4/31",
            "tcp", 1),
  };
  for (const coolify::v1::FirewallRule& proto : vectors) {
    absl::StatusOr<Rule> rule = ValidateRule(proto);
    ASSERT_TRUE(rule.ok()) << rule.status();
    absl::StatusOr<std::string> expected = testing::Sha256sumPrefix(RuleIdInput(*rule));
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(RuleId(*rule), *expected) << RuleIdInput(*rule);
  }
  // One vector spelled out, so a change of the canonical form cannot go unnoticed.
  absl::StatusOr<std::string> spelled = testing::Sha256sumPrefix("web|10.0.0.1|10.1.0.0/16|tcp|80");
  ASSERT_TRUE(spelled.ok()) << spelled.status();
  EXPECT_EQ(RuleId(*ValidateRule(Good())), *spelled);
}

TEST(FirewallRuleTest, RuleIdGrammar) {
  EXPECT_TRUE(privsep::ValidateFirewallRuleId("id", "0123456789ab").ok());
  for (const char* id : {"", "0123456789a", "0123456789abc", "0123456789AB", "0123456789ag"}) {
    absl::Status status = privsep::ValidateFirewallRuleId("id", id);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_THAT(std::string(status.message()), HasSubstr("id: \"")) << id;
  }
}

TEST(FirewallRuleTest, CheckRuleCatchesHandBuiltRules) {
  Rule rule = *ValidateRule(Good());
  EXPECT_TRUE(CheckRule(rule).ok());
  Rule bad = rule;
  bad.namespace_name = "";
  EXPECT_FALSE(CheckRule(bad).ok());
  bad = rule;
  bad.src = Ipv4Prefix{0x0a000001, 8};
  EXPECT_FALSE(CheckRule(bad).ok());
  bad = rule;
  bad.dst.length = 33;
  EXPECT_FALSE(CheckRule(bad).ok());
  bad = rule;
  bad.port = 0;
  EXPECT_FALSE(CheckRule(bad).ok());
  bad = rule;
  bad.protocol = static_cast<Protocol>(1);
  EXPECT_FALSE(CheckRule(bad).ok());
}

}  // namespace
}  // namespace coolify::netlink
