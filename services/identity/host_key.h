// A host's own key pair: EC P-256, generated on the host and never leaving it. The
// monitor holds the private key (services/monitor/host_identity.h); the broker records
// the public key at enrollment and from then on asks the host to prove it holds the
// private one (agent.proto: Challenge/Proof) and verifies the host's own tokens with it.
//
// Built twice from one source: against OpenSSL 3 (:host_key, for processes that link
// gRPC) and against BoringSSL (:host_key_boringssl, for the monitor), using only the
// EVP calls both offer.
#ifndef COOLD_SERVICES_IDENTITY_HOST_KEY_H_
#define COOLD_SERVICES_IDENTITY_HOST_KEY_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace coolify::identity {

inline constexpr size_t kNonceBytes = 32;
// The kid of a token a host signs with its own key: "host:" is outside the grammar of a
// configured kid (jwt.h), so a host token can never be mistaken for central's.
inline constexpr char kHostKidPrefix[] = "host:";

// What a host signs to answer a Challenge: domain-separated, and naming the host, so a
// proof is valid for that purpose, that host and that nonce only (never as a JWT).
std::string ProofInput(std::string_view host_id, std::string_view nonce);

class HostKey {
 public:
  static absl::StatusOr<HostKey> Generate();
  // A PKCS#8 or SEC1 PEM private key; refused unless EC P-256.
  static absl::StatusOr<HostKey> FromPem(std::string_view private_pem);
  HostKey(HostKey&&) noexcept;
  HostKey& operator=(HostKey&&) noexcept;
  ~HostKey();

  std::string PrivatePem() const;  // PKCS#8
  std::string PublicDer() const;   // SubjectPublicKeyInfo
  std::string PublicPem() const;

  // ES256: ECDSA P-256 over SHA-256(message), as raw r||s (64 bytes).
  absl::StatusOr<std::string> Sign(std::string_view message) const;
  // A compact JWS {"alg":"ES256","kid","typ":"JWT"} over `claims_json`.
  absl::StatusOr<std::string> SignJwt(std::string_view kid, std::string_view claims_json) const;

 private:
  struct Impl;
  explicit HostKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The PEM of a SubjectPublicKeyInfo DER, refused unless it is an EC P-256 key in the
// uncompressed form (the one encoding this project accepts: 91 bytes).
absl::StatusOr<std::string> P256PublicPemFromDer(std::string_view der);

// Checks an ES256 raw r||s `signature` of `message` by the P-256 public key `public_pem`.
absl::Status VerifyEs256(std::string_view public_pem, std::string_view message, std::string_view signature);

}  // namespace coolify::identity

#endif  // COOLD_SERVICES_IDENTITY_HOST_KEY_H_
