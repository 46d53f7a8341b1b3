#include "services/dns/namespaces.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "privsep/validate.h"

namespace coolify::dns {
namespace {

absl::Status Named(std::string_view variable, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::InvalidArgumentError(absl::StrCat(std::string(variable), ": ", status.message()));
}

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

}  // namespace

absl::StatusOr<std::vector<NamespaceSpec>> ParseNamespaces(std::string_view text) {
  constexpr char kVar[] = "COOLD_NAMESPACES";
  std::vector<NamespaceSpec> specs;
  if (text.empty()) return absl::InvalidArgumentError("COOLD_NAMESPACES: empty; expected <name>:<network>:<gateway-ip>,…");
  for (absl::string_view entry : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    std::vector<std::string> parts = absl::StrSplit(entry, ':');
    if (parts.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(kVar, ": expected <name>:<network>:<gateway-ip>, got \"", entry, "\""));
    }
    NamespaceSpec spec{parts[0], parts[1], parts[2]};
    if (auto s = Named(kVar, privsep::ValidateNamespaceName("name", spec.name)); !s.ok()) return s;
    bool network_ok = !spec.network.empty() && spec.network.size() <= 64 && IsAlnum(spec.network[0]);
    for (char c : spec.network) network_ok = network_ok && (IsAlnum(c) || c == '_' || c == '.' || c == '-');
    if (!network_ok) {
      return absl::InvalidArgumentError(absl::StrCat(kVar, ": bad network name \"", spec.network,
                                                     "\" (expected [A-Za-z0-9][A-Za-z0-9_.-]{0,63})"));
    }
    if (auto s = Named(kVar, privsep::ValidateIpv4("gateway", spec.gateway)); !s.ok()) return s;
    for (const auto& other : specs) {
      if (other.name == spec.name) {
        return absl::InvalidArgumentError(absl::StrCat(kVar, ": namespace \"", spec.name, "\" twice"));
      }
      if (other.gateway == spec.gateway && spec.HasDnsListener()) {
        return absl::InvalidArgumentError(
            absl::StrCat(kVar, ": gateway ", spec.gateway, " given to both \"", other.name, "\" and \"", spec.name, "\""));
      }
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

absl::StatusOr<WireName> ParseZoneVariable(std::string_view text) {
  absl::StatusOr<WireName> zone = ParseName(text);
  if (!zone.ok()) return Named("COOLD_DNS_ZONE", zone.status());
  return zone;
}

absl::StatusOr<Upstream> ParseUpstream(std::string_view text) {
  constexpr char kVar[] = "COOLD_DNS_UPSTREAM";
  Upstream up;
  size_t colon = text.rfind(':');
  up.ip = std::string(text.substr(0, colon));
  if (auto s = Named(kVar, privsep::ValidateIpv4("address", up.ip)); !s.ok()) return s;
  if (up.ip == "0.0.0.0") return absl::InvalidArgumentError(absl::StrCat(kVar, ": 0.0.0.0 is not an upstream"));
  if (colon != std::string_view::npos) {
    int port = 0;
    absl::string_view digits(text.data() + colon + 1, text.size() - colon - 1);
    if (!absl::SimpleAtoi(digits, &port) || port < 1 || port > 65535 || digits.empty() || digits[0] == '+' ||
        digits[0] == '0') {
      return absl::InvalidArgumentError(
          absl::StrCat(kVar, ": port must be 1..65535 in \"", std::string(text), "\""));
    }
    up.port = static_cast<uint16_t>(port);
  }
  return up;
}

}  // namespace coolify::dns
