// The host's identity towards the broker, held by the monitor and never by the front end:
// the host's own key pair and, until it is used, the one-time enrollment token.
//
// First start with COOLD_ENROLLMENT_TOKEN_FILE present and no key: a P-256 key is
// generated in memory. The front end enrolls with the token and the key's public half;
// when the broker has admitted it, CommitEnrollment writes the key (tmp + rename, root,
// 0600) and removes the token file. A crash before that leaves no key on disk and the
// token unused (the next start tries again with a fresh key); a crash after the broker
// consumed the token but before the write loses the key, and the host must be enrolled
// again: it never ends up with a key on disk the broker does not know.
//
// The front end asks the monitor to sign; what is signed is built here, from the
// monitor's own configuration: a proof names this host and the broker's nonce, a token
// names this host as sub and lives kHostTokenLifetime.
#ifndef COOLD_SERVICES_MONITOR_HOST_IDENTITY_H_
#define COOLD_SERVICES_MONITOR_HOST_IDENTITY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/config.pb.h"
#include "services/identity/host_key.h"

namespace coolify::monitor {

// Short: a token is renewed on the live stream at half its life.
inline constexpr absl::Duration kHostTokenLifetime = absl::Minutes(10);

struct HostIdentity {
  std::optional<identity::HostKey> key;
  bool key_on_disk = false;
  std::string enrollment_token;  // "" when none is pending
};

// Reads COOLD_HOST_KEY_FILE (root-owned, 0600, P-256) and COOLD_ENROLLMENT_TOKEN_FILE
// (0600); generates a key when enrolling without one. Empty identity without a broker.
absl::StatusOr<HostIdentity> LoadHostIdentity(const v1::CooldConfig& config);

absl::Status CommitEnrollment(const v1::CooldConfig& config, HostIdentity& identity);

// Replaces COOLD_BROKER_TOKEN_FILE with `jwt` (tmp + rename, root, 0600): a token central
// pushed with host.jwt.set, which the front end has checked; the next start uses it.
absl::Status WriteHostJwt(const v1::CooldConfig& config, const std::string& jwt);

// ES256 r||s over ProofInput(host_id, nonce).
absl::StatusOr<std::string> SignProof(const HostIdentity& identity, const v1::CooldConfig& config,
                                      const std::string& nonce);

// A token signed with the host key, kid "host:<host id>", aud "coold"; without caps the
// broker applies the host's enrollment grant.
absl::StatusOr<std::string> MintHostToken(const HostIdentity& identity, const v1::CooldConfig& config,
                                          const std::vector<std::string>& caps, absl::Time now);

}  // namespace coolify::monitor

#endif  // COOLD_SERVICES_MONITOR_HOST_IDENTITY_H_
