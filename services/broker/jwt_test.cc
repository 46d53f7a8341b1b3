#include "services/broker/jwt.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coolify::broker {
namespace {

using ::testing::HasSubstr;

// Keys made by the openssl CLI in a scratch directory, as an operator would make them.
class Keys {
 public:
  Keys() {
    char tmpl[] = "/tmp/jwt-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::string script = absl::StrCat(
        "cd ", dir_, " && openssl ecparam -name prime256v1 -genkey -noout -out p256.key",
        " && openssl ec -in p256.key -pubout -out p256.pub && openssl ecparam -name secp384r1 -genkey -noout",
        " -out p384.key && openssl ec -in p384.key -pubout -out p384.pub && openssl genrsa -out rsa1024.key 1024",
        " && openssl rsa -in rsa1024.key -pubout -out rsa1024.pub && openssl genpkey -algorithm ed25519",
        " -out ed.key && openssl pkey -in ed.key -pubout -out ed.pub) >/dev/null 2>&1");
    ok_ = std::system(("(" + script).c_str()) == 0;
  }
  ~Keys() { ok_ = std::system(("rm -rf " + dir_).c_str()) == 0; }
  bool ok() const { return ok_; }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string Read(const std::string& name) const {
    std::ifstream in(Path(name));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string dir_;
  bool ok_ = false;
};

TEST(JwtKeys, KeySpecsAndKeysAreCheckedAtStart) {
  Keys keys;
  ASSERT_TRUE(keys.ok()) << "openssl CLI failed";
  EXPECT_TRUE(JwtVerifier::FromKeySpec("a=" + keys.Path("p256.pub")).ok());
  struct Case {
    std::string spec;
    const char* error;
  } cases[] = {
      {"", "BROKER_JWT_KEYS: no key configured"},
      {"just-a-path", "is not kid=/path/to/key.pem"},
      {"a=relative.pem", "key path for a is not absolute"},
      {"a=/nonexistent.pem", "cannot read key a at /nonexistent.pem"},
      {"a=" + keys.Path("p256.pub") + ",a=" + keys.Path("p256.pub"), "kid a given twice"},
      {"b@d=" + keys.Path("p256.pub"), "may hold only A-Z a-z 0-9 . _ -"},
      {"a=" + keys.Path("p384.pub"), "EC key is not on P-256"},
      {"a=" + keys.Path("rsa1024.pub"), "RSA key shorter than 2048 bits"},
      {"a=" + keys.Path("ed.pub"), "only EC P-256 and RSA keys are accepted"},
      {"a=" + keys.Path("p256.key"), "not a PEM public key"},
  };
  for (const Case& c : cases) {
    auto verifier = JwtVerifier::FromKeySpec(c.spec);
    ASSERT_FALSE(verifier.ok()) << c.spec;
    EXPECT_THAT(std::string(verifier.status().message()), HasSubstr(c.error)) << c.spec;
  }
}

TEST(JwtParse, MalformedTokensNameTheDefect) {
  auto b64 = [](const std::string& s) { return absl::WebSafeBase64Escape(s); };
  std::string header = b64(R"({"alg":"ES256","kid":"a"})");
  std::string claims = b64(R"({"sub":"h","caps":["x"],"exp":1})");
  struct Case {
    std::string token;
    const char* error;
  } cases[] = {
      {"abc", "not three dot-separated segments"},
      {"a.b.c.d", "not three dot-separated segments"},
      {"." + claims + ".AA", "header is empty"},
      {header + "=." + claims + ".AA", "header is not base64url without padding"},
      {header + "." + claims + ".A", "signature is not canonical base64url"},
      {b64("[1]") + "." + claims + ".AA", "header is not a JSON object"},
      {b64(R"({"alg":"ES256","alg":"none"})") + "." + claims + ".AA", "key given more than once"},
      {header + "." + b64("not json") + ".AA", "claims is not a JSON object"},
      {std::string(kMaxJwtBytes + 1, 'a'), "longer than 8192 bytes"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseJwt(c.token);
    ASSERT_FALSE(parsed.ok()) << c.token.substr(0, 80);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.error)) << c.token.substr(0, 80);
  }
}

TEST(JwtVerify, HeaderRulesComeBeforeAnyKey) {
  Keys keys;
  ASSERT_TRUE(keys.ok());
  JwtVerifier verifier;
  ASSERT_TRUE(verifier.AddKey("a", keys.Read("p256.pub")).ok());
  auto b64 = [](const std::string& s) { return absl::WebSafeBase64Escape(s); };
  std::string claims = b64(R"({"sub":"h","caps":["x"],"exp":9999999999})");
  struct Case {
    std::string header;
    const char* error;
  } cases[] = {
      {R"({"alg":"none","kid":"a"})", "alg none"},
      {R"({"alg":"NONE","kid":"a"})", "alg none"},
      {R"({"alg":"HS256","kid":"a"})", "alg HS256 not accepted"},
      {R"({"alg":"PS256","kid":"a"})", "alg PS256 not accepted"},
      {R"({"kid":"a"})", "header has no alg"},
      {R"({"alg":"ES256"})", "header has no kid"},
      {R"({"alg":"ES256","kid":"b"})", "unknown kid"},
      {R"({"alg":"RS256","kid":"a"})", "does not match the type of key a"},
      {R"({"alg":"ES256","kid":"a","jku":"https://evil/keys"})", "header field jku not accepted"},
      {R"({"alg":"ES256","kid":"a","typ":"JOSE+JSON"})", "typ is not JWT"},
      {R"({"alg":"ES256","kid":"a"})", "ES256 signature is not 64 bytes"},
  };
  for (const Case& c : cases) {
    auto claims_or = verifier.Verify(b64(c.header) + "." + claims + ".AAAA", absl::Now());
    ASSERT_FALSE(claims_or.ok()) << c.header;
    EXPECT_THAT(std::string(claims_or.status().message()), HasSubstr(c.error)) << c.header;
  }
}

}  // namespace
}  // namespace coolify::broker
