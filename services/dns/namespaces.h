// The DNS part of coold's configuration, parsed from the seed's variables so the monitor's
// config code and the DNS server agree on one grammar. Each error names the variable.
#ifndef COOLD_SERVICES_DNS_NAMESPACES_H_
#define COOLD_SERVICES_DNS_NAMESPACES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "services/dns/message.h"

namespace coolify::dns {

struct NamespaceSpec {
  std::string name;     // [a-z][a-z0-9-]{0,30}
  std::string network;  // Podman network, [A-Za-z0-9][A-Za-z0-9_.-]{0,63}
  std::string gateway;  // the bridge's gateway IPv4; 0.0.0.0 = no DNS listener for it
  bool HasDnsListener() const { return gateway != "0.0.0.0"; }
};

// COOLD_NAMESPACES: "<name>:<network>:<gateway-ip>,…" (at least one; names unique).
absl::StatusOr<std::vector<NamespaceSpec>> ParseNamespaces(std::string_view text);

// COOLD_DNS_ZONE: a DNS name such as "coolify.internal".
absl::StatusOr<WireName> ParseZoneVariable(std::string_view text);

struct Upstream {
  std::string ip;
  uint16_t port = 53;
};
// COOLD_DNS_UPSTREAM: "IPv4:PORT" ("1.1.1.1:53"); a bare IPv4 means port 53.
absl::StatusOr<Upstream> ParseUpstream(std::string_view text);

}  // namespace coolify::dns

#endif  // COOLD_SERVICES_DNS_NAMESPACES_H_
