// Host identity end to end against the real broker: one-time enrollment, proof of
// possession of the host's own key, host-signed tokens, grants that bound every token,
// revocation and re-enrollment, durability across a restart, and the attacks on each
// (a replayed token, another host's key, a reused/expired/foreign enrollment token, two
// hosts racing with one token, a flood of attempts), each run while a legitimate host
// and client keep working.
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/identity/host_key.h"
#include "tests/broker/broker_testing.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class EnrollmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = keys_.Path("broker.sock");
    char tmpl[] = "/tmp/broker-enroll-state-XXXXXX";
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
                                    "BROKER_TLS_KEY=" + keys_.Path("tls.key"), "BROKER_JWT_KEYS=" + keys_.KeySpec(),
                                    "BROKER_STATE_DIR=" + state_dir_,
                                    "BROKER_PUBLIC_URL=grpcs://broker.example.com:6443/v1/agent",
                                    "BROKER_INSTALLER_URL=https://broker.example.com/install-host.sh"};
    env.insert(env.end(), extra.begin(), extra.end());
    broker_ = std::make_unique<BrokerUnderTest>(env);
    ASSERT_TRUE(broker_->listening()) << broker_->log();
  }

  // POST /v1/hosts/enroll; the enrollment token, or "" (and the answer in *answer).
  std::string Enroll(const std::string& host, const std::string& caps_json = R"(["host.info","containers.list"])",
                     int ttl = 0, HttpAnswer* answer = nullptr) {
    HttpAnswer a = UnixHttp(socket_, "POST", "/v1/hosts/enroll",
                            absl::StrCat(R"({"host_id":")", host, R"(","caps":)", caps_json,
                                         ttl > 0 ? absl::StrCat(R"(,"ttl_seconds":)", ttl) : "", "}"));
    if (answer != nullptr) *answer = a;
    size_t at = a.body.find(R"("enrollment_token":")");
    if (a.status != 201 || at == std::string::npos) return "";
    at += 20;
    return a.body.substr(at, a.body.find('"', at) - at);
  }

  static std::string NewKey() {
    auto key = identity::HostKey::Generate();
    if (!key.ok()) return "";
    return key->PrivatePem();
  }

  // A token the host signs with its own key (kid "host:<id>").
  static std::string OwnToken(const std::string& host, const std::string& key_pem,
                              const std::string& caps = R"(["host.info"])") {
    long now = static_cast<long>(time(nullptr));
    auto key = identity::HostKey::FromPem(key_pem);
    auto token = key->SignJwt(absl::StrCat("host:", host),
                              absl::StrCat(R"({"sub":")", host, R"(","aud":"coold","jti":")", NewJti(),
                                           R"(","caps":)", caps, R"(,"iat":)", now, R"(,"exp":)", now + 300, "}"));
    return token.ok() ? *token : "";
  }

  std::unique_ptr<FakeHost> Host(const std::string& host_id, const std::string& key_pem, const std::string& token,
                                 const std::string& enrollment = "", FakeHost::Answer answer = FakeHost::Echo()) {
    FakeHost::Options o;
    o.host_id = host_id;
    o.token = token;
    o.host_key_pem = key_pem;
    o.enrollment_token = enrollment;
    o.target = absl::StrCat("127.0.0.1:", broker_->port());
    o.root_pem = keys_.Read("tls.crt");
    return std::make_unique<FakeHost>(o, std::move(answer));
  }

  HttpAnswer Dispatch(const std::string& host, const std::string& id, const std::string& type = "host.info") {
    return UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                    absl::StrCat(R"({"host_id":")", host, R"(","request_id":")", id, R"(","command":{"type":")", type,
                                 R"("}})"));
  }

  void ExpectServed(const std::string& host, const std::string& id) {
    auto started = std::chrono::steady_clock::now();
    HttpAnswer answer = Dispatch(host, id);
    EXPECT_EQ(answer.status, 200) << id << ": " << answer.body;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1)) << id;
  }

  std::string CentralToken(const std::string& host, const std::vector<std::string>& caps) {
    return SignJwt("ES256", "es", keys_.Read("es.key"), Claims(host, caps));
  }

  TestKeys keys_;
  std::string socket_;
  std::string state_dir_;
  std::unique_ptr<BrokerUnderTest> broker_;
};

TEST_F(EnrollmentTest, AHostEnrollsProvesItsKeyAndAReplayedTokenNeverBecomesIt) {
  Start();
  HttpAnswer answer;
  const std::string token = Enroll("h1", R"(["host.info","containers.list"])", 0, &answer);
  ASSERT_FALSE(token.empty()) << answer.status << " " << answer.body;
  EXPECT_THAT(answer.body, HasSubstr("curl -fsSL 'https://broker.example.com/install-host.sh' | COOLD_ENROLLMENT_TOKEN='" +
                                     token + "' sh -s -- --broker-url 'grpcs://broker.example.com:6443/v1/agent' "
                                             "--host-id 'h1'"));
  const std::string key = NewKey();
  auto h1 = Host("h1", key, "", token);
  ASSERT_TRUE(h1->WaitAdmitted()) << broker_->log();
  ExpectServed("h1", "r-1");
  // The grant is what Admitted says, and what the broker enforces.
  for (const v1::ServerMsg& m : h1->control()) {
    if (m.has_admitted()) {
      EXPECT_TRUE(m.admitted().enrolled());
      EXPECT_THAT(std::vector<std::string>(m.admitted().caps().begin(), m.admitted().caps().end()),
                  ::testing::ElementsAre("containers.list", "host.info"));
    }
  }
  EXPECT_EQ(Dispatch("h1", "r-img", "images.list").status, 403);
  // The broker stores no secret: not the enrollment token, not the private key.
  std::ifstream db(state_dir_ + "/broker.db", std::ios::binary);
  std::stringstream bytes;
  bytes << db.rdbuf();
  std::ifstream wal(state_dir_ + "/broker.db-wal", std::ios::binary);
  bytes << wal.rdbuf();
  EXPECT_THAT(bytes.str(), Not(HasSubstr(token)));
  EXPECT_THAT(bytes.str(), Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(bytes.str(), HasSubstr("PUBLIC KEY"));
  HttpAnswer hosts = UnixHttp(socket_, "GET", "/v1/hosts");
  EXPECT_THAT(hosts.body, HasSubstr(R"("host_id":"h1","caps":["containers.list","host.info"],"enrolled":true,"connected":true)"));

  // Attacks while h1 is connected and served.
  const std::string stolen_own = OwnToken("h1", key);
  const std::string other_key = NewKey();
  struct Attack {
    const char* name;
    std::string token;
    std::string key;  // what the attacker signs the challenge with ("" = cannot)
    const char* reason;
  } attacks[] = {
      {"h1's own token replayed, no key", stolen_own, "", "no Hello (and proof of possession) within 10 s"},
      {"h1's own token replayed, another key", stolen_own, other_key, "proof of possession failed"},
      {"central's token for h1, another key", CentralToken("h1", {"host.info"}), other_key,
       "proof of possession failed"},
      {"a token for h1 signed by another key", OwnToken("h1", other_key), other_key, "bad signature"},
      {"central's token with caps above the grant", CentralToken("h1", {"host.info", "images.pull"}), key,
       "cap images.pull is not in the enrollment grant of h1"},
      {"the host's own token with caps above the grant", OwnToken("h1", key, R"(["containers.exec"])"), key,
       "cap containers.exec is not in the enrollment grant"},
  };
  for (const Attack& attack : attacks) {
    auto evil = Host("h1", attack.key, attack.token);
    grpc::Status status = evil->WaitEnd(std::chrono::seconds(12));
    EXPECT_NE(status.error_code(), grpc::StatusCode::OK) << attack.name;
    EXPECT_THAT(status.error_message(), HasSubstr(attack.reason)) << attack.name;
    EXPECT_FALSE(evil->WaitAdmitted(std::chrono::milliseconds(1))) << attack.name;
    EXPECT_TRUE(h1->open()) << attack.name;
    ExpectServed("h1", absl::StrCat("a-", &attack - attacks));
  }
  // Nothing was dispatched anywhere but to h1, and h1 was never replaced.
  EXPECT_THAT(broker_->log(), Not(HasSubstr("replaced")));

  // h1 itself reconnects with its own token and key: the new stream replaces the old.
  auto again = Host("h1", key, OwnToken("h1", key));
  ASSERT_TRUE(again->WaitAdmitted()) << broker_->log();
  EXPECT_EQ(h1->WaitEnd().error_code(), grpc::StatusCode::ABORTED);
  ExpectServed("h1", "r-2");
  // Each refusal is counted as well as logged.
  HttpAnswer stats = UnixHttp(socket_, "GET", "/v1/identity/stats");
  EXPECT_EQ(stats.status, 200);
  EXPECT_THAT(stats.body, HasSubstr(R"("refused_proofs":2)"));
  EXPECT_THAT(stats.body, HasSubstr(R"("refused_credentials":3)"));
  EXPECT_THAT(stats.body, HasSubstr(R"("streams_replaced":1)"));
  EXPECT_THAT(stats.body, HasSubstr(R"("hosts_known":1)"));
}

TEST_F(EnrollmentTest, EnrollmentTokensAreSingleUseExpiringAndForOneHost) {
  Start();
  const std::string token = Enroll("h2");
  const std::string key = NewKey();
  auto h2 = Host("h2", key, "", token);
  ASSERT_TRUE(h2->WaitAdmitted()) << broker_->log();
  // Reused by someone else (another key), after it was used.
  auto reuse = Host("h2", NewKey(), "", token);
  EXPECT_THAT(reuse->WaitEnd().error_message(), HasSubstr("enrollment token unknown or already used"));
  EXPECT_TRUE(h2->open());
  // Unknown.
  auto unknown = Host("h3", NewKey(), "", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_THAT(unknown->WaitEnd().error_message(), HasSubstr("enrollment token unknown or already used"));
  // Issued for another host.
  const std::string for_h4 = Enroll("h4");
  auto foreign = Host("h5", NewKey(), "", for_h4);
  EXPECT_THAT(foreign->WaitEnd().error_message(), HasSubstr("enrollment token is for another host"));
  // Expired.
  const std::string short_lived = Enroll("h6", R"(["host.info"])", 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto late = Host("h6", NewKey(), "", short_lived);
  EXPECT_THAT(late->WaitEnd().error_message(), HasSubstr("enrollment token expired"));
  ExpectServed("h2", "r-1");
  EXPECT_THAT(UnixHttp(socket_, "GET", "/v1/hosts").body, HasSubstr(R"("host_id":"h6","caps":["host.info"],"enrolled":false)"));
}

TEST_F(EnrollmentTest, TwoHostsRacingWithOneTokenEnrollOnlyOne) {
  Start();
  const std::string token = Enroll("h7");
  auto a = Host("h7", NewKey(), "", token);
  auto b = Host("h7", NewKey(), "", token);
  bool a_in = a->WaitAdmitted(), b_in = b->WaitAdmitted();
  EXPECT_NE(a_in, b_in) << broker_->log();
  FakeHost& loser = a_in ? *b : *a;
  EXPECT_THAT(loser.WaitEnd().error_message(), HasSubstr("already used"));
  EXPECT_EQ(Dispatch("h7", "r-1").status, 200);
}

TEST_F(EnrollmentTest, RevocationCutsTheHostOffAtOnceAndReEnrollmentBringsItBack) {
  Start();
  const std::string key = NewKey();
  auto h1 = Host("h1", key, "", Enroll("h1"), FakeHost::Silent());
  ASSERT_TRUE(h1->WaitAdmitted());
  const std::string good_key = NewKey();
  auto good = Host("good", good_key, "", Enroll("good"));
  ASSERT_TRUE(good->WaitAdmitted());
  std::thread parked([&] {
    HttpAnswer answer = Dispatch("h1", "parked-1");
    EXPECT_EQ(answer.status, 503) << answer.body;
  });
  for (int i = 0; i < 200 && h1->received().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto started = std::chrono::steady_clock::now();
  HttpAnswer revoked = UnixHttp(socket_, "POST", "/v1/hosts/h1/revoke");
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  grpc::Status ended = h1->WaitEnd(std::chrono::seconds(1));
  auto cut_after = std::chrono::steady_clock::now() - started;
  EXPECT_LT(cut_after, std::chrono::seconds(1));
  std::cout << "revoked host's stream closed "
            << std::chrono::duration_cast<std::chrono::milliseconds>(cut_after).count()
            << " ms after POST /v1/hosts/h1/revoke was sent\n";
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(ended.error_message(), HasSubstr("host revoked"));
  parked.join();
  // Its key and its tokens, its own or central's, are refused from now on.
  auto own = Host("h1", key, OwnToken("h1", key));
  EXPECT_THAT(own->WaitEnd().error_message(), HasSubstr("names no enrolled host"));
  auto central = Host("h1", key, CentralToken("h1", {"host.info"}));
  EXPECT_THAT(central->WaitEnd().error_message(), HasSubstr("host h1 is revoked"));
  ExpectServed("good", "r-1");

  // Re-enrolled (a new grant): the same name comes back with a new key; nothing of the
  // other hosts changed.
  const std::string new_key = NewKey();
  auto back = Host("h1", new_key, "", Enroll("h1", R"(["host.info","images.list"])"));
  ASSERT_TRUE(back->WaitAdmitted()) << broker_->log();
  EXPECT_EQ(Dispatch("h1", "r-2", "images.list").status, 200);
  // Durable: a restarted broker still knows both hosts' keys and the old key stays out.
  back.reset();
  good.reset();
  broker_.reset();
  Start();
  auto after = Host("h1", new_key, OwnToken("h1", new_key, R"(["host.info","images.list"])"));
  ASSERT_TRUE(after->WaitAdmitted()) << broker_->log();
  auto old = Host("good", key, OwnToken("good", key));
  EXPECT_THAT(old->WaitEnd().error_message(), HasSubstr("bad signature"));
  auto good_again = Host("good", good_key, OwnToken("good", good_key));
  ASSERT_TRUE(good_again->WaitAdmitted());
  ExpectServed("good", "r-3");
  // Force-delete: cut off, key forgotten, refused.
  EXPECT_EQ(UnixHttp(socket_, "DELETE", "/v1/hosts/h1").status, 204);
  EXPECT_EQ(after->WaitEnd(std::chrono::seconds(1)).error_code(), grpc::StatusCode::ABORTED);
  auto deleted = Host("h1", new_key, CentralToken("h1", {"host.info"}));
  EXPECT_THAT(deleted->WaitEnd().error_message(), HasSubstr("is revoked"));
  EXPECT_EQ(UnixHttp(socket_, "POST", "/v1/hosts/nobody/revoke").status, 404);
}

TEST_F(EnrollmentTest, AFloodOfEnrollmentAttemptsIsRateLimitedWhileHostsAreServed) {
  Start();
  const std::string key = NewKey();
  auto good = Host("good", key, "", Enroll("good"));  // one attempt of the source's five
  ASSERT_TRUE(good->WaitAdmitted());
  int limited = 0;
  for (int i = 0; i < 20; ++i) {
    auto guess = Host(absl::StrCat("g", i), NewKey(), "", absl::StrCat("guess-", i));
    grpc::Status status = guess->WaitEnd();
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      EXPECT_THAT(status.error_message(), HasSubstr("rate-limited"));
      ++limited;
    } else {
      EXPECT_THAT(status.error_message(), HasSubstr("unknown or already used"));
    }
    ExpectServed("good", absl::StrCat("r-", i));
  }
  EXPECT_EQ(limited, 16);  // a burst of five per source, one of them the real enrollment
  EXPECT_THAT(UnixHttp(socket_, "GET", "/v1/identity/stats").body, HasSubstr(R"("refused_enrollments":20)"));
  // No guess left a host behind.
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/hosts").body.find(R"("host_id":"g0")"), std::string::npos);
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/hosts").body.find(R"("host_id":")", 12), std::string::npos);
}

// The operator's side: coolctl host enroll|list|reenroll|revoke|delete on the socket.
TEST_F(EnrollmentTest, CoolctlDrivesHostIdentities) {
  Start();
  const std::string coolctl = Runfile("tools/coolctl/coolctl") + " --broker-socket " + socket_ + " host ";
  CommandRun enrolled = Shell(coolctl + "enroll h9 --caps host.info,containers.list --ttl 600");
  ASSERT_EQ(enrolled.status, 0) << enrolled.out;
  EXPECT_THAT(enrolled.out, HasSubstr(R"("enrollment_token":")"));
  EXPECT_THAT(enrolled.out, HasSubstr("install_command"));
  size_t at = enrolled.out.find(R"("enrollment_token":")") + 20;
  const std::string token = enrolled.out.substr(at, enrolled.out.find('"', at) - at);
  const std::string key = NewKey();
  auto h9 = Host("h9", key, "", token);
  ASSERT_TRUE(h9->WaitAdmitted()) << broker_->log();
  CommandRun listed = Shell(coolctl + "list");
  EXPECT_EQ(listed.status, 0);
  EXPECT_THAT(listed.out, HasSubstr(R"("host_id":"h9","caps":["containers.list","host.info"],"enrolled":true,"connected":true)"));
  // Re-enrollment of an unknown host is refused, of a known one gives a new token.
  CommandRun typo = Shell(coolctl + "reenroll h99 --caps host.info");
  EXPECT_EQ(typo.status, 1);
  EXPECT_THAT(typo.out, HasSubstr("no host h99 to re-enroll"));
  CommandRun again = Shell(coolctl + "reenroll h9 --caps host.info,images.list");
  EXPECT_EQ(again.status, 0) << again.out;
  EXPECT_TRUE(h9->open()) << "re-enrolling changes nothing until the host proves its key";
  CommandRun revoked = Shell(coolctl + "revoke h9");
  EXPECT_EQ(revoked.status, 0) << revoked.out;
  EXPECT_EQ(h9->WaitEnd(std::chrono::seconds(1)).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Shell(coolctl + "delete h9").status, 0);
  EXPECT_EQ(Shell(coolctl + "revoke nobody").status, 1);
  EXPECT_EQ(Shell(coolctl + "enroll").status, 2);
}

}  // namespace
}  // namespace coolify::testing
