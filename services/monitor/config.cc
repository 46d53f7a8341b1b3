#include "services/monitor/config.h"

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "privsep/validate.h"
#include "services/build/launcher_config.h"
#include "services/dns/namespaces.h"
#include "services/endpoints/store_config.h"
#include "services/netlink/firewall_policy.h"

namespace coolify::monitor {
namespace {

std::string Get(const EnvLookup& env, const char* name, const char* fallback) {
  const char* value = env(name);
  return value == nullptr || *value == '\0' ? fallback : value;
}

absl::Status Named(const char* variable, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::InvalidArgumentError(absl::StrCat(variable, ": ", status.message()));
}

// "IPv4:port", port 1..65535.
absl::Status ParseEndpoint(const char* variable, const std::string& text, std::string* ip, uint32_t* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(variable, ": expected IPv4:PORT, got \"", text, "\""));
  }
  *ip = text.substr(0, colon);
  if (auto s = privsep::ValidateIpv4(variable, *ip); !s.ok()) return s;
  int value = 0;
  if (!absl::SimpleAtoi(absl::string_view(text).substr(colon + 1), &value) || value < 1 || value > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(variable, ": port must be 1..65535 in \"", text, "\""));
  }
  *port = static_cast<uint32_t>(value);
  return absl::OkStatus();
}

absl::Status ValidateAbsolutePath(const char* variable, const std::string& path) {
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos || path.back() == '/') {
    return absl::InvalidArgumentError(absl::StrCat(variable, ": must be an absolute file path, got \"", path, "\""));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return absl::InvalidArgumentError(absl::StrCat(variable, ": must not contain \"..\""));
  }
  return absl::OkStatus();
}

// COOLD_BROKER_URL: grpcs://HOST[:PORT][/v1/agent] (TLS), or grpc://... to a loopback
// IPv4 address only, for local development: a host token must never cross a network in
// clear. HOST is a DNS name or an IPv4 address; PORT defaults to 6443.
absl::Status ParseBrokerUrl(const std::string& url, v1::CooldConfig* config) {
  auto bad = [&url](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("COOLD_BROKER_URL: \"", url, "\": ", why));
  };
  std::string rest;
  if (url.rfind("grpcs://", 0) == 0) {
    config->set_broker_tls(true);
    rest = url.substr(8);
  } else if (url.rfind("grpc://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return bad("expected grpcs://HOST:PORT/v1/agent");
  }
  size_t slash = rest.find('/');
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  rest = rest.substr(0, slash);
  if (!path.empty() && path != "/" && path != "/v1/agent") return bad("the only path is /v1/agent");
  size_t colon = rest.rfind(':');
  std::string host = rest.substr(0, colon);
  uint32_t port = 6443;
  if (colon != std::string::npos && (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port < 1 || port > 65535)) {
    return bad("port must be 1..65535");
  }
  if (host.empty() || host.size() > 253) return bad("no host");
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return bad("host must be a DNS name or an IPv4 address");
  }
  if (!config->broker_tls() && !(host.rfind("127.", 0) == 0 && privsep::ValidateIpv4("host", host).ok())) {
    return bad("plaintext grpc:// only to a loopback address (127.x.y.z); use grpcs://");
  }
  config->set_broker_host(host);
  config->set_broker_port(port);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::CooldConfig> LoadConfig(const EnvLookup& env) {
  v1::CooldConfig config;

  const char* mgmt = env("COOLD_HOST_MGMT_IP");
  if (mgmt == nullptr || *mgmt == '\0') {
    return absl::InvalidArgumentError("COOLD_HOST_MGMT_IP is required (the host's wg0 management IPv4)");
  }
  config.set_host_mgmt_ip(mgmt);
  if (auto s = privsep::ValidateIpv4("COOLD_HOST_MGMT_IP", mgmt); !s.ok()) return s;

  // One grammar for these, the DNS server's (services/dns/namespaces.h).
  absl::StatusOr<std::vector<dns::NamespaceSpec>> namespaces =
      dns::ParseNamespaces(Get(env, "COOLD_NAMESPACES", "default:coolify-default-mesh:0.0.0.0"));
  if (!namespaces.ok()) return namespaces.status();
  for (const dns::NamespaceSpec& spec : *namespaces) {
    v1::NamespaceConfig* ns = config.add_namespaces();
    ns->set_name(spec.name);
    ns->set_network(spec.network);
    ns->set_gateway(spec.gateway);
  }

  // Checked here with the writer's own parser, so a mistyped list stops coold at start
  // rather than the writer; the writer parses its argv again all the same.
  config.set_firewall_destinations(Get(env, "COOLD_FIREWALL_DESTINATIONS", netlink::kDefaultFirewallNetworks));
  config.set_firewall_sources(Get(env, "COOLD_FIREWALL_SOURCES", netlink::kDefaultFirewallNetworks));
  config.set_firewall_ports(Get(env, "COOLD_FIREWALL_PORTS", netlink::kDefaultFirewallPorts));
  config.set_firewall_public_ports(Get(env, "COOLD_FIREWALL_PUBLIC_PORTS", netlink::kDefaultFirewallPublicPorts));
  if (absl::StatusOr<netlink::FirewallPolicy> firewall =
          netlink::ParseFirewallPolicy(config.host_mgmt_ip(), config.firewall_destinations(), config.firewall_sources(),
                                       config.firewall_ports(), config.firewall_public_ports());
      !firewall.ok()) {
    return firewall.status();
  }


  config.set_broker_url(Get(env, "COOLD_BROKER_URL", ""));
  if (!config.broker_url().empty()) {
    if (auto s = ParseBrokerUrl(config.broker_url(), &config); !s.ok()) return s;
    config.set_broker_token_file(Get(env, "COOLD_BROKER_TOKEN_FILE", "/etc/coolify/host-jwt"));
    if (auto s = ValidateAbsolutePath("COOLD_BROKER_TOKEN_FILE", config.broker_token_file()); !s.ok()) return s;
    config.set_host_key_file(Get(env, "COOLD_HOST_KEY_FILE", "/etc/coolify/host.key"));
    if (auto s = ValidateAbsolutePath("COOLD_HOST_KEY_FILE", config.host_key_file()); !s.ok()) return s;
    config.set_enrollment_token_file(Get(env, "COOLD_ENROLLMENT_TOKEN_FILE", "/etc/coolify/enrollment-token"));
    config.set_broker_jwt_keys(Get(env, "COOLD_BROKER_JWT_KEYS", ""));
    if (auto s = ValidateAbsolutePath("COOLD_ENROLLMENT_TOKEN_FILE", config.enrollment_token_file()); !s.ok()) return s;
    if (config.broker_tls()) {
      config.set_broker_ca_file(Get(env, "COOLD_BROKER_CA_FILE", "/etc/coolify/broker-ca.pem"));
      if (auto s = ValidateAbsolutePath("COOLD_BROKER_CA_FILE", config.broker_ca_file()); !s.ok()) return s;
    }
  }
  std::string capacity = Get(env, "COOLD_BUILDER_CAPACITY", "2");
  uint32_t builds = 0;
  if (!absl::SimpleAtoi(capacity, &builds) || builds < 1 || builds > 64) {
    return absl::InvalidArgumentError("COOLD_BUILDER_CAPACITY: must be 1..64");
  }
  config.set_builder_capacity(builds);
  auto build_args = build::LauncherArgsFromEnv(env, builds);
  if (!build_args.ok()) return build_args.status();
  for (std::string& arg : *build_args) config.add_build_launcher_args(std::move(arg));
  // A build's image is named only under one of these (services/builder/options.h).
  for (const v1::NamespaceConfig& ns : config.namespaces()) config.add_build_launcher_args("--namespace=" + ns.name());

  std::string builder = Get(env, "COOLD_BUILDER_ENABLED", "0");
  if (builder != "0" && builder != "1") {
    return absl::InvalidArgumentError("COOLD_BUILDER_ENABLED: must be 1 or 0/unset");
  }
  config.set_builder_enabled(builder == "1");

  std::string bind = Get(env, "COOLD_API_BIND", "");
  if (!bind.empty()) {
    std::string ip;
    uint32_t port = 0;
    if (auto s = ParseEndpoint("COOLD_API_BIND", bind, &ip, &port); !s.ok()) return s;
    // The API is reachable only inside the mesh: binding every address would expose it.
    if (ip == "0.0.0.0") return absl::InvalidArgumentError("COOLD_API_BIND: never 0.0.0.0; bind the wg0 IP");
    config.set_api_bind_ip(ip);
    config.set_api_bind_port(port);
    std::string token = Get(env, "COOLD_API_TOKEN_FILE", "");
    if (token.empty()) return absl::InvalidArgumentError("COOLD_API_TOKEN_FILE is required when COOLD_API_BIND is set");
    if (auto s = ValidateAbsolutePath("COOLD_API_TOKEN_FILE", token); !s.ok()) return s;
    config.set_api_token_file(token);
  }
  std::string cert = Get(env, "COOLD_TLS_CERT", ""), key = Get(env, "COOLD_TLS_KEY", "");
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("COOLD_TLS_CERT and COOLD_TLS_KEY go together: set both or neither");
  }
  if (!cert.empty()) {
    if (auto s = ValidateAbsolutePath("COOLD_TLS_CERT", cert); !s.ok()) return s;
    if (auto s = ValidateAbsolutePath("COOLD_TLS_KEY", key); !s.ok()) return s;
    config.set_tls_cert_file(cert);
    config.set_tls_key_file(key);
  }

  config.set_rules_path(Get(env, "COOLD_RULES_PATH", "/etc/coolify/allow.rules"));
  if (auto s = ValidateAbsolutePath("COOLD_RULES_PATH", config.rules_path()); !s.ok()) return s;
  config.set_bridge_rules_path(Get(env, "COOLD_BRIDGE_RULES_PATH", "/etc/coolify/allow.nft"));
  if (auto s = ValidateAbsolutePath("COOLD_BRIDGE_RULES_PATH", config.bridge_rules_path()); !s.ok()) return s;

  absl::Duration interval;
  std::string interval_text = Get(env, "COOLD_RECONCILE_INTERVAL", "2s");
  if (!absl::ParseDuration(interval_text, &interval) || interval < absl::Milliseconds(100) ||
      interval > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("COOLD_RECONCILE_INTERVAL: expected a duration from 100ms to 1h, got \"", interval_text, "\""));
  }
  config.set_reconcile_interval_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(interval)));

  absl::Duration health;
  std::string health_text = Get(env, "COOLD_HEALTH_INTERVAL", "30s");
  if (!absl::ParseDuration(health_text, &health) || health < absl::Seconds(1) || health > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("COOLD_HEALTH_INTERVAL: expected a duration from 1s to 1h, got \"", health_text, "\""));
  }
  config.set_health_interval_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(health)));

  const std::string zone = Get(env, "COOLD_DNS_ZONE", "coolify.internal");
  if (absl::StatusOr<dns::WireName> parsed = dns::ParseZoneVariable(zone); !parsed.ok()) return parsed.status();
  config.set_dns_zone(zone);
  absl::StatusOr<dns::Upstream> upstream = dns::ParseUpstream(Get(env, "COOLD_DNS_UPSTREAM", "1.1.1.1:53"));
  if (!upstream.ok()) return upstream.status();
  config.set_dns_upstream_ip(upstream->ip);
  config.set_dns_upstream_port(upstream->port);

  config.set_podman_socket(Get(env, "COOLD_PODMAN_SOCKET", "/run/podman/podman.sock"));
  if (auto s = ValidateAbsolutePath("COOLD_PODMAN_SOCKET", config.podman_socket()); !s.ok()) return s;
  // sockaddr_un holds 108 bytes with the terminating NUL.
  if (config.podman_socket().size() > 107) {
    return absl::InvalidArgumentError("COOLD_PODMAN_SOCKET: longer than a Unix socket path can be (107)");
  }
  absl::StatusOr<endpoints::StoreConfig> store =
      endpoints::ParseStoreConfig([&env](const char* name) { return env(name); });
  if (!store.ok()) return store.status();
  config.set_endpoint_store_corrosion(store->kind == endpoints::StoreConfig::Kind::kCorrosion);
  config.set_endpoint_db(store->sqlite_path);
  config.set_corrosion_ip(store->corrosion.ip);
  config.set_corrosion_port(store->corrosion.port);

  std::string host_id = Get(env, "COOLD_HOST_ID", "");
  if (host_id.empty()) host_id = absl::StrCat("host-", absl::StrReplaceAll(config.host_mgmt_ip(), {{".", "-"}}));
  if (auto s = Named("COOLD_HOST_ID", privsep::ValidateHostId("host id", host_id)); !s.ok()) return s;
  config.set_host_id(host_id);

  std::string policy = Get(env, "COOLD_POLICY_FILE", "");
  if (!policy.empty()) {
    if (auto s = ValidateAbsolutePath("COOLD_POLICY_FILE", policy); !s.ok()) return s;
    config.set_policy_file(policy);
  }
  return config;
}

}  // namespace coolify::monitor
