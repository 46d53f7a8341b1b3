// Host JWTs as the broker receives them: the parser, then full verification against a
// fixed ES256 key and a fixed RS256 key whose private halves were discarded after signing
// one seed (rs256_expired_real_signature, expired at the fixed time used here, so the
// claim checks run behind a good signature). No input may crash, and none may verify:
// accepting a token without its signer's key is the one failure that matters.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "fuzz/protobuf_logs.h"
#include "services/broker/jwt.h"

namespace {

constexpr char kEcPublic[] = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeHjOhvAqWxEi1C8tu2aUAwUhxnC3
O6XHLx+PHL0GTolE7Sl5HpAuL2uJv6HSKQHBzhbM6bW4aCQxWdK3ZtCM3A==
-----END PUBLIC KEY-----
)";

constexpr char kRsaPublic[] = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtIKWfg0mZjB1SSARojGv
okRjTc3DQQMv92raqg61gN6bujifHwVET4qqHkItyz5hoTcgq9p57VRNZP6m7pV+
447+LuelXhuu7ZINJ2KrqwoL4q/MJrF/+40uqnDDbO7FRi6DqdlO/opmI4PldxRO
9j/vIz33HVorFoRx5mRuaHM0wXtBvVV3XlYxSh4Hcx6L30y1vwN5W4d7plCYldA7
rqeataZ/FotlBWzKACcgfvK621/yhoXKIwwjM/8AMKAqH3abX5mFS5apwSFI+5+M
NP2mt5vJlcwTYqyvo45mKHWRS9Yax5AIvggPFtsjTSmW+cygrGouAbb66NdVrjtZ
9wIDAQAB
-----END PUBLIC KEY-----
)";

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

const coolify::broker::JwtVerifier& Verifier() {
  static const auto* verifier = [] {
    auto* v = new coolify::broker::JwtVerifier();
    Check(v->AddKey("es", kEcPublic).ok());
    Check(v->AddKey("rs", kRsaPublic).ok());
    return v;
  }();
  return *verifier;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  coolify::fuzz::KeepOnlyFatalProtobufLogs();
  Verifier();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string token(reinterpret_cast<const char*>(data), size);
  auto parsed = coolify::broker::ParseJwt(token);
  if (parsed.ok()) Check(parsed->signing_input.size() < token.size());
  auto claims = Verifier().Verify(token, absl::FromUnixSeconds(1800000000));
  Check(!claims.ok());
  Check(claims.status().code() == absl::StatusCode::kUnauthenticated);
  return 0;
}
