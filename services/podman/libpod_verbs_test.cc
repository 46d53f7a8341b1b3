// The verbs against a real, isolated Podman service (tests/podman_harness).
#include "services/podman/libpod_verbs.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "gtest/gtest.h"
#include "tests/podman_harness/podman_harness.h"

namespace coolify::podman {
namespace {

namespace json = boost::json;

// Podman's answer as a document: the verbs relay it as text.
absl::StatusOr<json::value> J(absl::StatusOr<std::string> text) {
  if (!text.ok()) return text.status();
  json::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec) return absl::InternalError("not JSON");
  return v;
}
using ::coolify::testing::PodmanHarness;

class LibpodVerbsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<PodmanHarness>> h = PodmanHarness::Start();
    ASSERT_TRUE(h.ok()) << h.status();
    harness_ = h->release();
  }
  static void TearDownTestSuite() {
    delete harness_;
    harness_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(harness_, nullptr) << "Podman did not start"; }

  LibpodClient Client() const {
    ClientOptions options;
    options.socket_path = harness_->socket_path();
    return LibpodClient(options);
  }

  // Creates and starts a busybox container running `cmd`; extra SpecGenerator fields in
  // `extra` (a JSON object's members).
  std::string Run(const std::string& name, const std::vector<std::string>& cmd,
                  json::object extra = {}) {
    json::object spec = std::move(extra);
    spec["name"] = name;
    spec["image"] = PodmanHarness::kBusyboxImage;
    json::array command;
    for (const std::string& c : cmd) command.emplace_back(json::string_view(c));
    spec["command"] = std::move(command);
    absl::StatusOr<std::string> id = ContainersCreate(Client(), json::serialize(spec));
    EXPECT_TRUE(id.ok()) << id.status();
    absl::Status started = ContainersStart(Client(), name);
    EXPECT_TRUE(started.ok()) << started;
    return id.value_or("");
  }

  std::string State(const std::string& name) {
    absl::StatusOr<json::value> inspect = J(ContainersInspect(Client(), name));
    if (!inspect.ok()) return inspect.status().ToString();
    return std::string(inspect->at("State").at("Status").as_string());
  }

  static PodmanHarness* harness_;
};

PodmanHarness* LibpodVerbsTest::harness_ = nullptr;

LogsOptions Follow() {
  LogsOptions options;
  options.follow = true;
  return options;
}

TEST_F(LibpodVerbsTest, PullOfTheLocalRefReturnsItsId) {
  absl::StatusOr<std::string> id = ImagesPull(Client(), PodmanHarness::kBusyboxImage);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->size(), 64u);
  absl::StatusOr<json::value> images = J(ImagesList(Client()));
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_TRUE(absl::StrContains(json::serialize(*images), *id));
}

TEST_F(LibpodVerbsTest, PullOfAMissingRefIsAFailureDespiteHttp200) {
  absl::StatusOr<std::string> id = ImagesPull(Client(), "localhost/does-not-exist:latest");
  ASSERT_FALSE(id.ok());
  EXPECT_TRUE(absl::StrContains(id.status().message(), "image pull failed")) << id.status();
}

TEST_F(LibpodVerbsTest, ImagesDeleteOfAnUnknownRefIsNotFound) {
  EXPECT_EQ(ImagesDelete(Client(), "localhost/nothing:here", false).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(LibpodVerbsTest, CreateStartInspectAndFollowLogsWhileRunning) {
  Run("logger", {"sh", "-c", "for i in 1 2 3 4 5 6; do echo line$i; echo err$i >&2; sleep 0.4; done"});
  std::string out, err;
  bool first_chunk_while_running = false;
  int chunks = 0;
  absl::Status s = ContainersLogs(
      Client(), "logger", Follow(),
      [&](StreamKind stream, std::string_view data) {
        if (chunks++ == 0) first_chunk_while_running = State("logger") == "running";
        (stream == StreamKind::kStderr ? err : out).append(data.data(), data.size());
        return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(first_chunk_while_running);
  EXPECT_GT(chunks, 2);
  EXPECT_EQ(out, "line1\nline2\nline3\nline4\nline5\nline6\n");
  EXPECT_EQ(err, "err1\nerr2\nerr3\nerr4\nerr5\nerr6\n");
  EXPECT_EQ(State("logger"), "exited");
}

TEST_F(LibpodVerbsTest, FollowStopsWhenTheSinkRefuses) {
  Run("endless", {"sh", "-c", "while true; do echo tick; sleep 0.1; done"});
  int seen = 0;
  absl::Status s = ContainersLogs(Client(), "endless", Follow(),
                                  [&](StreamKind, std::string_view) {
                                    return ++seen == 3 ? absl::CancelledError("enough")
                                                       : absl::OkStatus();
                                  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(ContainersDelete(Client(), "endless", true, 0).ok());
}

TEST_F(LibpodVerbsTest, ExecReturnsTheRealExitCodeAndOutput) {
  Run("execbox", {"sleep", "1000"});
  absl::StatusOr<ExecResult> r =
      ContainersExec(Client(), "execbox",
                     R"({"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","echo out; echo err >&2; exit 7"]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 7);
  EXPECT_EQ(r->stdout_text, "out\n");
  EXPECT_EQ(r->stderr_text, "err\n");
  EXPECT_FALSE(r->truncated);

  absl::StatusOr<ExecResult> ok = ContainersExec(Client(), "execbox", R"({"AttachStdout":true,"AttachStderr":true,"Cmd":["true"]})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->exit_code, 0);
  EXPECT_TRUE(ContainersDelete(Client(), "execbox", true, 0).ok());
}

TEST_F(LibpodVerbsTest, StopHonoursItsTimeoutForAContainerIgnoringSigterm) {
  Run("stubborn", {"sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"});
  absl::Time start = absl::Now();
  absl::Status s = ContainersStop(Client(), "stubborn", 1);
  absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GE(took, absl::Milliseconds(900));
  EXPECT_LE(took, absl::Seconds(4));
  EXPECT_EQ(State("stubborn"), "exited");
  // Stopping a stopped container is not an error (Podman's 304).
  EXPECT_TRUE(ContainersStop(Client(), "stubborn", 1).ok());
  EXPECT_TRUE(ContainersDelete(Client(), "stubborn", false).ok());
}

TEST_F(LibpodVerbsTest, RestartRunsTheContainerAgain) {
  Run("restarter", {"sleep", "1000"});
  std::string before = std::string(
      J(ContainersInspect(Client(), "restarter"))->at("State").at("StartedAt").as_string());
  ASSERT_TRUE(ContainersRestart(Client(), "restarter", 0).ok());
  absl::StatusOr<json::value> after = J(ContainersInspect(Client(), "restarter"));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->at("State").at("Status").as_string(), "running");
  EXPECT_NE(after->at("State").at("StartedAt").as_string(), before);
  EXPECT_TRUE(ContainersDelete(Client(), "restarter", true, 0).ok());
}

TEST_F(LibpodVerbsTest, HealthcheckRunsAndReportsTheOutcome) {
  json::object healthy;
  healthy["healthconfig"] = json::object{{"Test", json::array{"CMD-SHELL", "exit 0"}},
                                         {"Interval", int64_t{3600} * 1000000000},
                                         {"Timeout", int64_t{5} * 1000000000},
                                         {"Retries", 1}};
  Run("healthy", {"sleep", "1000"}, healthy);
  absl::StatusOr<HealthResult> h = ContainersHealthcheck(Client(), "healthy");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->status, "healthy");

  json::object sick;
  sick["healthconfig"] = json::object{{"Test", json::array{"CMD-SHELL", "exit 3"}},
                                      {"Interval", int64_t{3600} * 1000000000},
                                      {"Timeout", int64_t{5} * 1000000000},
                                      {"Retries", 1}};
  Run("sick", {"sleep", "1000"}, sick);
  absl::StatusOr<HealthResult> u = ContainersHealthcheck(Client(), "sick");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->status, "unhealthy");

  Run("nohealth", {"sleep", "1000"});
  EXPECT_EQ(ContainersHealthcheck(Client(), "nohealth").status().code(),
            absl::StatusCode::kFailedPrecondition);
  for (const char* name : {"healthy", "sick", "nohealth"}) {
    EXPECT_TRUE(ContainersDelete(Client(), name, true, 0).ok());
  }
}

TEST_F(LibpodVerbsTest, DeleteNeedsForceWhileRunningAndThenTheContainerIsGone) {
  Run("doomed", {"sleep", "1000"});
  EXPECT_EQ(ContainersDelete(Client(), "doomed", false).code(),
            absl::StatusCode::kFailedPrecondition);
  absl::Time start = absl::Now();
  ASSERT_TRUE(ContainersDelete(Client(), "doomed", true, 0).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // the timeout reached Podman
  EXPECT_EQ(ContainersInspect(Client(), "doomed").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ContainersStart(Client(), "doomed").code(), absl::StatusCode::kNotFound);
}

TEST_F(LibpodVerbsTest, CreateWithATakenNameIsAlreadyExists) {
  Run("twice", {"sleep", "1000"});
  json::object spec{{"name", "twice"}, {"image", PodmanHarness::kBusyboxImage}};
  EXPECT_EQ(ContainersCreate(Client(), json::serialize(spec)).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(ContainersDelete(Client(), "twice", true, 0).ok());
}

TEST_F(LibpodVerbsTest, Volumes) {
  absl::StatusOr<json::value> v = J(VolumesCreate(Client(), R"({"Name":"data1"})"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->at("Name").as_string(), "data1");
  EXPECT_EQ(VolumesCreate(Client(), R"({"Name":"data1"})").status().code(),
            absl::StatusCode::kAlreadyExists);
  absl::StatusOr<json::value> inspect = J(VolumesInspect(Client(), "data1"));
  ASSERT_TRUE(inspect.ok()) << inspect.status();
  EXPECT_EQ(inspect->at("Driver").as_string(), "local");
  ASSERT_TRUE(VolumesDelete(Client(), "data1", false).ok());
  EXPECT_EQ(VolumesInspect(Client(), "data1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(VolumesDelete(Client(), "data1", false).code(), absl::StatusCode::kNotFound);
}

TEST_F(LibpodVerbsTest, Networks) {
  absl::StatusOr<json::value> n = J(NetworksCreate(Client(), R"({"name":"tenant-a"})"));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->at("driver").as_string(), "bridge");
  EXPECT_EQ(NetworksCreate(Client(), R"({"name":"tenant-a"})").status().code(),
            absl::StatusCode::kAlreadyExists);
  absl::StatusOr<json::value> list = J(NetworksList(Client()));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(absl::StrContains(json::serialize(*list), "\"tenant-a\""));
  ASSERT_TRUE(NetworksDelete(Client(), "tenant-a", false).ok());
  EXPECT_EQ(NetworksDelete(Client(), "tenant-a", false).code(), absl::StatusCode::kNotFound);
}

TEST_F(LibpodVerbsTest, HostFacts) {
  absl::StatusOr<json::value> info = J(HostInfo(Client()));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->at("host").at("cgroupManager").as_string(), "cgroupfs");
  Run("statme", {"sleep", "1000"});
  absl::StatusOr<json::value> containers = J(HostContainers(Client()));
  ASSERT_TRUE(containers.ok()) << containers.status();
  EXPECT_TRUE(absl::StrContains(json::serialize(*containers), "statme"));
  absl::StatusOr<json::value> stats = J(HostStats(Client()));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(absl::StrContains(json::serialize(stats->at("Stats")), "statme"));
  EXPECT_TRUE(ContainersDelete(Client(), "statme", true, 0).ok());
}

TEST_F(LibpodVerbsTest, HostileNamesNeverReachPodman) {
  for (const char* name : {"../images/json", "a b", "x\r\nHost: evil", "", "-rf", "a/b", "%2e%2e"}) {
    EXPECT_EQ(ContainersInspect(Client(), name).status().code(), absl::StatusCode::kInvalidArgument)
        << name;
    EXPECT_EQ(VolumesDelete(Client(), name, true).code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(ImagesPull(Client(), "busybox\r\nX: y").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ImagesPull(Client(), "localhost/../etc").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LibpodVerbsTest, MissingSocketIsUnavailable) {
  ClientOptions options;
  options.socket_path = harness_->socket_path() + ".absent";
  EXPECT_EQ(HostInfo(LibpodClient(options)).status().code(), absl::StatusCode::kUnavailable);
}

// Last: they stop and restart the service. One client throughout, so that each call
// after a stop or a restart meets the connection the call before it kept.
TEST_F(LibpodVerbsTest, StoppedServiceIsUnavailableAndRecoveryIsImmediate) {
  const LibpodClient client = Client();
  ASSERT_TRUE(J(HostInfo(client)).ok());
  ASSERT_TRUE(harness_->StopService().ok());
  absl::StatusOr<json::value> down = J(HostInfo(client));
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  ASSERT_TRUE(harness_->StartService().ok());
  absl::StatusOr<json::value> up = J(HostInfo(client));
  EXPECT_TRUE(up.ok()) << up.status();
}

TEST_F(LibpodVerbsTest, ARestartBetweenTwoGetsCostsTheSecondNothing) {
  const LibpodClient client = Client();
  ASSERT_TRUE(J(HostInfo(client)).ok());
  ASSERT_TRUE(harness_->StopService().ok());
  ASSERT_TRUE(harness_->StartService().ok());
  absl::StatusOr<json::value> after = J(HostInfo(client));
  EXPECT_TRUE(after.ok()) << after.status();
}

}  // namespace
}  // namespace coolify::podman
