#include "services/broker/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "policy/api_json.h"

namespace coolify::broker {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

enum class KeyType { kEcP256, kRsa };

absl::Status Refused(std::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("host token refused: ", absl::string_view(why.data(), why.size())));
}

// One base64url segment, strictly: no padding, and the decoding re-encodes to the same
// text (no stray low bits), so one token has exactly one spelling.
absl::StatusOr<std::string> DecodeSegment(absl::string_view segment, const char* what) {
  // An empty signature decodes to nothing and fails verification; refusing it here would
  // hide the better reason ("alg none") the header gives.
  if (segment.empty() && std::string_view(what) != "signature") return Refused(absl::StrCat(what, " is empty"));
  for (char c : segment) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') {
      return Refused(absl::StrCat(what, " is not base64url without padding"));
    }
  }
  std::string decoded;
  if (!absl::WebSafeBase64Unescape(segment, &decoded) || absl::WebSafeBase64Escape(decoded) != segment) {
    return Refused(absl::StrCat(what, " is not canonical base64url"));
  }
  return decoded;
}

absl::StatusOr<Struct> DecodeObject(absl::string_view segment, const char* what) {
  absl::StatusOr<std::string> json = DecodeSegment(segment, what);
  if (!json.ok()) return json.status();
  Struct object;
  if (absl::Status s = policy::ParseStrictJson(*json, &object, kMaxJwtBytes); !s.ok()) {
    return Refused(absl::StrCat(what, " is not a JSON object: ", s.message()));
  }
  return object;
}

const Value* Field(const Struct& object, const char* name) {
  auto it = object.fields().find(name);
  return it == object.fields().end() ? nullptr : &it->second;
}

// A NumericDate claim as a time; absent is nullopt.
absl::StatusOr<std::optional<absl::Time>> TimeClaim(const Struct& claims, const char* name) {
  const Value* v = Field(claims, name);
  if (v == nullptr) return std::optional<absl::Time>();
  if (!v->has_number_value() || !std::isfinite(v->number_value()) || v->number_value() < 0 ||
      v->number_value() > 1e11) {
    return Refused(absl::StrCat(name, " is not a NumericDate"));
  }
  return std::optional<absl::Time>(absl::FromUnixSeconds(static_cast<int64_t>(v->number_value())));
}

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  *ok = in.good() || in.eof();
  return content.str();
}

// ES256's raw r||s signature as the DER ECDSA-Sig-Value OpenSSL verifies.
absl::StatusOr<std::vector<unsigned char>> EcdsaRawToDer(const std::string& raw) {
  if (raw.size() != 64) return Refused("ES256 signature is not 64 bytes");
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return absl::InternalError("ECDSA signature allocation failed");
  }
  int length = i2d_ECDSA_SIG(sig, nullptr);
  std::vector<unsigned char> der(length > 0 ? length : 0);
  unsigned char* out = der.data();
  if (length <= 0 || i2d_ECDSA_SIG(sig, &out) != length) {
    ECDSA_SIG_free(sig);
    return absl::InternalError("ECDSA signature encoding failed");
  }
  ECDSA_SIG_free(sig);
  return der;
}

// "aud" is a string or an array of strings (RFC 7519 4.1.3); one of them must be ours.
absl::Status CheckAudience(const Struct& claims, const std::string& audience) {
  const Value* aud = Field(claims, "aud");
  if (aud == nullptr) return Refused(absl::StrCat("no aud (expected \"", audience, "\")"));
  if (aud->has_string_value() && aud->string_value() == audience) return absl::OkStatus();
  if (aud->has_list_value()) {
    for (const Value& one : aud->list_value().values()) {
      if (one.has_string_value() && one.string_value() == audience) return absl::OkStatus();
    }
  }
  return Refused(absl::StrCat("aud does not name \"", audience, "\""));
}

}  // namespace

bool ValidJti(std::string_view jti) {
  if (jti.empty() || jti.size() > kMaxJtiBytes) return false;
  for (char c : jti) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') return false;
  }
  return true;
}

struct JwtVerifier::Key {
  ~Key() { EVP_PKEY_free(pkey); }
  EVP_PKEY* pkey = nullptr;
  KeyType type = KeyType::kEcP256;
};

JwtVerifier::JwtVerifier() = default;
JwtVerifier::~JwtVerifier() = default;
JwtVerifier::JwtVerifier(JwtVerifier&&) noexcept = default;
JwtVerifier& JwtVerifier::operator=(JwtVerifier&&) noexcept = default;

size_t JwtVerifier::key_count() const { return keys_.size(); }

absl::StatusOr<ParsedJwt> ParseJwt(std::string_view token_view) {
  absl::string_view token(token_view.data(), token_view.size());
  if (token.size() > kMaxJwtBytes) return Refused(absl::StrCat("longer than ", kMaxJwtBytes, " bytes"));
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return Refused("not three dot-separated segments");
  ParsedJwt parsed;
  absl::StatusOr<Struct> header = DecodeObject(parts[0], "header");
  if (!header.ok()) return header.status();
  absl::StatusOr<Struct> claims = DecodeObject(parts[1], "claims");
  if (!claims.ok()) return claims.status();
  absl::StatusOr<std::string> signature = DecodeSegment(parts[2], "signature");
  if (!signature.ok()) return signature.status();
  parsed.header = *std::move(header);
  parsed.claims = *std::move(claims);
  parsed.signature = *std::move(signature);
  parsed.signing_input = std::string(token.substr(0, parts[0].size() + 1 + parts[1].size()));
  return parsed;
}

absl::StatusOr<JwtVerifier> JwtVerifier::FromKeySpec(std::string_view spec_view) {
  absl::string_view spec(spec_view.data(), spec_view.size());
  JwtVerifier verifier;
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    size_t eq = entry.find('=');
    if (eq == absl::string_view::npos || eq == 0 || eq + 1 == entry.size()) {
      return absl::InvalidArgumentError(absl::StrCat("BROKER_JWT_KEYS: \"", entry, "\" is not kid=/path/to/key.pem"));
    }
    std::string kid(entry.substr(0, eq));
    std::string path(entry.substr(eq + 1));
    if (path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("BROKER_JWT_KEYS: key path for ", kid, " is not absolute"));
    }
    bool ok = false;
    std::string pem = ReadFile(path, &ok);
    if (!ok || pem.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("BROKER_JWT_KEYS: cannot read key ", kid, " at ", path));
    }
    if (absl::Status s = verifier.AddKey(kid, pem); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("BROKER_JWT_KEYS: ", path, ": ", s.message()));
    }
  }
  if (verifier.key_count() == 0) return absl::InvalidArgumentError("BROKER_JWT_KEYS: no key configured");
  return verifier;
}

absl::Status JwtVerifier::AddKey(const std::string& kid, std::string_view pem) {
  if (kid.empty() || kid.size() > 64) return absl::InvalidArgumentError("kid must be 1 to 64 characters");
  for (char c : kid) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat("kid \"", kid, "\" may hold only A-Z a-z 0-9 . _ -"));
    }
  }
  return AddAnyKey(kid, pem);
}

absl::Status JwtVerifier::AddAnyKey(const std::string& kid, std::string_view pem) {
  if (keys_.contains(kid)) return absl::InvalidArgumentError(absl::StrCat("kid ", kid, " given twice"));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  auto key = std::make_shared<Key>();
  key->pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key->pkey == nullptr) return absl::InvalidArgumentError(absl::StrCat("kid ", kid, ": not a PEM public key"));
  if (EVP_PKEY_is_a(key->pkey, "EC")) {
    char group[64] = {0};
    size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(key->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &length) != 1 ||
        (std::string(group) != "prime256v1" && std::string(group) != "P-256")) {
      return absl::InvalidArgumentError(absl::StrCat("kid ", kid, ": EC key is not on P-256 (ES256)"));
    }
    key->type = KeyType::kEcP256;
  } else if (EVP_PKEY_is_a(key->pkey, "RSA")) {
    if (EVP_PKEY_get_bits(key->pkey) < 2048) {
      return absl::InvalidArgumentError(absl::StrCat("kid ", kid, ": RSA key shorter than 2048 bits"));
    }
    key->type = KeyType::kRsa;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("kid ", kid, ": only EC P-256 and RSA keys are accepted"));
  }
  keys_[kid] = std::move(key);
  return absl::OkStatus();
}

absl::StatusOr<HostClaims> JwtVerifier::Verify(std::string_view token, absl::Time now) const {
  absl::StatusOr<ParsedJwt> parsed = ParseJwt(token);
  if (!parsed.ok()) return parsed.status();
  for (const auto& [name, value] : parsed->header.fields()) {
    if (name != "alg" && name != "kid" && name != "typ") return Refused(absl::StrCat("header field ", name, " not accepted"));
  }
  const Value* alg = Field(parsed->header, "alg");
  if (alg == nullptr || !alg->has_string_value()) return Refused("header has no alg");
  const std::string& algorithm = alg->string_value();
  if (absl::AsciiStrToLower(algorithm) == "none") return Refused("alg none");
  if (algorithm != "ES256" && algorithm != "RS256") {
    return Refused(absl::StrCat("alg ", absl::CHexEscape(algorithm.substr(0, 16)), " not accepted; ES256 or RS256"));
  }
  if (const Value* typ = Field(parsed->header, "typ"); typ != nullptr && (!typ->has_string_value() || typ->string_value() != "JWT")) {
    return Refused("typ is not JWT");
  }
  const Value* kid = Field(parsed->header, "kid");
  if (kid == nullptr || !kid->has_string_value()) return Refused("header has no kid");
  auto found = keys_.find(kid->string_value());
  if (found == keys_.end()) return Refused(absl::StrCat("unknown kid \"", absl::CHexEscape(kid->string_value().substr(0, 64)), "\""));
  const Key& key = *found->second;
  if ((algorithm == "ES256") != (key.type == KeyType::kEcP256)) {
    return Refused(absl::StrCat("alg ", algorithm, " does not match the type of key ", kid->string_value()));
  }

  // The signature before any claim is believed.
  std::vector<unsigned char> signature;
  if (key.type == KeyType::kEcP256) {
    absl::StatusOr<std::vector<unsigned char>> der = EcdsaRawToDer(parsed->signature);
    if (!der.ok()) return der.status();
    signature = *std::move(der);
  } else {
    signature.assign(parsed->signature.begin(), parsed->signature.end());
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return absl::InternalError("EVP_MD_CTX_new failed");
  int verified = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key.pkey) == 1
                     ? EVP_DigestVerify(ctx, signature.data(), signature.size(),
                                        reinterpret_cast<const unsigned char*>(parsed->signing_input.data()),
                                        parsed->signing_input.size())
                     : -1;
  EVP_MD_CTX_free(ctx);
  if (verified != 1) return Refused("bad signature");

  const Struct& claims = parsed->claims;
  HostClaims out;
  out.kid = kid->string_value();
  const Value* sub = Field(claims, "sub");
  if (sub == nullptr || !sub->has_string_value() || sub->string_value().empty()) return Refused("no sub");
  out.host_id = sub->string_value();
  const absl::Duration skew = policy_.skew;
  absl::StatusOr<std::optional<absl::Time>> exp = TimeClaim(claims, "exp");
  if (!exp.ok()) return exp.status();
  if (!exp->has_value()) return Refused("no exp");
  if (now > **exp + skew) return Refused("expired");
  if (**exp - now > policy_.max_lifetime + skew) {
    return Refused(absl::StrCat("exp is ", absl::FormatDuration(absl::Trunc(**exp - now, absl::Seconds(1))),
                                " ahead; at most ", absl::FormatDuration(policy_.max_lifetime), " is accepted"));
  }
  out.expires = **exp;
  absl::StatusOr<std::optional<absl::Time>> nbf = TimeClaim(claims, "nbf");
  if (!nbf.ok()) return nbf.status();
  if (nbf->has_value() && now + skew < **nbf) return Refused("not yet valid (nbf beyond the clock-skew allowance)");
  // iat is required so a token's whole lifetime is known: a revocation without an expiry
  // then needs keeping only max_lifetime (state_store.h), and a token cannot stretch its
  // life by claiming an iat it never had.
  absl::StatusOr<std::optional<absl::Time>> iat = TimeClaim(claims, "iat");
  if (!iat.ok()) return iat.status();
  if (!iat->has_value()) return Refused("no iat");
  if (now + skew < **iat) return Refused("issued in the future (iat beyond the clock-skew allowance)");
  if (**exp - **iat > policy_.max_lifetime) {
    return Refused(absl::StrCat("lifetime exp - iat is ", absl::FormatDuration(**exp - **iat), "; at most ",
                                absl::FormatDuration(policy_.max_lifetime), " is accepted"));
  }
  if (absl::Status s = CheckAudience(claims, policy_.audience); !s.ok()) return s;
  if (!policy_.issuer.empty()) {
    const Value* iss = Field(claims, "iss");
    if (iss == nullptr || !iss->has_string_value() || iss->string_value() != policy_.issuer) {
      return Refused(absl::StrCat("iss is not \"", policy_.issuer, "\""));
    }
  }
  const Value* jti = Field(claims, "jti");
  if (jti == nullptr || !jti->has_string_value() || !ValidJti(jti->string_value())) {
    return Refused("no jti (1 to 128 of A-Z a-z 0-9 . _ : -)");
  }
  out.jti = jti->string_value();
  const Value* caps = Field(claims, "caps");
  if (caps == nullptr && !policy_.caps_required) return out;
  if (caps == nullptr || !caps->has_list_value() || caps->list_value().values_size() == 0) {
    return Refused("no caps claim (a non-empty array)");
  }
  for (const Value& cap : caps->list_value().values()) {
    if (!cap.has_string_value() || cap.string_value().empty() || cap.string_value().size() > 64) {
      return Refused("caps holds something other than short strings");
    }
    out.caps.insert(cap.string_value());
  }
  return out;
}

}  // namespace coolify::broker
