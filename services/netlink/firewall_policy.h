// What a firewall allow may name on this host, decided by the firewall writer from its own
// configuration (the monitor's COOLD_FIREWALL_* variables, handed down as argv), never from
// anything the front end sends. A rule the grammar accepts (firewall_rule.h) is written only
// if CheckAllowed passes it.
//
// The rules, each with the reason it exists:
//   1. The destination is never 0.0.0.0/0 or any prefix shorter than /8: an allow opens a
//      path *to* something, and a destination that wide opens every container, every host
//      and every address behind this host at once.
//   2. The destination lies wholly within one of the destination networks (default: the
//      private ranges 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, where the
//      container and mesh networks live): a rule towards a public address would make this
//      host forward tenants' traffic to the outside on coold's say-so.
//   3. The destination never covers the management IP: that address carries coold's own
//      API, the broker stream and the operator's access, which no tenant rule may open.
//   4. The port lies in one of the allowed port ranges (default 1-65535).
//   5. A source outside the source networks (default: the same private ranges), the
//      wildcard 0.0.0.0/0 included, is accepted only for a public port (default 80 and 443,
//      an ingress proxy's): anything else would let the whole internet reach a tenant's
//      database or admin port because one request said so.
#ifndef COOLD_SERVICES_NETLINK_FIREWALL_POLICY_H_
#define COOLD_SERVICES_NETLINK_FIREWALL_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/netlink/firewall_rule.h"

namespace coolify::netlink {

// The defaults of the COOLD_FIREWALL_* variables (README lists them).
inline constexpr char kDefaultFirewallNetworks[] = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10";
inline constexpr char kDefaultFirewallPorts[] = "1-65535";
inline constexpr char kDefaultFirewallPublicPorts[] = "80,443";

// The shortest destination prefix an allow may name (rule 1).
inline constexpr uint8_t kMinDestinationPrefix = 8;

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
};

struct FirewallPolicy {
  std::vector<Ipv4Prefix> destinations;
  std::vector<Ipv4Prefix> sources;
  std::vector<PortRange> ports;
  std::vector<PortRange> public_ports;
  std::optional<uint32_t> management_ip;  // host byte order
};

// "a.b.c.d/len,..." (each as ParseIpv4Prefix takes it; at least one, at most 64, none /0).
// Errors name `field`.
absl::StatusOr<std::vector<Ipv4Prefix>> ParseNetworkList(std::string_view field, std::string_view text);

// "80,443,8000-8999" (1..65535, first <= last; at least one, at most 64 entries), or
// "none" for no port at all when `allow_none`. Errors name `field`.
absl::StatusOr<std::vector<PortRange>> ParsePortList(std::string_view field, std::string_view text,
                                                     bool allow_none);

// The policy from its textual form (the argv the monitor gives coold-netlink, in this
// order): MGMT_IP (an IPv4 address), DESTINATIONS, SOURCES, PORTS, PUBLIC_PORTS.
absl::StatusOr<FirewallPolicy> ParseFirewallPolicy(std::string_view management_ip, std::string_view destinations,
                                                   std::string_view sources, std::string_view ports,
                                                   std::string_view public_ports);

// The defaults above, with `management_ip`.
FirewallPolicy DefaultFirewallPolicy(uint32_t management_ip);

// OK when `rule` passes every rule above; else PermissionDenied naming the field, the
// value, the rule and why ("dst: 0.0.0.0/0 is wider than /8 (firewall destination
// prefix): ..."), which the front passes on as the 403's message.
absl::Status CheckAllowed(const FirewallPolicy& policy, const Rule& rule);

// The policy as one log line.
std::string DescribeFirewallPolicy(const FirewallPolicy& policy);

}  // namespace coolify::netlink

#endif  // COOLD_SERVICES_NETLINK_FIREWALL_POLICY_H_
