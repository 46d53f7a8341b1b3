// The broker's durable identity state in an embedded SQLite file (schema:
// identity_store.sql): revoked token ids, enrolled hosts (public key, capability grant,
// revoked or not) and pending one-time enrollment tokens, stored as SHA-256 hashes.
// Nothing in it can impersonate a host: it holds public keys and hashes only.
//
// Every read is answered from memory (loaded at Open, kept in step with each write), so
// a stream's admission never waits on the disk; every write reaches the file (one
// transaction) before memory changes, so what was acknowledged survives a restart.
//
// Revocation by jti: a token is accepted only while exp - iat and exp - now are within
// the token policy's max_lifetime (jwt.h), so a token alive at revocation time r expires
// by r + max_lifetime + 2 * skew at the latest. A revocation is therefore kept that long
// after the later of r and the caller's expires_at, then forgotten: the list stays as
// small as the set of tokens that could still be presented.
#ifndef COOLD_SERVICES_BROKER_IDENTITY_STORE_H_
#define COOLD_SERVICES_BROKER_IDENTITY_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/endpoints/sqlite_backend.h"

namespace coolify::broker {

// Revocations kept at once; more is refused (ResourceExhausted) rather than growing
// without bound.
inline constexpr size_t kMaxRevocations = 1000000;
// Hosts and pending enrollments, each.
inline constexpr size_t kMaxHosts = 100000;
inline constexpr absl::Duration kMaxEnrollmentTtl = absl::Hours(24 * 7);

struct HostRecord {
  std::string host_id;
  std::vector<std::string> caps;  // the grant, sorted
  std::string public_key_pem;     // "" until the host proved possession of its key
  std::optional<absl::Time> enrolled_at;
  std::optional<absl::Time> revoked_at;
  bool enrolled() const { return !public_key_pem.empty() && !revoked_at.has_value(); }
};

struct Enrollment {
  std::string token;  // shown once, never stored
  absl::Time expires_at;
};

// host_id's grammar, shared with Hello: [A-Za-z0-9][A-Za-z0-9._-]{0,127}.
absl::Status ValidateHostId(const std::string& host_id);

class IdentityStore {
 public:
  // Opens (creating) the database at `path`; `revocation_floor` is max_lifetime + 2 *
  // skew of the token policy.
  static absl::StatusOr<std::unique_ptr<IdentityStore>> Open(const std::string& path,
                                                             absl::Duration revocation_floor);

  // Revocation by token id; returns until when it is kept.
  absl::StatusOr<absl::Time> RevokeToken(const std::string& jti, std::optional<absl::Time> expires_at,
                                         absl::Time now);
  bool IsTokenRevoked(const std::string& jti) const;
  size_t revoked_count() const;

  // Hosts.
  std::optional<HostRecord> FindHost(const std::string& host_id) const;
  std::vector<HostRecord> ListHosts() const;

  // A one-time enrollment token for `host_id`, valid `ttl`, granting `caps` (each a
  // dotted verb or "builder"). The host's row is created if new; an existing host keeps
  // its key and grant until the new token is redeemed (re-enrollment changes nothing
  // before the host proves its new key).
  absl::StatusOr<Enrollment> CreateEnrollment(const std::string& host_id, std::vector<std::string> caps,
                                              absl::Duration ttl, absl::Time now);
  // Whether `token` could be redeemed for `host_id` now (nothing is consumed): checked
  // before the host is asked to prove its key, so a bad token costs no signature.
  absl::Status CheckEnrollment(const std::string& token, const std::string& host_id, absl::Time now) const;
  // Redeems `token` for `host_id` with the key the host proved it holds: single use,
  // refused when unknown, expired, or issued for another host. The host's key and grant
  // are replaced and any revocation lifted, in one transaction.
  absl::StatusOr<HostRecord> RedeemEnrollment(const std::string& token, const std::string& host_id,
                                              const std::string& public_key_pem, absl::Time now);
  // Marks the host revoked: its key and every token for it are refused from now on, and
  // its pending enrollments are dropped. NotFound for an unknown host.
  absl::Status RevokeHost(const std::string& host_id, absl::Time now);
  // Revokes the host and forgets its key and grant (a re-enrollment starts it afresh).
  absl::Status DeleteHost(const std::string& host_id, absl::Time now);

  // Drops revocations and enrollments past their time.
  void ForgetExpired(absl::Time now);

 private:
  struct PendingEnrollment {
    std::string host_id;
    std::vector<std::string> caps;
    absl::Time expires_at;
  };
  explicit IdentityStore(std::unique_ptr<endpoints::SqliteBackend> db, absl::Duration floor)
      : db_(std::move(db)), revocation_floor_(floor) {}
  absl::Status Load();

  std::unique_ptr<endpoints::SqliteBackend> db_;
  const absl::Duration revocation_floor_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> revoked_ ABSL_GUARDED_BY(mu_);  // jti -> keep_until
  absl::flat_hash_map<std::string, HostRecord> hosts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, PendingEnrollment> enrollments_ ABSL_GUARDED_BY(mu_);  // by hash
};

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_IDENTITY_STORE_H_
