#include "policy/policy_file.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace coolify::policy {
namespace {

// The smallest valid policy, as a base for the error cases.
constexpr char kMinimal[] = R"pb(name: "p"
                                 namespaces {
                                   namespace: "*"
                                   default_network: "coolify-{namespace}-mesh"
                                   networks: "coolify-{namespace}-mesh"
                                 }
)pb";

std::string ErrorFor(const std::string& text) {
  const absl::StatusOr<v1::Policy> policy = ParsePolicy("test.textproto", text);
  return policy.ok() ? "" : std::string(policy.status().message());
}

TEST(PolicyFileTest, EmbeddedProfilesParse) {
  for (std::string_view profile : {kBaselineProfile, kRestrictedProfile}) {
    SCOPED_TRACE(profile);
    const absl::StatusOr<v1::Policy> policy = EmbeddedPolicy(profile);
    ASSERT_TRUE(policy.ok()) << policy.status();
    EXPECT_EQ(policy->name(), profile);
    EXPECT_FALSE(policy->allow_privileged());
    EXPECT_FALSE(policy->allow_host_network());
  }
  const v1::Policy restricted = *EmbeddedPolicy(kRestrictedProfile);
  EXPECT_TRUE(restricted.restrictions().require_non_root_user());
  EXPECT_TRUE(restricted.restrictions().drop_all_capabilities());
  EXPECT_TRUE(restricted.restrictions().require_read_only_root());
  EXPECT_EQ(EmbeddedPolicy("permissive").status().code(), absl::StatusCode::kNotFound);
}

TEST(PolicyFileTest, DefaultsFillWhatIsLeftOut) {
  const absl::StatusOr<v1::Policy> policy = ParsePolicy("p", kMinimal);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(std::vector<std::string>(policy->allowed_runtimes().begin(),
                                     policy->allowed_runtimes().end()),
            (std::vector<std::string>{"runc", "crun"}));
  EXPECT_EQ(policy->default_runtime(), "crun");
  EXPECT_EQ(policy->seccomp_profile_path(), "/usr/share/containers/seccomp.json");
  EXPECT_EQ(policy->user_namespace(), "host");
  EXPECT_TRUE(policy->allowed_capabilities().empty());
  EXPECT_TRUE(policy->host_paths().empty());
}

TEST(PolicyFileTest, SyntaxErrorsNameTheLine) {
  const std::string unknown = ErrorFor("name: \"p\"\n# comment\nallow_privileges: true\n");
  EXPECT_EQ(unknown.rfind("test.textproto:3:", 0), 0u) << unknown;
  EXPECT_NE(unknown.find("has no field named \"allow_privileges\""), std::string::npos) << unknown;
  EXPECT_EQ(ErrorFor("name: \"p\"\nname: \"q\"\n").rfind("test.textproto:2:", 0), 0u);
  EXPECT_EQ(ErrorFor("resource_caps { max_pids: -1 }").rfind("test.textproto:1:", 0), 0u);
  EXPECT_EQ(
      ErrorFor("host_paths { prefix: \"/a\" read_only: maybe }").rfind("test.textproto:1:", 0), 0u);
  EXPECT_EQ(ErrorFor("[coolify.v1.nothing]: 1").rfind("test.textproto:1:", 0), 0u);
}

TEST(PolicyFileTest, ValidationErrorsNameTheLineWhenTheFileSpellsTheField) {
  const std::string text = std::string(kMinimal) +
                           "host_paths { prefix: \"/srv\" }\n"
                           "host_paths {\n  prefix: \"/srv/../etc/\"\n}\n";
  EXPECT_EQ(ErrorFor(text),
            "test.textproto:9:3: host_paths[1].prefix: \"/srv/../etc/\" must be written \"/etc\"");
  EXPECT_EQ(ErrorFor(std::string(kMinimal) + "allowed_runtimes: \"runsc\"\n"),
            "test.textproto: default_runtime: \"crun\" is not in allowed_runtimes");
}

TEST(PolicyFileTest, ValidationRules) {
  const struct {
    const char* add;
    const char* error_contains;
  } cases[] = {
      {"allowed_capabilities: \"cap_sys_admin\"",
       "allowed_capabilities[0]: \"cap_sys_admin\" must be written \"SYS_ADMIN\""},
      {"allowed_capabilities: \"SYS_ADMINS\"", "allowed_capabilities[0]: "},
      {"allowed_capabilities: \"NET_RAW\" allowed_capabilities: \"NET_RAW\"",
       "allowed_capabilities[1]: \"NET_RAW\" repeats"},
      {"host_paths { prefix: \"srv\" }", "host_paths[0].prefix: "},
      {"host_paths { prefix: \"/srv\" } host_paths { prefix: \"/srv\" }",
       "host_paths[1].prefix: \"/srv\" repeats"},
      {"allowed_runtimes: \"/usr/bin/runc\"", "allowed_runtimes[0]: "},
      {"allowed_runtimes: \"crun\" default_runtime: \"runsc\"", "default_runtime: "},
      {"allowed_devices { host_path: \"/etc/passwd\" }", "allowed_devices[0].host_path: "},
      {"allowed_devices { host_path: \"/dev\" }", "allowed_devices[0].host_path: "},
      {"allowed_devices { host_path: \"/dev/fuse\" permissions: \"rwx\" }",
       "allowed_devices[0].permissions: "},
      {"allowed_sysctls: \"net..x\"", "allowed_sysctls[0]: "},
      {"allowed_sysctls: \"kernel\"", "allowed_sysctls[0]: "},
      {"volume_drivers { driver: \"local\" } volume_drivers { driver: \"local\" }",
       "volume_drivers[1].driver: "},
      {"volume_drivers { driver: \"local\" options { key: \"o\" } options { key: \"o\" } }",
       "volume_drivers[0].options[1].key: "},
      {"network_drivers { driver: \"\" }", "network_drivers[0].driver: "},
      {"allowed_registries: \"Docker.io\"", "allowed_registries[0]: "},
      {"namespaces { namespace: \"*\" default_network: \"x\" networks: \"x\" }",
       "namespaces[1].namespace: \"*\" repeats"},
      {"namespaces { namespace: \"Alpha\" default_network: \"x\" networks: \"x\" }",
       "namespaces[1].namespace: "},
      {"namespaces { namespace: \"a\" networks: \"x\" }",
       "namespaces[1].default_network: required"},
      {"namespaces { namespace: \"a\" default_network: \"y\" networks: \"x\" }",
       "namespaces[1].default_network: "},
      {"namespaces { namespace: \"a\" default_network: \"x y\" networks: \"x y\" }",
       "namespaces[1].networks[0]: "},
      {"namespaces { namespace: \"a\" default_network: \"x\" networks: \"x\" host_ports { first: 0 "
       "last: 80 } }",
       "namespaces[1].host_ports[0]: "},
      {"namespaces { namespace: \"a\" default_network: \"x\" networks: \"x\" host_ports { first: "
       "90 last: 80 } }",
       "namespaces[1].host_ports[0]: "},
      {"namespaces { namespace: \"a\" default_network: \"x\" networks: \"x\" host_ips: \"::\" }",
       "namespaces[1].host_ips[0]: "},
      {"seccomp_profile_path: \"unconfined\"", "seccomp_profile_path: "},
      {"apparmor_profile: \"unconfined\"", "apparmor_profile: "},
      {"user_namespace: \"keep-id\"", "user_namespace: "},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.add);
    const std::string error = ErrorFor(std::string(kMinimal) + c.add);
    EXPECT_NE(error.find(c.error_contains), std::string::npos) << error;
  }
}

TEST(PolicyFileTest, PolicyName) {
  EXPECT_NE(ErrorFor("name: \"Bad Name\"\nnamespaces { namespace: \"*\" default_network: \"n\" "
                     "networks: \"n\" }")
                .find("test.textproto:1:1: name: "),
            std::string::npos);
  EXPECT_NE(ErrorFor("namespaces { namespace: \"*\" default_network: \"n\" networks: \"n\" }")
                .find("test.textproto: name: \"\" is not a policy name"),
            std::string::npos);
}

TEST(PolicyFileTest, ValidatePolicyOnABuiltPolicy) {
  v1::Policy policy = WithDefaults(*ParsePolicy("p", kMinimal));
  EXPECT_TRUE(ValidatePolicy(policy).ok());
  policy.add_allowed_capabilities("all");
  EXPECT_EQ(ValidatePolicy(policy).message(),
            "allowed_capabilities[0]: \"all\" must be written \"ALL\"");
}

TEST(PolicyFileTest, LoadPolicyFile) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp != nullptr ? tmp : "/tmp") + "/policy.textproto";
  std::ofstream(path) << kMinimal;
  const absl::StatusOr<v1::Policy> policy = LoadPolicyFile(path);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->name(), "p");
  std::ofstream(path) << "bogus: 1\n";
  EXPECT_EQ(LoadPolicyFile(path).status().message().rfind(path + ":1:", 0), 0u);
  EXPECT_EQ(LoadPolicyFile("/nonexistent.textproto").status().code(), absl::StatusCode::kNotFound);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace coolify::policy
