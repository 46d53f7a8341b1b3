// The gatekeeper against a real, isolated Podman service (tests/podman_harness), driven
// through the Gatekeeper class; one test runs it inside the podman role's real sandbox.
#include "services/podman/gatekeeper.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "gtest/gtest.h"
#include "policy/policy_file.h"
#include "privsep/channel.h"
#include "privsep/log.h"
#include "privsep/sandbox.h"
#include "privsep/validate.h"
#include "proto/commands.pb.h"
#include "tests/podman_harness/podman_harness.h"

namespace coolify::podman {
namespace {

namespace json = boost::json;
using ::coolify::testing::PodmanHarness;
using privsep::PodmanCall;
using privsep::PodmanResponse;

json::value Parse(const std::string& body) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << body;
  return v;
}

std::string Str(const json::value& v, const char* key) {
  const json::object* o = v.if_object();
  const json::value* f = o ? o->if_contains(key) : nullptr;
  return f && f->is_string() ? std::string(f->as_string()) : std::string();
}

// The baseline policy, with the harness's runtime (runc; Debian's crun is not
// installed) and `bind_prefix` (when given) as a writable host path.
v1::Policy TestPolicy(const std::string& bind_prefix = "") {
  absl::StatusOr<v1::Policy> policy = policy::EmbeddedPolicy("baseline");
  EXPECT_TRUE(policy.ok()) << policy.status();
  v1::Policy p = *policy;
  p.set_default_runtime("runc");
  if (!bind_prefix.empty()) {
    auto* host_path = p.add_host_paths();
    host_path->set_prefix(bind_prefix);
    host_path->set_read_only(false);
  }
  absl::Status valid = policy::ValidatePolicy(p);
  EXPECT_TRUE(valid.ok()) << valid;
  return p;
}

PodmanCall Call(v1::Command command) {
  PodmanCall call;
  *call.mutable_command() = std::move(command);
  return call;
}

v1::Command Inspect(const std::string& id) {
  v1::Command c;
  c.mutable_containers_inspect()->set_id(id);
  return c;
}

v1::Command Create(const std::string& name, const std::vector<std::string>& cmd) {
  v1::Command c;
  v1::ContainerSpec* spec = c.mutable_containers_create()->mutable_spec();
  spec->set_name(name);
  spec->set_image(PodmanHarness::kBusyboxImage);
  for (const std::string& arg : cmd) spec->add_command(arg);
  return c;
}

v1::Command MeshNetwork() {
  v1::Command c;
  c.mutable_networks_create()->set_name("coolify-default-mesh");
  c.mutable_networks_create()->set_namespace_("default");
  return c;
}

class GatekeeperTest : public ::testing::Test {
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
  void SetUp() override {
    ASSERT_NE(harness_, nullptr) << "Podman did not start";
    GatekeeperOptions options;
    options.socket_path = harness_->socket_path();
    options.policy = TestPolicy();
    gatekeeper_ = std::make_unique<Gatekeeper>(std::move(options));
    // Every container joins its namespace's mesh network by default.
    GatekeeperAnswer mesh = gatekeeper_->Execute(Call(MeshNetwork()));
    ASSERT_TRUE(mesh.http_status == 201 || mesh.http_status == 409) << mesh.http_status << mesh.body;
  }

  GatekeeperAnswer Run(v1::Command command) { return gatekeeper_->Execute(Call(std::move(command))); }

  size_t ContainerCount() {
    v1::Command c;
    c.mutable_host_containers();
    GatekeeperAnswer a = Run(c);
    EXPECT_EQ(a.http_status, 200u) << a.body;
    json::value v = Parse(a.body);
    return v.is_array() ? v.as_array().size() : 0;
  }

  static PodmanHarness* harness_;
  std::unique_ptr<Gatekeeper> gatekeeper_;
};

PodmanHarness* GatekeeperTest::harness_ = nullptr;

TEST_F(GatekeeperTest, PullOfTheLocalRefAnswersItsId) {
  v1::Command c;
  c.mutable_images_pull()->set_ref(PodmanHarness::kBusyboxImage);
  GatekeeperAnswer a = Run(c);
  ASSERT_EQ(a.http_status, 200u) << a.body;
  json::value v = Parse(a.body);
  EXPECT_EQ(Str(v, "id").size(), 64u) << a.body;
  if (v.as_object().contains("digest")) {
    EXPECT_TRUE(absl::StartsWith(Str(v, "digest"), "sha256:")) << a.body;
  }
}

TEST_F(GatekeeperTest, PullOfAMissingRefFails) {
  v1::Command c;
  c.mutable_images_pull()->set_ref("localhost/no-such-image:latest");
  GatekeeperAnswer a = Run(c);
  EXPECT_GE(a.http_status, 400u) << a.body;
  EXPECT_FALSE(Str(Parse(a.body), "error").empty()) << a.body;
}

TEST_F(GatekeeperTest, ContainerLifecycle) {
  GatekeeperAnswer created = Run(Create("gk-life", {"sh", "-c", "echo started; echo oops >&2; exec sleep 300"}));
  ASSERT_EQ(created.http_status, 201u) << created.body;
  const std::string id = Str(Parse(created.body), "id");
  ASSERT_EQ(id.size(), 64u) << created.body;

  v1::Command start;
  start.mutable_containers_start()->set_id("gk-life");
  GatekeeperAnswer started = Run(start);
  ASSERT_EQ(started.http_status, 200u) << started.body;
  EXPECT_EQ(Str(Parse(started.body), "id"), "gk-life");

  GatekeeperAnswer inspected = Run(Inspect(id));
  ASSERT_EQ(inspected.http_status, 200u) << inspected.body;
  json::value inspect = Parse(inspected.body);
  const json::object& host_config = inspect.at("HostConfig").as_object();
  EXPECT_EQ(host_config.at("Privileged"), json::value(false)) << inspected.body;
  const json::value* cap_add = host_config.if_contains("CapAdd");
  EXPECT_TRUE(cap_add == nullptr || cap_add->is_null() || cap_add->as_array().empty())
      << json::serialize(host_config);
  const std::string security = json::serialize(host_config.at("SecurityOpt"));
  EXPECT_TRUE(absl::StrContains(security, "no-new-privileges")) << security;

  v1::Command exec;
  exec.mutable_containers_exec()->set_id("gk-life");
  exec.mutable_containers_exec()->set_user("1000");  // baseline refuses exec as root
  for (const char* arg : {"sh", "-c", "echo out; echo err >&2; exit 3"}) {
    exec.mutable_containers_exec()->add_cmd(arg);
  }
  GatekeeperAnswer executed = Run(exec);
  ASSERT_EQ(executed.http_status, 200u) << executed.body;
  json::value e = Parse(executed.body);
  EXPECT_EQ(e.at("exit_code"), json::value(3)) << executed.body;
  EXPECT_EQ(Str(e, "stdout"), "out\n");
  EXPECT_EQ(Str(e, "stderr"), "err\n");

  // Environment, user and working directory reach the process as asked.
  v1::Command shaped;
  auto* shaped_exec = shaped.mutable_containers_exec();
  shaped_exec->set_id("gk-life");
  for (const char* arg : {"sh", "-c", "echo $GREETING; id -u; pwd"}) shaped_exec->add_cmd(arg);
  auto* env = shaped_exec->add_env();
  env->set_key("GREETING");
  env->set_value("hello");
  shaped_exec->set_user("1234");
  shaped_exec->set_workdir("/tmp");
  GatekeeperAnswer shaped_answer = Run(shaped);
  ASSERT_EQ(shaped_answer.http_status, 200u) << shaped_answer.body;
  EXPECT_EQ(Str(Parse(shaped_answer.body), "stdout"), "hello\n1234\n/tmp\n") << shaped_answer.body;

  v1::Command logs;
  logs.mutable_containers_logs()->set_id("gk-life");
  GatekeeperAnswer logged = Run(logs);
  ASSERT_EQ(logged.http_status, 200u) << logged.body;
  EXPECT_EQ(Str(Parse(logged.body), "stdout"), "started\n") << logged.body;
  EXPECT_EQ(Str(Parse(logged.body), "stderr"), "oops\n") << logged.body;

  // Followed: a stream whose frames carry the same output, kept apart by kind.
  logs.mutable_containers_logs()->set_follow(true);
  GatekeeperAnswer followed = Run(logs);
  ASSERT_EQ(followed.http_status, 200u) << followed.body;
  ASSERT_TRUE(followed.stream.valid());
  {
    privsep::Channel stream(std::move(followed.stream));
    std::string out, err;
    while (out.find("started") == std::string::npos || err.find("oops") == std::string::npos) {
      privsep::PodmanStreamFrame frame;
      ASSERT_TRUE(stream.Receive(&frame).ok());
      ASSERT_TRUE(privsep::Validate(frame).ok());
      ASSERT_FALSE(frame.has_end()) << frame.end().message();
      out += frame.stdout_data();
      err += frame.stderr_data();
    }
    EXPECT_EQ(out, "started\n");
    EXPECT_EQ(err, "oops\n");
  }  // closing our end is how the follow is cancelled
  v1::Command missing_logs = logs;
  missing_logs.mutable_containers_logs()->set_id("gk-no-such-container");
  GatekeeperAnswer missing = Run(missing_logs);
  EXPECT_EQ(missing.http_status, 404u) << missing.body;
  EXPECT_FALSE(missing.stream.valid());

  v1::Command stop;
  stop.mutable_containers_stop()->set_id(id);
  stop.mutable_containers_stop()->set_timeout_seconds(1);
  GatekeeperAnswer stopped = Run(stop);
  ASSERT_EQ(stopped.http_status, 200u) << stopped.body;
  EXPECT_EQ(Str(Parse(Run(Inspect(id)).body).at("State"), "Status"), "exited");

  v1::Command del;
  del.mutable_containers_delete()->set_id(id);
  GatekeeperAnswer deleted = Run(del);
  ASSERT_EQ(deleted.http_status, 200u) << deleted.body;
  EXPECT_EQ(Run(Inspect(id)).http_status, 404u);
}

TEST_F(GatekeeperTest, PrivilegedIsDeniedAndNothingIsCreated) {
  const size_t before = ContainerCount();
  v1::Command c = Create("gk-priv", {"true"});
  c.mutable_containers_create()->mutable_spec()->set_privileged(true);
  GatekeeperAnswer a = Run(c);
  ASSERT_EQ(a.http_status, 403u) << a.body;
  json::value v = Parse(a.body);
  EXPECT_EQ(Str(v, "error"), "denied by policy");
  const json::array& violations = v.at("violations").as_array();
  ASSERT_EQ(violations.size(), 1u) << a.body;
  EXPECT_EQ(Str(violations[0], "field"), "privileged");
  EXPECT_EQ(Str(violations[0], "rule"), "allow_privileged");
  EXPECT_FALSE(Str(violations[0], "reason").empty());
  EXPECT_EQ(ContainerCount(), before);
  EXPECT_EQ(Run(Inspect("gk-priv")).http_status, 404u);
}

TEST_F(GatekeeperTest, CapAddSysAdminIsDenied) {
  v1::Command c = Create("gk-cap", {"true"});
  c.mutable_containers_create()->mutable_spec()->add_cap_add("SYS_ADMIN");
  GatekeeperAnswer a = Run(c);
  ASSERT_EQ(a.http_status, 403u) << a.body;
  json::value v = Parse(a.body);
  EXPECT_EQ(Str(v.at("violations").as_array().at(0), "field"), "cap_add[0]") << a.body;
  EXPECT_EQ(Str(v.at("violations").as_array().at(0), "rule"), "allowed_capabilities") << a.body;
  EXPECT_EQ(Run(Inspect("gk-cap")).http_status, 404u);
}

TEST_F(GatekeeperTest, BindOfEtcIsDenied) {
  v1::Command c = Create("gk-etc", {"true"});
  v1::BindMount* bind = c.mutable_containers_create()->mutable_spec()->add_binds();
  bind->set_source("/data/coolify/volumes/../../../etc");
  bind->set_destination("/host-etc");
  GatekeeperAnswer a = Run(c);
  ASSERT_EQ(a.http_status, 403u) << a.body;
  json::value v = Parse(a.body);
  EXPECT_EQ(Str(v.at("violations").as_array().at(0), "field"), "binds[0].source") << a.body;
  EXPECT_EQ(Str(v.at("violations").as_array().at(0), "rule"), "host_paths") << a.body;
}

TEST_F(GatekeeperTest, BindSourceSwappedDuringCreateIsCaught) {
  char dir[] = "/tmp/gk-swap-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string source = std::string(dir) + "/data";
  ASSERT_EQ(mkdir(source.c_str(), 0755), 0);
  GatekeeperOptions options;
  options.socket_path = harness_->socket_path();
  options.policy = TestPolicy(dir);
  // After the check passed and Podman created the container: the checked directory is
  // moved away and a symlink to /etc takes its name.
  options.after_create_for_test = [&] {
    ASSERT_EQ(rename(source.c_str(), (source + ".checked").c_str()), 0);
    ASSERT_EQ(symlink("/etc", source.c_str()), 0);
  };
  Gatekeeper gatekeeper(std::move(options));
  v1::Command c = Create("gk-swap", {"true"});
  v1::BindMount* bind = c.mutable_containers_create()->mutable_spec()->add_binds();
  bind->set_source(source);
  bind->set_destination("/data");
  GatekeeperAnswer a = gatekeeper.Execute(Call(c));
  EXPECT_EQ(a.http_status, 409u) << a.body;
  EXPECT_TRUE(absl::StrContains(a.body, "changed")) << a.body;
  // What Podman created for it is gone again.
  EXPECT_EQ(Run(Inspect("gk-swap")).http_status, 404u);
  unlink(source.c_str());
  rmdir((source + ".checked").c_str());
  rmdir(dir);
}

// Podman binds by path again at every start: a source swapped for a symlink to /etc
// between create and start (by anything that can write where it lies) must not give the
// container the host's /etc.
TEST_F(GatekeeperTest, BindSourceSwappedBeforeAStartIsRefused) {
  char dir[] = "/tmp/gk-restart-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string source = std::string(dir) + "/data";
  ASSERT_EQ(mkdir(source.c_str(), 0755), 0);
  FILE* file = fopen((source + "/file").c_str(), "w");
  ASSERT_NE(file, nullptr);
  fputs("mine\n", file);
  fclose(file);
  GatekeeperOptions options;
  options.socket_path = harness_->socket_path();
  options.policy = TestPolicy(dir);
  Gatekeeper gatekeeper(std::move(options));
  const std::string other = std::string(dir) + "/other";
  ASSERT_EQ(mkdir(other.c_str(), 0755), 0);
  v1::Command c = Create("gk-restart", {"cat", "/data/file", "/data/shadow"});
  v1::BindMount* bind = c.mutable_containers_create()->mutable_spec()->add_binds();
  bind->set_source(source);
  bind->set_destination("/data");
  v1::BindMount* untouched = c.mutable_containers_create()->mutable_spec()->add_binds();
  untouched->set_source(other);
  untouched->set_destination("/other");
  untouched->set_read_only(true);
  GatekeeperAnswer created = gatekeeper.Execute(Call(c));
  ASSERT_EQ(created.http_status, 201u) << created.body;
  v1::Command start;
  start.mutable_containers_start()->set_id("gk-restart");
  // Untouched, it starts (and reads its own file).
  GatekeeperAnswer first = gatekeeper.Execute(Call(start));
  ASSERT_EQ(first.http_status, 200u) << first.body;
  ASSERT_TRUE(harness_->Podman({"wait", "gk-restart"}).ok());
  ASSERT_EQ(rename(source.c_str(), (source + ".checked").c_str()), 0);
  ASSERT_EQ(symlink("/etc", source.c_str()), 0);
  GatekeeperAnswer second = gatekeeper.Execute(Call(start));
  EXPECT_EQ(second.http_status, 403u) << second.body;
  EXPECT_TRUE(absl::StrContains(second.body, "host_paths.changed")) << second.body;
  EXPECT_TRUE(absl::StrContains(second.body, "now resolves to \\\"/etc\\\"")) << second.body;
  // It did not run again: its log holds the first run's output once, never /etc/shadow.
  absl::StatusOr<std::string> logs = harness_->Podman({"logs", "gk-restart"});
  ASSERT_TRUE(logs.ok()) << logs.status();
  EXPECT_FALSE(absl::StrContains(*logs, "root:")) << *logs;
  const std::vector<std::string> runs = absl::StrSplit(*logs, "mine");
  EXPECT_EQ(runs.size(), 2u) << *logs;  // one run only
  (void)harness_->Podman({"rm", "-f", "gk-restart"});
  unlink(source.c_str());
  unlink((source + ".checked/file").c_str());
  rmdir((source + ".checked").c_str());
  rmdir(other.c_str());
  rmdir(dir);
}

TEST_F(GatekeeperTest, SymlinkOutOfAnAllowedPrefixIsDenied) {
  char dir[] = "/tmp/gk-binds-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_EQ(symlink("/etc", (std::string(dir) + "/escape").c_str()), 0);
  GatekeeperOptions options;
  options.socket_path = harness_->socket_path();
  options.policy = TestPolicy(dir);
  Gatekeeper gatekeeper(std::move(options));
  v1::Command c = Create("gk-link", {"true"});
  v1::BindMount* bind = c.mutable_containers_create()->mutable_spec()->add_binds();
  bind->set_source(std::string(dir) + "/escape");
  bind->set_destination("/x");
  GatekeeperAnswer a = gatekeeper.Execute(Call(c));
  EXPECT_EQ(a.http_status, 403u) << a.body;
  EXPECT_TRUE(absl::StrContains(a.body, "/etc")) << a.body;
  unlink((std::string(dir) + "/escape").c_str());
  rmdir(dir);
}

TEST_F(GatekeeperTest, MalformedSpecIs400NamingTheField) {
  v1::Command c = Create("gk-bad", {"true"});
  v1::BindMount* bind = c.mutable_containers_create()->mutable_spec()->add_binds();
  bind->set_source("relative/path");
  bind->set_destination("/x");
  GatekeeperAnswer a = Run(c);
  ASSERT_EQ(a.http_status, 400u) << a.body;
  EXPECT_EQ(Str(Parse(a.body), "field"), "binds[0].source") << a.body;
}

TEST_F(GatekeeperTest, NonPodmanVerbIs400) {
  v1::Command c;
  c.mutable_firewall_list();
  EXPECT_EQ(Run(c).http_status, 400u);
  EXPECT_EQ(Run(v1::Command()).http_status, 400u);
}

TEST_F(GatekeeperTest, MissingSocketIs503) {
  GatekeeperOptions options;
  options.socket_path = "/nonexistent/podman.sock";
  options.policy = TestPolicy();
  Gatekeeper gatekeeper(std::move(options));
  v1::Command c;
  c.mutable_host_info();
  GatekeeperAnswer a = gatekeeper.Execute(Call(c));
  ASSERT_EQ(a.http_status, 503u) << a.body;
  EXPECT_TRUE(absl::StartsWith(Str(Parse(a.body), "error"), "podman unavailable: ")) << a.body;
}

// A registry that wants HTTP Basic credentials and holds no image: enough to see what
// Podman sends it. Serves connections one at a time until stopped.
class BasicAuthRegistry {
 public:
  BasicAuthRegistry() {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(testing::PodmanHarness::kInsecureRegistryPort);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bound_ = bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 && listen(listener_, 16) == 0;
    if (bound_) thread_ = std::thread([this] { Serve(); });
  }
  ~BasicAuthRegistry() {
    shutdown(listener_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(listener_);
  }
  bool bound() const { return bound_; }
  // Every Authorization header received, in order.
  std::vector<std::string> authorizations() {
    std::lock_guard<std::mutex> lock(mu_);
    return authorizations_;
  }

 private:
  void Serve() {
    for (;;) {
      int conn = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(conn, buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      std::string authorization;
      for (absl::string_view line : absl::StrSplit(request, "\r\n")) {
        if (absl::StartsWithIgnoreCase(line, "authorization:")) {
          authorization = std::string(absl::StripAsciiWhitespace(line.substr(14)));
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!authorization.empty()) authorizations_.push_back(authorization);
      }
      const std::string body = R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})";
      std::string response = absl::StrCat(
          "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"coold-test\"\r\n"
          "Docker-Distribution-API-Version: registry/2.0\r\nContent-Type: application/json\r\n"
          "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
      (void)!write(conn, response.data(), response.size());
      close(conn);
    }
  }

  int listener_ = -1;
  bool bound_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> authorizations_;
};

TEST_F(GatekeeperTest, PullSendsRegistryCredentials) {
  BasicAuthRegistry registry;
  ASSERT_TRUE(registry.bound()) << "cannot listen on " << testing::PodmanHarness::kInsecureRegistry;
  const std::string ref = absl::StrCat(testing::PodmanHarness::kInsecureRegistry, "/tenant/web:v1");

  v1::Command pull;
  pull.mutable_images_pull()->set_ref(ref);
  GatekeeperAnswer anonymous = Run(pull);
  EXPECT_GE(anonymous.http_status, 400u) << anonymous.body;

  pull.mutable_images_pull()->mutable_auth()->set_username("deploy");
  pull.mutable_images_pull()->mutable_auth()->set_password("s3cret:with\"quote");
  GatekeeperAnswer authed = Run(pull);
  // The registry refuses everyone, so the pull fails, and says so...
  EXPECT_GE(authed.http_status, 400u) << authed.body;
  // ...but Podman presented exactly the credentials given, as HTTP Basic.
  std::string expected;
  absl::Base64Escape("deploy:s3cret:with\"quote", &expected);
  std::vector<std::string> seen = registry.authorizations();
  EXPECT_NE(std::find(seen.begin(), seen.end(), "Basic " + expected), seen.end())
      << "registry saw: " << absl::StrJoin(seen, " | ");

  // Bad credentials never reach Podman.
  pull.mutable_images_pull()->mutable_auth()->set_username(std::string("a\nb"));
  GatekeeperAnswer bad = Run(pull);
  EXPECT_EQ(bad.http_status, 400u) << bad.body;
  EXPECT_NE(bad.body.find("auth"), std::string::npos) << bad.body;
}

// Call leaves its log line for WriteCallLog (the serving loop writes it once the answer
// is sent): written then, once; a Call whose line was not written writes it first.
TEST_F(GatekeeperTest, ACallsLogLineIsWrittenByWriteCallLog) {
  auto logged = [] {
    size_t n = 0;
    for (const std::string& line : RecentLogLines(kRecentLogLines)) {
      if (absl::StrContains(line, "podman call verb=containers_inspect status=404")) ++n;
    }
    return n;
  };
  const size_t before = logged();
  privsep::UniqueFd stream;
  EXPECT_EQ(gatekeeper_->Call(Call(Inspect("gk-no-such-container")), &stream).http_status(), 404u);
  EXPECT_EQ(logged(), before);
  gatekeeper_->WriteCallLog();
  EXPECT_EQ(logged(), before + 1);
  gatekeeper_->WriteCallLog();
  EXPECT_EQ(logged(), before + 1);
  gatekeeper_->Call(Call(Inspect("gk-no-such-container")), &stream);
  gatekeeper_->Call(Call(Inspect("gk-no-such-container")), &stream);
  EXPECT_EQ(logged(), before + 2);
  gatekeeper_->WriteCallLog();
  EXPECT_EQ(logged(), before + 3);
}

TEST(BodyChunkerTest, CutsAndHandsOutPieces) {
  BodyChunker chunker(10);
  PodmanResponse first = chunker.Start({200, std::string(25, 'x'), {}});
  EXPECT_EQ(first.http_status(), 200u);
  EXPECT_EQ(first.body(), std::string(10, 'x'));
  EXPECT_TRUE(first.more());
  PodmanResponse second = chunker.Next();
  EXPECT_EQ(second.body().size(), 10u);
  EXPECT_TRUE(second.more());
  PodmanResponse third = chunker.Next();
  EXPECT_EQ(third.body().size(), 5u);
  EXPECT_FALSE(third.more());
  PodmanResponse none = chunker.Next();
  EXPECT_EQ(none.http_status(), 409u);
  EXPECT_EQ(none.body(), R"({"error":"nothing pending"})");

  // A new answer drops what was pending.
  EXPECT_TRUE(chunker.Start({200, std::string(25, 'y'), {}}).more());
  PodmanResponse small = chunker.Start({404, "{}", {}});
  EXPECT_EQ(small.http_status(), 404u);
  EXPECT_EQ(small.body(), "{}");
  EXPECT_FALSE(small.more());
  EXPECT_EQ(chunker.Next().http_status(), 409u);

  PodmanResponse exact = chunker.Start({200, std::string(10, 'z'), {}});
  EXPECT_FALSE(exact.more());
  PodmanResponse empty = chunker.Start({200, "", {}});
  EXPECT_FALSE(empty.more());
}

TEST_F(GatekeeperTest, LargeAnswerTravelsInPieces) {
  // Enough containers that Podman's list is larger than one frame.
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    v1::Command c = Create(absl::StrCat("gk-many-", i), {"true"});
    for (int l = 0; l < 8; ++l) {
      v1::KeyValue* label = c.mutable_containers_create()->mutable_spec()->add_labels();
      label->set_key(absl::StrCat("padding", l));
      label->set_value(std::string(200, 'p'));
    }
    GatekeeperAnswer a = Run(c);
    ASSERT_EQ(a.http_status, 201u) << a.body;
    ids.push_back(Str(Parse(a.body), "id"));
  }
  EXPECT_EQ(gatekeeper_->Next().http_status(), 409u);
  v1::Command list;
  list.mutable_host_containers();
  privsep::UniqueFd no_stream;
  PodmanResponse piece = gatekeeper_->Call(Call(list), &no_stream);
  ASSERT_EQ(piece.http_status(), 200u);
  std::string body = piece.body();
  int pieces = 1;
  while (piece.more()) {
    EXPECT_LE(piece.body().size(), static_cast<size_t>(privsep::kMaxBodyBytesPerFrame));
    piece = gatekeeper_->Next();
    ASSERT_EQ(piece.http_status(), 200u);
    body += piece.body();
    ++pieces;
  }
  EXPECT_GT(pieces, 1) << body.size();
  json::value v = Parse(body);
  ASSERT_TRUE(v.is_array());
  EXPECT_GE(v.as_array().size(), ids.size());
  EXPECT_EQ(gatekeeper_->Next().http_status(), 409u);
  for (const std::string& id : ids) {
    v1::Command del;
    del.mutable_containers_delete()->set_id(id);
    del.mutable_containers_delete()->set_force(true);
    EXPECT_EQ(Run(del).http_status, 200u);
  }
}

// ---- ownership: labels written at create, checked by every verb ----

// The rule of the first violation of a 403, or what came instead.
std::string RuleOf(const GatekeeperAnswer& a) {
  if (a.http_status != 403) return absl::StrCat("status ", a.http_status, ": ", a.body);
  json::value v = Parse(a.body);
  const json::value* violations = v.is_object() ? v.as_object().if_contains("violations") : nullptr;
  if (violations == nullptr || !violations->is_array() || violations->as_array().empty()) return a.body;
  return Str(violations->as_array()[0], "rule");
}

// Every verb on an existing container, acting in `ns`.
std::vector<std::pair<std::string, v1::Command>> EveryVerbOn(const std::string& id, const std::string& ns) {
  std::vector<std::pair<std::string, v1::Command>> verbs;
  v1::Command c;
  c.mutable_containers_start()->set_id(id);
  c.mutable_containers_start()->set_namespace_(ns);
  verbs.emplace_back("start", c);
  c.Clear();
  c.mutable_containers_stop()->set_id(id);
  c.mutable_containers_stop()->set_namespace_(ns);
  c.mutable_containers_stop()->set_timeout_seconds(0);
  verbs.emplace_back("stop", c);
  c.Clear();
  c.mutable_containers_restart()->set_id(id);
  c.mutable_containers_restart()->set_namespace_(ns);
  verbs.emplace_back("restart", c);
  c.Clear();
  c.mutable_containers_delete()->set_id(id);
  c.mutable_containers_delete()->set_namespace_(ns);
  c.mutable_containers_delete()->set_force(true);
  verbs.emplace_back("delete", c);
  c.Clear();
  c.mutable_containers_inspect()->set_id(id);
  c.mutable_containers_inspect()->set_namespace_(ns);
  verbs.emplace_back("inspect", c);
  c.Clear();
  c.mutable_containers_logs()->set_id(id);
  c.mutable_containers_logs()->set_namespace_(ns);
  verbs.emplace_back("logs", c);
  c.mutable_containers_logs()->set_follow(true);
  verbs.emplace_back("logs follow", c);
  c.Clear();
  c.mutable_containers_exec()->set_id(id);
  c.mutable_containers_exec()->set_namespace_(ns);
  c.mutable_containers_exec()->set_user("1000");
  c.mutable_containers_exec()->add_cmd("touch");
  c.mutable_containers_exec()->add_cmd("/tmp/exec-happened");
  verbs.emplace_back("exec", c);
  c.Clear();
  c.mutable_containers_healthcheck_run()->set_id(id);
  c.mutable_containers_healthcheck_run()->set_namespace_(ns);
  verbs.emplace_back("healthcheck", c);
  return verbs;
}

TEST_F(GatekeeperTest, CreateWritesOwnershipLabelsAndATenantCannot) {
  GatekeeperAnswer created = Run(Create("gk-labelled", {"true"}));
  ASSERT_EQ(created.http_status, 201u) << created.body;
  std::string labels = *harness_->Podman({"inspect", "--format", "{{json .Config.Labels}}", "gk-labelled"});
  EXPECT_TRUE(absl::StrContains(labels, R"("coolify.coold.owner":"coold")")) << labels;
  EXPECT_TRUE(absl::StrContains(labels, R"("coolify.coold.namespace":"default")")) << labels;

  const size_t before = ContainerCount();
  for (const char* key : {"coolify.coold.owner", "coolify.coold.namespace"}) {
    v1::Command forged = Create("gk-forged", {"true"});
    v1::KeyValue* label = forged.mutable_containers_create()->mutable_spec()->add_labels();
    label->set_key(key);
    label->set_value("alpha");
    GatekeeperAnswer a = Run(forged);
    EXPECT_EQ(RuleOf(a), "reserved_labels") << key;
    EXPECT_TRUE(absl::StrContains(a.body, R"("field":"labels[0].key")")) << a.body;
  }
  EXPECT_EQ(ContainerCount(), before);
  EXPECT_FALSE(harness_->Podman({"container", "exists", "gk-forged"}).ok());
  EXPECT_TRUE(harness_->Podman({"rm", "-f", "gk-labelled"}).ok());
}

TEST_F(GatekeeperTest, AnotherNamespacesContainerIsRefusedByEveryVerb) {
  v1::Command create = Create("gk-ns", {"sleep", "300"});
  GatekeeperAnswer created = Run(create);
  ASSERT_EQ(created.http_status, 201u) << created.body;
  v1::Command start;
  start.mutable_containers_start()->set_id("gk-ns");
  ASSERT_EQ(Run(start).http_status, 200u);
  const std::string started_at = *harness_->Podman({"inspect", "--format", "{{.State.StartedAt}}", "gk-ns"});
  for (auto& [what, command] : EveryVerbOn("gk-ns", "alpha")) {
    GatekeeperAnswer a = Run(command);
    EXPECT_EQ(RuleOf(a), "namespace") << what;
    EXPECT_FALSE(a.stream.valid()) << what;
  }
  // Nothing happened to it: same start, still running, no exec ran.
  EXPECT_EQ(*harness_->Podman({"inspect", "--format", "{{.State.StartedAt}}", "gk-ns"}), started_at);
  EXPECT_EQ(*harness_->Podman({"inspect", "--format", "{{.State.Status}}", "gk-ns"}), "running\n");
  EXPECT_FALSE(harness_->Podman({"exec", "gk-ns", "test", "-e", "/tmp/exec-happened"}).ok());
  // The same verbs in its own namespace work ("" is "default").
  v1::Command inspect = Inspect("gk-ns");
  EXPECT_EQ(Run(inspect).http_status, 200u);
  inspect.mutable_containers_inspect()->set_namespace_("default");
  EXPECT_EQ(Run(inspect).http_status, 200u);
  v1::Command del;
  del.mutable_containers_delete()->set_id(Str(Parse(created.body), "id"));
  del.mutable_containers_delete()->set_force(true);
  EXPECT_EQ(Run(del).http_status, 200u);
}

TEST_F(GatekeeperTest, AContainerCooldDidNotCreateIsUntouchable) {
  // Infrastructure started beside coold, with Podman's CLI.
  ASSERT_TRUE(harness_->Podman({"run", "-d", "--name", "gk-foreign", "--runtime", "runc",
                                PodmanHarness::kBusyboxImage, "sleep", "300"})
                  .ok());
  const std::string started_at =
      *harness_->Podman({"inspect", "--format", "{{.State.StartedAt}}", "gk-foreign"});
  for (const char* ns : {"", "default", "alpha"}) {
    for (auto& [what, command] : EveryVerbOn("gk-foreign", ns)) {
      GatekeeperAnswer a = Run(command);
      EXPECT_EQ(RuleOf(a), "adopt_unlabelled") << what << " in " << ns;
      EXPECT_TRUE(absl::StrContains(a.body, "not created by coold")) << a.body;
    }
  }
  EXPECT_EQ(*harness_->Podman({"inspect", "--format", "{{.State.StartedAt}}", "gk-foreign"}), started_at);
  EXPECT_EQ(*harness_->Podman({"inspect", "--format", "{{.State.Status}}", "gk-foreign"}), "running\n");
  EXPECT_FALSE(harness_->Podman({"exec", "gk-foreign", "test", "-e", "/tmp/exec-happened"}).ok());
  // host_containers lists coold's containers only.
  v1::Command list;
  list.mutable_host_containers();
  GatekeeperAnswer listed = Run(list);
  ASSERT_EQ(listed.http_status, 200u);
  EXPECT_FALSE(absl::StrContains(listed.body, "gk-foreign")) << listed.body;

  // A container labelled as someone else's is refused even where unlabelled ones are
  // adopted.
  ASSERT_TRUE(harness_->Podman({"run", "-d", "--name", "gk-other-owner", "--runtime", "runc", "--label",
                                "coolify.coold.owner=someone", "--label", "coolify.coold.namespace=default",
                                PodmanHarness::kBusyboxImage, "sleep", "300"})
                  .ok());
  GatekeeperOptions options;
  options.socket_path = harness_->socket_path();
  options.policy = TestPolicy();
  options.policy.set_adopt_unlabelled(true);
  Gatekeeper adopting(std::move(options));
  EXPECT_EQ(RuleOf(adopting.Execute(Call(Inspect("gk-other-owner")))), "ownership");
  // With adopt_unlabelled, the unlabelled one is coold's, in the default namespace.
  EXPECT_EQ(adopting.Execute(Call(Inspect("gk-foreign"))).http_status, 200u);
  v1::Command elsewhere = Inspect("gk-foreign");
  elsewhere.mutable_containers_inspect()->set_namespace_("alpha");
  EXPECT_EQ(RuleOf(adopting.Execute(Call(elsewhere))), "namespace");
  EXPECT_TRUE(absl::StrContains(adopting.Execute(Call(list)).body, "gk-foreign"));
  EXPECT_TRUE(harness_->Podman({"rm", "-f", "-t", "0", "gk-foreign", "gk-other-owner"}).ok());
}

TEST_F(GatekeeperTest, ExecAsRootIsAPolicyDecision) {
  ASSERT_EQ(Run(Create("gk-root", {"sleep", "300"})).http_status, 201u);
  v1::Command start;
  start.mutable_containers_start()->set_id("gk-root");
  ASSERT_EQ(Run(start).http_status, 200u);
  v1::Command exec;
  exec.mutable_containers_exec()->set_id("gk-root");
  exec.mutable_containers_exec()->add_cmd("touch");
  exec.mutable_containers_exec()->add_cmd("/exec-as-root");
  // The container's own user is the image's (root here), and a name may be root.
  for (const char* user : {"", "0", "root", "0:0"}) {
    exec.mutable_containers_exec()->set_user(user);
    EXPECT_EQ(RuleOf(Run(exec)), "allow_exec_as_root") << user;
  }
  EXPECT_FALSE(harness_->Podman({"exec", "gk-root", "test", "-e", "/exec-as-root"}).ok());
  GatekeeperOptions options;
  options.socket_path = harness_->socket_path();
  options.policy = TestPolicy();
  options.policy.set_allow_exec_as_root(true);
  Gatekeeper allowing(std::move(options));
  exec.mutable_containers_exec()->set_user("");
  GatekeeperAnswer a = allowing.Execute(Call(exec));
  EXPECT_EQ(a.http_status, 200u) << a.body;
  EXPECT_TRUE(harness_->Podman({"exec", "gk-root", "test", "-e", "/exec-as-root"}).ok());
  EXPECT_TRUE(harness_->Podman({"rm", "-f", "-t", "0", "gk-root"}).ok());
}

TEST_F(GatekeeperTest, DenyFilterGapsAreClosedAgainstRealPodman) {
  const std::string volumes_before = *harness_->Podman({"volume", "ls", "--format", "{{.Name}}"});
  const size_t before = ContainerCount();
  // A named volume that does not exist: Podman would create it, past the volume policy.
  v1::Command ghost = Create("gk-ghost-volume", {"true"});
  v1::NamedVolumeMount* volume = ghost.mutable_containers_create()->mutable_spec()->add_volumes();
  volume->set_volume("gk-never-created");
  volume->set_destination("/v");
  EXPECT_EQ(RuleOf(Run(ghost)), "existing_volumes");
  EXPECT_EQ(*harness_->Podman({"volume", "ls", "--format", "{{.Name}}"}), volumes_before);
  // A working directory under /proc (CVE-2024-21626 class).
  v1::Command proc = Create("gk-proc-cwd", {"true"});
  proc.mutable_containers_create()->mutable_spec()->set_workdir("/proc/self/fd/7");
  EXPECT_EQ(RuleOf(Run(proc)), "workdir");
  // A resolver other than the namespace's own.
  v1::Command dns = Create("gk-dns", {"true"});
  dns.mutable_containers_create()->mutable_spec()->add_dns("127.0.0.1");
  EXPECT_EQ(RuleOf(Run(dns)), "namespaces.resolvers");
  // coold's own ports on every address, and the management IP.
  GatekeeperOptions options;
  options.socket_path = harness_->socket_path();
  options.policy = TestPolicy();
  options.management_ip = "10.0.0.5";
  options.api_port = 8443;
  Gatekeeper host(std::move(options));
  v1::Command api = Create("gk-api-port", {"true"});
  v1::PortMapping* port = api.mutable_containers_create()->mutable_spec()->add_ports();
  port->set_host_port(8443);
  port->set_container_port(80);
  EXPECT_EQ(RuleOf(host.Execute(Call(api))), "reserved_host_ports");
  EXPECT_EQ(ContainerCount(), before);
  EXPECT_FALSE(harness_->Podman({"container", "exists", "gk-ghost-volume"}).ok());
  // No container runs without a memory limit: one that names none gets the cap.
  ASSERT_EQ(Run(Create("gk-capped", {"true"})).http_status, 201u);
  EXPECT_EQ(*harness_->Podman({"inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", "gk-capped"}),
            "2147483648 32768\n");
  EXPECT_TRUE(harness_->Podman({"rm", "-f", "gk-capped"}).ok());
}

// ---- inside the podman role's real sandbox ----

// Runs `body` in a forked child confined as coold-podman is (same lists, same order);
// returns its wait status and what it wrote.
struct ChildResult {
  int wait_status = 0;
  std::string output;
};

ChildResult RunSandboxed(const std::function<std::string()>& body) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {};
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    privsep::EnterSandbox(privsep::SandboxSpec{privsep::ROLE_PODMAN, {fds[1]}, {}, {}});
    const std::string out = body();
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    exit(out.empty() ? 0 : 1);
  }
  close(fds[1]);
  ChildResult result;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  while (waitpid(pid, &result.wait_status, 0) < 0 && errno == EINTR) {
  }
  return result;
}

TEST_F(GatekeeperTest, ServesEveryKindOfVerbInsideTheSandbox) {
  char dir[] = "/tmp/gk-sandbox-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string data = std::string(dir) + "/data";
  ASSERT_EQ(mkdir(data.c_str(), 0755), 0);
  ASSERT_EQ(symlink("/etc", (std::string(dir) + "/escape").c_str()), 0);
  GatekeeperOptions options;
  options.socket_path = harness_->socket_path();
  options.policy = TestPolicy(dir);
  const std::string prefix = dir;

  ChildResult r = RunSandboxed([&]() -> std::string {
    Gatekeeper gatekeeper(options);
    std::string errors;
    auto expect = [&](const char* what, v1::Command c, unsigned status) {
      GatekeeperAnswer a = gatekeeper.Execute(Call(std::move(c)));
      if (a.http_status != status) {
        absl::StrAppend(&errors, what, ": ", a.http_status, " ", a.body.substr(0, 300), "\n");
      }
      return a;
    };
    v1::Command pull;
    pull.mutable_images_pull()->set_ref(PodmanHarness::kBusyboxImage);
    expect("pull", pull, 200);
    v1::Command images;
    images.mutable_images_list();
    expect("images_list", images, 200);
    v1::Command create = Create("gk-sandboxed", {"sh", "-c", "echo hi > /data/f; exec sleep 300"});
    v1::BindMount* bind = create.mutable_containers_create()->mutable_spec()->add_binds();
    bind->set_source(data);
    bind->set_destination("/data");
    expect("create with a bind", create, 201);
    v1::Command escape = Create("gk-escape", {"true"});
    v1::BindMount* bad = escape.mutable_containers_create()->mutable_spec()->add_binds();
    bad->set_source(prefix + "/escape");
    bad->set_destination("/x");
    expect("create through a symlink", escape, 403);
    v1::Command start;
    start.mutable_containers_start()->set_id("gk-sandboxed");
    expect("start", start, 200);
    expect("inspect", Inspect("gk-sandboxed"), 200);
    v1::Command exec;
    exec.mutable_containers_exec()->set_id("gk-sandboxed");
    exec.mutable_containers_exec()->set_user("1000");
    exec.mutable_containers_exec()->add_cmd("cat");
    exec.mutable_containers_exec()->add_cmd("/data/f");
    GatekeeperAnswer executed = expect("exec", exec, 200);
    if (!absl::StrContains(executed.body, "hi\\n")) absl::StrAppend(&errors, "exec output: ", executed.body, "\n");
    v1::Command logs;
    logs.mutable_containers_logs()->set_id("gk-sandboxed");
    expect("logs", logs, 200);
    v1::Command stats;
    stats.mutable_host_stats();
    expect("host_stats", stats, 200);
    v1::Command info;
    info.mutable_host_info();
    expect("host_info", info, 200);
    v1::Command restart;
    restart.mutable_containers_restart()->set_id("gk-sandboxed");
    restart.mutable_containers_restart()->set_timeout_seconds(1);
    expect("restart", restart, 200);
    v1::Command stop;
    stop.mutable_containers_stop()->set_id("gk-sandboxed");
    stop.mutable_containers_stop()->set_timeout_seconds(1);
    expect("stop", stop, 200);
    v1::Command del;
    del.mutable_containers_delete()->set_id("gk-sandboxed");
    expect("delete", del, 200);
    v1::Command volume;
    volume.mutable_volumes_create()->set_name("gk-vol");
    expect("volume create", volume, 201);
    v1::Command volume_bad;
    volume_bad.mutable_volumes_create()->set_name("gk-vol-bad");
    v1::KeyValue* o = volume_bad.mutable_volumes_create()->add_options();
    o->set_key("device");
    o->set_value("/etc");
    expect("volume create o=device", volume_bad, 403);
    v1::Command volume_inspect;
    volume_inspect.mutable_volumes_inspect()->set_name("gk-vol");
    expect("volume inspect", volume_inspect, 200);
    v1::Command volume_del;
    volume_del.mutable_volumes_delete()->set_name("gk-vol");
    expect("volume delete", volume_del, 200);
    v1::Command network;
    network.mutable_networks_create()->set_name("default.gk");
    network.mutable_networks_create()->set_namespace_("default");
    expect("network create", network, 201);
    v1::Command networks;
    networks.mutable_networks_list();
    expect("networks list", networks, 200);
    v1::Command network_del;
    network_del.mutable_networks_delete()->set_name("default.gk");
    expect("network delete", network_del, 200);
    PodmanCall many;
    many.mutable_command()->mutable_images_list();
    privsep::UniqueFd no_stream;
    gatekeeper.Call(many, &no_stream);
    if (gatekeeper.Next().http_status() != 409) absl::StrAppend(&errors, "next: not 409\n");
    return errors;
  });
  EXPECT_TRUE(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0)
      << "wait status " << r.wait_status << " (signal " << (WIFSIGNALED(r.wait_status) ? WTERMSIG(r.wait_status) : 0)
      << "; see dmesg | grep 1326)\n"
      << r.output;
  unlink((prefix + "/escape").c_str());
  EXPECT_EQ(system(absl::StrCat("rm -rf ", prefix).c_str()), 0);
}

}  // namespace
}  // namespace coolify::podman
