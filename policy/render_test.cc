#include "policy/render.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "policy/api_json.h"
#include "policy/engine.h"
#include "policy/policy_file.h"
#include "policy/pretty_json.h"

namespace coolify::policy {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr char kGoldenDir[] = "policy/testdata/render";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

v1::ContainerSpec Spec(const std::string& text) {
  v1::ContainerSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString("image: 'nginx' " + text, &spec))
      << text;
  return spec;
}

// The rendered text, parsed; it must be one JSON object.
json::object Render(const v1::ContainerSpec& spec, const v1::Policy& policy) {
  absl::StatusOr<std::string> out = RenderSpecGenerator(spec, policy);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return json::object();
  json::value parsed = json::parse(*out);
  EXPECT_TRUE(parsed.is_object()) << *out;
  return parsed.is_object() ? parsed.as_object() : json::object();
}

// Each NAME.request.json renders to NAME.specgen.json; NAME starting with "restricted_"
// is rendered under the restricted profile, every other under baseline. Regenerate a
// golden with `coolify-policy render [--profile restricted] < NAME.request.json`.
TEST(RenderGoldenTest, EveryRequestRendersToItsGolden) {
  int cases = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(kGoldenDir)) {
    const std::string file = entry.path().filename().string();
    const std::string suffix = ".request.json";
    if (file.size() <= suffix.size() || file.substr(file.size() - suffix.size()) != suffix)
      continue;
    const std::string name = file.substr(0, file.size() - suffix.size());
    SCOPED_TRACE(name);
    ++cases;
    const absl::StatusOr<v1::ContainerSpec> spec = ParseContainerSpecJson(ReadFile(entry.path()));
    ASSERT_TRUE(spec.ok()) << spec.status();
    const v1::Policy policy =
        *EmbeddedPolicy(name.rfind("restricted_", 0) == 0 ? kRestrictedProfile : kBaselineProfile);
    const absl::StatusOr<Verdict> verdict = Evaluate(*spec, policy, {});
    ASSERT_TRUE(verdict.ok() && verdict->allowed()) << name << " must be allowed";
    const json::object rendered = Render(*spec, policy);
    const json::value golden =
        json::parse(ReadFile(fs::path(kGoldenDir) / (name + ".specgen.json")));
    EXPECT_EQ(json::value(rendered), golden) << "rendered:\n" << PrettyJson(rendered);
  }
  EXPECT_GE(cases, 4);
}

TEST(RenderTest, SecurityFieldsAreAlwaysExplicit) {
  const json::object out = Render(Spec(""), *EmbeddedPolicy(kBaselineProfile));
  EXPECT_EQ(out.at("privileged"), false);
  EXPECT_EQ(out.at("no_new_privileges"), true);
  EXPECT_EQ(out.at("cap_drop"), json::array({"ALL"}));
  EXPECT_EQ(out.at("seccomp_policy"), "default");
  EXPECT_EQ(out.at("seccomp_profile_path"), "/usr/share/containers/seccomp.json");
  for (const char* ns : {"pidns", "ipcns", "utsns", "cgroupns"}) {
    EXPECT_EQ(out.at(ns).at("nsmode"), "private") << ns;
  }
  EXPECT_EQ(out.at("userns").at("nsmode"), "host");
  EXPECT_EQ(out.at("netns").at("nsmode"), "bridge");
  for (const char* empty : {"selinux_opts", "mask", "unmask", "procfs_opts", "devices"}) {
    EXPECT_EQ(out.at(empty), json::array()) << empty;
  }
  EXPECT_EQ(out.at("annotations"), json::object());
  EXPECT_EQ(out.at("env_host"), false);
  EXPECT_EQ(out.at("httpproxy"), false);
  EXPECT_EQ(out.at("publish_image_ports"), false);
  EXPECT_EQ(out.at("systemd"), "false");
  EXPECT_EQ(out.at("oci_runtime"), "crun");
  EXPECT_EQ(out.at("image"), "docker.io/library/nginx:latest");
  EXPECT_FALSE(out.contains("apparmor_profile"));
}

TEST(RenderTest, NetworkAliasesAndSearchDomainsReachTheSpecGenerator) {
  const json::object out = Render(Spec("networks { network: 'coolify-default-mesh' aliases: 'web' } "
                                       "dns_search: 'default.coolify.internal'"),
                                  *EmbeddedPolicy(kBaselineProfile));
  EXPECT_EQ(out.at("Networks").at("coolify-default-mesh").at("aliases"), json::array({"web"}));
  EXPECT_EQ(out.at("dns_search"), json::array({"default.coolify.internal"}));
  EXPECT_FALSE(Render(Spec(""), *EmbeddedPolicy(kBaselineProfile)).contains("dns_search"));
}

TEST(RenderTest, CapabilitySetIsExact) {
  const v1::Policy baseline = *EmbeddedPolicy(kBaselineProfile);
  EXPECT_EQ(Render(Spec("cap_drop: 'all' cap_add: 'chown'"), baseline).at("cap_add"),
            json::array({"CAP_CHOWN"}));
  EXPECT_EQ(Render(Spec("cap_drop: ['CHOWN', 'cap_dac_override', 'FOWNER', 'FSETID', 'KILL', "
                        "'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', "
                        "'SETFCAP']"),
                   baseline)
                .at("cap_add"),
            json::array());
  const v1::Policy restricted = *EmbeddedPolicy(kRestrictedProfile);
  EXPECT_EQ(Render(Spec("user: '1' read_only_root: true"), restricted).at("cap_add"),
            json::array());
}

TEST(RenderTest, PrivilegedOnlyWhenThePolicyAllowsIt) {
  v1::Policy policy = *EmbeddedPolicy(kBaselineProfile);
  EXPECT_EQ(Render(Spec("privileged: true"), policy).at("privileged"), false);
  policy.set_allow_privileged(true);
  EXPECT_EQ(Render(Spec("privileged: true"), policy).at("privileged"), true);
}

TEST(RenderTest, HostNetworkAndPolicyConfinement) {
  v1::Policy policy = *EmbeddedPolicy(kBaselineProfile);
  policy.set_apparmor_profile("coolify-containers");
  policy.set_user_namespace("auto");
  policy.set_seccomp_profile_path("/etc/coolify/seccomp.json");
  const json::object out = Render(Spec("host_network: true runtime: 'runc'"), policy);
  EXPECT_EQ(out.at("netns").at("nsmode"), "host");
  EXPECT_FALSE(out.contains("Networks"));
  EXPECT_EQ(out.at("apparmor_profile"), "coolify-containers");
  EXPECT_EQ(out.at("userns").at("nsmode"), "auto");
  EXPECT_EQ(out.at("seccomp_profile_path"), "/etc/coolify/seccomp.json");
  EXPECT_EQ(out.at("oci_runtime"), "runc");
}

TEST(RenderTest, DevicesAndResourceCaps) {
  const v1::Policy restricted = *EmbeddedPolicy(kRestrictedProfile);
  const json::object out =
      Render(Spec("devices { host_path: '/dev//fuse' } devices { host_path: '/dev/net/tun' "
                  "container_path: '/dev/tun' permissions: 'r' }"),
             restricted);
  EXPECT_EQ(
      out.at("devices"),
      json::parse(R"([{"path": "/dev/fuse:/dev/fuse:rw"}, {"path": "/dev/net/tun:/dev/tun:r"}])"));
  EXPECT_EQ(
      out.at("resource_limits"),
      json::parse(R"({"memory": {"limit": 8589934592}, "cpu": {"quota": 400000, "period": 100000},
                            "pids": {"limit": 4096}})"));
}

TEST(RenderTest, NoRuleForTheNamespaceMeansNoDefaultNetwork) {
  v1::Policy policy = *EmbeddedPolicy(kBaselineProfile);
  policy.mutable_namespaces()->RemoveLast();
  EXPECT_EQ(RenderSpecGenerator(Spec("namespace: 'alpha'"), policy).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(RenderTest, BindSourcesAreWrittenAsResolved) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/renderXXXXXX";
  ASSERT_NE(mkdtemp(templ.data()), nullptr);
  const fs::path root = templ;
  fs::create_directories(root / "data/coolify/volumes/web/real");
  fs::create_symlink("real", root / "data/coolify/volumes/web/current");
  std::unique_ptr<PinningHostPathResolver> resolver =
      *PinningHostPathResolver::Create(root.string());
  const v1::ContainerSpec spec =
      Spec("binds { source: '/data/coolify/volumes/web/current/' destination: '/srv' }");
  absl::StatusOr<std::string> out =
      RenderSpecGenerator(spec, *EmbeddedPolicy(kBaselineProfile), resolver.get());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(json::parse(*out).at("mounts").at(0).at("source"), "/data/coolify/volumes/web/real");
  EXPECT_NE(resolver->Pinned("/data/coolify/volumes/web/current"), nullptr);
  fs::remove_all(root);
}

TEST(RenderExecConfigTest, NeverPrivileged) {
  v1::ContainersExec request;
  request.set_id("web");
  request.add_cmd("nginx");
  request.add_cmd("-s");
  request.add_cmd("reload");
  v1::KeyValue* env = request.add_env();
  env->set_key("A");
  env->set_value("b=c");
  request.set_user("1000");
  request.set_workdir("/app");
  request.set_tty(true);
  EXPECT_EQ(json::parse(RenderExecConfig(request)), json::parse(R"({
    "AttachStdout": true, "AttachStderr": true, "Cmd": ["nginx", "-s", "reload"],
    "Env": ["A=b=c"], "Tty": true, "Privileged": false, "User": "1000", "WorkingDir": "/app"})"));
}

}  // namespace
}  // namespace coolify::policy
