// Host credentials: the JWT bearer a coold presents when it opens its stream.
//
// Accepted: a compact JWS whose header is {"alg": "ES256" | "RS256", "kid", "typ"?},
// signed by the public key configured for that kid, where the key's type matches the
// algorithm (a P-256 key for ES256, an RSA key of at least 2048 bits for RS256). Every
// other algorithm is refused before any key is touched: "none" and the HMAC family in
// particular, so a token "signed" with a public key as an HMAC secret never verifies.
// Claims: "sub" (the host id), "aud" (a string, or an array, holding the policy's
// audience), "jti" (the token's id, which revocation names), "caps" (a non-empty array of
// the dotted verbs, plus "builder", the host may be sent), "iat" and "exp" (required; exp
// - iat and exp - now at most the policy's max_lifetime), "nbf" (optional), "iss"
// (checked when the policy names an issuer). Times are checked with the policy's skew
// of tolerance either way. Other claims are ignored.
#ifndef COOLD_SERVICES_BROKER_JWT_H_
#define COOLD_SERVICES_BROKER_JWT_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"

namespace coolify::broker {

inline constexpr absl::Duration kJwtSkew = absl::Seconds(30);
inline constexpr size_t kMaxJwtBytes = 8 * 1024;
inline constexpr size_t kMaxJtiBytes = 128;

// What a token must say beyond its signature. The defaults are central's: it issues
// tokens for audience "coold" that live one hour.
struct TokenPolicy {
  std::string audience = "coold";
  std::string issuer;  // "" = iss is not checked
  // exp may be at most this far ahead of now (plus skew): a token minted for a year is
  // refused, however good its signature.
  absl::Duration max_lifetime = absl::Hours(1);
  absl::Duration skew = kJwtSkew;
  // A host's own token may leave caps out: its enrollment grant applies.
  bool caps_required = true;
};

struct HostClaims {
  std::string host_id;
  std::string kid;
  std::string jti;
  absl::flat_hash_set<std::string> caps;
  absl::Time expires;
};

// jti's grammar: 1 to kMaxJtiBytes of [A-Za-z0-9._:-] (a UUID among others).
bool ValidJti(std::string_view jti);

// A token split and decoded, its signature not yet checked.
struct ParsedJwt {
  google::protobuf::Struct header;
  google::protobuf::Struct claims;
  std::string signing_input;  // "<header>.<payload>" as received
  std::string signature;      // decoded bytes
};

// Splits and decodes `token` strictly: three base64url segments without padding, each
// canonical; header and claims JSON objects without repeated keys.
absl::StatusOr<ParsedJwt> ParseJwt(std::string_view token);

class JwtVerifier {
 public:
  JwtVerifier();
  ~JwtVerifier();
  JwtVerifier(JwtVerifier&&) noexcept;
  JwtVerifier& operator=(JwtVerifier&&) noexcept;

  // "kid=/path/key.pem,kid2=/path/other.pem": PEM public keys (SubjectPublicKeyInfo).
  // kid is [A-Za-z0-9._-]{1,64}. Any unreadable file or unusable key fails the whole spec.
  static absl::StatusOr<JwtVerifier> FromKeySpec(std::string_view spec);

  // Adds the PEM public key `pem` under `kid`: an EC P-256 or RSA (>= 2048 bits) key.
  absl::Status AddKey(const std::string& kid, std::string_view pem);
  // The same without the kid grammar: for a host's own key under "host:<host id>", a kid
  // no configured key can have.
  absl::Status AddAnyKey(const std::string& kid, std::string_view pem);
  size_t key_count() const;
  bool has_kid(const std::string& kid) const { return keys_.contains(kid); }

  void set_policy(TokenPolicy policy) { policy_ = std::move(policy); }
  const TokenPolicy& policy() const { return policy_; }

  // The token's claims when it is valid at `now`; Unauthenticated naming the defect
  // otherwise. Safe to call from several threads at once.
  absl::StatusOr<HostClaims> Verify(std::string_view token, absl::Time now) const;

 private:
  struct Key;
  absl::flat_hash_map<std::string, std::shared_ptr<const Key>> keys_;
  TokenPolicy policy_;
};

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_JWT_H_
