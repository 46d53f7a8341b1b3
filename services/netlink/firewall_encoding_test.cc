// Reading a rule from the kernel's dump: what ParseRuleMessage checks before it hands the
// message to libnftnl, which trusts a rule's names to be there and to be strings.
#include "services/netlink/firewall_encoding.h"

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <linux/netfilter/nf_tables.h>

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coolify::netlink {
namespace {

using ::testing::HasSubstr;

class RuleMessageTest : public ::testing::Test {
 protected:
  nlmsghdr* NewMessage(Plane plane) {
    return nftnl_nlmsg_build_hdr(buffer_.data(), NFT_MSG_NEWRULE, LocationOf(plane).family, 0, 1);
  }

  std::vector<char> buffer_ = std::vector<char>(MNL_SOCKET_BUFFER_SIZE);
};

TEST_F(RuleMessageTest, OurRuleIsReadBackAsItsTupleAndId) {
  for (Plane plane : {Plane::kIp, Plane::kBridge}) {
    Rule rule;
    rule.src = *ParseIpv4Prefix("src", "10.0.0.0/8");
    rule.dst = *ParseIpv4Prefix("dst", "10.210.0.96/32");
    rule.protocol = Protocol::kTcp;
    rule.port = 80;
    nlmsghdr* nlh = NewMessage(plane);
    BuildRulePayload(nlh, plane, rule, "v5-caddy-ingress:80");
    absl::StatusOr<NftnlRule> parsed = ParseRuleMessage(nlh);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    absl::StatusOr<DecodedRule> decoded = DecodeRule(plane, **parsed);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->id, "v5-caddy-ingress:80");
    EXPECT_EQ(decoded->rule.dst, rule.dst);
    EXPECT_EQ(decoded->rule.port, 80);
    // The same rule is never ours on the other plane.
    EXPECT_FALSE(DecodeRule(plane == Plane::kIp ? Plane::kBridge : Plane::kIp, **parsed).ok());
  }
}

// libnftnl looks an expression's type up by its name without checking it is there.
TEST_F(RuleMessageTest, AnExpressionWithoutANameIsRefusedNotDereferenced) {
  nlmsghdr* nlh = NewMessage(Plane::kIp);
  mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, "filter");
  mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, "COOLIFY-ALLOW");
  nlattr* list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
  nlattr* element = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
  nlattr* data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
  mnl_attr_put_u32(nlh, NFTA_CMP_SREG, htonl(1));
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, element);
  mnl_attr_nest_end(nlh, list);
  absl::StatusOr<NftnlRule> parsed = ParseRuleMessage(nlh);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("unnamed expression"));
}

// libnftnl copies names with strdup: one without its NUL would be read past its end.
TEST_F(RuleMessageTest, NamesThatAreNotNulTerminatedAreRefused) {
  {
    nlmsghdr* nlh = NewMessage(Plane::kIp);
    mnl_attr_put(nlh, NFTA_RULE_TABLE, 6, "filter");
    absl::StatusOr<NftnlRule> parsed = ParseRuleMessage(nlh);
    ASSERT_FALSE(parsed.ok());
    EXPECT_THAT(parsed.status().message(), HasSubstr("not a string"));
  }
  {
    nlmsghdr* nlh = NewMessage(Plane::kIp);
    nlattr* list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
    nlattr* element = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
    mnl_attr_put(nlh, NFTA_EXPR_NAME, 3, "cmp");
    mnl_attr_nest_end(nlh, element);
    mnl_attr_nest_end(nlh, list);
    absl::StatusOr<NftnlRule> parsed = ParseRuleMessage(nlh);
    ASSERT_FALSE(parsed.ok());
    EXPECT_THAT(parsed.status().message(), HasSubstr("malformed expression"));
  }
}

TEST_F(RuleMessageTest, AMessageTooShortForItsHeaderIsRefused) {
  nlmsghdr* nlh = NewMessage(Plane::kIp);
  nlh->nlmsg_len = NLMSG_HDRLEN;
  EXPECT_FALSE(ParseRuleMessage(nlh).ok());
}

}  // namespace
}  // namespace coolify::netlink
