#include "policy/engine.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "policy/policy_file.h"

namespace coolify::policy {
namespace {

namespace fs = std::filesystem;

v1::ContainerSpec Spec(const std::string& text) {
  v1::ContainerSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString("image: 'nginx:alpine' " + text, &spec))
      << text;
  return spec;
}

v1::Policy Baseline() { return *EmbeddedPolicy(kBaselineProfile); }
v1::Policy Restricted() { return *EmbeddedPolicy(kRestrictedProfile); }

// Baseline with `text` merged in (repeated fields append), validated.
v1::Policy BaselineWith(const std::string& text) {
  v1::Policy policy = Baseline();
  EXPECT_TRUE(google::protobuf::TextFormat::MergeFromString(text, &policy)) << text;
  EXPECT_TRUE(ValidatePolicy(policy).ok()) << ValidatePolicy(policy);
  return policy;
}

// "rule@field" for each violation, in order; "invalid: <message>" for a 400.
std::vector<std::string> Violations(const v1::ContainerSpec& spec, const v1::Policy& policy,
                                    const CallerContext& caller = {}) {
  const absl::StatusOr<Verdict> verdict = Evaluate(spec, policy, caller);
  if (!verdict.ok()) return {"invalid: " + std::string(verdict.status().message())};
  std::vector<std::string> out;
  for (const Violation& v : verdict->violations) out.push_back(v.rule + "@" + v.field);
  return out;
}

using Strings = std::vector<std::string>;

TEST(EvaluateTest, BaselineAllowsAnOrdinaryContainer) {
  EXPECT_EQ(Violations(Spec(R"pb(
                         name: "web"
                         env { key: "A" value: "b" }
                         networks { network: "coolify-default-mesh" aliases: "web" }
                         networks { network: "default.internal" }
                         volumes { volume: "data" destination: "/data" }
                         binds { source: "/data/coolify/volumes/web" destination: "/srv" }
                         binds {
                           source: "/usr/share/zoneinfo"
                           destination: "/usr/share/zoneinfo"
                           read_only: true
                         }
                         ports { host_port: 443 container_port: 8443 }
                         cap_add: [ "CHOWN", "cap_audit_write", "mknod" ]
                         cap_drop: [ "ALL" ]
                         sysctls { key: "net.ipv4.tcp_syncookies" value: "1" }
                         resources { memory_bytes: 268435456 pids_limit: 512 }
                       )pb"),
                       Baseline()),
            Strings{});
}

TEST(EvaluateTest, Privileged) {
  EXPECT_EQ(Violations(Spec("privileged: true"), Baseline()),
            Strings{"allow_privileged@privileged"});
  EXPECT_EQ(Violations(Spec("privileged: true"), BaselineWith("allow_privileged: true")),
            Strings{});
}

TEST(EvaluateTest, CapabilitiesInEverySpelling) {
  for (const char* spelling : {"SYS_ADMIN", "sys_admin", "CAP_SYS_ADMIN", "cap_sys_admin",
                               "Cap_Sys_Admin", " SYS_ADMIN ", "\tcap_sys_admin\n", "ALL", "all",
                               "All", " CAP_ALL", "NET_RAW", "net_admin", "CAP_SYS_PTRACE"}) {
    SCOPED_TRACE(spelling);
    v1::ContainerSpec spec = Spec("");
    spec.add_cap_add(spelling);
    EXPECT_EQ(Violations(spec, Baseline()), Strings{"allowed_capabilities@cap_add[0]"});
  }
}

TEST(EvaluateTest, CapabilityAllowances) {
  // Podman's defaults may be re-added; the policy's extras too.
  EXPECT_EQ(Violations(Spec("cap_add: ['chown', 'CAP_KILL', 'AUDIT_WRITE']"), Baseline()),
            Strings{});
  // Restricted drops the defaults: only NET_BIND_SERVICE may come back.
  EXPECT_EQ(
      Violations(Spec("user: '1000' read_only_root: true cap_add: ['net_bind_service', 'CHOWN']"),
                 Restricted()),
      Strings{"allowed_capabilities@cap_add[1]"});
  const v1::Policy all = BaselineWith("allowed_capabilities: 'ALL'");
  EXPECT_EQ(Violations(Spec("cap_add: ['all', 'sys_admin']"), all), Strings{});
  const v1::Policy raw = BaselineWith("allowed_capabilities: 'NET_RAW'");
  EXPECT_EQ(Violations(Spec("cap_add: ['cap_net_raw', 'ALL']"), raw),
            Strings{"allowed_capabilities@cap_add[1]"});
}

TEST(EvaluateTest, HostPathsLexically) {
  const struct {
    const char* source;
    bool read_only;
    const char* rule;  // "" = allowed
  } cases[] = {
      {"/data/coolify/volumes/app", false, ""},
      {"/data/coolify/volumes", false, "host_paths.writable_root"},
      {"/data/coolify/volumes", true, ""},
      {"/data/coolify/volumes/app/..", false, "host_paths.writable_root"},
      {"/data/coolify/volumes/app/../other/", false, ""},
      {"//data//coolify/./volumes/app", false, ""},
      {"/data/coolify/volumes/../../../etc", false, "host_paths"},
      {"/data/coolify/volumes/app/../../secrets", false, "host_paths"},
      {"/data/coolify/volumesX", false, "host_paths"},
      {"/data/coolify", false, "host_paths"},
      {"/", true, "host_paths"},
      {"/etc", true, "host_paths"},
      {"/var/run/podman/podman.sock", false, "host_paths"},
      {"/run/podman/podman.sock", false, "host_paths"},
      {"/usr/share/zoneinfo/Europe/Berlin", true, ""},
      {"/usr/share/zoneinfo/Europe/Berlin", false, "host_paths.read_only"},
      {"/usr/share/zoneinfo/../../../etc/shadow", true, "host_paths"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.source);
    v1::ContainerSpec spec = Spec("");
    v1::BindMount* bind = spec.add_binds();
    bind->set_source(c.source);
    bind->set_destination("/mnt");
    bind->set_read_only(c.read_only);
    const Strings expected =
        *c.rule == '\0' ? Strings{} : Strings{std::string(c.rule) + "@binds[0].source"};
    EXPECT_EQ(Violations(spec, Baseline()), expected);
  }
}

TEST(EvaluateTest, OverlappingPrefixesAllowWritesIfAnyDoes) {
  const v1::Policy policy = BaselineWith(
      "host_paths { prefix: '/srv' read_only: true } host_paths { prefix: '/srv/rw' }");
  EXPECT_EQ(Violations(Spec("binds { source: '/srv/rw/x' destination: '/x' }"), policy), Strings{});
  EXPECT_EQ(Violations(Spec("binds { source: '/srv/ro' destination: '/x' }"), policy),
            Strings{"host_paths.read_only@binds[0].source"});
}

// A temporary tree standing in for the host's root, with symlinks planted inside the
// allowed prefix /data.
class HostPathResolutionTest : public testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/hostXXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    root_ = templ;
    fs::create_directories(root_ / "data/app");
    fs::create_directories(root_ / "etc");
    fs::create_directories(root_ / "ro");
    fs::create_symlink("/etc", root_ / "data/to-etc");
    fs::create_symlink("../etc", root_ / "data/up");
    fs::create_symlink("app", root_ / "data/alias");
    fs::create_symlink("/ro", root_ / "data/to-ro");
    fs::create_symlink("/data/app", root_ / "ro/back");
    policy_ =
        BaselineWith("host_paths { prefix: '/data' } host_paths { prefix: '/ro' read_only: true }");
    resolver_ = *PinningHostPathResolver::Create(root_.string());
    caller_.host_paths = resolver_.get();
  }
  void TearDown() override { fs::remove_all(root_); }

  Strings Check(const char* source, bool read_only = false) {
    v1::ContainerSpec spec = Spec("");
    v1::BindMount* bind = spec.add_binds();
    bind->set_source(source);
    bind->set_destination("/mnt");
    bind->set_read_only(read_only);
    return Violations(spec, policy_, caller_);
  }

  fs::path root_;
  v1::Policy policy_;
  std::unique_ptr<PinningHostPathResolver> resolver_;
  CallerContext caller_;
};

TEST_F(HostPathResolutionTest, SymlinksCannotLeadOutOfAllowedPrefixes) {
  EXPECT_EQ(Check("/data/app"), Strings{});
  EXPECT_EQ(Check("/data/alias"), Strings{});
  EXPECT_EQ(Check("/data/to-etc"), Strings{"host_paths@binds[0].source"});
  EXPECT_EQ(Check("/data/up"), Strings{"host_paths@binds[0].source"});
  // ".." is applied lexically before resolution, as in the path sent to Podman: this is
  // /data/data/app, which does not exist.
  EXPECT_EQ(Check("/data/to-etc/../data/app"), Strings{"host_paths@binds[0].source"});
  EXPECT_EQ(Check("/data/to-ro"), Strings{"host_paths.read_only@binds[0].source"});
  EXPECT_EQ(Check("/data/to-ro", /*read_only=*/true), Strings{});
  EXPECT_EQ(Check("/ro/back", /*read_only=*/true), Strings{});
  EXPECT_EQ(Check("/data/missing"), Strings{"host_paths@binds[0].source"});
  // A symlink to the writable root is the root.
  EXPECT_EQ(Check("/data/app/../alias/.."), Strings{"host_paths.writable_root@binds[0].source"});
}

TEST_F(HostPathResolutionTest, ReasonNamesWhereTheSymlinkLeads) {
  v1::ContainerSpec spec = Spec("binds { source: '/data/to-etc' destination: '/x' }");
  const absl::StatusOr<Verdict> verdict = Evaluate(spec, policy_, caller_);
  ASSERT_TRUE(verdict.ok());
  ASSERT_EQ(verdict->violations.size(), 1u);
  EXPECT_EQ(verdict->violations[0].value, "/data/to-etc");
  EXPECT_EQ(
      verdict->violations[0].reason,
      "host path \"/data/to-etc\" resolves to \"/etc\", which is outside every allowed host path");
}

TEST(EvaluateTest, HostNetworkOnlyIfThePolicyAllowsIt) {
  const v1::ContainerSpec spec = Spec("host_network: true");
  EXPECT_EQ(Violations(spec, Baseline()), Strings{"allow_host_network@host_network"});
  EXPECT_EQ(Violations(spec, BaselineWith("allow_host_network: true")), Strings{});
}

TEST(EvaluateTest, Devices) {
  const v1::Policy fuse = BaselineWith("allowed_devices { host_path: '/dev/fuse' }");
  EXPECT_EQ(Violations(Spec("devices { host_path: '/dev/fuse' }"), Baseline()),
            Strings{"allowed_devices@devices[0].host_path"});
  EXPECT_EQ(Violations(Spec("devices { host_path: '/dev/fuse' }"), fuse), Strings{});
  EXPECT_EQ(Violations(Spec("devices { host_path: '/dev//fuse/' permissions: 'r' }"), fuse),
            Strings{});
  EXPECT_EQ(Violations(Spec("devices { host_path: '/dev/fuse' permissions: 'rwm' }"), fuse),
            Strings{"allowed_devices@devices[0].permissions"});
  EXPECT_EQ(Violations(Spec("devices { host_path: '/dev/fuse/../sda' }"), fuse),
            Strings{"allowed_devices@devices[0].host_path"});
}

TEST(EvaluateTest, Runtimes) {
  EXPECT_EQ(Violations(Spec("runtime: 'runsc'"), Baseline()), Strings{"allowed_runtimes@runtime"});
  EXPECT_EQ(Violations(Spec("runtime: 'runsc'"), BaselineWith("allowed_runtimes: 'runsc'")),
            Strings{});
  EXPECT_EQ(Violations(Spec("runtime: 'runc'"), Baseline()), Strings{});
  EXPECT_EQ(Violations(Spec("runtime: 'kata'"), Baseline()), Strings{"allowed_runtimes@runtime"});
  EXPECT_EQ(Violations(Spec("runtime: '/tmp/evil'"), Baseline())[0].rfind("invalid: runtime:", 0),
            0u);
}

TEST(EvaluateTest, Sysctls) {
  for (std::string_view safe : kSafeSysctls) {
    v1::ContainerSpec spec = Spec("");
    v1::KeyValue* kv = spec.add_sysctls();
    kv->set_key(std::string(safe));
    kv->set_value("1");
    EXPECT_EQ(Violations(spec, Baseline()), Strings{}) << safe;
  }
  EXPECT_EQ(Violations(Spec("sysctls { key: 'kernel.panic' value: '1' }"), Baseline()),
            Strings{"allowed_sysctls@sysctls[0].key"});
  EXPECT_EQ(Violations(Spec("sysctls { key: 'net.ipv4.ip_forward' value: '1' }"), Baseline()),
            Strings{"allowed_sysctls@sysctls[0].key"});
  EXPECT_EQ(Violations(Spec("sysctls { key: 'net.ipv4.ip_forward' value: '1' }"),
                       BaselineWith("allowed_sysctls: 'net.ipv4.ip_forward'")),
            Strings{});
  EXPECT_EQ(
      Violations(Spec("host_network: true sysctls { key: 'net.ipv4.tcp_syncookies' value: '0' }"),
                 BaselineWith("allow_host_network: true")),
      Strings{"allowed_sysctls@sysctls[0].key"});
}

TEST(EvaluateTest, NamespacesNetworksAndPorts) {
  const v1::Policy policy = Baseline();
  EXPECT_EQ(Violations(Spec("namespace: 'alpha' networks { network: 'coolify-alpha-mesh' } "
                            "networks { network: 'alpha.db' }"),
                       policy),
            Strings{});
  EXPECT_EQ(
      Violations(Spec("namespace: 'alpha' networks { network: 'coolify-beta-mesh' }"), policy),
      Strings{"namespaces.networks@networks[0].network"});
  EXPECT_EQ(Violations(Spec("namespace: 'alpha' networks { network: 'beta.db' }"), policy),
            Strings{"namespaces.networks@networks[0].network"});
  EXPECT_EQ(Violations(Spec("namespace: 'alpha' networks { network: 'alpha.' }"), policy),
            Strings{"namespaces.networks@networks[0].network"});
  EXPECT_EQ(Violations(Spec("namespace: 'alpha' networks { network: 'podman' }"), policy),
            Strings{"namespaces.networks@networks[0].network"});
  EXPECT_EQ(Violations(Spec("networks { network: 'coolify-alpha-mesh' }"), policy),
            Strings{"namespaces.networks@networks[0].network"});
  // Tenants publish nothing; the default namespace its listed ports.
  EXPECT_EQ(
      Violations(Spec("namespace: 'alpha' ports { host_port: 8080 container_port: 80 }"), policy),
      (Strings{"namespaces.host_ports@ports[0].host_port",
               "namespaces.host_ips@ports[0].host_ip"}));
  EXPECT_EQ(Violations(Spec("ports { host_port: 80 container_port: 80 }"), policy), Strings{});
  EXPECT_EQ(Violations(Spec("ports { host_port: 22 container_port: 22 }"), policy),
            Strings{"namespaces.host_ports@ports[0].host_port"});
  EXPECT_EQ(
      Violations(Spec("ports { host_ip: '127.0.0.1' host_port: 8080 container_port: 80 }"), policy),
      Strings{"namespaces.host_ips@ports[0].host_ip"});
}

TEST(EvaluateTest, CallerAndHostNamespaces) {
  CallerContext caller;
  caller.namespace_name = "alpha";
  caller.host_namespaces = {"default", "alpha"};
  EXPECT_EQ(Violations(Spec("namespace: 'alpha'"), Baseline(), caller), Strings{});
  EXPECT_EQ(Violations(Spec("namespace: 'beta'"), Baseline(), caller),
            (Strings{"caller_namespace@namespace", "host_namespaces@namespace"}));
  EXPECT_EQ(Violations(Spec(""), Baseline(), caller), Strings{"caller_namespace@namespace"});
  v1::Policy only_default = Baseline();
  only_default.mutable_namespaces()->RemoveLast();
  EXPECT_EQ(Violations(Spec("namespace: 'alpha'"), only_default), Strings{"namespaces@namespace"});
  EXPECT_EQ(Violations(Spec("namespace: 'alpha' networks { network: 'alpha.x' } "
                            "ports { host_port: 8080 container_port: 80 }"),
                       only_default),
            (Strings{"namespaces@namespace", "namespaces.networks@networks[0].network",
                     "namespaces.host_ports@ports[0].host_port",
                     "namespaces.host_ips@ports[0].host_ip"}));
}

TEST(EvaluateTest, Registries) {
  const v1::Policy policy =
      BaselineWith("allowed_registries: 'ghcr.io' allowed_registries: 'localhost'");
  v1::ContainerSpec spec = Spec("");
  spec.set_image("ghcr.io/org/app:1");
  EXPECT_EQ(Violations(spec, policy), Strings{});
  spec.set_image("localhost/tenant/web:v2");
  EXPECT_EQ(Violations(spec, policy), Strings{});
  spec.set_image("nginx");  // docker.io/library/nginx, whatever registries.conf would search.
  EXPECT_EQ(Violations(spec, policy), Strings{"allowed_registries@image"});
  spec.set_image("ghcr.io.evil.com/org/app");
  EXPECT_EQ(Violations(spec, policy), Strings{"allowed_registries@image"});
  spec.set_image("localhost:5000/app");
  EXPECT_EQ(Violations(spec, policy), Strings{"allowed_registries@image"});
  EXPECT_EQ(Violations(spec, Baseline()), Strings{});
}

TEST(EvaluateTest, ResourceCaps) {
  const v1::ContainerSpec spec = Spec(
      "user: '1000' read_only_root: true "
      "resources { memory_bytes: 17179869184 cpu_millis: 8000 pids_limit: 5000 }");
  EXPECT_EQ(Violations(spec, Restricted()),
            (Strings{"resource_caps.max_memory_bytes@resources.memory_bytes",
                     "resource_caps.max_cpu_millis@resources.cpu_millis",
                     "resource_caps.max_pids@resources.pids_limit"}));
  EXPECT_EQ(
      Violations(Spec("user: '1000' read_only_root: true resources { memory_bytes: 8589934592 }"),
                 Restricted()),
      Strings{});
}

TEST(EvaluateTest, RestrictedProfileRequirements) {
  for (const char* user : {"", "root", "0", "0:0", "000", "nginx", "nobody:1000", "0:1000"}) {
    SCOPED_TRACE(user);
    v1::ContainerSpec spec = Spec("read_only_root: true");
    spec.set_user(user);
    EXPECT_EQ(Violations(spec, Restricted()), Strings{"restrictions.require_non_root_user@user"});
  }
  EXPECT_EQ(Violations(Spec("user: '1000:1000' read_only_root: true"), Restricted()), Strings{});
  EXPECT_EQ(Violations(Spec("user: '1000'"), Restricted()),
            Strings{"restrictions.require_read_only_root@read_only_root"});
  EXPECT_EQ(Violations(Spec("user: 'root'"), Baseline()), Strings{});
}

TEST(EvaluateTest, ReportsEveryViolationAtOnce) {
  const v1::ContainerSpec spec = Spec(R"pb(
    privileged: true
    cap_add: [ "SYS_ADMIN", "all" ]
    binds { source: "/etc" destination: "/host-etc" }
    host_network: true
    devices { host_path: "/dev/sda" }
    runtime: "runsc"
    sysctls { key: "kernel.core_pattern" value: "|/tmp/x" }
  )pb");
  EXPECT_EQ(Violations(spec, Baseline()),
            (Strings{"allow_privileged@privileged", "allowed_capabilities@cap_add[0]",
                     "allowed_capabilities@cap_add[1]", "host_paths@binds[0].source",
                     "allow_host_network@host_network", "allowed_devices@devices[0].host_path",
                     "allowed_runtimes@runtime", "allowed_sysctls@sysctls[0].key"}));
}

TEST(EvaluateTest, MalformedRequestsAreNotPolicyDenials) {
  const absl::StatusOr<Verdict> verdict =
      Evaluate(Spec("binds { source: 'etc' destination: '/x' }"), Baseline(), {});
  EXPECT_EQ(verdict.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(verdict.status().message(), "binds[0].source: \"etc\" is not absolute");
}

TEST(EvaluateTest, ViolationValuesAreEscaped) {
  v1::ContainerSpec spec = Spec("");
  spec.add_cap_add("sys_admin\n");
  const absl::StatusOr<Verdict> verdict = Evaluate(spec, Baseline(), {});
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(verdict->violations.at(0).value, "sys_admin\\n");
}

TEST(EvaluateVolumeCreateTest, DriversAndOptions) {
  v1::VolumesCreate request;
  request.set_name("data");
  EXPECT_TRUE(EvaluateVolumeCreate(request, Baseline())->allowed());
  request.add_options()->set_key("UID");
  request.mutable_options(0)->set_value("1000");
  EXPECT_TRUE(EvaluateVolumeCreate(request, Baseline())->allowed());
  // The local driver's bind options mount any host path: denied.
  v1::KeyValue* o = request.add_options();
  o->set_key("o");
  o->set_value("bind");
  v1::KeyValue* device = request.add_options();
  device->set_key("device");
  device->set_value("/etc");
  const Verdict verdict = *EvaluateVolumeCreate(request, Baseline());
  ASSERT_EQ(verdict.violations.size(), 2u);
  EXPECT_EQ(verdict.violations[0].rule, "volume_drivers.options");
  EXPECT_EQ(verdict.violations[0].field, "options[1].key");
  EXPECT_EQ(verdict.violations[1].field, "options[2].key");
  request.clear_options();
  request.set_driver("nfs-plugin");
  EXPECT_EQ(EvaluateVolumeCreate(request, Baseline())->violations.at(0).rule, "volume_drivers");
  request.set_name("../x");
  EXPECT_EQ(EvaluateVolumeCreate(request, Baseline()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EvaluateNetworkCreateTest, DriversOptionsAndNamespace) {
  v1::NetworksCreate request;
  request.set_name("alpha.web");
  request.set_namespace_("alpha");
  EXPECT_TRUE(EvaluateNetworkCreate(request, Baseline(), {})->allowed());
  v1::KeyValue* isolate = request.add_options();
  isolate->set_key("isolate");
  isolate->set_value("false");
  EXPECT_EQ(EvaluateNetworkCreate(request, Baseline(), {})->violations.at(0).field,
            "options[0].value");
  request.clear_options();
  request.set_driver("macvlan");
  EXPECT_EQ(EvaluateNetworkCreate(request, Baseline(), {})->violations.at(0).rule,
            "network_drivers");
  request.clear_driver();
  request.set_name("beta.web");
  EXPECT_EQ(EvaluateNetworkCreate(request, Baseline(), {})->violations.at(0).rule,
            "namespaces.networks");
  request.set_name("coolify-beta-mesh");
  EXPECT_FALSE(EvaluateNetworkCreate(request, Baseline(), {})->allowed());
  CallerContext beta;
  beta.namespace_name = "beta";
  request.set_name("alpha.web");
  EXPECT_EQ(EvaluateNetworkCreate(request, Baseline(), beta)->violations.at(0).rule,
            "caller_namespace");
}

TEST(EvaluateExecTest, RestrictedExecKeepsANonRootUser) {
  v1::ContainersExec request;
  request.set_id("web");
  request.add_cmd("sh");
  EXPECT_TRUE(EvaluateExec(request, Restricted(), "1000")->allowed());
  request.set_user("0");
  EXPECT_EQ(EvaluateExec(request, Restricted(), "1000")->violations.at(0).rule,
            "restrictions.require_non_root_user");
  request.set_user("root");
  EXPECT_FALSE(EvaluateExec(request, Restricted(), "1000")->allowed());
  request.set_user("1000");
  EXPECT_TRUE(EvaluateExec(request, Restricted(), "")->allowed());
  request.clear_cmd();
  EXPECT_EQ(EvaluateExec(request, Restricted(), "1000").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EvaluateExecTest, ExecAsRootOnlyWhereThePolicyAllowsIt) {
  v1::ContainersExec request;
  request.set_id("web");
  request.add_cmd("sh");
  // The container's own user: "" and names may be root.
  for (const char* own : {"", "0", "root", "nginx", "0:0"}) {
    const absl::StatusOr<Verdict> verdict = EvaluateExec(request, Baseline(), own);
    ASSERT_TRUE(verdict.ok());
    ASSERT_EQ(verdict->violations.size(), 1u) << own;
    EXPECT_EQ(verdict->violations[0].rule, "allow_exec_as_root") << own;
  }
  EXPECT_TRUE(EvaluateExec(request, Baseline(), "101")->allowed());
  EXPECT_TRUE(EvaluateExec(request, Baseline(), "101:101")->allowed());
  request.set_user("0");
  EXPECT_EQ(EvaluateExec(request, Baseline(), "101")->violations.at(0).rule, "allow_exec_as_root");
  request.set_user("1000");
  EXPECT_TRUE(EvaluateExec(request, Baseline(), "")->allowed());
  request.set_user("0");
  EXPECT_TRUE(EvaluateExec(request, BaselineWith("allow_exec_as_root: true"), "")->allowed());
}

TEST(EvaluateContainerAccessTest, OnlyCooldsOwnContainersInTheNamespaceAsked) {
  ContainerRecord ours{"web", std::string("coold"), std::string("alpha")};
  EXPECT_TRUE(EvaluateContainerAccess(ours, "alpha", Baseline())->allowed());
  EXPECT_EQ(EvaluateContainerAccess(ours, "beta", Baseline())->violations.at(0).rule, "namespace");
  EXPECT_EQ(EvaluateContainerAccess(ours, "", Baseline())->violations.at(0).rule, "namespace");
  ContainerRecord theirs{"db", std::string("someone"), std::string("alpha")};
  EXPECT_EQ(EvaluateContainerAccess(theirs, "alpha", Baseline())->violations.at(0).rule, "ownership");
  ContainerRecord half{"db", std::nullopt, std::string("alpha")};
  EXPECT_EQ(EvaluateContainerAccess(half, "alpha", Baseline())->violations.at(0).rule, "ownership");
  ContainerRecord unlabelled{"infra", std::nullopt, std::nullopt};
  EXPECT_EQ(EvaluateContainerAccess(unlabelled, "", Baseline())->violations.at(0).rule,
            "adopt_unlabelled");
  const v1::Policy adopting = BaselineWith("adopt_unlabelled: true");
  EXPECT_TRUE(EvaluateContainerAccess(unlabelled, "", adopting)->allowed());
  EXPECT_TRUE(EvaluateContainerAccess(unlabelled, "default", adopting)->allowed());
  EXPECT_EQ(EvaluateContainerAccess(unlabelled, "alpha", adopting)->violations.at(0).rule, "namespace");
  // Adopting never covers a container labelled as someone else's.
  EXPECT_EQ(EvaluateContainerAccess(theirs, "alpha", adopting)->violations.at(0).rule, "ownership");
  EXPECT_EQ(EvaluateContainerAccess(ours, "Bad Name", Baseline()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EvaluateTest, WorkdirDnsAndReservedPorts) {
  for (const char* dir : {"/proc/self/fd/7", "/proc", "/sys/fs", "/dev/fd/3", "/x/../proc/1/cwd"}) {
    v1::ContainerSpec spec = Spec("");
    spec.set_workdir(dir);
    EXPECT_EQ(Violations(spec, Baseline()), Strings{"workdir@workdir"}) << dir;
  }
  EXPECT_EQ(Violations(Spec("workdir: '/app'"), Baseline()), Strings{});
  EXPECT_EQ(Violations(Spec("dns: '10.210.0.1'"), Baseline()), Strings{});
  EXPECT_EQ(Violations(Spec("dns: '8.8.8.8'"), Baseline()), Strings{"namespaces.resolvers@dns[0]"});
  EXPECT_EQ(Violations(Spec("namespace: 'alpha' dns: '10.210.0.1'"), Baseline()),
            Strings{"namespaces.resolvers@dns[0]"});
  CallerContext host;
  host.management_ip = "10.0.0.5";
  host.reserved_host_ports = {8443};
  EXPECT_EQ(Violations(Spec("ports { host_port: 8443 container_port: 80 }"), Baseline(), host),
            Strings{"reserved_host_ports@ports[0].host_port"});
  // Whatever the namespace's rule says, these two are refused on their own rule too.
  EXPECT_EQ(Violations(Spec("ports { host_port: 53 container_port: 53 protocol: PORT_PROTOCOL_UDP }"), Baseline(), host),
            (Strings{"namespaces.host_ports@ports[0].host_port", "reserved_host_ports@ports[0].host_port"}));
  EXPECT_EQ(Violations(Spec("ports { host_ip: '10.0.0.5' host_port: 8080 container_port: 80 }"), Baseline(), host),
            (Strings{"namespaces.host_ips@ports[0].host_ip", "management_ip@ports[0].host_ip"}));
  EXPECT_EQ(Violations(Spec("ports { host_port: 8080 container_port: 80 }"), Baseline(), host), Strings{});
}

TEST(EvaluateTest, CooldsOwnLabelsAreReserved) {
  EXPECT_EQ(Violations(Spec("labels { key: 'coolify.coold.owner' value: 'coold' }"), Baseline()),
            Strings{"reserved_labels@labels[0].key"});
  EXPECT_EQ(Violations(Spec("labels { key: 'a' value: 'b' } labels { key: 'coolify.coold.namespace' value: 'x' }"),
                       Baseline()),
            Strings{"reserved_labels@labels[1].key"});
  EXPECT_EQ(Violations(Spec("labels { key: 'coolify.service' value: 'web' }"), Baseline()), Strings{});
}

TEST(EvaluateImagePullTest, RegistryAllowlist) {
  v1::ImagesPull request;
  request.set_ref("nginx:alpine");
  EXPECT_TRUE(EvaluateImagePull(request, Baseline())->allowed());
  const v1::Policy policy = BaselineWith("allowed_registries: 'localhost'");
  EXPECT_EQ(EvaluateImagePull(request, policy)->violations.at(0).rule, "allowed_registries");
  request.set_ref("localhost/tenant/web:v2");
  EXPECT_TRUE(EvaluateImagePull(request, policy)->allowed());
  request.set_ref("");
  EXPECT_EQ(EvaluateImagePull(request, policy).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coolify::policy
