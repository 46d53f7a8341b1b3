#include "services/broker/config.h"

#include <algorithm>

#include <arpa/inet.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace coolify::broker {
namespace {

absl::Status Bad(const char* name, const std::string& value, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(name, "=\"", value, "\": ", why));
}

absl::StatusOr<absl::Duration> DurationVar(const char* name, const std::string& value, absl::Duration min,
                                           absl::Duration max) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d < min || d > max) {
    return Bad(name, value, absl::StrCat("expected a duration from ", absl::FormatDuration(min), " to ",
                                         absl::FormatDuration(max), " (e.g. 10s, 500ms)"));
  }
  return d;
}

// HOST:PORT with an IPv4 address, [IPv6] or "localhost", port 1..65535.
absl::Status CheckBind(const std::string& bind) {
  size_t colon = bind.rfind(':');
  if (colon == std::string::npos || colon == 0) return Bad("BROKER_GRPC_BIND", bind, "expected HOST:PORT");
  std::string host = bind.substr(0, colon);
  int port = 0;
  if (!absl::SimpleAtoi(bind.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return Bad("BROKER_GRPC_BIND", bind, "port must be 0..65535 (0 picks a free one, logged at start)");
  }
  unsigned char buf[16];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) == 1) return absl::OkStatus();
  } else if (host == "localhost" || inet_pton(AF_INET, host.c_str(), buf) == 1) {
    return absl::OkStatus();
  }
  return Bad("BROKER_GRPC_BIND", bind, "host must be an IPv4 address, [IPv6] or localhost");
}

}  // namespace

bool IsLoopbackBind(const std::string& bind) {
  std::string host = bind.substr(0, bind.rfind(':'));
  if (host == "localhost" || host == "[::1]") return true;
  in_addr addr;
  if (inet_pton(AF_INET, host.c_str(), &addr) != 1) return false;
  return (ntohl(addr.s_addr) >> 24) == 127;
}

absl::StatusOr<BrokerConfig> ParseBrokerConfig(const std::map<std::string, std::string>& env) {
  BrokerConfig config;
  auto get = [&env](const char* name) -> const std::string* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : &it->second;
  };
  if (const std::string* v = get("BROKER_UNIX_SOCKET")) {
    if (v->empty() || (*v)[0] != '/' || v->size() > 107) {
      return Bad("BROKER_UNIX_SOCKET", *v, "expected an absolute path of at most 107 bytes");
    }
    config.unix_socket = *v;
  }
  if (const std::string* v = get("BROKER_UNIX_SOCKET_GROUP")) config.unix_socket_group = *v;
  if (const std::string* v = get("BROKER_GRPC_BIND")) config.grpc_bind = *v;
  if (absl::Status s = CheckBind(config.grpc_bind); !s.ok()) return s;
  if (const std::string* v = get("BROKER_TLS_CERT")) config.tls_cert = *v;
  if (const std::string* v = get("BROKER_TLS_KEY")) config.tls_key = *v;
  if (const std::string* v = get("BROKER_JWT_KEYS")) config.jwt_keys = *v;
  if (const std::string* v = get("BROKER_JWT_AUDIENCE")) {
    if (v->empty() || v->size() > 128) return Bad("BROKER_JWT_AUDIENCE", *v, "expected 1 to 128 characters");
    config.jwt_audience = *v;
  }
  if (const std::string* v = get("BROKER_JWT_ISSUER")) {
    if (v->size() > 256) return Bad("BROKER_JWT_ISSUER", *v, "expected at most 256 characters");
    config.jwt_issuer = *v;
  }
  if (const std::string* v = get("BROKER_TOKEN_MAX_LIFETIME")) {
    auto d = DurationVar("BROKER_TOKEN_MAX_LIFETIME", *v, absl::Minutes(1), absl::Hours(24));
    if (!d.ok()) return d.status();
    config.token_max_lifetime = *d;
  }
  if (const std::string* v = get("BROKER_JWT_LEEWAY")) {
    auto d = DurationVar("BROKER_JWT_LEEWAY", *v, absl::ZeroDuration(), absl::Minutes(5));
    if (!d.ok()) return d.status();
    config.jwt_leeway = *d;
  }
  if (const std::string* v = get("BROKER_STATE_DIR")) {
    if (v->empty() || (*v)[0] != '/' || v->size() > 200) {
      return Bad("BROKER_STATE_DIR", *v, "expected an absolute path of at most 200 bytes");
    }
    config.state_dir = *v;
  }
  if (const std::string* v = get("BROKER_PUBLIC_URL")) {
    if (!absl::StartsWith(*v, "grpcs://") || v->size() > 256) {
      return Bad("BROKER_PUBLIC_URL", *v, "expected grpcs://HOST:PORT/v1/agent, the URL hosts dial");
    }
    config.public_url = *v;
  }
  if (const std::string* v = get("BROKER_INSTALLER_URL")) {
    if (!absl::StartsWith(*v, "https://") || v->size() > 256) {
      return Bad("BROKER_INSTALLER_URL", *v, "expected an https:// URL of tools/install-host.sh");
    }
    config.installer_url = *v;
  }
  if (const std::string* v = get("BROKER_PENDING_MAX")) {
    if (!absl::SimpleAtoi(*v, &config.pending_max) || config.pending_max < 1 || config.pending_max > 1000000) {
      return Bad("BROKER_PENDING_MAX", *v, "expected 1..1000000");
    }
  }
  if (const std::string* v = get("BROKER_PENDING_PER_HOST")) {
    if (!absl::SimpleAtoi(*v, &config.pending_per_host) || config.pending_per_host < 1 ||
        config.pending_per_host > 1000000) {
      return Bad("BROKER_PENDING_PER_HOST", *v, "expected 1..1000000");
    }
  }
  config.pending_per_host = std::min(config.pending_per_host, config.pending_max);
  if (const std::string* v = get("BROKER_MAX_CONNECTIONS_PER_ADDRESS")) {
    if (!absl::SimpleAtoi(*v, &config.connections_per_address) || config.connections_per_address < 1 ||
        config.connections_per_address > 1000000) {
      return Bad("BROKER_MAX_CONNECTIONS_PER_ADDRESS", *v, "expected 1..1000000");
    }
  }
  if (const std::string* v = get("BROKER_REQUIRE_ENROLLMENT")) {
    if (*v != "1" && *v != "0" && !v->empty()) return Bad("BROKER_REQUIRE_ENROLLMENT", *v, "expected 1, 0 or unset");
    config.require_enrollment = *v == "1";
  }
  if (const std::string* v = get("BROKER_INSECURE_PLAINTEXT")) {
    if (*v != "1" && *v != "0" && !v->empty()) return Bad("BROKER_INSECURE_PLAINTEXT", *v, "expected 1 or unset");
    config.insecure_plaintext = *v == "1";
  }
  if (const std::string* v = get("BROKER_DISPATCH_TIMEOUT")) {
    auto d = DurationVar("BROKER_DISPATCH_TIMEOUT", *v, absl::Milliseconds(100), absl::Minutes(10));
    if (!d.ok()) return d.status();
    config.dispatch_timeout = *d;
  }
  if (const std::string* v = get("BROKER_LANDED_TTL")) {
    auto d = DurationVar("BROKER_LANDED_TTL", *v, absl::Milliseconds(100), absl::Hours(1));
    if (!d.ok()) return d.status();
    config.landed_ttl = *d;
  }
  if (config.jwt_keys.empty()) {
    return absl::InvalidArgumentError("BROKER_JWT_KEYS: required (kid=/path/to/public-key.pem,...)");
  }
  if (config.insecure_plaintext) {
    if (!IsLoopbackBind(config.grpc_bind)) {
      return Bad("BROKER_GRPC_BIND", config.grpc_bind,
                 "BROKER_INSECURE_PLAINTEXT=1 is refused on a non-loopback bind: host tokens would cross the "
                 "network in clear");
    }
    if (!config.tls_cert.empty() || !config.tls_key.empty()) {
      return absl::InvalidArgumentError("BROKER_INSECURE_PLAINTEXT=1 with BROKER_TLS_CERT/KEY: choose one");
    }
  } else if (config.tls_cert.empty() || config.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "BROKER_TLS_CERT and BROKER_TLS_KEY: required (BROKER_INSECURE_PLAINTEXT=1 only for local development)");
  }
  return config;
}

}  // namespace coolify::broker
