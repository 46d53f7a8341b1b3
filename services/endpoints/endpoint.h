// One row of the `service_endpoints` table: where a service's container answers. The same
// row travels through the REST API (ServicesRegister in proto/commands.proto), both store
// backends and the DNS name tables, so its grammar is checked in one place.
#ifndef COOLD_SERVICES_ENDPOINTS_ENDPOINT_H_
#define COOLD_SERVICES_ENDPOINTS_ENDPOINT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "proto/commands.pb.h"

namespace coolify::endpoints {

struct EndpointRow {
  std::string service_id;      // service-id = [A-Za-z0-9] *127( [A-Za-z0-9_.-] )
  std::string container_id;    // 12..64 lower-case hex digits (Podman's id or its prefix)
  std::string host_id;         // the host that runs the container (privsep ValidateHostId)
  std::string namespace_name;  // tenancy namespace ([a-z][a-z0-9-]{0,30})
  std::string container_name;  // DNS label: [A-Za-z0-9] *62( [A-Za-z0-9_-] )
  std::string ip;              // IPv4, dotted quad without leading zeros
  uint32_t port = 0;           // 0 = none, else 1..65535
  std::string state;           // Podman state: created, running, paused, exited, ...
  std::string health;          // healthy, unhealthy, starting, unknown
  int64_t updated_at_ms = 0;   // Unix milliseconds of the last change; set by the store

  // Every field but updated_at: what a reconcile compares to decide a row changed.
  bool SameContent(const EndpointRow& other) const;
};

// Checks every field's grammar; the error names the field and the value.
absl::Status ValidateEndpointRow(const EndpointRow& row);

// The DNS rule: state 'running' and health 'healthy' or 'unknown'.
bool ServesDns(const EndpointRow& row);

// A registration from the API: its fields, host_id left empty for the store to fill in.
// "" health means unknown. The result is not validated; call ValidateEndpointRow.
EndpointRow RowFromRegister(const v1::ServicesRegister& request);

}  // namespace coolify::endpoints

#endif  // COOLD_SERVICES_ENDPOINTS_ENDPOINT_H_
