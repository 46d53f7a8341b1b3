#include "services/netlink/firewall_policy.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "privsep/validate.h"

namespace coolify::netlink {
namespace {

// More entries than any host needs; a bound keeps a mistyped variable from growing a list
// every allow walks.
constexpr size_t kMaxEntries = 64;

bool Within(const Ipv4Prefix& inner, const Ipv4Prefix& outer) {
  return inner.length >= outer.length && (inner.address & outer.Mask()) == outer.address;
}

bool Covers(const Ipv4Prefix& prefix, uint32_t address) { return (address & prefix.Mask()) == prefix.address; }

bool InPorts(const std::vector<PortRange>& ranges, uint16_t port) {
  for (const PortRange& range : ranges) {
    if (port >= range.first && port <= range.last) return true;
  }
  return false;
}

std::string PortsText(const std::vector<PortRange>& ranges) {
  if (ranges.empty()) return "none";
  return absl::StrJoin(ranges, ",", [](std::string* out, const PortRange& r) {
    absl::StrAppend(out, r.first == r.last ? absl::StrCat(r.first) : absl::StrCat(r.first, "-", r.last));
  });
}

std::string NetworksText(const std::vector<Ipv4Prefix>& networks) {
  return absl::StrJoin(networks, ",",
                       [](std::string* out, const Ipv4Prefix& p) { absl::StrAppend(out, FormatIpv4Prefix(p)); });
}

}  // namespace

absl::StatusOr<std::vector<Ipv4Prefix>> ParseNetworkList(std::string_view field, std::string_view text) {
  std::vector<Ipv4Prefix> networks;
  for (absl::string_view piece : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    const std::string_view item(piece.data(), piece.size());
    if (networks.size() == kMaxEntries) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": more than ", kMaxEntries, " networks"));
    }
    absl::StatusOr<Ipv4Prefix> prefix = ParseIpv4Prefix(field, item);
    if (!prefix.ok()) return prefix.status();
    // A /0 here would make the list say nothing (rule 1 and 5 would be void).
    if (prefix->length == 0) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": 0.0.0.0/0 is every address; name the networks"));
    }
    networks.push_back(*prefix);
  }
  return networks;
}

absl::StatusOr<std::vector<PortRange>> ParsePortList(std::string_view field, std::string_view text,
                                                     bool allow_none) {
  std::vector<PortRange> ranges;
  if (allow_none && text == "none") return ranges;
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": empty; name at least one port or range"));
  }
  for (absl::string_view item : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    if (ranges.size() == kMaxEntries) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": more than ", kMaxEntries, " ranges"));
    }
    std::vector<absl::string_view> bounds = absl::StrSplit(item, absl::MaxSplits('-', 1));
    uint32_t first = 0;
    uint32_t last = 0;
    const bool parsed = absl::SimpleAtoi(bounds[0], &first) &&
                        absl::SimpleAtoi(bounds.size() == 2 ? bounds[1] : bounds[0], &last);
    if (!parsed || first < 1 || last > 65535 || first > last || item.find_first_not_of("0123456789-") != item.npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: \"%s\" is not a port or a range FIRST-LAST within 1..65535", field, std::string(item)));
    }
    ranges.push_back({static_cast<uint16_t>(first), static_cast<uint16_t>(last)});
  }
  return ranges;
}

absl::StatusOr<FirewallPolicy> ParseFirewallPolicy(std::string_view management_ip, std::string_view destinations,
                                                   std::string_view sources, std::string_view ports,
                                                   std::string_view public_ports) {
  FirewallPolicy policy;
  if (absl::Status valid = privsep::ValidateIpv4("management IP", management_ip); !valid.ok()) return valid;
  policy.management_ip = ParseIpv4Prefix("management IP", management_ip)->address;
  absl::StatusOr<std::vector<Ipv4Prefix>> dst = ParseNetworkList("COOLD_FIREWALL_DESTINATIONS", destinations);
  if (!dst.ok()) return dst.status();
  policy.destinations = *std::move(dst);
  absl::StatusOr<std::vector<Ipv4Prefix>> src = ParseNetworkList("COOLD_FIREWALL_SOURCES", sources);
  if (!src.ok()) return src.status();
  policy.sources = *std::move(src);
  absl::StatusOr<std::vector<PortRange>> allowed = ParsePortList("COOLD_FIREWALL_PORTS", ports, false);
  if (!allowed.ok()) return allowed.status();
  policy.ports = *std::move(allowed);
  absl::StatusOr<std::vector<PortRange>> open = ParsePortList("COOLD_FIREWALL_PUBLIC_PORTS", public_ports, true);
  if (!open.ok()) return open.status();
  policy.public_ports = *std::move(open);
  return policy;
}

FirewallPolicy DefaultFirewallPolicy(uint32_t management_ip) {
  absl::StatusOr<FirewallPolicy> policy =
      ParseFirewallPolicy(FormatIpv4Address(management_ip), kDefaultFirewallNetworks, kDefaultFirewallNetworks,
                          kDefaultFirewallPorts, kDefaultFirewallPublicPorts);
  return *std::move(policy);  // the defaults parse, or the unit tests fail
}

absl::Status CheckAllowed(const FirewallPolicy& policy, const Rule& rule) {
  const std::string dst = FormatIpv4Prefix(rule.dst);
  const std::string src = FormatIpv4Prefix(rule.src);
  if (rule.dst.length < kMinDestinationPrefix) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "dst: %s is wider than /%u (rule firewall_destination_prefix): an allow opens one network, never every address",
        dst, kMinDestinationPrefix));
  }
  bool inside = false;
  for (const Ipv4Prefix& network : policy.destinations) inside = inside || Within(rule.dst, network);
  if (!inside) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "dst: %s is not within the firewall's destination networks %s (rule COOLD_FIREWALL_DESTINATIONS)", dst,
        NetworksText(policy.destinations)));
  }
  if (policy.management_ip.has_value() && Covers(rule.dst, *policy.management_ip)) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "dst: %s covers the management IP %s (rule firewall_management_ip): coold's API and the operator's access "
        "are never opened by an allow",
        dst, FormatIpv4Address(*policy.management_ip)));
  }
  if (!InPorts(policy.ports, rule.port)) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "port: %u is not among the firewall's ports %s (rule COOLD_FIREWALL_PORTS)", rule.port,
        PortsText(policy.ports)));
  }
  bool known_source = false;
  for (const Ipv4Prefix& network : policy.sources) known_source = known_source || Within(rule.src, network);
  if (!known_source && !InPorts(policy.public_ports, rule.port)) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "src: %s is outside the firewall's source networks %s, which only a public port (%s) may be opened to "
        "(rule COOLD_FIREWALL_PUBLIC_PORTS)",
        src, NetworksText(policy.sources), PortsText(policy.public_ports)));
  }
  return absl::OkStatus();
}

std::string DescribeFirewallPolicy(const FirewallPolicy& policy) {
  return absl::StrFormat("destinations %s, sources %s, ports %s, public ports %s, management IP %s",
                         NetworksText(policy.destinations), NetworksText(policy.sources), PortsText(policy.ports),
                         PortsText(policy.public_ports),
                         policy.management_ip ? FormatIpv4Address(*policy.management_ip) : "none");
}

}  // namespace coolify::netlink
