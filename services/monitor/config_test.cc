#include "services/monitor/config.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace coolify::monitor {
namespace {

absl::StatusOr<v1::CooldConfig> Load(std::map<std::string, std::string> vars) {
  return LoadConfig([&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

void ExpectError(std::map<std::string, std::string> vars, const std::string& mentions) {
  if (!vars.count("COOLD_HOST_MGMT_IP")) vars["COOLD_HOST_MGMT_IP"] = "100.64.0.5";
  auto config = Load(vars);
  ASSERT_FALSE(config.ok()) << "accepted; expected an error about " << mentions;
  EXPECT_NE(std::string(config.status().message()).find(mentions), std::string::npos) << config.status();
}

TEST(Config, DefaultsMatchTheDocumentedTable) {
  auto config = Load({{"COOLD_HOST_MGMT_IP", "100.64.0.5"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->host_mgmt_ip(), "100.64.0.5");
  ASSERT_EQ(config->namespaces_size(), 1);
  EXPECT_EQ(config->namespaces(0).name(), "default");
  EXPECT_EQ(config->namespaces(0).network(), "coolify-default-mesh");
  EXPECT_EQ(config->namespaces(0).gateway(), "0.0.0.0");
  EXPECT_FALSE(config->builder_enabled());
  EXPECT_EQ(config->api_bind_ip(), "");
  EXPECT_EQ(config->rules_path(), "/etc/coolify/allow.rules");
  EXPECT_EQ(config->bridge_rules_path(), "/etc/coolify/allow.nft");
  EXPECT_EQ(config->reconcile_interval_ms(), 2000u);
  EXPECT_EQ(config->dns_zone(), "coolify.internal");
  EXPECT_EQ(config->dns_upstream_ip(), "1.1.1.1");
  EXPECT_EQ(config->dns_upstream_port(), 53u);
  EXPECT_EQ(config->podman_socket(), "/run/podman/podman.sock");
  EXPECT_EQ(config->policy_file(), "");
  EXPECT_EQ(config->health_interval_ms(), 30000u);
  EXPECT_EQ(config->firewall_destinations(), "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10");
  EXPECT_EQ(config->firewall_sources(), "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10");
  EXPECT_EQ(config->firewall_ports(), "1-65535");
  EXPECT_EQ(config->firewall_public_ports(), "80,443");
}

TEST(Config, FirewallPolicyVariables) {
  auto config = Load({{"COOLD_HOST_MGMT_IP", "100.64.0.5"},
                      {"COOLD_FIREWALL_DESTINATIONS", "10.210.0.0/16"},
                      {"COOLD_FIREWALL_SOURCES", "10.0.0.0/8"},
                      {"COOLD_FIREWALL_PORTS", "80,443,5432"},
                      {"COOLD_FIREWALL_PUBLIC_PORTS", "none"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->firewall_destinations(), "10.210.0.0/16");
  EXPECT_EQ(config->firewall_public_ports(), "none");
  // A list that would say nothing, or does not parse, stops coold at start.
  ExpectError({{"COOLD_FIREWALL_DESTINATIONS", "0.0.0.0/0"}}, "COOLD_FIREWALL_DESTINATIONS: 0.0.0.0/0 is every address");
  ExpectError({{"COOLD_FIREWALL_SOURCES", "10.0.0.1/8"}}, "host bits");
  ExpectError({{"COOLD_FIREWALL_PORTS", "0-80"}}, "COOLD_FIREWALL_PORTS");
  ExpectError({{"COOLD_FIREWALL_PUBLIC_PORTS", "http"}}, "COOLD_FIREWALL_PUBLIC_PORTS");
}

TEST(Config, ParsesEveryVariable) {
  auto config = Load({{"COOLD_HOST_MGMT_IP", "100.64.0.5"},
                      {"COOLD_NAMESPACES", "default:coolify-default-mesh:10.210.0.1,alpha:coolify-alpha-mesh:10.211.0.1"},
                      {"COOLD_BROKER_URL", "grpcs://broker:6443/v1/agent"},
                      {"COOLD_BUILDER_ENABLED", "1"},
                      {"COOLD_API_BIND", "100.64.0.5:8443"},
                      {"COOLD_API_TOKEN_FILE", "/etc/coolify/api-token"},
                      {"COOLD_TLS_CERT", "/etc/coolify/tls.crt"},
                      {"COOLD_TLS_KEY", "/etc/coolify/tls.key"},
                      {"COOLD_RULES_PATH", "/var/lib/coolify/allow.rules"},
                      {"COOLD_BRIDGE_RULES_PATH", "/var/lib/coolify/allow.nft"},
                      {"COOLD_RECONCILE_INTERVAL", "500ms"},
                      {"COOLD_HEALTH_INTERVAL", "10s"},
                      {"COOLD_DNS_ZONE", "mesh.internal"},
                      {"COOLD_DNS_UPSTREAM", "127.0.0.53:5353"},
                      {"COOLD_PODMAN_SOCKET", "/run/user/0/podman/podman.sock"},
                      {"COOLD_POLICY_FILE", "/etc/coolify/policy.textproto"}});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->namespaces_size(), 2);
  EXPECT_EQ(config->namespaces(1).gateway(), "10.211.0.1");
  EXPECT_TRUE(config->builder_enabled());
  EXPECT_EQ(config->api_bind_ip(), "100.64.0.5");
  EXPECT_EQ(config->api_bind_port(), 8443u);
  EXPECT_EQ(config->tls_key_file(), "/etc/coolify/tls.key");
  EXPECT_EQ(config->reconcile_interval_ms(), 500u);
  EXPECT_EQ(config->health_interval_ms(), 10000u);
  EXPECT_EQ(config->dns_upstream_port(), 5353u);
  EXPECT_EQ(config->podman_socket(), "/run/user/0/podman/podman.sock");
  EXPECT_EQ(config->policy_file(), "/etc/coolify/policy.textproto");
}

TEST(Config, RefusesBadValuesNamingTheVariable) {
  ExpectError({{"COOLD_HOST_MGMT_IP", ""}}, "COOLD_HOST_MGMT_IP is required");
  ExpectError({{"COOLD_HOST_MGMT_IP", "100.64.0.256"}}, "COOLD_HOST_MGMT_IP");
  ExpectError({{"COOLD_NAMESPACES", "default:net"}}, "COOLD_NAMESPACES");
  ExpectError({{"COOLD_NAMESPACES", "Bad:net:10.0.0.1"}}, "COOLD_NAMESPACES");
  ExpectError({{"COOLD_NAMESPACES", "a:net/../x:10.0.0.1"}}, "COOLD_NAMESPACES");
  ExpectError({{"COOLD_NAMESPACES", "a:n:10.0.0.1,a:m:10.0.1.1"}}, "twice");
  ExpectError({{"COOLD_BUILDER_ENABLED", "yes"}}, "COOLD_BUILDER_ENABLED");
  ExpectError({{"COOLD_API_BIND", "100.64.0.5:8443"}}, "COOLD_API_TOKEN_FILE is required");
  ExpectError({{"COOLD_API_BIND", "0.0.0.0:8443"}, {"COOLD_API_TOKEN_FILE", "/t"}}, "never 0.0.0.0");
  ExpectError({{"COOLD_API_BIND", "100.64.0.5:0"}, {"COOLD_API_TOKEN_FILE", "/t"}}, "port");
  ExpectError({{"COOLD_API_BIND", "100.64.0.5"}, {"COOLD_API_TOKEN_FILE", "/t"}}, "IPv4:PORT");
  ExpectError({{"COOLD_API_BIND", "100.64.0.5:8443"}, {"COOLD_API_TOKEN_FILE", "relative"}}, "absolute");
  ExpectError({{"COOLD_TLS_CERT", "/c"}}, "set both or neither");
  ExpectError({{"COOLD_RULES_PATH", "/etc/../x"}}, "COOLD_RULES_PATH");
  ExpectError({{"COOLD_BRIDGE_RULES_PATH", "/etc/coolify/"}}, "COOLD_BRIDGE_RULES_PATH");
  ExpectError({{"COOLD_RECONCILE_INTERVAL", "fast"}}, "COOLD_RECONCILE_INTERVAL");
  ExpectError({{"COOLD_RECONCILE_INTERVAL", "1ms"}}, "COOLD_RECONCILE_INTERVAL");
  ExpectError({{"COOLD_HEALTH_INTERVAL", "500ms"}}, "COOLD_HEALTH_INTERVAL: expected a duration from 1s to 1h");
  ExpectError({{"COOLD_HEALTH_INTERVAL", "2h"}}, "COOLD_HEALTH_INTERVAL");
  ExpectError({{"COOLD_DNS_ZONE", "bad zone"}}, "COOLD_DNS_ZONE");
  ExpectError({{"COOLD_DNS_UPSTREAM", "1.1.1.1:99999"}}, "COOLD_DNS_UPSTREAM");
  ExpectError({{"COOLD_PODMAN_SOCKET", "podman.sock"}}, "COOLD_PODMAN_SOCKET");
  ExpectError({{"COOLD_PODMAN_SOCKET", "/" + std::string(120, 'x')}}, "COOLD_PODMAN_SOCKET");
  ExpectError({{"COOLD_POLICY_FILE", "policy.textproto"}}, "COOLD_POLICY_FILE");
}

}  // namespace
}  // namespace coolify::monitor

namespace coolify::monitor {
namespace {

TEST(Config, BrokerUrlParts) {
  auto config = Load({{"COOLD_HOST_MGMT_IP", "100.64.0.5"},
                      {"COOLD_BROKER_URL", "grpcs://broker.mesh:7443/v1/agent"},
                      {"COOLD_BROKER_TOKEN_FILE", "/etc/coolify/jwt"},
                      {"COOLD_BUILDER_CAPACITY", "4"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->broker_host(), "broker.mesh");
  EXPECT_EQ(config->broker_port(), 7443u);
  EXPECT_TRUE(config->broker_tls());
  EXPECT_EQ(config->broker_token_file(), "/etc/coolify/jwt");
  EXPECT_EQ(config->broker_ca_file(), "/etc/coolify/broker-ca.pem");
  EXPECT_EQ(config->builder_capacity(), 4u);
  auto plain = Load({{"COOLD_HOST_MGMT_IP", "100.64.0.5"}, {"COOLD_BROKER_URL", "grpc://127.0.0.1:6443"}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->broker_tls());
  EXPECT_EQ(plain->broker_token_file(), "/etc/coolify/host-jwt");
  EXPECT_EQ(plain->broker_ca_file(), "");
  auto defaults = Load({{"COOLD_HOST_MGMT_IP", "100.64.0.5"}, {"COOLD_BROKER_URL", "grpcs://10.0.0.1"}});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->broker_port(), 6443u);
  EXPECT_EQ(defaults->builder_capacity(), 2u);
}

TEST(Config, BadBrokerValuesNameTheVariable) {
  ExpectError({{"COOLD_BROKER_URL", "https://broker:6443"}}, "COOLD_BROKER_URL: \"https://broker:6443\": expected grpcs://HOST:PORT/v1/agent");
  ExpectError({{"COOLD_BROKER_URL", "grpc://10.0.0.1:6443"}}, "plaintext grpc:// only to a loopback address");
  ExpectError({{"COOLD_BROKER_URL", "grpcs://broker:99999"}}, "port must be 1..65535");
  ExpectError({{"COOLD_BROKER_URL", "grpcs://broker:6443/admin"}}, "the only path is /v1/agent");
  ExpectError({{"COOLD_BROKER_URL", "grpcs://bro ker:6443"}}, "host must be a DNS name or an IPv4 address");
  ExpectError({{"COOLD_BROKER_URL", "grpcs://:6443"}}, "no host");
  ExpectError({{"COOLD_BROKER_URL", "grpcs://b:1"}, {"COOLD_BROKER_TOKEN_FILE", "jwt"}}, "COOLD_BROKER_TOKEN_FILE");
  ExpectError({{"COOLD_BUILDER_CAPACITY", "0"}}, "COOLD_BUILDER_CAPACITY: must be 1..64");
}

}  // namespace
}  // namespace coolify::monitor
