// Firewall request JSON, as the REST API and the broker stream receive it, through to the
// validated rule the writer would act on: no input may crash, and any rule that validates
// must canonicalize to a fixed point with a 12-hex id; and the writer's policy
// (services/netlink/firewall_policy.h, at its defaults) never passes a rule whose
// destination is wider than /8 or covers the management IP, nor opens a port other than a
// public one to a source outside the private ranges.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/protobuf_logs.h"
#include "proto/commands.pb.h"
#include "privsep/validate.h"
#include "services/commands/json_body.h"
#include "services/netlink/firewall_policy.h"
#include "services/netlink/firewall_rule.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void CheckRule(const coolify::v1::FirewallRule& proto) {
  auto rule = coolify::netlink::ValidateRule(proto);
  if (!rule.ok()) return;
  Check(coolify::netlink::CheckRule(*rule).ok());
  const std::string id = coolify::netlink::RuleId(*rule);
  Check(coolify::privsep::ValidateFirewallRuleId("id", id).ok());
  // Canonical form is a fixed point: re-validating its spelling gives the same rule and id.
  coolify::v1::FirewallRule again;
  again.set_namespace_(rule->namespace_name);
  again.set_src(coolify::netlink::FormatIpv4Prefix(rule->src));
  again.set_dst(coolify::netlink::FormatIpv4Prefix(rule->dst));
  again.set_proto(std::string(coolify::netlink::ProtocolName(rule->protocol)));
  again.set_port(rule->port);
  auto second = coolify::netlink::ValidateRule(again);
  Check(second.ok() && *second == *rule && coolify::netlink::RuleId(*second) == id);

  // 10.99.0.1: a management IP inside the destination networks, so its rule is reachable.
  static const coolify::netlink::FirewallPolicy policy = coolify::netlink::DefaultFirewallPolicy(0x0a630001);
  const absl::Status allowed = coolify::netlink::CheckAllowed(policy, *rule);
  if (!allowed.ok()) {
    Check(allowed.code() == absl::StatusCode::kPermissionDenied);
    return;
  }
  Check(rule->dst.length >= coolify::netlink::kMinDestinationPrefix);
  Check((0x0a630001 & rule->dst.Mask()) != rule->dst.address);
  const bool private_source = (rule->src.length >= 8 && (rule->src.address >> 24) == 10) ||
                              (rule->src.length >= 12 && (rule->src.address & 0xfff00000) == 0xac100000) ||
                              (rule->src.length >= 16 && (rule->src.address & 0xffff0000) == 0xc0a80000) ||
                              (rule->src.length >= 10 && (rule->src.address & 0xffc00000) == 0x64400000);
  Check(private_source || rule->port == 80 || rule->port == 443);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  coolify::fuzz::KeepOnlyFatalProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    coolify::v1::FirewallRule rule;
    if (coolify::commands::ParseJsonBody(body, &rule).ok()) CheckRule(rule);
  } else {
    coolify::v1::FirewallBulk bulk;
    if (coolify::commands::ParseJsonBody(body, &bulk).ok()) {
      for (const auto& rule : bulk.rules()) CheckRule(rule);
    }
  }
  return 0;
}
