// What an allow may name: each rule of firewall_policy.h, refused with its reason, and the
// legitimate allows (the deploy's container-to-container rules, central's ingress rule)
// passed.
#include "services/netlink/firewall_policy.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coolify::netlink {
namespace {

using ::testing::HasSubstr;

Rule MakeRule(const std::string& src, const std::string& dst, uint32_t port) {
  v1::FirewallRule proto;
  proto.set_namespace_("default");
  proto.set_src(src);
  proto.set_dst(dst);
  proto.set_proto("tcp");
  proto.set_port(port);
  absl::StatusOr<Rule> rule = ValidateRule(proto);
  EXPECT_TRUE(rule.ok()) << rule.status();
  return rule.ok() ? *rule : Rule();
}

// The management IP of these tests: a wg0 address inside the private ranges, where the
// rule that keeps it closed matters.
constexpr uint32_t kManagement = (10u << 24) | (99u << 16) | 1;  // 10.99.0.1

std::string Refusal(const FirewallPolicy& policy, const Rule& rule) {
  const absl::Status status = CheckAllowed(policy, rule);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  return std::string(status.message());
}

TEST(FirewallPolicyTest, DefaultsAdmitContainerRulesAndIngress) {
  const FirewallPolicy policy = DefaultFirewallPolicy(kManagement);
  // tools/deploy/deploy.sh's proxy -> web rule, and the README's examples.
  EXPECT_TRUE(CheckAllowed(policy, MakeRule("10.210.0.5", "10.210.0.6", 80)).ok());
  EXPECT_TRUE(CheckAllowed(policy, MakeRule("10.210.5.2", "10.210.6.3", 5432)).ok());
  EXPECT_TRUE(CheckAllowed(policy, MakeRule("10.0.0.0/8", "172.16.4.0/24", 22)).ok());
  EXPECT_TRUE(CheckAllowed(policy, MakeRule("100.64.1.2", "192.168.1.0/24", 65535)).ok());
  // Central's ingress (v5-caddy-ingress:80): the world may reach the proxy on 80 and 443.
  EXPECT_TRUE(CheckAllowed(policy, MakeRule("0.0.0.0/0", "10.210.0.7", 80)).ok());
  EXPECT_TRUE(CheckAllowed(policy, MakeRule("203.0.113.9", "10.210.0.7", 443)).ok());
}

TEST(FirewallPolicyTest, WildcardDestinationIsRefused) {
  const FirewallPolicy policy = DefaultFirewallPolicy(kManagement);
  EXPECT_THAT(Refusal(policy, MakeRule("10.210.0.5", "0.0.0.0/0", 80)),
              HasSubstr("dst: 0.0.0.0/0 is wider than /8 (rule firewall_destination_prefix)"));
  EXPECT_THAT(Refusal(policy, MakeRule("10.210.0.5", "0.0.0.0/1", 80)), HasSubstr("wider than /8"));
  EXPECT_THAT(Refusal(policy, MakeRule("10.210.0.5", "8.0.0.0/7", 80)), HasSubstr("wider than /8"));
}

TEST(FirewallPolicyTest, DestinationOutsideTheNetworksIsRefused) {
  const FirewallPolicy policy = DefaultFirewallPolicy(kManagement);
  EXPECT_THAT(Refusal(policy, MakeRule("10.210.0.5", "8.8.8.8", 53)),
              HasSubstr("dst: 8.8.8.8/32 is not within the firewall's destination networks 10.0.0.0/8,"));
  // Overlapping a destination network is not lying within it.
  EXPECT_THAT(Refusal(policy, MakeRule("10.210.0.5", "172.0.0.0/8", 80)), HasSubstr("not within"));
  EXPECT_THAT(Refusal(policy, MakeRule("10.210.0.5", "127.0.0.1", 80)), HasSubstr("not within"));
}

TEST(FirewallPolicyTest, DestinationCoveringTheManagementIpIsRefused) {
  const FirewallPolicy policy = DefaultFirewallPolicy(kManagement);
  EXPECT_THAT(Refusal(policy, MakeRule("10.210.0.5", "10.99.0.1", 8443)),
              HasSubstr("dst: 10.99.0.1/32 covers the management IP 10.99.0.1 (rule firewall_management_ip)"));
  EXPECT_THAT(Refusal(policy, MakeRule("10.210.0.5", "10.0.0.0/8", 80)), HasSubstr("covers the management IP"));
  EXPECT_TRUE(CheckAllowed(policy, MakeRule("10.210.0.5", "10.99.0.2", 80)).ok());
}

TEST(FirewallPolicyTest, PortsOutsideTheRangesAreRefused) {
  absl::StatusOr<FirewallPolicy> policy =
      ParseFirewallPolicy("10.99.0.1", "10.210.0.0/16", "10.0.0.0/8", "80,443,5000-5999", "443");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(CheckAllowed(*policy, MakeRule("10.1.0.1", "10.210.0.5", 5000)).ok());
  EXPECT_TRUE(CheckAllowed(*policy, MakeRule("10.1.0.1", "10.210.0.5", 5999)).ok());
  EXPECT_THAT(Refusal(*policy, MakeRule("10.1.0.1", "10.210.0.5", 22)),
              HasSubstr("port: 22 is not among the firewall's ports 80,443,5000-5999 (rule COOLD_FIREWALL_PORTS)"));
  EXPECT_THAT(Refusal(*policy, MakeRule("10.1.0.1", "10.210.0.5", 6000)), HasSubstr("port: 6000"));
  // The narrower destination list of this policy holds too.
  EXPECT_THAT(Refusal(*policy, MakeRule("10.1.0.1", "10.211.0.5", 80)), HasSubstr("not within"));
}

TEST(FirewallPolicyTest, WildcardOrPublicSourceOnlyForPublicPorts) {
  const FirewallPolicy policy = DefaultFirewallPolicy(kManagement);
  EXPECT_THAT(Refusal(policy, MakeRule("0.0.0.0/0", "10.210.0.7", 5432)),
              HasSubstr("src: 0.0.0.0/0 is outside the firewall's source networks 10.0.0.0/8,172.16.0.0/12,"
                        "192.168.0.0/16,100.64.0.0/10, which only a public port (80,443) may be opened to "
                        "(rule COOLD_FIREWALL_PUBLIC_PORTS)"));
  EXPECT_THAT(Refusal(policy, MakeRule("198.51.100.0/24", "10.210.0.7", 22)), HasSubstr("src: 198.51.100.0/24"));
  // With no public ports, no rule is ever open to the world.
  absl::StatusOr<FirewallPolicy> closed =
      ParseFirewallPolicy("10.99.0.1", kDefaultFirewallNetworks, kDefaultFirewallNetworks, "1-65535", "none");
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_THAT(Refusal(*closed, MakeRule("0.0.0.0/0", "10.210.0.7", 80)), HasSubstr("only a public port (none)"));
}

TEST(FirewallPolicyTest, ConfigurationIsParsedStrictly) {
  auto parse = [](const char* dst, const char* src, const char* ports, const char* open) {
    return ParseFirewallPolicy("10.99.0.1", dst, src, ports, open).status();
  };
  EXPECT_TRUE(parse("10.210.0.0/16", "10.0.0.0/8", "1-65535", "80,443").ok());
  EXPECT_THAT(parse("0.0.0.0/0", "10.0.0.0/8", "1-65535", "none").message(),
              HasSubstr("COOLD_FIREWALL_DESTINATIONS: 0.0.0.0/0 is every address"));
  EXPECT_THAT(parse("10.0.0.0/8", "0.0.0.0/0", "1-65535", "").message(), HasSubstr("COOLD_FIREWALL_SOURCES"));
  EXPECT_THAT(parse("10.0.0.1/8", "10.0.0.0/8", "1-65535", "").message(), HasSubstr("host bits"));
  EXPECT_THAT(parse("", "10.0.0.0/8", "1-65535", "").message(), HasSubstr("COOLD_FIREWALL_DESTINATIONS"));
  for (const char* bad : {"", "0", "65536", "90-80", "1-", "-5", "80,,443", "8o", "1-2-3", " 80", "+80"}) {
    EXPECT_THAT(parse("10.0.0.0/8", "10.0.0.0/8", bad, "").message(), HasSubstr("COOLD_FIREWALL_PORTS")) << bad;
  }
  EXPECT_THAT(parse("10.0.0.0/8", "10.0.0.0/8", "1-65535", "x").message(), HasSubstr("COOLD_FIREWALL_PUBLIC_PORTS"));
  EXPECT_THAT(parse("10.0.0.0/8", "10.0.0.0/8", "1-65535", "").message(), HasSubstr("COOLD_FIREWALL_PUBLIC_PORTS"));
  // "none" means no port only where the list may be empty.
  EXPECT_THAT(parse("10.0.0.0/8", "10.0.0.0/8", "none", "none").message(), HasSubstr("COOLD_FIREWALL_PORTS"));
  EXPECT_FALSE(ParseFirewallPolicy("10.99.0", "10.0.0.0/8", "10.0.0.0/8", "80", "").ok());
}

}  // namespace
}  // namespace coolify::netlink
