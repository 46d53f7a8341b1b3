#include "services/endpoints/endpoint.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "privsep/validate.h"
#include "services/http/status.h"

namespace coolify::endpoints {
namespace {

absl::Status Bad(std::string_view field, std::string_view value, std::string_view what) {
  return http::InvalidField(field, absl::StrCat("expected ", std::string(what), ", got \"", std::string(value), "\""));
}

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Podman's container states (libpod/define/containerstate.go).
constexpr std::array<std::string_view, 10> kStates = {"configured", "created", "running", "stopped", "paused",
                                                      "exited",     "removing", "stopping", "dead",  "unknown"};
constexpr std::array<std::string_view, 4> kHealth = {"healthy", "unhealthy", "starting", "unknown"};

template <size_t N>
bool OneOf(const std::array<std::string_view, N>& set, std::string_view value) {
  for (std::string_view s : set) {
    if (s == value) return true;
  }
  return false;
}

}  // namespace

bool EndpointRow::SameContent(const EndpointRow& o) const {
  return service_id == o.service_id && container_id == o.container_id && host_id == o.host_id &&
         namespace_name == o.namespace_name && container_name == o.container_name && ip == o.ip &&
         port == o.port && state == o.state && health == o.health;
}

absl::Status ValidateEndpointRow(const EndpointRow& row) {
  {
    const std::string& v = row.service_id;
    bool ok = !v.empty() && v.size() <= 128 && IsAlnum(v[0]);
    for (char c : v) ok = ok && (IsAlnum(c) || c == '_' || c == '.' || c == '-');
    if (!ok) return Bad("service_id", v, "1..128 of [A-Za-z0-9_.-], starting with a letter or digit");
  }
  {
    const std::string& v = row.container_id;
    bool ok = v.size() >= 12 && v.size() <= 64;
    for (char c : v) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!ok) return Bad("container_id", v, "12..64 lower-case hex digits");
  }
  if (auto s = privsep::ValidateHostId("host_id", row.host_id); !s.ok()) return s;
  if (auto s = privsep::ValidateNamespaceName("namespace", row.namespace_name); !s.ok()) return s;
  {
    const std::string& v = row.container_name;
    bool ok = !v.empty() && v.size() <= 63 && IsAlnum(v[0]);
    for (char c : v) ok = ok && (IsAlnum(c) || c == '_' || c == '-');
    if (!ok) return Bad("container_name", v, "a DNS label: 1..63 of [A-Za-z0-9_-], starting with a letter or digit");
  }
  if (auto s = privsep::ValidateIpv4("ip", row.ip); !s.ok()) return s;
  if (row.port > 65535) return Bad("port", std::to_string(row.port), "0 (none) or 1..65535");
  if (!OneOf(kStates, row.state)) return Bad("state", row.state, "a Podman container state (running, exited, ...)");
  if (!OneOf(kHealth, row.health)) return Bad("health", row.health, "healthy, unhealthy, starting or unknown");
  return absl::OkStatus();
}

bool ServesDns(const EndpointRow& row) {
  return row.state == "running" && (row.health == "healthy" || row.health == "unknown");
}

EndpointRow RowFromRegister(const v1::ServicesRegister& r) {
  EndpointRow row;
  row.service_id = r.service_id();
  row.container_id = r.container_id();
  row.namespace_name = r.namespace_();
  row.container_name = r.container_name();
  row.ip = r.ip();
  row.port = r.port();
  row.state = r.state();
  row.health = r.health().empty() ? "unknown" : r.health();
  return row;
}

}  // namespace coolify::endpoints
