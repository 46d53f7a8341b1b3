#include "services/identity/host_key.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coolify::identity {
namespace {

using ::testing::HasSubstr;

TEST(HostKey, ProofsVerifyOnlyForTheirKeyHostAndNonce) {
  auto key = HostKey::Generate();
  ASSERT_TRUE(key.ok()) << key.status();
  auto other = HostKey::Generate();
  ASSERT_TRUE(other.ok());
  std::string nonce(kNonceBytes, 'n');
  auto signature = key->Sign(ProofInput("host-a", nonce));
  ASSERT_TRUE(signature.ok());
  EXPECT_EQ(signature->size(), 64u);
  auto pem = P256PublicPemFromDer(key->PublicDer());
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_EQ(*pem, key->PublicPem());
  EXPECT_TRUE(VerifyEs256(*pem, ProofInput("host-a", nonce), *signature).ok());
  EXPECT_FALSE(VerifyEs256(*pem, ProofInput("host-b", nonce), *signature).ok());
  EXPECT_FALSE(VerifyEs256(*pem, ProofInput("host-a", std::string(kNonceBytes, 'm')), *signature).ok());
  EXPECT_FALSE(VerifyEs256(other->PublicPem(), ProofInput("host-a", nonce), *signature).ok());
  EXPECT_FALSE(VerifyEs256(*pem, ProofInput("host-a", nonce), signature->substr(0, 63)).ok());
}

TEST(HostKey, ThePrivateKeyRoundTripsAndOnlyP256IsAccepted) {
  auto key = HostKey::Generate();
  ASSERT_TRUE(key.ok());
  auto again = HostKey::FromPem(key->PrivatePem());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->PublicDer(), key->PublicDer());
  EXPECT_THAT(std::string(HostKey::FromPem("garbage").status().message()), HasSubstr("not a PEM private key"));
  std::string der = key->PublicDer();
  der[der.size() - 1] ^= 1;  // a point off the curve
  EXPECT_FALSE(P256PublicPemFromDer(der).ok());
  EXPECT_FALSE(P256PublicPemFromDer(der.substr(0, 60)).ok());
}

}  // namespace
}  // namespace coolify::identity
