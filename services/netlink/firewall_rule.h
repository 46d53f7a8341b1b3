// One firewall allow tuple, validated and in canonical form, and its rule id.
//
// A coolify::v1::FirewallRule arrives as strings and numbers; ValidateRule turns it into
// a Rule whose fields can only hold meaningful values, or refuses it with an
// absl::InvalidArgumentError naming the field and quoting the value
// ("FirewallRule.src: \"10.0.0.1/8\" is not a network address: host bits are set").
//
// Canonical form (what RuleId hashes and what every writer and snapshot prints):
//   namespace  as given; grammar [a-z][a-z0-9-]{0,30}
//   src, dst   "a.b.c.d/len": a dotted quad without leading zeros, a prefix length
//              0..32 without leading zeros, and no address bit set past the prefix.
//              A bare address is the /32 prefix: "10.0.0.1" and "10.0.0.1/32" are the
//              same tuple, canonically "10.0.0.1/32". "10.0.0.1/8" is refused, never
//              silently masked. (Go: netip.ParsePrefix(s).String(), after appending
//              "/32" to a bare address.)
//   proto      "tcp" or "udp"
//   port       decimal 1..65535
// RuleId = the first 12 lowercase hex digits of sha256("namespace|src|dst|proto|port")
// over exactly those strings, e.g. sha256("web|10.0.0.1/32|10.1.0.0/16|tcp|80").
#ifndef COOLD_SERVICES_NETLINK_FIREWALL_RULE_H_
#define COOLD_SERVICES_NETLINK_FIREWALL_RULE_H_

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/commands.pb.h"

namespace coolify::netlink {

// The number of hex digits of a rule id.
inline constexpr size_t kRuleIdLength = 12;

// The namespace of a rule that names none.
inline constexpr char kDefaultNamespace[] = "default";

enum class Protocol : uint8_t { kTcp = IPPROTO_TCP, kUdp = IPPROTO_UDP };

// An IPv4 network: `address` in host byte order with no bit set past `length`.
struct Ipv4Prefix {
  uint32_t address = 0;
  uint8_t length = 0;  // 0..32

  // The netmask in host byte order (0 for /0).
  uint32_t Mask() const;

  bool operator==(const Ipv4Prefix& other) const {
    return address == other.address && length == other.length;
  }
  bool operator!=(const Ipv4Prefix& other) const { return !(*this == other); }
};

struct Rule {
  // Empty only for a rule read back from the kernel whose namespace could not be
  // recovered (the kernel stores the id, not the namespace); never empty once validated.
  std::string namespace_name;
  Ipv4Prefix src;
  Ipv4Prefix dst;
  Protocol protocol = Protocol::kTcp;
  uint16_t port = 0;
  // The caller's name for the rule (privsep::ValidateCallerRuleId), which is then its id
  // instead of RuleId; "" = RuleId. Not part of the tuple: two ids may allow one tuple.
  std::string caller_id;

  // Same network tuple (src, dst, protocol, port), namespace aside.
  bool SameTuple(const Rule& other) const {
    return src == other.src && dst == other.dst && protocol == other.protocol &&
           port == other.port;
  }
  bool operator==(const Rule& other) const {
    return namespace_name == other.namespace_name && SameTuple(other);
  }
  bool operator!=(const Rule& other) const { return !(*this == other); }
};

// Validates every field of `proto` and returns the canonical Rule. Errors name the field
// as "FirewallRule.<field>".
absl::StatusOr<Rule> ValidateRule(const coolify::v1::FirewallRule& proto);

// Parses an IPv4 address or CIDR in the grammar above; errors name `field`.
absl::StatusOr<Ipv4Prefix> ParseIpv4Prefix(std::string_view field, std::string_view text);

// Checks the invariants ValidateRule establishes, for a Rule built some other way:
// namespace grammar, prefix length <= 32 without host bits, port != 0.
absl::Status CheckRule(const Rule& rule);

// "a.b.c.d" and "a.b.c.d/len".
std::string FormatIpv4Address(uint32_t address);
std::string FormatIpv4Prefix(const Ipv4Prefix& prefix);

// "tcp" / "udp".
std::string_view ProtocolName(Protocol protocol);

// "namespace|src|dst|proto|port": the exact bytes RuleId hashes.
std::string RuleIdInput(const Rule& rule);

// The first kRuleIdLength hex digits of sha256(RuleIdInput(rule)).
std::string RuleId(const Rule& rule);

// The id `rule` is written and found under: its caller_id, else RuleId(rule).
std::string IdOf(const Rule& rule);


}  // namespace coolify::netlink

#endif  // COOLD_SERVICES_NETLINK_FIREWALL_RULE_H_
