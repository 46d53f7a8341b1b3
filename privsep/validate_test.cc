#include "privsep/validate.h"

#include <string>
#include <string_view>
#include <type_traits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coolify::privsep {
namespace {

using ::testing::HasSubstr;

MATCHER_P(IsInvalid, substring, "") {
  return arg.code() == absl::StatusCode::kInvalidArgument &&
         ::testing::Matches(HasSubstr(substring))(std::string(arg.message()));
}

HealthReport GoodReport(Role role = ROLE_NETLINK) {
  HealthReport report;
  report.set_role(role);
  report.set_pid(42);
  report.set_seccomp_mode(2);
  report.set_landlock_abi(3);
  return report;
}

// ---- requests

template <typename T>
class RequestTest : public ::testing::Test {};
using RequestTypes =
    ::testing::Types<NetlinkRequest, PodmanRequest, BuildLauncherRequest, MonitorRequest>;
TYPED_TEST_SUITE(RequestTest, RequestTypes);

template <typename T>
T GoodRequest() {
  T request;
  request.set_protocol_version(kProtocolVersion);
  request.set_request_id(7);
  request.set_role(kRecipient<T>);
  if constexpr (std::is_same_v<T, MonitorRequest>) {
    *request.mutable_health_round()->add_reports() = GoodReport();
  } else {
    request.mutable_health();
  }
  return request;
}

TYPED_TEST(RequestTest, AcceptsGood) { EXPECT_TRUE(Validate(GoodRequest<TypeParam>()).ok()); }

TYPED_TEST(RequestTest, RejectsWrongProtocolVersion) {
  TypeParam request = GoodRequest<TypeParam>();
  request.set_protocol_version(0);
  EXPECT_THAT(Validate(request), IsInvalid(".protocol_version: 0"));
  request.set_protocol_version(2);
  EXPECT_THAT(Validate(request), IsInvalid(".protocol_version: 2"));
}

TYPED_TEST(RequestTest, RejectsZeroRequestId) {
  TypeParam request = GoodRequest<TypeParam>();
  request.set_request_id(0);
  EXPECT_THAT(Validate(request),
              IsInvalid(TypeParam::descriptor()->name() + ".request_id: 0 is reserved"));
}

TYPED_TEST(RequestTest, RejectsAnotherRole) {
  TypeParam request = GoodRequest<TypeParam>();
  for (Role other : {ROLE_UNSPECIFIED, ROLE_MONITOR, ROLE_FRONT, ROLE_NETLINK, ROLE_PODMAN, ROLE_BUILD, ROLE_BROKER}) {
    if (other == kRecipient<TypeParam>) continue;
    request.set_role(other);
    EXPECT_THAT(Validate(request), IsInvalid(TypeParam::descriptor()->name() + ".role: " + Role_Name(other)));
  }
}

TYPED_TEST(RequestTest, RejectsMissingOp) {
  TypeParam request = GoodRequest<TypeParam>();
  request.clear_op();
  EXPECT_THAT(Validate(request), IsInvalid(TypeParam::descriptor()->name() + ".op: not set"));
}

TEST(MonitorRequestTest, ValidatesTheHealthRound) {
  MonitorRequest request = GoodRequest<MonitorRequest>();
  request.mutable_health_round()->mutable_reports(0)->set_pid(-5);
  EXPECT_THAT(Validate(request), IsInvalid("MonitorRequest.health_round.reports[0].pid: -5"));
}

// ---- replies

template <typename T>
class ReplyTest : public ::testing::Test {};
using ReplyTypes = ::testing::Types<NetlinkReply, PodmanReply, BuildLauncherReply, MonitorReply>;
TYPED_TEST_SUITE(ReplyTest, ReplyTypes);

TYPED_TEST(ReplyTest, AcceptsGood) {
  TypeParam reply;
  reply.set_request_id(1);
  EXPECT_TRUE(Validate(reply).ok());
  reply.mutable_status()->set_code(16);
  reply.mutable_status()->set_message("unauthenticated");
  EXPECT_TRUE(Validate(reply).ok());
}

TYPED_TEST(ReplyTest, RejectsZeroRequestId) {
  TypeParam reply;
  EXPECT_THAT(Validate(reply),
              IsInvalid(TypeParam::descriptor()->name() + ".request_id: 0 is reserved"));
}

TYPED_TEST(ReplyTest, RejectsStatusCodeOutOfRange) {
  TypeParam reply;
  reply.set_request_id(1);
  reply.mutable_status()->set_code(17);
  EXPECT_THAT(Validate(reply), IsInvalid(TypeParam::descriptor()->name() + ".status.code: 17"));
  reply.mutable_status()->set_code(-1);
  EXPECT_THAT(Validate(reply), IsInvalid(".status.code: -1"));
}

template <typename T>
class HelperReplyTest : public ::testing::Test {};
using HelperReplyTypes = ::testing::Types<NetlinkReply, PodmanReply, BuildLauncherReply>;
TYPED_TEST_SUITE(HelperReplyTest, HelperReplyTypes);

TYPED_TEST(HelperReplyTest, ValidatesTheHealthReport) {
  TypeParam reply;
  reply.set_request_id(1);
  *reply.mutable_health() = GoodReport();
  EXPECT_TRUE(Validate(reply).ok());
  reply.mutable_health()->set_seccomp_mode(3);
  EXPECT_THAT(Validate(reply),
              IsInvalid(TypeParam::descriptor()->name() + ".health.seccomp_mode: 3"));
}

// ---- health

TEST(HealthReportTest, AcceptsGood) {
  EXPECT_TRUE(Validate(GoodReport()).ok());
  HealthReport report = GoodReport(ROLE_BUILD);
  report.set_seccomp_mode(0);
  report.set_landlock_abi(0);
  EXPECT_TRUE(Validate(report).ok());
}

TEST(HealthReportTest, RejectsBadFields) {
  HealthReport report = GoodReport();
  report.set_role(ROLE_UNSPECIFIED);
  EXPECT_THAT(Validate(report), IsInvalid("HealthReport.role: ROLE_UNSPECIFIED"));
  report.set_role(static_cast<Role>(99));
  EXPECT_THAT(Validate(report), IsInvalid("HealthReport.role: 99"));

  report = GoodReport();
  report.set_pid(0);
  EXPECT_THAT(Validate(report), IsInvalid("HealthReport.pid: 0"));

  report = GoodReport();
  report.set_seccomp_mode(3);
  EXPECT_THAT(Validate(report), IsInvalid("HealthReport.seccomp_mode: 3"));

  report = GoodReport();
  report.set_landlock_abi(-1);
  EXPECT_THAT(Validate(report), IsInvalid("HealthReport.landlock_abi: -1"));
}

TEST(HealthRoundTest, AcceptsOneReportPerRole) {
  HealthRound round;
  for (Role role : {ROLE_MONITOR, ROLE_FRONT, ROLE_NETLINK, ROLE_PODMAN, ROLE_BUILD}) {
    *round.add_reports() = GoodReport(role);
  }
  EXPECT_TRUE(Validate(round).ok());
}

TEST(HealthRoundTest, RejectsBadReportCounts) {
  HealthRound round;
  EXPECT_THAT(Validate(round), IsInvalid("HealthRound.reports: 0 reports"));
  for (int i = 0; i < kMaxHealthReports + 1; ++i) {
    *round.add_reports() = GoodReport(static_cast<Role>(1 + i % 5));
  }
  EXPECT_THAT(Validate(round), IsInvalid("HealthRound.reports: 9 reports"));
}

TEST(HealthRoundTest, RejectsInvalidAndDuplicateReports) {
  HealthRound round;
  *round.add_reports() = GoodReport(ROLE_FRONT);
  *round.add_reports() = GoodReport(ROLE_PODMAN);
  round.mutable_reports(1)->set_pid(0);
  EXPECT_THAT(Validate(round), IsInvalid("HealthRound.reports[1].pid: 0"));
  round.mutable_reports(1)->set_pid(10);
  *round.add_reports() = GoodReport(ROLE_FRONT);
  EXPECT_THAT(Validate(round),
              IsInvalid("HealthRound.reports[2].role: ROLE_FRONT repeats reports[0]"));
}

// ---- field grammars

TEST(ValidateHostIdTest, Grammar) {
  const std::string longest(64, 'x');
  for (std::string_view good : {"a", "0", "host-1", "a1-b2-c3", longest.c_str()}) {
    EXPECT_TRUE(ValidateHostId("host_id", good).ok()) << good;
  }
  for (const char* bad : {"", "-a", "a-", "Host", "a_b", "a.b", "a b", "é"}) {
    EXPECT_THAT(ValidateHostId("host_id", bad), IsInvalid("host_id: \"")) << bad;
  }
  EXPECT_THAT(ValidateHostId("host_id", std::string(65, 'x')), IsInvalid("host_id: "));
}

TEST(ValidateNamespaceNameTest, Grammar) {
  const std::string longest(31, 'n');
  for (std::string_view good : {"a", "coolify", "net-1", "a-", longest.c_str()}) {
    EXPECT_TRUE(ValidateNamespaceName("netns", good).ok()) << good;
  }
  for (const char* bad : {"", "1abc", "-a", "Abc", "a_b", "a/b", "a.b"}) {
    EXPECT_THAT(ValidateNamespaceName("netns", bad), IsInvalid("netns: \"")) << bad;
  }
  EXPECT_THAT(ValidateNamespaceName("netns", std::string(32, 'n')), IsInvalid("netns: "));
}

TEST(ValidateIpv4Test, Grammar) {
  for (const char* good : {"0.0.0.0", "10.0.0.1", "192.168.100.254", "255.255.255.255"}) {
    EXPECT_TRUE(ValidateIpv4("address", good).ok()) << good;
  }
  for (const char* bad : {"", "10.0.0", "10.0.0.1.2", "010.0.0.1", "10.0.0.01", "256.0.0.1",
                          "10.1", "0x0a.0.0.1", " 10.0.0.1", "10.0.0.1 ", "10.0.0.1/8",
                          "::1", "1111111111.0.0.1"}) {
    EXPECT_THAT(ValidateIpv4("address", bad), IsInvalid("address: \"")) << bad;
  }
  EXPECT_THAT(ValidateIpv4("address", std::string("10.0.0.1\0x", 10)),
              IsInvalid(R"(address: "10.0.0.1\x00x")"));
}

TEST(ValidateIpv4CidrTest, Grammar) {
  for (const char* good :
       {"0.0.0.0/0", "10.0.0.0/8", "10.88.0.0/16", "192.168.1.128/25", "10.0.0.1/32"}) {
    EXPECT_TRUE(ValidateIpv4Cidr("subnet", good).ok()) << good;
  }
  for (const char* bad : {"", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08",
                          "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0.0/ 8", "010.0.0.0/8",
                          "/8", "10.0.0.0/100"}) {
    EXPECT_THAT(ValidateIpv4Cidr("subnet", bad), IsInvalid("subnet: \"")) << bad;
  }
  EXPECT_THAT(ValidateIpv4Cidr("subnet", "10.0.0.1/8"),
              IsInvalid("subnet: \"10.0.0.1/8\" is not a network address"));
  EXPECT_THAT(ValidateIpv4Cidr("subnet", "0.0.0.1/0"), IsInvalid("host bits"));
}

TEST(ValidatePortTest, Range) {
  for (int64_t good : {1, 80, 65535}) EXPECT_TRUE(ValidatePort("port", good).ok()) << good;
  EXPECT_THAT(ValidatePort("port", 0), IsInvalid("port: 0 is not a port"));
  EXPECT_THAT(ValidatePort("port", 65536), IsInvalid("port: 65536"));
  EXPECT_THAT(ValidatePort("port", -1), IsInvalid("port: -1"));
}

TEST(ValidateRequestIdTest, Grammar) {
  const std::string longest(64, 'Z');
  for (std::string_view good : {"a", "Req-1.2_3", longest.c_str()}) {
    EXPECT_TRUE(ValidateRequestId("request_id", good).ok()) << good;
  }
  for (const char* bad : {"", "a b", "a/b", "a:b", "a\nb"}) {
    EXPECT_THAT(ValidateRequestId("request_id", bad), IsInvalid("request_id: \"")) << bad;
  }
  EXPECT_THAT(ValidateRequestId("request_id", std::string(65, 'a')), IsInvalid("request_id: "));
}

TEST(GrammarErrorTest, ValueIsEscapedAndTruncated) {
  const absl::Status s = ValidateRequestId("request_id", "a\nb\x01\"");
  EXPECT_THAT(s, IsInvalid(R"(request_id: "a\nb\x01\"" is not a request id)"));

  const std::string huge = std::string(1000, '!');
  const absl::Status t = ValidateHostId("host_id", huge);
  EXPECT_THAT(t, IsInvalid("host_id: \"" + std::string(64, '!') + "\"... is not"));
  EXPECT_LT(t.message().size(), 200u);
}

TEST(GrammarErrorTest, NamesTheField) {
  EXPECT_THAT(ValidateHostId("spec.host", "-"), IsInvalid("spec.host: \"-\""));
}

TEST(ValidatePodmanStreamTest, StreamsAreBareAndFramesBounded) {
  PodmanReply reply;
  reply.set_request_id(1);
  reply.mutable_response()->set_http_status(200);
  reply.mutable_response()->set_stream(true);
  EXPECT_TRUE(Validate(reply).ok());
  reply.mutable_response()->set_body("x");
  EXPECT_THAT(Validate(reply), IsInvalid("response.stream"));
  reply.mutable_response()->clear_body();
  reply.mutable_response()->set_more(true);
  EXPECT_THAT(Validate(reply), IsInvalid("response.stream"));
  reply.mutable_response()->set_more(false);
  reply.mutable_response()->set_http_status(404);
  EXPECT_THAT(Validate(reply), IsInvalid("response.stream"));

  PodmanStreamFrame frame;
  EXPECT_THAT(Validate(frame), IsInvalid("frame: missing"));
  frame.set_stdout_data(std::string(kMaxBodyBytesPerFrame, 'o'));
  EXPECT_TRUE(Validate(frame).ok());
  frame.set_stderr_data(std::string(kMaxBodyBytesPerFrame + 1, 'e'));
  EXPECT_THAT(Validate(frame), IsInvalid("more than one frame's worth"));
  frame.mutable_end()->set_code(1);
  EXPECT_TRUE(Validate(frame).ok());
  frame.mutable_end()->set_code(99);
  EXPECT_THAT(Validate(frame), IsInvalid("end.code"));
}


BuildLauncherRequest StartRequest() {
  BuildLauncherRequest request;
  request.set_protocol_version(kProtocolVersion);
  request.set_request_id(1);
  request.set_role(ROLE_BUILD);
  BuildSpec* spec = request.mutable_start()->mutable_spec();
  spec->set_request_id("build-1");
  spec->set_kind(BUILD_KIND_STATIC);
  spec->set_repo_url("https://example.com/site.git");
  spec->set_git_ref("main");
  spec->set_target_image("localhost/site:v1");
  return request;
}

TEST(BuildLauncherRequest, StartAndCancel) {
  EXPECT_TRUE(Validate(StartRequest()).ok());
  BuildLauncherRequest bad = StartRequest();
  bad.mutable_start()->mutable_spec()->set_request_id("../etc");
  EXPECT_THAT(Validate(bad), IsInvalid("start.spec.request_id: \"../etc\" is not 1..64 of [A-Za-z0-9_-]"));
  bad = StartRequest();
  bad.mutable_start()->mutable_spec()->set_request_id("");
  EXPECT_THAT(Validate(bad), IsInvalid("start.spec.request_id"));
  bad = StartRequest();
  bad.mutable_start()->mutable_spec()->set_kind(BUILD_KIND_UNSPECIFIED);
  EXPECT_THAT(Validate(bad), IsInvalid("start.spec.kind: not set"));
  bad = StartRequest();
  bad.mutable_start()->mutable_spec()->set_repo_url(std::string(3000, 'a'));
  EXPECT_THAT(Validate(bad), IsInvalid("start.spec.repo_url: too long"));
  BuildLauncherRequest cancel;
  cancel.set_protocol_version(kProtocolVersion);
  cancel.set_request_id(2);
  cancel.set_role(ROLE_BUILD);
  cancel.mutable_cancel()->set_request_id("build-1");
  EXPECT_TRUE(Validate(cancel).ok());
  cancel.mutable_cancel()->set_request_id("a b");
  EXPECT_THAT(Validate(cancel), IsInvalid("cancel.request_id"));
}

TEST(BuildStreamFrame, ProgressAndFinished) {
  BuildStreamFrame frame;
  EXPECT_THAT(Validate(frame), IsInvalid("frame: missing"));
  frame.mutable_progress()->set_request_id("b-1");
  EXPECT_THAT(Validate(frame), IsInvalid("progress.event_lines: 1..64 lines per frame"));
  frame.mutable_progress()->set_dropped_lines(7);
  EXPECT_TRUE(Validate(frame).ok());  // only the count of lines dropped
  frame.mutable_progress()->add_event_lines("{}");
  EXPECT_TRUE(Validate(frame).ok());
  frame.mutable_progress()->add_event_lines(std::string(kMaxBuildLineBytes + 1, 'x'));
  EXPECT_THAT(Validate(frame), IsInvalid("a line longer than 16 KiB"));

  BuildStreamFrame done;
  done.mutable_finished()->set_request_id("b-1");
  EXPECT_TRUE(Validate(done).ok());  // no outcome file: the builder left none
  done.mutable_finished()->set_outcome_file("result.json");
  EXPECT_THAT(Validate(done), IsInvalid("finished.outcome: present exactly when outcome_file is"));
  done.mutable_finished()->set_outcome("{}");
  EXPECT_TRUE(Validate(done).ok());
  done.mutable_finished()->set_outcome_file("../../etc/shadow");
  EXPECT_THAT(Validate(done), IsInvalid("finished.outcome_file"));
  done.mutable_finished()->set_outcome_file("error.json");
  done.mutable_finished()->set_outcome(std::string(kMaxBuildOutcomeBytes + 1, 'x'));
  EXPECT_THAT(Validate(done), IsInvalid("larger than 32 KiB"));
  done.mutable_finished()->set_outcome("{}");
  done.mutable_finished()->set_note("line\nbreak");
  EXPECT_THAT(Validate(done), IsInvalid("finished.note: holds control characters"));
  done.mutable_finished()->set_request_id("b/1");
  EXPECT_THAT(Validate(done), IsInvalid("finished.request_id"));
}

TEST(FirewallRuleIdTest, DerivedAndCallerIdsNeverOverlap) {
  for (const char* good : {"0123456789ab", "v5-caddy-ingress:80", "v5-resource-connection:1:1:2:tcp:5432", "a"}) {
    EXPECT_TRUE(ValidateFirewallRuleId("id", good).ok()) << good;
  }
  EXPECT_TRUE(IsDerivedRuleId("0123456789ab"));
  EXPECT_FALSE(IsDerivedRuleId("v5-caddy-ingress:80"));
  // A caller may not take a derived id's shape, nor anything a snapshot would read as syntax.
  for (const char* bad : {"abcdef012345", "1xyz", "", "has space", "q\"uote", "new\nline", "-x", "a/b",
                          "x123456789012345678901234567890123456789012345678901234567890123456"}) {
    EXPECT_FALSE(ValidateCallerRuleId("id", bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateFirewallRuleId("id", "1xyz").ok());
  NetlinkRequest allow;
  allow.set_protocol_version(kProtocolVersion);
  allow.set_request_id(1);
  allow.set_role(ROLE_NETLINK);
  allow.mutable_allow()->mutable_rule()->set_port(1);
  allow.mutable_allow()->set_id("v5-caddy-ingress:80");
  EXPECT_TRUE(Validate(allow).ok());
  allow.mutable_allow()->set_id("0123456789ab");
  EXPECT_THAT(Validate(allow), IsInvalid("allow.id"));
}

}  // namespace
}  // namespace coolify::privsep
