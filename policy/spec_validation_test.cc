#include "policy/spec_validation.h"

#include <string>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace coolify::policy {
namespace {

v1::ContainerSpec Spec(const std::string& text) {
  v1::ContainerSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  return spec;
}

// The error text for `text` added to a minimal valid spec, "" when valid.
std::string ErrorFor(const std::string& text) {
  const absl::Status s = ValidateContainerSpec(Spec("image: 'nginx' " + text));
  if (s.ok()) return "";
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.message());
}

TEST(ValidateContainerSpecTest, AcceptsAFullSpec) {
  EXPECT_EQ(
      ErrorFor(R"pb(
        name: "web-1.x_y"
        command: [ "nginx", "-g", "daemon off;" ]
        entrypoint: [ "/docker-entrypoint.sh" ]
        env { key: "PATH" value: "/usr/bin" }
        env { key: "npm_config-x.y" value: "" }
        labels { key: "traefik.http.routers.web.rule" value: "Host(`a`)" }
        user: "1000:1000"
        workdir: "/app"
        networks { network: "default.web" aliases: "web" aliases: "www" }
        volumes { volume: "data" destination: "/data" }
        binds { source: "/data/coolify/volumes/a" destination: "/srv" read_only: true }
        ports { host_ip: "10.0.0.1" host_port: 8080 container_port: 80 protocol: PORT_PROTOCOL_UDP }
        dns: [ "1.1.1.1", "8.8.8.8" ]
        restart_policy: RESTART_POLICY_ON_FAILURE
        restart_max_retries: 5
        resources { memory_bytes: 134217728 cpu_millis: 500 pids_limit: 100 }
        healthcheck {
          test: [ "CMD-SHELL", "curl -f localhost" ]
          interval_seconds: 10
          retries: 3
        }
        read_only_root: true
        cap_add: [ " cap_net_raw", "ALL" ]
        cap_drop: [ "all" ]
        runtime: "runsc"
        devices { host_path: "/dev/fuse" permissions: "rwm" }
        sysctls { key: "net.ipv4.conf.br-0.forwarding" value: "1" }
        namespace: "alpha"
      )pb"),
      "");
}

TEST(ValidateContainerSpecTest, RefusesMalformedFields) {
  const struct {
    const char* text;
    const char* error_starts;
  } cases[] = {
      {"name: '-web'", "name: "},
      {"name: 'a/b'", "name: "},
      {"command: 'a\\000b'", "command[0]: "},
      {"env { key: 'A=B' value: 'x' }", "env[0].key: "},
      {"env { key: '' }", "env[0].key: "},
      {"env { key: 'A' } env { key: 'A' }", "env[1].key: \"A\" repeats"},
      {"labels { key: '.x' }", "labels[0].key: "},
      {"user: 'root:'", "user: "},
      {"user: '4294967295'", "user: "},
      {"user: 'Root'", "user: "},
      {"workdir: 'app'", "workdir: "},
      {"networks { network: 'a b' }", "networks[0].network: "},
      {"networks { network: 'a' } networks { network: 'a' }", "networks[1].network: \"a\" repeats"},
      {"networks { network: 'a' aliases: '-x' }", "networks[0].aliases[0]: "},
      {"volumes { volume: '/etc' destination: '/x' }", "volumes[0].volume: "},
      {"volumes { volume: 'v' destination: 'x' }", "volumes[0].destination: "},
      {"binds { source: 'data' destination: '/x' }", "binds[0].source: "},
      {"binds { source: '/data' destination: '/' }", "binds[0].destination: "},
      {"binds { source: '/a' destination: '/x' } volumes { volume: 'v' destination: '/x/' }",
       "binds[0].destination: \"/x\" is already"},
      {"ports { host_port: 0 container_port: 80 }", "ports[0].host_port: "},
      {"ports { host_port: 65536 container_port: 80 }", "ports[0].host_port: "},
      {"ports { host_port: 80 container_port: 0 }", "ports[0].container_port: "},
      {"ports { host_ip: '0.0.0.01' host_port: 80 container_port: 80 }", "ports[0].host_ip: "},
      {"ports { host_port: 80 container_port: 80 protocol: 7 }", "ports[0].protocol: "},
      {"dns: 'one.one.one.one'", "dns[0]: "},
      {"dns: ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4']", "dns: 4 entries"},
      {"dns_search: 'a b'", "dns_search[0]: "},
      {"dns_search: 'x\\nnameserver 6.6.6.6'", "dns_search[0]: "},
      {"dns_search: '-a.internal'", "dns_search[0]: "},
      {"dns_search: 'a..internal'", "dns_search[0]: "},
      {"dns_search: ['a', 'b', 'c', 'd', 'e', 'f', 'g']", "dns_search: 7 entries"},
      {"restart_policy: 9", "restart_policy: "},
      {"restart_max_retries: 3", "restart_max_retries: only"},
      {"restart_policy: RESTART_POLICY_ON_FAILURE restart_max_retries: 1001",
       "restart_max_retries: "},
      {"resources { memory_bytes: 1024 }", "resources.memory_bytes: "},
      {"resources { cpu_millis: 5 }", "resources.cpu_millis: "},
      {"resources { pids_limit: 99999999 }", "resources.pids_limit: "},
      {"healthcheck { interval_seconds: 5 }", "healthcheck.test: required"},
      {"healthcheck { test: 'curl' }", "healthcheck.test: must be"},
      {"healthcheck { test: ['CMD'] }", "healthcheck.test: must be"},
      {"healthcheck { test: ['NONE', 'x'] }", "healthcheck.test: must be"},
      {"healthcheck { test: ['CMD', 'x'] timeout_seconds: 86401 }",
       "healthcheck.timeout_seconds: "},
      {"healthcheck { test: ['CMD', 'x'] retries: 101 }", "healthcheck.retries: "},
      {"cap_add: 'SYS ADMIN'", "cap_add[0]: "},
      {"cap_drop: 'CAP_NOPE'", "cap_drop[0]: "},
      {"runtime: '/usr/bin/runc'", "runtime: "},
      {"runtime: 'RUNC'", "runtime: "},
      {"devices { host_path: 'dev/fuse' }", "devices[0].host_path: "},
      {"devices { host_path: '/dev/fuse' container_path: 'x' }", "devices[0].container_path: "},
      {"devices { host_path: '/dev/fuse' permissions: 'rwx' }", "devices[0].permissions: "},
      {"devices { host_path: '/dev/fuse' permissions: 'rr' }", "devices[0].permissions: "},
      {"sysctls { key: 'kernel' value: '1' }", "sysctls[0].key: "},
      {"sysctls { key: 'net/ipv4/ip_forward' value: '1' }", "sysctls[0].key: "},
      {"sysctls { key: 'NET.ipv4.ip_forward' value: '1' }", "sysctls[0].key: "},
      {"sysctls { key: 'net.ipv4.ip_forward' value: '' }", "sysctls[0].value: "},
      {"sysctls { key: 'net.ipv4.ip_forward' value: '1\\n' }", "sysctls[0].value: "},
      {"sysctls { key: 'a.b' value: '1' } sysctls { key: 'a.b' value: '1' }", "sysctls[1].key: "},
      {"namespace: 'Alpha'", "namespace: "},
      {"host_network: true networks { network: 'a' }", "networks: cannot be combined"},
      {"host_network: true ports { host_port: 80 container_port: 80 }",
       "ports: cannot be combined"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string error = ErrorFor(c.text);
    EXPECT_EQ(error.rfind(c.error_starts, 0), 0u) << error;
  }
}

TEST(ValidateContainerSpecTest, ImageIsRequiredAndParsed) {
  EXPECT_EQ(ValidateContainerSpec(Spec("")).message(), "image: required");
  EXPECT_EQ(ValidateContainerSpec(Spec("image: 'NGINX'")).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateContainerSpecTest, CountsAreCapped) {
  v1::ContainerSpec spec = Spec("image: 'nginx'");
  for (int i = 0; i <= kMaxEnv; ++i) {
    v1::KeyValue* kv = spec.add_env();
    kv->set_key("K" + std::to_string(i));
  }
  EXPECT_EQ(ValidateContainerSpec(spec).message(), "env: 1025 entries, at most 1024 allowed");
  spec = Spec("image: 'nginx'");
  for (int i = 0; i <= kMaxArgs; ++i) spec.add_command("x");
  EXPECT_EQ(ValidateContainerSpec(spec).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateContainerSpecTest, ValuesInErrorsAreEscapedAndCut) {
  const std::string error = ErrorFor("name: '\\033[31m" + std::string(300, 'x') + "'");
  EXPECT_EQ(error.find('\033'), std::string::npos);
  EXPECT_NE(error.find("\\x1b"), std::string::npos) << error;
  EXPECT_LT(error.size(), 250u);
}

TEST(ValidateOtherVerbsTest, VolumesCreate) {
  v1::VolumesCreate request;
  EXPECT_EQ(ValidateVolumesCreate(request).message().substr(0, 6), "name: ");
  request.set_name("data");
  EXPECT_TRUE(ValidateVolumesCreate(request).ok());
  request.add_options()->set_key("o");
  request.add_options()->set_key("o");
  EXPECT_EQ(ValidateVolumesCreate(request).message(), "options[1].key: \"o\" repeats");
}

TEST(ValidateOtherVerbsTest, NetworksCreate) {
  v1::NetworksCreate request;
  request.set_name("alpha.web");
  request.set_subnet("10.1.0.0/24");
  request.set_gateway("10.1.0.1");
  request.set_namespace_("alpha");
  EXPECT_TRUE(ValidateNetworksCreate(request).ok());
  request.set_subnet("10.1.0.1/24");
  EXPECT_EQ(ValidateNetworksCreate(request).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateOtherVerbsTest, ContainersExec) {
  v1::ContainersExec request;
  request.set_id("web");
  EXPECT_EQ(ValidateContainersExec(request).message(), "cmd: required");
  request.add_cmd("nginx");
  request.add_cmd("-s");
  request.add_cmd("reload");
  EXPECT_TRUE(ValidateContainersExec(request).ok());
  request.set_user("0");
  EXPECT_TRUE(ValidateContainersExec(request).ok());
  request.set_id("../x");
  EXPECT_EQ(ValidateContainersExec(request).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateOtherVerbsTest, ImagesPull) {
  v1::ImagesPull request;
  request.set_ref("localhost/tenant/web:v2");
  EXPECT_TRUE(ValidateImagesPull(request).ok());
  request.set_ref("http://evil/x");
  EXPECT_EQ(ValidateImagesPull(request).code(), absl::StatusCode::kInvalidArgument);
}

TEST(IsNumericNonRootUserTest, OnlyNumbersOtherThanZero) {
  EXPECT_TRUE(IsNumericNonRootUser("1000"));
  EXPECT_TRUE(IsNumericNonRootUser("1000:0"));
  EXPECT_TRUE(IsNumericNonRootUser("0001"));
  EXPECT_FALSE(IsNumericNonRootUser(""));
  EXPECT_FALSE(IsNumericNonRootUser("0"));
  EXPECT_FALSE(IsNumericNonRootUser("000"));
  EXPECT_FALSE(IsNumericNonRootUser("0:1000"));
  EXPECT_FALSE(IsNumericNonRootUser("nginx"));
  EXPECT_FALSE(IsNumericNonRootUser("root"));
  EXPECT_FALSE(IsNumericNonRootUser("nobody:1000"));
}

}  // namespace
}  // namespace coolify::policy
