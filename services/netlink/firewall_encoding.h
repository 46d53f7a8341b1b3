// How an allow rule is spelled in nf_tables on each plane, both ways: Rule -> kernel
// rule, and kernel rule -> Rule when (and only when) the kernel rule is exactly what we
// would have written.
//
// Cross-host plane, table `ip filter`, chain `COOLIFY-ALLOW`: the encoding of
// iptables-nft 1.8.9 for
//   -s SRC -d DST -p PROTO --dport PORT -m comment --comment ID -j ACCEPT
// expression by expression, so iptables-save prints our rules as if iptables -A had
// written them:
//   meta l4proto; cmp == PROTO (1 byte)
//   ip saddr prefix, ip daddr prefix   (each left out when it is /0)
//   payload transport header + 2, 2 bytes; cmp == PORT
//   xt match "comment" rev 0 (struct xt_comment_info: ID, NUL-padded to 256 bytes)
//   counter; immediate accept
// plus the rule's compat attributes (l4 protocol, no flags) that iptables-nft sends.
//
// Intra-host plane, table `bridge coolify_bridge`, chain `coolify_allow`: the encoding
// of nft 1.0.6 for
//   ip saddr SRC ip daddr DST meta l4proto PROTO th dport PORT accept comment "ID"
// that is:
//   meta protocol; cmp == 0x0800 (the ip dependency of `ip saddr` in a bridge chain)
//   ip saddr prefix, ip daddr prefix   (always present, /0 included)
//   meta l4proto; cmp == PROTO; payload transport header + 2, 2 bytes; cmp == PORT
//   immediate accept; rule user data: the comment TLV holding ID.
//
// A prefix is spelled the way both tools spell it: a byte-aligned non-zero prefix loads
// only its bytes ("10.1.0.0/16": payload 2 bytes, cmp 0a01); any other prefix loads the
// whole address, masks it with bitwise and compares 4 bytes.
#ifndef COOLD_SERVICES_NETLINK_FIREWALL_ENCODING_H_
#define COOLD_SERVICES_NETLINK_FIREWALL_ENCODING_H_

#include <libnftnl/rule.h>
#include <linux/netlink.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/netlink/firewall_rule.h"

namespace coolify::netlink {

enum class Plane { kIp, kBridge };

struct ChainLocation {
  uint16_t family;  // NFPROTO_*
  const char* table;
  const char* chain;
};

ChainLocation LocationOf(Plane plane);

// "ip filter COOLIFY-ALLOW" / "bridge coolify_bridge coolify_allow".
std::string PlaneName(Plane plane);

struct NftnlRuleDeleter {
  void operator()(nftnl_rule* rule) const { nftnl_rule_free(rule); }
};
using NftnlRule = std::unique_ptr<nftnl_rule, NftnlRuleDeleter>;

// Payload builders for NftSocket requests. They write netlink attributes directly, in
// libnftnl's order: a bulk of thousands of rules must not cost an allocation per
// expression.
// NEWRULE: the rule allowing `rule`'s tuple on `plane`, carrying `id` as its comment.
void BuildRulePayload(nlmsghdr* nlh, Plane plane, const Rule& rule, const std::string& id);
// DELRULE by handle; GETRULE dump of one chain.
void BuildRuleHandlePayload(nlmsghdr* nlh, Plane plane, uint64_t handle);
void BuildChainRulesPayload(nlmsghdr* nlh, Plane plane);
// NEWTABLE of `ip filter` with nothing but its name, as iptables-nft creates it.
void BuildIpTablePayload(nlmsghdr* nlh);
// NEWCHAIN (a regular chain: no hook, no policy) or GETCHAIN of the plane's chain.
void BuildChainPayload(nlmsghdr* nlh, Plane plane);

// One rule of a dump answer.
absl::StatusOr<NftnlRule> ParseRuleMessage(const nlmsghdr* nlh);

struct DecodedRule {
  std::string id;
  Rule rule;  // namespace_name empty: the kernel does not hold it
  uint64_t handle = 0;
};

// The tuple and id of `kernel_rule` if BuildRulePayload(plane, tuple, id) yields exactly
// the same rule (every expression attribute and the user data byte for byte, counter
// values aside); otherwise an error saying why the rule is not one of ours.
absl::StatusOr<DecodedRule> DecodeRule(Plane plane, const nftnl_rule& kernel_rule);

// A one-line rendering of `rule` for reports ("handle 7: [ meta load l4proto ... ]").
std::string DescribeRule(const nftnl_rule& rule);

}  // namespace coolify::netlink

#endif  // COOLD_SERVICES_NETLINK_FIREWALL_ENCODING_H_
