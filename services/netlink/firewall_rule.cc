#include "services/netlink/firewall_rule.h"

#include <arpa/inet.h>
#include <openssl/sha.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "privsep/validate.h"
#include "services/http/status.h"

namespace coolify::netlink {
namespace {

// The field grammars live in privsep/validate.h so that the front end, which validates
// a request before it crosses to this process, and this process, which validates it
// again, accept exactly the same strings. What remains here is turning the accepted text
// into numbers, which inet_pton does for a string the grammar has already pinned down.
uint32_t ParseValidatedAddress(std::string_view text) {
  const std::string terminated(text);
  in_addr addr{};
  inet_pton(AF_INET, terminated.c_str(), &addr);
  return ntohl(addr.s_addr);
}

}  // namespace

uint32_t Ipv4Prefix::Mask() const {
  // Shifting a 32-bit value by 32 is undefined, hence the special case.
  return length == 0 ? 0 : ~uint32_t{0} << (32 - length);
}

absl::StatusOr<Ipv4Prefix> ParseIpv4Prefix(std::string_view field, std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    if (absl::Status valid = privsep::ValidateIpv4(field, text); !valid.ok()) return valid;
    return Ipv4Prefix{ParseValidatedAddress(text), 32};
  }
  if (absl::Status valid = privsep::ValidateIpv4Cidr(field, text); !valid.ok()) return valid;
  uint8_t length = 0;
  for (char c : text.substr(slash + 1)) length = static_cast<uint8_t>(length * 10 + (c - '0'));
  return Ipv4Prefix{ParseValidatedAddress(text.substr(0, slash)), length};
}

absl::StatusOr<Rule> ValidateRule(const coolify::v1::FirewallRule& proto) {
  Rule rule;
  // An absent namespace is "default", as the Go CLI and older clients assume.
  rule.namespace_name = proto.namespace_().empty() ? kDefaultNamespace : proto.namespace_();
  if (absl::Status valid = privsep::ValidateNamespaceName("namespace", rule.namespace_name);
      !valid.ok()) {
    return valid;
  }
  absl::StatusOr<Ipv4Prefix> src = ParseIpv4Prefix("src", proto.src());
  if (!src.ok()) return src.status();
  rule.src = *src;
  absl::StatusOr<Ipv4Prefix> dst = ParseIpv4Prefix("dst", proto.dst());
  if (!dst.ok()) return dst.status();
  rule.dst = *dst;
  const std::string protocol = absl::AsciiStrToLower(proto.proto());
  if (protocol == "tcp") {
    rule.protocol = Protocol::kTcp;
  } else if (protocol == "udp") {
    rule.protocol = Protocol::kUdp;
  } else {
    return http::InvalidField("proto", absl::StrFormat(
        "\"%s\" is not a protocol (tcp or udp)",
        absl::CHexEscape(absl::string_view(proto.proto().data(), std::min<size_t>(proto.proto().size(), 64)))));
  }
  if (absl::Status valid = privsep::ValidatePort("port", proto.port());
      !valid.ok()) {
    return valid;
  }
  rule.port = static_cast<uint16_t>(proto.port());
  return rule;
}

absl::Status CheckRule(const Rule& rule) {
  if (absl::Status valid = privsep::ValidateNamespaceName("Rule.namespace", rule.namespace_name);
      !valid.ok()) {
    return valid;
  }
  for (const auto& [field, prefix] : {std::pair{"Rule.src", rule.src}, std::pair{"Rule.dst", rule.dst}}) {
    if (prefix.length > 32 || (prefix.address & ~prefix.Mask()) != 0) {
      return http::InvalidField(field, absl::StrFormat("%s/%u is not a network address",
                                                       FormatIpv4Address(prefix.address), prefix.length));
    }
  }
  if (rule.protocol != Protocol::kTcp && rule.protocol != Protocol::kUdp) {
    return http::InvalidField("Rule.protocol",
                              absl::StrFormat("%d is not tcp or udp", static_cast<int>(rule.protocol)));
  }
  if (rule.port == 0) return http::InvalidField("Rule.port", "0 is not a port (1..65535)");
  return absl::OkStatus();
}

std::string FormatIpv4Address(uint32_t address) {
  return absl::StrFormat("%u.%u.%u.%u", address >> 24, (address >> 16) & 0xff,
                         (address >> 8) & 0xff, address & 0xff);
}

std::string FormatIpv4Prefix(const Ipv4Prefix& prefix) {
  return absl::StrFormat("%s/%u", FormatIpv4Address(prefix.address), prefix.length);
}

std::string_view ProtocolName(Protocol protocol) {
  return protocol == Protocol::kTcp ? "tcp" : "udp";
}

std::string RuleIdInput(const Rule& rule) {
  // The Go CLI hashes addresses as Go's net.IP prints them: a host without "/32".
  auto spelled = [](const Ipv4Prefix& prefix) {
    return prefix.length == 32 ? FormatIpv4Address(prefix.address) : FormatIpv4Prefix(prefix);
  };
  return absl::StrFormat("%s|%s|%s|%s|%u", rule.namespace_name, spelled(rule.src), spelled(rule.dst),
                         ProtocolName(rule.protocol), rule.port);
}

std::string RuleId(const Rule& rule) {
  const std::string input = RuleIdInput(rule);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(input.data()), input.size(), digest);
  return absl::BytesToHexString(
             absl::string_view(reinterpret_cast<const char*>(digest), sizeof digest))
      .substr(0, kRuleIdLength);
}


std::string IdOf(const Rule& rule) { return rule.caller_id.empty() ? RuleId(rule) : rule.caller_id; }

}  // namespace coolify::netlink
