#include "policy/lint.h"

#include <string>
#include <vector>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "policy/policy_file.h"

namespace coolify::policy {
namespace {

// "severity rule=value" per finding.
std::vector<std::string> Lint(const v1::Policy& policy) {
  std::vector<std::string> out;
  for (const Finding& f : LintPolicy(policy)) {
    EXPECT_FALSE(f.explanation.empty());
    out.push_back(std::string(SeverityName(f.severity)) + " " + f.rule + "=" + f.value);
  }
  return out;
}

v1::Policy BaselineWith(const std::string& text) {
  v1::Policy policy = *EmbeddedPolicy(kBaselineProfile);
  EXPECT_TRUE(google::protobuf::TextFormat::MergeFromString(text, &policy)) << text;
  EXPECT_TRUE(ValidatePolicy(policy).ok()) << ValidatePolicy(policy);
  return policy;
}

bool Has(const std::vector<std::string>& findings, const std::string& finding) {
  for (const std::string& f : findings) {
    if (f == finding) return true;
  }
  return false;
}

TEST(LintTest, ShippedProfilesHaveNoDanger) {
  for (std::string_view profile : {kBaselineProfile, kRestrictedProfile}) {
    for (const Finding& f : LintPolicy(*EmbeddedPolicy(profile))) {
      EXPECT_NE(f.severity, Severity::kDanger) << profile << ": " << f.rule << " " << f.explanation;
    }
  }
  const std::vector<std::string> baseline = Lint(*EmbeddedPolicy(kBaselineProfile));
  EXPECT_TRUE(Has(baseline, "note host_paths[0].prefix=/data/coolify/volumes"));
  EXPECT_TRUE(Has(baseline, "note allowed_registries="));
  EXPECT_FALSE(Has(baseline, "note resource_caps.max_memory_bytes=0"));
}

TEST(LintTest, DangerousAllowances) {
  const std::vector<std::string> findings = Lint(BaselineWith(R"pb(
    allow_privileged: true
    allow_host_network: true
    allowed_capabilities: [ "ALL", "SYS_ADMIN", "NET_RAW", "SYS_NICE" ]
    host_paths { prefix: "/" read_only: true }
    host_paths { prefix: "/etc" read_only: true }
    host_paths { prefix: "/var" }
    host_paths { prefix: "/run/podman" }
    allowed_runtimes: [ "runsc", "my-runtime" ]
    allowed_devices { host_path: "/dev/sda" }
    allowed_devices { host_path: "/dev/fuse" permissions: "rwm" }
    allowed_sysctls: [ "kernel.panic", "kernel.shmmax", "net.core.somaxconn" ]
    volume_drivers { driver: "nfs" }
    network_drivers { driver: "macvlan" }
  )pb"));
  for (const char* expected : {
           "danger allow_privileged=true",
           "danger allow_host_network=true",
           "danger allowed_capabilities[2]=ALL",
           "danger allowed_capabilities[3]=SYS_ADMIN",
           "warning allowed_capabilities[4]=NET_RAW",
           "warning allowed_capabilities[5]=SYS_NICE",
           "danger host_paths[2].prefix=/",
           "danger host_paths[3].prefix=/etc",
           "danger host_paths[4].prefix=/var",
           "danger host_paths[5].prefix=/run/podman",
           "warning allowed_runtimes[3]=my-runtime",
           "danger allowed_devices[0]=/dev/sda",
           "warning allowed_devices[1]=/dev/fuse",
           "warning allowed_devices[1].permissions=rwm",
           "danger allowed_sysctls[0]=kernel.panic",
           "warning allowed_sysctls[1]=kernel.shmmax",
           "warning allowed_sysctls[2]=net.core.somaxconn",
           "warning volume_drivers[1]=nfs",
           "danger network_drivers[1]=macvlan",
       }) {
    EXPECT_TRUE(Has(findings, expected)) << expected;
  }
  EXPECT_FALSE(Has(findings, "warning allowed_runtimes[2]=runsc"));
  // Most severe first.
  EXPECT_EQ(findings.front().rfind("danger", 0), 0u);
  EXPECT_EQ(findings.back().rfind("note", 0), 0u);
}

TEST(LintTest, HostPathVolumeOptionsAndSharedNamespacePatterns) {
  v1::Policy policy = BaselineWith(R"pb(
    namespaces { namespace: "alpha" default_network: "shared" networks: "shared" }
  )pb");
  v1::DriverRule* local = policy.mutable_volume_drivers(0);
  local->add_options()->set_key("device");
  v1::NamespaceRule* any = policy.mutable_namespaces(1);
  any->add_networks("shared");
  any->add_network_prefixes("app-");
  v1::PortRange* ports = any->add_host_ports();
  ports->set_first(80);
  ports->set_last(80);
  ASSERT_TRUE(ValidatePolicy(policy).ok()) << ValidatePolicy(policy);
  const std::vector<std::string> findings = Lint(policy);
  EXPECT_TRUE(Has(findings, "danger volume_drivers[0].options[2]=device"));
  EXPECT_TRUE(Has(findings, "danger namespaces[1].networks=shared"));
  EXPECT_TRUE(Has(findings, "danger namespaces[1].network_prefixes=app-"));
  EXPECT_TRUE(Has(findings, "danger namespaces[1].host_ports=80-80"));
  // A fixed name in one namespace's own rule is that namespace's business.
  for (const std::string& f : findings) EXPECT_EQ(f.find("namespaces[2]"), std::string::npos) << f;
}

}  // namespace
}  // namespace coolify::policy
