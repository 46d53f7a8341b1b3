// The broker end to end: the real binary over loopback TLS, real gRPC peers on the host
// side (FakeHost) and HTTP over its Unix socket on Laravel's side.
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <future>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/broker/broker_testing.h"

namespace coolify::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class BrokerTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    socket_ = keys_.Path("broker.sock");
    std::vector<std::string> env = {"BROKER_UNIX_SOCKET=" + socket_, "BROKER_GRPC_BIND=127.0.0.1:0",
                                    "BROKER_TLS_CERT=" + keys_.Path("tls.crt"), "BROKER_TLS_KEY=" + keys_.Path("tls.key"),
                                    "BROKER_JWT_KEYS=" + keys_.KeySpec()};
    env.insert(env.end(), extra.begin(), extra.end());
    broker_ = std::make_unique<BrokerUnderTest>(env);
    ASSERT_TRUE(broker_->listening()) << broker_->log();
  }

  std::string Token(const std::string& host, std::vector<std::string> caps = AllCaps()) {
    return SignJwt("ES256", "es", keys_.Read("es.key"), Claims(host, caps));
  }

  std::unique_ptr<FakeHost> Host(const std::string& host_id, FakeHost::Answer answer, std::string token = "",
                                 uint32_t builder_capacity = 0) {
    FakeHost::Options o;
    o.host_id = host_id;
    o.token = token.empty() ? Token(host_id) : token;
    o.target = absl::StrCat("127.0.0.1:", broker_->port());
    o.root_pem = keys_.Read("tls.crt");
    if (builder_capacity > 0) {
      o.capabilities.push_back(v1::CAPABILITY_BUILDER);
      o.builder_capacity = builder_capacity;
    }
    return std::make_unique<FakeHost>(o, std::move(answer));
  }

  HttpAnswer Dispatch(const std::string& host, const std::string& id, const std::string& command) {
    return UnixHttp(socket_, "POST", "/v1/coold/dispatch",
                    absl::StrCat(R"({"host_id":")", host, R"(","request_id":")", id, R"(","command":)", command, "}"));
  }

  HttpAnswer Build(const std::string& id, const std::string& host = "") {
    std::string host_field = host.empty() ? "" : absl::StrCat(R"("host_id":")", host, R"(",)");
    return UnixHttp(socket_, "POST", "/v1/build/dispatch",
                    absl::StrCat("{", host_field, R"("request_id":")", id,
                                 R"(","command":{"type":"static_build","repo_url":"https://example.com/site.git","git_ref":"main","target_image":"localhost/site:1"}})"));
  }

  TestKeys keys_;
  std::string socket_;
  std::unique_ptr<BrokerUnderTest> broker_;
};

TEST_F(BrokerTest, HealthAndSocketMode) {
  Start();
  HttpAnswer health = UnixHttp(socket_, "GET", "/v1/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"ok":true,"hosts":0,"pending":0})");
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);  // bound before the drop: the broker's user cannot replace it
}

TEST_F(BrokerTest, RunsConfinedAsItsOwnUser) {
  Start();
  std::ifstream in(absl::StrCat("/proc/", broker_->pid(), "/status"));
  std::stringstream text;
  text << in.rdbuf();
  std::string status = text.str();
  struct passwd* user = getpwnam("coolify-broker");
  ASSERT_NE(user, nullptr) << "tools/install-deps.sh creates coolify-broker";
  std::string uid = std::to_string(user->pw_uid);
  EXPECT_THAT(status, HasSubstr(absl::StrCat("Uid:\t", uid, "\t", uid, "\t", uid, "\t", uid)));
  EXPECT_THAT(status, HasSubstr("CapEff:\t0000000000000000"));
  EXPECT_THAT(status, HasSubstr("CapBnd:\t0000000000000000"));
  EXPECT_THAT(status, HasSubstr("NoNewPrivs:\t1"));
  EXPECT_THAT(status, HasSubstr("Seccomp:\t2"));
  size_t groups = status.find("Groups:");
  ASSERT_NE(groups, std::string::npos);
  std::string line = status.substr(groups + 7, status.find('\n', groups) - groups - 7);
  EXPECT_EQ(line.find_first_not_of(" \t"), std::string::npos) << "supplementary groups: " << line;
}

TEST_F(BrokerTest, DispatchRoundTrip) {
  Start();
  auto host = Host("host-a", FakeHost::Echo());
  ASSERT_TRUE(WaitForHosts(socket_, 1)) << broker_->log();
  HttpAnswer a = Dispatch("host-a", "r-1", R"({"type":"images.pull","reference":"busybox"})");
  EXPECT_EQ(a.status, 200);
  EXPECT_THAT(a.body, HasSubstr(R"({"request_id":"r-1","status":"ok","data":{)"));
  EXPECT_THAT(a.body, HasSubstr(R"("verb":"images_pull")"));
  ASSERT_EQ(host->received().size(), 1u);
  EXPECT_EQ(host->received()[0].command().images_pull().ref(), "busybox");
}

// The operator's dispatch: coolctl reads the request from a file or stdin, prints the
// answer's data, and passes a refusal on with the broker's own message.
TEST_F(BrokerTest, CoolctlDispatchesFromAFileOrStdin) {
  Start();
  auto host = Host("host-c", FakeHost::Echo());
  ASSERT_TRUE(WaitForHosts(socket_, 1)) << broker_->log();
  const std::string coolctl = Runfile("tools/coolctl/coolctl") + " --broker-socket " + socket_ + " dispatch ";
  const std::string file = keys_.Path("dispatch.json");
  std::ofstream(file) << R"({"host_id":"host-c","request_id":"ctl-1","command":{"type":"images.pull","reference":"busybox"}})";
  CommandRun shown = Shell(coolctl + file);
  ASSERT_EQ(shown.status, 0) << shown.out;
  EXPECT_THAT(shown.out, HasSubstr("verb: images_pull"));
  ASSERT_EQ(host->received().size(), 1u);
  EXPECT_EQ(host->received()[0].command().images_pull().ref(), "busybox");

  CommandRun raw = Shell("echo '{\"host_id\":\"host-c\",\"request_id\":\"ctl-2\",\"command\":{\"type\":\"host.info\"}}' | " +
                         coolctl + "- --json");
  ASSERT_EQ(raw.status, 0) << raw.out;
  EXPECT_THAT(raw.out, HasSubstr(R"({"request_id":"ctl-2","status":"ok","data":{)"));

  CommandRun refused = Shell("echo '{\"host_id\":\"nobody\",\"request_id\":\"ctl-3\",\"command\":{\"type\":\"host.info\"}}' | " +
                             coolctl + "-");
  EXPECT_EQ(refused.status, 1) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("HTTP 404: host nobody is not connected"));
  CommandRun usage = Shell("echo 'not json' | " + coolctl + "-");
  EXPECT_EQ(usage.status, 2) << usage.out;
  EXPECT_THAT(usage.out, HasSubstr("usage: coolctl"));
  EXPECT_EQ(host->received().size(), 2u);
}

TEST_F(BrokerTest, AStreamWithoutHelloIsEndedAfterTenSeconds) {
  Start();
  FakeHost::Options o;
  o.host_id = "host-mute";
  o.token = Token("host-mute");
  o.target = absl::StrCat("127.0.0.1:", broker_->port());
  o.root_pem = keys_.Read("tls.crt");
  o.send_hello = false;
  FakeHost mute(o, FakeHost::Silent());
  const auto start = std::chrono::steady_clock::now();
  grpc::Status ended = mute.WaitEnd(std::chrono::seconds(20));
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << ended.error_message();
  EXPECT_THAT(ended.error_message(), HasSubstr("Hello"));
  // Not before its time: a host gets the whole deadline to say Hello.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(9));
}

TEST_F(BrokerTest, UnknownHostIs404) {
  Start();
  HttpAnswer a = Dispatch("nobody", "r-1", R"({"type":"host.info"})");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.body, R"({"request_id":"r-1","status":"error","code":404,"message":"host nobody is not connected"})");
}

TEST_F(BrokerTest, SilenceIs504AfterTheDispatchTimeout) {
  Start({"BROKER_DISPATCH_TIMEOUT=1s"});
  auto host = Host("host-a", FakeHost::Silent());
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  auto start = std::chrono::steady_clock::now();
  HttpAnswer a = Dispatch("host-a", "r-1", R"({"type":"host.info"})");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(a.status, 504);
  EXPECT_THAT(a.body, HasSubstr("did not answer within 1s"));
  EXPECT_GE(took, std::chrono::milliseconds(900));
  // A late answer is dropped: nobody waits for it any more.
  v1::ClientMsg late;
  late.mutable_response()->set_request_id("r-1");
  late.mutable_response()->mutable_result()->set_code(200);
  host->Send(late);
  EXPECT_TRUE(WaitForHosts(socket_, 1));
  EXPECT_THAT(UnixHttp(socket_, "GET", "/v1/health").body, HasSubstr(R"("pending":0)"));
}

TEST_F(BrokerTest, DefaultDispatchTimeoutIsTenSeconds) {
  Start();
  auto host = Host("host-a", FakeHost::Silent());
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  auto start = std::chrono::steady_clock::now();
  HttpAnswer a = Dispatch("host-a", "r-1", R"({"type":"host.info"})");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(a.status, 504);
  EXPECT_GE(took, std::chrono::milliseconds(9900));
  EXPECT_LE(took, std::chrono::milliseconds(11000));
}

TEST_F(BrokerTest, StreamDroppedMidDispatchIs503) {
  Start();
  auto host = Host("host-a", FakeHost::Silent());
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  auto pending = std::async(std::launch::async, [&] { return Dispatch("host-a", "r-1", R"({"type":"host.info"})"); });
  while (host->received().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  host->Drop();
  HttpAnswer a = pending.get();
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body, R"({"request_id":"r-1","status":"error","code":503,"message":"host stream dropped"})");
  EXPECT_TRUE(WaitForHosts(socket_, 0));
}

TEST_F(BrokerTest, PendingOverflowIs503) {
  Start({"BROKER_PENDING_MAX=2"});
  auto host = Host("host-a", FakeHost::Silent());
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  auto first = std::async(std::launch::async, [&] { return Dispatch("host-a", "r-1", R"({"type":"host.info"})"); });
  auto second = std::async(std::launch::async, [&] { return Dispatch("host-a", "r-2", R"({"type":"host.info"})"); });
  while (host->received().size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  HttpAnswer third = Dispatch("host-a", "r-3", R"({"type":"host.info"})");
  EXPECT_EQ(third.status, 503);
  EXPECT_THAT(third.body, HasSubstr("pending-request limit"));
  host->Drop();
  EXPECT_EQ(first.get().status, 503);
  EXPECT_EQ(second.get().status, 503);
}

TEST_F(BrokerTest, DuplicateRequestIdIs409) {
  Start();
  auto host = Host("host-a", FakeHost::Silent());
  auto builder = Host("builder-1", FakeHost::Echo(), "", 1);
  ASSERT_TRUE(WaitForHosts(socket_, 2));
  auto first = std::async(std::launch::async, [&] { return Dispatch("host-a", "r-1", R"({"type":"host.info"})"); });
  while (host->received().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  HttpAnswer again = Dispatch("host-a", "r-1", R"({"type":"host.info"})");
  EXPECT_EQ(again.status, 409);
  EXPECT_THAT(again.body, HasSubstr("already in use"));
  // A build's landed result keeps its id taken on both lanes.
  EXPECT_EQ(Build("b-1").status, 202);
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/build/result/b-1").status, 200);
  EXPECT_EQ(Build("b-1").status, 409);
  EXPECT_EQ(Dispatch("builder-1", "b-1", R"({"type":"host.info"})").status, 409);
  host->Drop();
  EXPECT_EQ(first.get().status, 503);
}

TEST_F(BrokerTest, ARetryAfterTheAnswerGetsTheSameAnswerAndNeverRunsTwice) {
  Start();
  auto host = Host("host-a", FakeHost::Echo());
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  HttpAnswer first = Dispatch("host-a", "r-once", R"({"type":"images.pull","reference":"busybox"})");
  ASSERT_EQ(first.status, 200);
  for (int i = 0; i < 3; ++i) {
    HttpAnswer again = Dispatch("host-a", "r-once", R"({"type":"images.pull","reference":"busybox"})");
    EXPECT_EQ(again.status, first.status);
    EXPECT_EQ(again.body, first.body);
  }
  // The same id for another host is not a retry: refused, and nothing is sent.
  auto other = Host("host-b", FakeHost::Echo());
  ASSERT_TRUE(WaitForHosts(socket_, 2));
  HttpAnswer elsewhere = Dispatch("host-b", "r-once", R"({"type":"host.info"})");
  EXPECT_EQ(elsewhere.status, 409);
  EXPECT_THAT(elsewhere.body, HasSubstr("answered already"));
  EXPECT_EQ(host->received().size(), 1u);
  EXPECT_TRUE(other->received().empty());
}

TEST_F(BrokerTest, AHostThatNeverAnswersCannotStarveTheOthers) {
  Start({"BROKER_PENDING_MAX=10", "BROKER_PENDING_PER_HOST=3"});
  auto stuck = Host("host-stuck", FakeHost::Silent());
  auto healthy = Host("host-ok", FakeHost::Echo());
  ASSERT_TRUE(WaitForHosts(socket_, 2));
  std::vector<std::future<HttpAnswer>> parked;
  for (int i = 0; i < 3; ++i) {
    parked.push_back(std::async(std::launch::async, [&, i] {
      return Dispatch("host-stuck", absl::StrCat("s-", i), R"({"type":"host.info"})");
    }));
  }
  while (stuck->received().size() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  HttpAnswer fourth = Dispatch("host-stuck", "s-3", R"({"type":"host.info"})");
  EXPECT_EQ(fourth.status, 503);
  EXPECT_THAT(fourth.body, HasSubstr("requests waiting already"));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Dispatch("host-ok", absl::StrCat("ok-", i), R"({"type":"host.info"})").status, 200);
  }
  stuck->Drop();
  for (auto& f : parked) EXPECT_EQ(f.get().status, 503);
  // Its slots are free again once its requests ended.
  auto back = Host("host-stuck", FakeHost::Echo());
  ASSERT_TRUE(WaitForHosts(socket_, 2));
  EXPECT_EQ(Dispatch("host-stuck", "s-4", R"({"type":"host.info"})").status, 200);
}

TEST_F(BrokerTest, VerbOutsideTheCredentialIs403AndUnservedVerbIs501) {
  Start();
  auto host = Host("host-a", FakeHost::Echo(), Token("host-a", {"images.pull", "dns.stats"}));
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  HttpAnswer denied = Dispatch("host-a", "r-1", R"({"type":"containers.create","name":"w","image":"x"})");
  EXPECT_EQ(denied.status, 403);
  EXPECT_THAT(denied.body, HasSubstr("verb containers.create is not allowed for host host-a's credential"));
  EXPECT_EQ(Dispatch("host-a", "r-2", R"({"type":"images.pull","reference":"x"})").status, 200);

  auto dnsless = Host("host-b", FakeHost::Echo(), Token("host-b", {"dns.stats"}));
  ASSERT_TRUE(WaitForHosts(socket_, 2));
  // Host() advertises DNS; reconnect host-b without it.
  dnsless.reset();
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  FakeHost::Options plain;
  plain.host_id = "host-b";
  plain.token = Token("host-b", {"dns.stats"});
  plain.target = absl::StrCat("127.0.0.1:", broker_->port());
  plain.root_pem = keys_.Read("tls.crt");
  plain.capabilities = {v1::CAPABILITY_PODMAN};
  FakeHost no_dns(plain, FakeHost::Echo());
  ASSERT_TRUE(WaitForHosts(socket_, 2));
  HttpAnswer unserved = Dispatch("host-b", "r-3", R"({"type":"dns.stats"})");
  EXPECT_EQ(unserved.status, 501);
  EXPECT_THAT(unserved.body, HasSubstr("primitive dns.stats is not supported by host host-b"));
}

TEST_F(BrokerTest, ReconnectReplacesTheStream) {
  Start();
  auto old_stream = Host("host-a", FakeHost::Silent());
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  auto parked = std::async(std::launch::async, [&] { return Dispatch("host-a", "r-1", R"({"type":"host.info"})"); });
  while (old_stream->received().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto new_stream = Host("host-a", FakeHost::Echo());
  HttpAnswer a = parked.get();
  EXPECT_EQ(a.status, 503);
  EXPECT_THAT(a.body, HasSubstr("replaced by a newer one"));
  grpc::Status ended = old_stream->WaitEnd();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::ABORTED) << ended.error_message();
  EXPECT_TRUE(WaitForHosts(socket_, 1));
  EXPECT_EQ(Dispatch("host-a", "r-2", R"({"type":"host.info"})").status, 200);
  EXPECT_EQ(new_stream->received().size(), 1u);
  EXPECT_EQ(old_stream->received().size(), 1u);
}

TEST_F(BrokerTest, BuildLandsAndEveryPollerGetsItUntilTheTtl) {
  Start({"BROKER_LANDED_TTL=2s"});
  auto builder = Host("builder-1", FakeHost::Echo(), "", 2);
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  HttpAnswer accepted = Build("b-1");
  EXPECT_EQ(accepted.status, 202);
  EXPECT_EQ(accepted.body, R"({"request_id":"b-1"})");
  std::string expected = absl::StrCat(R"({"request_id":"b-1","status":"ok","digest":"sha256:)", std::string(64, 'a'),
                                      R"(","registry_ref":"localhost/site:1","duration_ms":42})");
  for (int poller = 0; poller < 3; ++poller) {
    HttpAnswer result = UnixHttp(socket_, "GET", "/v1/build/result/b-1?timeout_ms=5000");
    EXPECT_EQ(result.status, 200);
    EXPECT_EQ(result.body, expected);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/build/result/b-1").status, 404);
  ASSERT_EQ(builder->received().size(), 1u);
  EXPECT_EQ(builder->received()[0].build().stack(), v1::BUILD_STACK_STATIC);
}

TEST_F(BrokerTest, ABuildOutlivesItsHostsStreamAndLandsFromTheNextOne) {
  Start();
  auto first = Host("builder-1", FakeHost::Silent(), "", 1);
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  EXPECT_EQ(Build("b-1").status, 202);
  // coold restarts: its stream drops while the build runs on (coold adopts it).
  first->Drop();
  ASSERT_TRUE(WaitForHosts(socket_, 0));
  HttpAnswer waiting = UnixHttp(socket_, "GET", "/v1/build/result/b-1?timeout_ms=300");
  EXPECT_EQ(waiting.status, 408) << waiting.body;  // still waiting, not failed
  auto again = Host("builder-1", FakeHost::Silent(), "", 1);
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  auto poll = std::async(std::launch::async, [&] { return UnixHttp(socket_, "GET", "/v1/build/result/b-1"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  v1::ClientMsg done;
  done.mutable_response()->set_request_id("b-1");
  done.mutable_response()->mutable_result()->set_code(500);
  done.mutable_response()->mutable_result()->set_message("adopted and reported");
  again->Send(done);
  HttpAnswer result = poll.get();
  EXPECT_EQ(result.status, 500) << result.body;
  EXPECT_THAT(result.body, HasSubstr("adopted and reported"));
  // Counted on the new stream: with capacity 1 and the build done, a new one is placed.
  EXPECT_EQ(Build("b-2").status, 202);
}

TEST_F(BrokerTest, APollThatTimesOutShowsTheBuildsProgress) {
  Start();
  auto builder = Host("builder-1", FakeHost::Silent(), "", 1);
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  EXPECT_EQ(Build("b-1").status, 202);
  for (int i = 0; i < 60; ++i) {
    v1::ClientMsg event;
    event.mutable_build_event()->set_request_id("b-1");
    event.mutable_build_event()->set_phase(i == 0 ? "clone" : "build");
    event.mutable_build_event()->set_line(absl::StrCat("step ", i, i == 59 ? std::string(5000, 'x') : ""));
    event.mutable_build_event()->set_unix_ms(1000 + i);
    builder->Send(event);
  }
  // Another request's id, or a build not sent to this host: ignored.
  v1::ClientMsg stray;
  stray.mutable_build_event()->set_request_id("b-unknown");
  stray.mutable_build_event()->set_line("stray");
  builder->Send(stray);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  HttpAnswer running = UnixHttp(socket_, "GET", "/v1/build/result/b-1?timeout_ms=300");
  EXPECT_EQ(running.status, 408);
  EXPECT_THAT(running.body, HasSubstr(R"("message":"result poll timed out","progress":[{"phase":"build","line":"step 10","unix_ms":1010})"));
  // The newest 50 lines, each cut at 1 KiB; the oldest are gone.
  EXPECT_THAT(running.body, Not(HasSubstr(R"("line":"step 9")")));
  EXPECT_THAT(running.body, HasSubstr(absl::StrCat(R"("line":"step 59)", std::string(1024 - 7, 'x'), R"(","unix_ms":1059})")));
  EXPECT_THAT(running.body, Not(HasSubstr("stray")));
}

TEST_F(BrokerTest, LongPollWaitsForTheResultAndTimesOutWith408) {
  Start();
  v1::CommandResult later;
  std::atomic<bool> answer{false};
  auto builder = Host("builder-1", FakeHost::Silent(), "", 1);
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  EXPECT_EQ(Build("b-1").status, 202);
  HttpAnswer timed_out = UnixHttp(socket_, "GET", "/v1/build/result/b-1?timeout_ms=300");
  EXPECT_EQ(timed_out.status, 408);
  EXPECT_THAT(timed_out.body, HasSubstr("result poll timed out"));
  auto poll = std::async(std::launch::async, [&] { return UnixHttp(socket_, "GET", "/v1/build/result/b-1"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  v1::ClientMsg done;
  done.mutable_response()->set_request_id("b-1");
  done.mutable_response()->mutable_result()->set_code(500);
  done.mutable_response()->mutable_result()->set_message("git clone failed");
  builder->Send(done);
  HttpAnswer result = poll.get();
  EXPECT_EQ(result.status, 500);
  EXPECT_EQ(result.body, R"({"request_id":"b-1","status":"error","code":500,"message":"git clone failed","stage":""})");
}

TEST_F(BrokerTest, BuildGoesToTheLeastLoadedBuilder) {
  Start();
  auto plain = Host("plain", FakeHost::Silent());
  auto small = Host("small", FakeHost::Silent(), "", 1);
  auto large = Host("large", FakeHost::Silent(), "", 4);
  ASSERT_TRUE(WaitForHosts(socket_, 3));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Build(absl::StrCat("b-", i)).status, 202);
  // Shares in use: both 0 at first, a tie the larger capacity wins (large 1/4); then
  // small 0/1 < 1/4 (small 1/1); then large 2/4, 3/4, and 4/4 ties small's 1/1 again.
  for (int i = 0; i < 200 && large->received().size() + small->received().size() < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(plain->received().empty());
  EXPECT_EQ(large->received().size() + small->received().size(), 5u);
  EXPECT_EQ(small->received().size(), 1u);
  HttpAnswer pinned = Build("b-9", "plain");
  EXPECT_EQ(pinned.status, 501);
  EXPECT_EQ(Build("b-10", "nobody").status, 404);
}

TEST_F(BrokerTest, NoBuilderIs503AndCancelReachesTheHost) {
  Start();
  EXPECT_EQ(Build("b-1").status, 503);
  auto builder = Host("builder-1", FakeHost::Silent(), "", 1);
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  EXPECT_EQ(Build("b-2").status, 202);
  HttpAnswer cancelled = UnixHttp(socket_, "POST", "/v1/build/b-2/cancel");
  EXPECT_EQ(cancelled.status, 204);
  EXPECT_EQ(cancelled.body, "");
  for (int i = 0; i < 200 && builder->received().size() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(builder->received().size(), 2u);
  EXPECT_EQ(builder->received()[1].cancel().request_id(), "b-2");
  EXPECT_EQ(UnixHttp(socket_, "POST", "/v1/build/nope/cancel").status, 404);
}

TEST_F(BrokerTest, JwtAttacksAreRefusedAndOthersKeepBeingServed) {
  Start();
  auto good = Host("good", FakeHost::Echo());
  ASSERT_TRUE(WaitForHosts(socket_, 1));
  std::string es = keys_.Read("es.key");
  long now = static_cast<long>(time(nullptr));
  std::string claims = Claims("evil", AllCaps());
  std::string valid = SignJwt("ES256", "es", es, claims);
  std::string tampered = valid;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  // A valid token for "evil" with its claims swapped for another host's after signing.
  std::string swapped = valid.substr(0, valid.find('.') + 1) + absl::WebSafeBase64Escape(Claims("good", AllCaps())) +
                        valid.substr(valid.rfind('.'));
  struct Attack {
    const char* name;
    std::string token;
    const char* reason;
  } attacks[] = {
      {"alg none", SignJwt("none", "es", "", claims), "alg none"},
      {"HS256 keyed with the public key", SignJwt("HS256", "es", keys_.Read("es.pub"), claims), "alg HS256 not accepted"},
      {"expired", SignJwt("ES256", "es", es, Claims("evil", AllCaps(), -120)), "expired"},
      {"not yet valid", SignJwt("ES256", "es", es, absl::StrCat(R"({"sub":"evil","caps":["host.info"],"exp":)", now + 3600, R"(,"nbf":)", now + 600, "}")), "not yet valid"},
      {"missing caps", SignJwt("ES256", "es", es, absl::StrCat(R"({"sub":"evil","aud":"coold","jti":"j-1","iat":)", now, R"(,"exp":)", now + 3600, "}")), "no caps claim"},
      {"tampered signature", tampered, "bad signature"},
      {"claims swapped", swapped, "bad signature"},
      {"unknown kid", SignJwt("ES256", "other", keys_.Read("other.key"), claims), "unknown kid"},
      {"signed by an untrusted key under a trusted kid", SignJwt("ES256", "es", keys_.Read("other.key"), claims), "bad signature"},
      {"RS256 header on the EC key", SignJwt("RS256", "es", keys_.Read("rs.key"), claims), "does not match the type of key"},
      {"no token", "", "host token required"},
  };
  for (const Attack& attack : attacks) {
    FakeHost::Options o;
    o.host_id = "evil";
    o.token = attack.token;
    o.target = absl::StrCat("127.0.0.1:", broker_->port());
    o.root_pem = keys_.Read("tls.crt");
    FakeHost evil(o, FakeHost::Echo());
    grpc::Status status = evil.WaitEnd();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << attack.name;
    EXPECT_THAT(status.error_message(), HasSubstr(attack.reason)) << attack.name;
    EXPECT_EQ(Dispatch("good", absl::StrCat("r-", &attack - attacks), R"({"type":"host.info"})").status, 200)
        << attack.name;
  }
  // A valid token whose Hello claims another host.
  FakeHost::Options o;
  o.host_id = "good";
  o.token = valid;  // sub "evil"
  o.target = absl::StrCat("127.0.0.1:", broker_->port());
  o.root_pem = keys_.Read("tls.crt");
  FakeHost impostor(o, FakeHost::Echo());
  grpc::Status status = impostor.WaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Dispatch("good", "r-last", R"({"type":"host.info"})").status, 200);
  EXPECT_EQ(good->received().size(), std::size(attacks) + 1);
  // RS256 with the RSA key is accepted.
  auto rsa = Host("rsa-host", FakeHost::Echo(), SignJwt("RS256", "rs", keys_.Read("rs.key"), Claims("rsa-host", AllCaps())));
  EXPECT_TRUE(WaitForHosts(socket_, 2));
}

TEST_F(BrokerTest, BadRequestsAreRefusedClearly) {
  Start();
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/nothing").status, 404);
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/coold/dispatch").status, 405);
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/build/result/b-1?timeout_ms=abc").status, 400);
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/build/result/b-1?wait=1").status, 400);
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/build/result/..%2Fx").status, 400);
  HttpAnswer unknown_type = Dispatch("h", "r-1", R"({"type":"podman.raw"})");
  EXPECT_EQ(unknown_type.status, 400);
  EXPECT_EQ(unknown_type.body, R"({"request_id":"r-1","status":"error","code":400,"message":"command.type: unknown type \"podman.raw\""})");
  // A body that is not JSON at all has no request_id to echo.
  EXPECT_EQ(UnixHttp(socket_, "POST", "/v1/coold/dispatch", "{\"request_id\":").body.substr(0, 34),
            R"({"request_id":"","status":"error",)");
  HttpAnswer unknown_field = Dispatch("h", "r-1", R"({"type":"images.pull","reference":"x","mirror":"y"})");
  EXPECT_EQ(unknown_field.status, 400);
  EXPECT_THAT(unknown_field.body, HasSubstr("command.mirror: unknown field"));
  // The declared length alone is enough to refuse: the body is never read.
  EXPECT_THAT(UnixRaw(socket_, absl::StrCat("POST /v1/coold/dispatch HTTP/1.1\r\nHost: b\r\nContent-Length: ",
                                            (4 << 20) + 1, "\r\n\r\n")),
              HasSubstr("HTTP/1.1 413"));
  std::string smuggle =
      "POST /v1/coold/dispatch HTTP/1.1\r\nHost: b\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  EXPECT_THAT(UnixRaw(socket_, smuggle), HasSubstr("HTTP/1.1 400"));
  std::string headers = "GET /v1/health HTTP/1.1\r\nHost: b\r\n";
  for (int i = 0; i < 40; ++i) headers += absl::StrCat("X-", i, ": y\r\n");
  EXPECT_THAT(UnixRaw(socket_, headers + "\r\n"), HasSubstr("HTTP/1.1 431"));
  // Still serving.
  EXPECT_EQ(UnixHttp(socket_, "GET", "/v1/health").status, 200);
}

TEST(BrokerConfig, BadConfigurationStopsTheBrokerWithAClearMessage) {
  TestKeys keys;
  std::string sock = "BROKER_UNIX_SOCKET=" + keys.Path("b.sock");
  struct Case {
    std::vector<std::string> env;
    const char* message;
  } cases[] = {
      {{sock, "BROKER_GRPC_BIND=127.0.0.1:0", "BROKER_INSECURE_PLAINTEXT=1"}, "BROKER_JWT_KEYS: required"},
      {{sock, "BROKER_GRPC_BIND=0.0.0.0:0", "BROKER_INSECURE_PLAINTEXT=1", "BROKER_JWT_KEYS=es=" + keys.Path("es.pub")},
       "refused on a non-loopback bind"},
      {{sock, "BROKER_GRPC_BIND=127.0.0.1:0", "BROKER_JWT_KEYS=es=" + keys.Path("es.pub")},
       "BROKER_TLS_CERT and BROKER_TLS_KEY: required"},
      {{sock, "BROKER_GRPC_BIND=127.0.0.1:0", "BROKER_TLS_CERT=/nonexistent.crt", "BROKER_TLS_KEY=" + keys.Path("tls.key"),
        "BROKER_JWT_KEYS=es=" + keys.Path("es.pub")},
       "BROKER_TLS_CERT=/nonexistent.crt: cannot read"},
      {{sock, "BROKER_GRPC_BIND=127.0.0.1:0", "BROKER_INSECURE_PLAINTEXT=1", "BROKER_JWT_KEYS=es=/nonexistent.pub"},
       "cannot read key es at /nonexistent.pub"},
      {{sock, "BROKER_GRPC_BIND=127.0.0.1:0", "BROKER_INSECURE_PLAINTEXT=1", "BROKER_JWT_KEYS=es=" + keys.Path("tls.crt")},
       "not a PEM public key"},
      {{sock, "BROKER_GRPC_BIND=127.0.0.1:0", "BROKER_INSECURE_PLAINTEXT=1", "BROKER_JWT_KEYS=" + keys.KeySpec(),
        "BROKER_PENDING_MAX=0"},
       "BROKER_PENDING_MAX=\"0\": expected 1..1000000"},
      {{sock, "BROKER_GRPC_BIND=127.0.0.1:0", "BROKER_INSECURE_PLAINTEXT=1", "BROKER_JWT_KEYS=" + keys.KeySpec(),
        "BROKER_MAX_CONNECTIONS_PER_ADDRESS=none"},
       "BROKER_MAX_CONNECTIONS_PER_ADDRESS=\"none\": expected 1..1000000"},
      {{sock, "BROKER_GRPC_BIND=127.0.0.1:0", "BROKER_INSECURE_PLAINTEXT=1", "BROKER_JWT_KEYS=" + keys.KeySpec(),
        "BROKER_UNIX_SOCKET_GROUP=no-such-group-here"},
       "no such group"},
  };
  for (const Case& c : cases) {
    BrokerUnderTest broker(c.env);
    int status = broker.WaitExit(std::chrono::seconds(10));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << c.message << "\n" << broker.log();
    EXPECT_THAT(broker.log(), HasSubstr(c.message));
  }
  // Plaintext on loopback starts, with the warning.
  BrokerUnderTest dev({sock, "BROKER_GRPC_BIND=127.0.0.1:0", "BROKER_INSECURE_PLAINTEXT=1",
                       "BROKER_JWT_KEYS=" + keys.KeySpec(), "BROKER_UNIX_SOCKET_GROUP=root"});
  EXPECT_TRUE(dev.listening()) << dev.log();
  EXPECT_THAT(dev.log(), HasSubstr("WITHOUT TLS"));
  struct stat st;
  ASSERT_EQ(stat(keys.Path("b.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

}  // namespace
}  // namespace coolify::testing
