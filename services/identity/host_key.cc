#include "services/identity/host_key.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace coolify::identity {
namespace {

// The DER prefix of every uncompressed P-256 SubjectPublicKeyInfo: SEQUENCE {
// AlgorithmIdentifier {id-ecPublicKey, prime256v1}, BIT STRING (66 bytes, 0x04 ...) }.
// Comparing it is a check both libraries can make the same way.
constexpr unsigned char kP256SpkiPrefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                             0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
                                             0x07, 0x03, 0x42, 0x00, 0x04};
constexpr size_t kP256SpkiBytes = 91;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

std::string SpkiDer(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  int length = i2d_PUBKEY(pkey, &der);
  if (length <= 0) return "";
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

bool IsP256(EVP_PKEY* pkey) {
  std::string der = SpkiDer(pkey);
  return der.size() == kP256SpkiBytes &&
         der.compare(0, sizeof(kP256SpkiPrefix), reinterpret_cast<const char*>(kP256SpkiPrefix),
                     sizeof(kP256SpkiPrefix)) == 0;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return length > 0 ? std::string(data, static_cast<size_t>(length)) : "";
}

}  // namespace

struct HostKey::Impl {
  Pkey pkey;
};

HostKey::HostKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HostKey::HostKey(HostKey&&) noexcept = default;
HostKey& HostKey::operator=(HostKey&&) noexcept = default;
HostKey::~HostKey() = default;

std::string ProofInput(std::string_view host_id, std::string_view nonce) {
  return absl::StrCat("coold host proof v1\n", absl::string_view(host_id.data(), host_id.size()), "\n",
                      absl::string_view(nonce.data(), nonce.size()));
}

absl::StatusOr<HostKey> HostKey::Generate() {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr);
  EVP_PKEY* raw = nullptr;
  bool ok = ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1 &&
            EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) == 1 && EVP_PKEY_keygen(ctx, &raw) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    EVP_PKEY_free(raw);
    return absl::InternalError("P-256 key generation failed");
  }
  auto impl = std::make_unique<Impl>();
  impl->pkey.reset(raw);
  return HostKey(std::move(impl));
}

absl::StatusOr<HostKey> HostKey::FromPem(std::string_view private_pem) {
  BIO* bio = BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size()));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  Pkey pkey(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!pkey) return absl::InvalidArgumentError("not a PEM private key");
  if (!IsP256(pkey.get())) return absl::InvalidArgumentError("the host key is not an EC P-256 key");
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  return HostKey(std::move(impl));
}

std::string HostKey::PrivatePem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio != nullptr && PEM_write_bio_PrivateKey(bio, impl_->pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1) {
    out = BioText(bio);
  }
  BIO_free(bio);
  return out;
}

std::string HostKey::PublicDer() const { return SpkiDer(impl_->pkey.get()); }

std::string HostKey::PublicPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio != nullptr && PEM_write_bio_PUBKEY(bio, impl_->pkey.get()) == 1) out = BioText(bio);
  BIO_free(bio);
  return out;
}

absl::StatusOr<std::string> HostKey::Sign(std::string_view message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return absl::InternalError("EVP_MD_CTX_new failed");
  size_t length = 0;
  std::vector<unsigned char> der;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, impl_->pkey.get()) == 1 &&
            EVP_DigestSign(ctx, nullptr, &length, reinterpret_cast<const unsigned char*>(message.data()),
                           message.size()) == 1;
  if (ok) {
    der.resize(length);
    ok = EVP_DigestSign(ctx, der.data(), &length, reinterpret_cast<const unsigned char*>(message.data()),
                        message.size()) == 1;
    der.resize(length);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("ECDSA signing failed");
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return absl::InternalError("ECDSA signature decoding failed");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string raw(64, '\0');
  ok = BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32) == 32 &&
       BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  if (!ok) return absl::InternalError("ECDSA signature encoding failed");
  return raw;
}

absl::StatusOr<std::string> HostKey::SignJwt(std::string_view kid, std::string_view claims_json) const {
  std::string header = absl::StrCat(R"({"alg":"ES256","kid":")", absl::string_view(kid.data(), kid.size()),
                                    R"(","typ":"JWT"})");
  std::string input = absl::StrCat(absl::WebSafeBase64Escape(header), ".",
                                   absl::WebSafeBase64Escape(absl::string_view(claims_json.data(), claims_json.size())));
  absl::StatusOr<std::string> signature = Sign(input);
  if (!signature.ok()) return signature.status();
  return absl::StrCat(input, ".", absl::WebSafeBase64Escape(*signature));
}

absl::StatusOr<std::string> P256PublicPemFromDer(std::string_view der) {
  if (der.size() != kP256SpkiBytes ||
      der.compare(0, sizeof(kP256SpkiPrefix), std::string_view(reinterpret_cast<const char*>(kP256SpkiPrefix),
                                                               sizeof(kP256SpkiPrefix))) != 0) {
    return absl::InvalidArgumentError("public_key: not an uncompressed EC P-256 SubjectPublicKeyInfo");
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  Pkey pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  // d2i also checks the point is on the curve.
  if (!pkey || !IsP256(pkey.get())) return absl::InvalidArgumentError("public_key: not a valid P-256 point");
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio != nullptr && PEM_write_bio_PUBKEY(bio, pkey.get()) == 1) out = BioText(bio);
  BIO_free(bio);
  if (out.empty()) return absl::InternalError("PEM encoding failed");
  return out;
}

absl::Status VerifyEs256(std::string_view public_pem, std::string_view message, std::string_view signature) {
  if (signature.size() != 64) return absl::UnauthenticatedError("signature is not 64 bytes (ES256 r||s)");
  BIO* bio = BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size()));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  Pkey pkey(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!pkey || !IsP256(pkey.get())) return absl::InternalError("recorded host key is not a P-256 public key");
  ECDSA_SIG* sig = ECDSA_SIG_new();
  const unsigned char* raw = reinterpret_cast<const unsigned char*>(signature.data());
  BIGNUM* r = BN_bin2bn(raw, 32, nullptr);
  BIGNUM* s = BN_bin2bn(raw + 32, 32, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return absl::InternalError("ECDSA signature allocation failed");
  }
  unsigned char* der = nullptr;
  int length = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (length <= 0) return absl::InternalError("ECDSA signature encoding failed");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  int verified = ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey.get()) == 1
                     ? EVP_DigestVerify(ctx, der, static_cast<size_t>(length),
                                        reinterpret_cast<const unsigned char*>(message.data()), message.size())
                     : -1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  if (verified != 1) return absl::UnauthenticatedError("signature does not verify with the host's recorded key");
  return absl::OkStatus();
}

}  // namespace coolify::identity
