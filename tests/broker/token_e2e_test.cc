// Narrow host tokens, end to end against the real broker: audience, lifetime, clock
// skew, kid selection among trusted keys, revocation by jti (persisted across a
// restart, cutting the live stream off), and renewal on the live stream. Every attack
// runs while a legitimate host and a legitimate client keep working, and the client's
// dispatches are checked to succeed and to stay fast.
#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = keys_.Path("broker.sock");
    // Not under keys_ (root's 0700): the broker's user must be able to reach it.
    char tmpl[] = "/tmp/broker-token-state-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    state_dir_ = tmpl;
  }
  void TearDown() override {
    broker_.reset();
    Shell("rm -rf " + state_dir_);
  }

  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> env = {"BROKER_UNIX_SOCKET=" + socket_, "BROKER_GRPC_BIND=127.0.0.1:0",
                                    "BROKER_TLS_CERT=" + keys_.Path("tls.crt"),
                                    "BROKER_TLS_KEY=" + keys_.Path("tls.key"),
                                    "BROKER_JWT_KEYS=" + keys_.KeySpec() + ",other=" + keys_.Path("other.pub"),
                                    "BROKER_STATE_DIR=" + state_dir_};
    env.insert(env.end(), extra.begin(), extra.end());
    broker_ = std::make_unique<BrokerUnderTest>(env);
    ASSERT_TRUE(broker_->listening()) << broker_->log();
  }

  std::string Sign(const std::string& claims, const std::string& kid = "es", const std::string& key = "es.key") {
    return SignJwt("ES256", kid, keys_.Read(key), claims);
  }

  std::unique_ptr<FakeHost> Host(const std::string& host_id, const std::string& token,
                                 FakeHost::Answer answer = FakeHost::Echo()) {
    FakeHost::Options o;
    o.host_id = host_id;
    o.token = token;
    o.target = absl::StrCat("127.0.0.1:", broker_->port());
    o.root_pem = keys_.Read("tls.crt");
    return std::make_unique<FakeHost>(o, std::move(answer));
  }

  HttpAnswer Dispatch(const std::string& host, const std::string& id) {
    return UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                    absl::StrCat(R"({"host_id":")", host, R"(","request_id":")", id,
                                 R"(","command":{"type":"host.info"}})"));
  }

  // The legitimate client's dispatch to the legitimate host: 200, and fast.
  void ExpectServed(const std::string& id) {
    auto started = std::chrono::steady_clock::now();
    HttpAnswer answer = Dispatch("good", id);
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(answer.status, 200) << id << ": " << answer.body;
    EXPECT_LT(took, std::chrono::seconds(1)) << id;
  }

  static long Now() { return static_cast<long>(time(nullptr)); }

  // Claims with every field given explicitly.
  static std::string ClaimsWith(const std::string& host, const std::string& aud, long iat, long exp,
                                const std::string& jti) {
    std::string out = absl::StrCat(R"({"sub":")", host, R"(","caps":["host.info"],"iat":)", iat, R"(,"exp":)", exp);
    if (!aud.empty()) absl::StrAppend(&out, R"(,"aud":)", aud);
    if (!jti.empty()) absl::StrAppend(&out, R"(,"jti":")", jti, R"(")");
    return out + "}";
  }

  TestKeys keys_;
  std::string socket_;
  std::string state_dir_;
  std::unique_ptr<BrokerUnderTest> broker_;
};

TEST_F(TokenTest, TokensOutsideThePolicyAreRefusedWhileTheLegitimateHostIsServed) {
  Start();
  auto good = Host("good", Sign(Claims("good", AllCaps())));
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  const long now = Now();
  struct Attack {
    const char* name;
    std::string token;
    const char* reason;
  } attacks[] = {
      {"aud of another service", Sign(ClaimsWith("evil", R"("flux-other")", now, now + 600, NewJti())),
       "aud does not name \"coold\""},
      {"no aud", Sign(ClaimsWith("evil", "", now, now + 600, NewJti())), "no aud"},
      {"aud array without ours", Sign(ClaimsWith("evil", R"(["a","b"])", now, now + 600, NewJti())), "aud does not name"},
      {"exp one year ahead", Sign(ClaimsWith("evil", R"("coold")", now, now + 365L * 86400, NewJti())),
       "at most 1h is accepted"},
      {"exp ten years ahead", Sign(ClaimsWith("evil", R"("coold")", now, now + 3650L * 86400, NewJti())),
       "at most 1h is accepted"},
      {"iat backdated so exp - iat is two hours", Sign(ClaimsWith("evil", R"("coold")", now - 3600, now + 3600, NewJti())),
       "lifetime exp - iat is 2h"},
      {"iat beyond the clock-skew allowance", Sign(ClaimsWith("evil", R"("coold")", now + 120, now + 600, NewJti())),
       "beyond the clock-skew allowance"},
      {"expired beyond the allowance", Sign(ClaimsWith("evil", R"("coold")", now - 600, now - 60, NewJti())), "expired"},
      {"no jti", Sign(ClaimsWith("evil", R"("coold")", now, now + 600, "")), "no jti"},
      {"no iat", Sign(absl::StrCat(R"({"sub":"evil","aud":"coold","jti":"x","caps":["host.info"],"exp":)", now + 600, "}")),
       "no iat"},
      {"kid names a trusted key the token was not signed with",
       Sign(ClaimsWith("evil", R"("coold")", now, now + 600, NewJti()), "es", "other.key"), "bad signature"},
  };
  for (const Attack& attack : attacks) {
    auto evil = Host("evil", attack.token);
    grpc::Status status = evil->WaitEnd();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << attack.name;
    EXPECT_THAT(status.error_message(), HasSubstr(attack.reason)) << attack.name;
    EXPECT_TRUE(broker_->WaitForLog(attack.reason)) << attack.name;
    ExpectServed(absl::StrCat("r-", &attack - attacks));
  }
  EXPECT_EQ(good->received().size(), std::size(attacks));
  // Within the allowance (30 s): a host whose clock runs 20 s ahead of the broker's.
  auto skewed = Host("skewed", Sign(ClaimsWith("skewed", R"("coold")", now + 20, now + 620, NewJti())));
  EXPECT_TRUE(WaitForHosts(socket_, 2));
  // kid selects among the trusted keys: the same claims under the rotated-in key.
  auto rotated = Host("rotated", Sign(ClaimsWith("rotated", R"(["x","coold"])", now, now + 600, NewJti()), "other",
                                      "other.key"));
  EXPECT_TRUE(WaitForHosts(socket_, 3));
  EXPECT_TRUE(good->open());
}

TEST_F(TokenTest, AnAudienceAndLifetimeOfTheOperatorsChoosing) {
  Start({"BROKER_JWT_AUDIENCE=coold-eu", "BROKER_TOKEN_MAX_LIFETIME=5m", "BROKER_JWT_ISSUER=central-eu"});
  const long now = Now();
  auto wrong = Host("h", Sign(ClaimsWith("h", R"("coold")", now, now + 60, NewJti())));
  EXPECT_THAT(wrong->WaitEnd().error_message(), HasSubstr("aud does not name \"coold-eu\""));
  auto long_lived = Host("h", Sign(ClaimsWith("h", R"("coold-eu")", now, now + 600, NewJti())));
  EXPECT_THAT(long_lived->WaitEnd().error_message(), HasSubstr("at most 5m is accepted"));
  auto no_iss = Host("h", Sign(ClaimsWith("h", R"("coold-eu")", now, now + 60, NewJti())));
  EXPECT_THAT(no_iss->WaitEnd().error_message(), HasSubstr("iss is not \"central-eu\""));
  std::string claims = ClaimsWith("h", R"("coold-eu")", now, now + 300, NewJti());
  claims.insert(claims.size() - 1, R"(,"iss":"central-eu")");
  auto fine = Host("h", Sign(claims));
  EXPECT_TRUE(WaitForHosts(socket_, 1)) << broker_->log();
}

TEST_F(TokenTest, ARevokedTokenIsCutOffAtOnceAndStaysRefusedAcrossARestart) {
  Start();
  auto good = Host("good", Sign(Claims("good", AllCaps())));
  const std::string jti = "revoked-" + NewJti();
  const long now = Now();
  const std::string victim_token = Sign(ClaimsWith("victim", R"("coold")", now, now + 600, jti));
  auto victim = Host("victim", victim_token, FakeHost::Silent());
  ASSERT_TRUE(WaitForHosts(socket_, 2));
  // A request parked on the victim, waiting for an answer that never comes.
  std::thread parked([&] {
    HttpAnswer answer = Dispatch("victim", "parked-1");
    EXPECT_EQ(answer.status, 503) << answer.body;
    EXPECT_THAT(answer.body, HasSubstr("revoked"));
  });
  for (int i = 0; i < 200 && victim->received().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(victim->received().size(), 1u);

  auto started = std::chrono::steady_clock::now();
  HttpAnswer revoked = UnixHttp(socket_, "POST", "/v1/tokens/revoke", absl::StrCat(R"({"jti":")", jti, R"("})"));
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_THAT(revoked.body, HasSubstr(R"("cut_off":true)"));
  grpc::Status ended = victim->WaitEnd(std::chrono::seconds(1));
  auto cut_after = std::chrono::steady_clock::now() - started;
  EXPECT_LT(cut_after, std::chrono::seconds(1));
  std::cout << "revoked token's stream closed "
            << std::chrono::duration_cast<std::chrono::milliseconds>(cut_after).count()
            << " ms after POST /v1/tokens/revoke was sent\n";
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::ABORTED) << ended.error_message();
  EXPECT_THAT(ended.error_message(), HasSubstr("revoked"));
  parked.join();
  EXPECT_EQ(Dispatch("victim", "after-1").status, 404);
  ExpectServed("r-1");

  // The same token again: refused, with the reason.
  auto again = Host("victim", victim_token);
  EXPECT_THAT(again->WaitEnd().error_message(), HasSubstr("jti " + jti + " is revoked"));

  // Bad revocations change nothing.
  EXPECT_EQ(UnixHttp(socket_, "POST", "/v1/tokens/revoke", R"({"jti":"a b"})").status, 400);
  EXPECT_EQ(UnixHttp(socket_, "POST", "/v1/tokens/revoke", R"({"jti":"x","jti":"y"})").status, 400);
  EXPECT_EQ(UnixHttp(socket_, "POST", "/v1/tokens/revoke", R"({"jti":"x","extra":1})").status, 400);
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/tokens/revoke").status, 405);
  // With the expiry central knows (its issuer's expires_at), as it sends it.
  HttpAnswer with_expiry = UnixHttp(socket_, "POST", "/v1/tokens/revoke",
                                    absl::StrCat(R"({"jti":"other-1","expires_at":)", now + 600, "}"));
  EXPECT_EQ(with_expiry.status, 200) << with_expiry.body;
  EXPECT_THAT(with_expiry.body, HasSubstr(R"("cut_off":false)"));

  // A restart on the same state directory still refuses it.
  good.reset();
  broker_.reset();
  Start();
  auto after_restart = Host("victim", victim_token);
  EXPECT_THAT(after_restart->WaitEnd().error_message(), HasSubstr("jti " + jti + " is revoked"));
  EXPECT_TRUE(broker_->WaitForLog("2 revoked tokens")) << broker_->log();
  good = Host("good", Sign(Claims("good", AllCaps())));
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  ExpectServed("r-2");
}

// A host renewing its token every second keeps one stream, under continuous dispatch,
// past many expiries; a host that does not renew is closed just after its exp.
TEST_F(TokenTest, RenewalOnTheLiveStreamKeepsItOpenAndLosesNoDispatch) {
  Start({"BROKER_JWT_LEEWAY=1s", "BROKER_DISPATCH_TIMEOUT=5s"});
  auto token = [&](const std::string& host, long ttl) {
    return Sign(ClaimsWith(host, R"("coold")", Now(), Now() + ttl, NewJti()));
  };
  auto renewing = Host("good", token("good", 3));
  auto lapsing = Host("lapsing", token("lapsing", 3));
  ASSERT_TRUE(WaitForHosts(socket_, 2));
  std::atomic<bool> stop{false};
  std::atomic<int> renewals{0};
  std::thread renewer([&] {
    while (!stop) {
      v1::ClientMsg renew;
      renew.mutable_renew_token()->set_token(token("good", 3));
      if (renewing->Send(renew)) ++renewals;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
  int dispatched = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    HttpAnswer answer = Dispatch("good", absl::StrCat("load-", dispatched));
    ASSERT_EQ(answer.status, 200) << dispatched << ": " << answer.body;
    ++dispatched;
  }
  stop = true;
  renewer.join();
  EXPECT_TRUE(renewing->open());
  EXPECT_GE(renewals.load(), 8);
  // The lapsing host was closed at exp (+1 s), with the reason.
  grpc::Status lapsed = lapsing->WaitEnd(std::chrono::seconds(1));
  EXPECT_EQ(lapsed.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(lapsed.error_message(), HasSubstr("expired and no renewal came"));
  // Every renewal was answered and accepted.
  int accepted = 0;
  for (const v1::ServerMsg& m : renewing->control()) accepted += m.has_token_verdict() && m.token_verdict().accepted();
  EXPECT_GE(accepted, 8);
  EXPECT_GT(dispatched, 50);
  std::cout << "renewal under load: " << dispatched << " dispatches in 10 s, all 200, " << accepted
            << " renewals accepted, one stream\n";
  // A renewal naming another host is refused, and the stream stays.
  v1::ClientMsg foreign;
  foreign.mutable_renew_token()->set_token(token("lapsing", 60));
  ASSERT_TRUE(renewing->Send(foreign));
  EXPECT_TRUE(broker_->WaitForLog("renewal token is for another host"));
  EXPECT_TRUE(renewing->open());
}

// A peer that compresses its messages (the inflation attack: a small gzip message that
// expands to 128 MiB) is refused from its grpc-encoding header, before anything is
// inflated, while the legitimate host is served.
TEST_F(TokenTest, CompressedMessagesAreRefusedBeforeInflating) {
  Start();
  auto good = Host("good", Sign(Claims("good", AllCaps())));
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = keys_.Read("tls.crt");
  FakeHost::Options o;
  o.host_id = "gzip";
  o.token = Sign(Claims("gzip", AllCaps()));
  o.channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", broker_->port()), grpc::SslCredentials(tls), args);
  FakeHost gzip(o, FakeHost::Echo());
  grpc::Status status = gzip.WaitEnd();
  EXPECT_NE(status.error_code(), grpc::StatusCode::OK);
  EXPECT_THAT(status.error_message(), HasSubstr("gzip"));
  EXPECT_FALSE(gzip.WaitAdmitted(std::chrono::milliseconds(1)));
  ExpectServed("r-1");
  EXPECT_THAT(UnixHttp(socket_, "GET", "/v1/health").body, HasSubstr(R"("hosts":1)"));
}

}  // namespace
}  // namespace coolify::testing
