// The broker's configuration, from BROKER_* environment variables (README lists them).
// An invalid value is refused with a message naming the variable.
#ifndef COOLD_SERVICES_BROKER_CONFIG_H_
#define COOLD_SERVICES_BROKER_CONFIG_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace coolify::broker {

struct BrokerConfig {
  std::string unix_socket = "/run/coolify/broker.sock";
  std::string unix_socket_group;  // "" = mode 0600, else 0660 with this group
  std::string grpc_bind = "0.0.0.0:6443";
  std::string tls_cert;
  std::string tls_key;
  std::string jwt_keys;  // "kid=/path.pem,..."
  std::string jwt_audience = "coold";
  std::string jwt_issuer;  // "" = iss not checked
  absl::Duration token_max_lifetime = absl::Hours(1);
  absl::Duration jwt_leeway = absl::Seconds(30);  // clock skew allowed either way
  // Where the identity store (identity_store.h) keeps its SQLite file, broker.db.
  std::string state_dir = "/var/lib/coolify/broker";
  bool require_enrollment = false;
  // Named in an enrollment's install command: the URL coold dials (COOLD_BROKER_URL) and
  // where tools/install-host.sh is served. Unset: no install command, the token only.
  std::string public_url;
  std::string installer_url;
  size_t pending_max = 10000;
  size_t pending_per_host = 1000;  // never above pending_max
  // Connections to the gRPC port held at once from one source (an IPv4 address, an IPv6
  // /64): one peer cannot take the listener's every slot before it has proven anything.
  size_t connections_per_address = 64;
  bool insecure_plaintext = false;
  absl::Duration dispatch_timeout = absl::Seconds(10);
  absl::Duration landed_ttl = absl::Seconds(30);
};

// `env` maps names to values (only BROKER_* are read).
absl::StatusOr<BrokerConfig> ParseBrokerConfig(const std::map<std::string, std::string>& env);

// True for 127.0.0.0/8, [::1] and "localhost" host parts of a HOST:PORT bind.
bool IsLoopbackBind(const std::string& bind);

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_CONFIG_H_
