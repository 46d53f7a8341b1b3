// Which endpoint store coold uses, from COOLD_* variables (README lists them):
//   COOLD_ENDPOINT_STORE  sqlite (default, single host) or corrosion (multi-host)
//   COOLD_ENDPOINT_DB     the SQLite file, default /var/lib/coolify/endpoints/endpoints.db
//   COOLD_CORROSION_API   Corrosion's API address, default 127.0.0.1:8080
// Each error names the variable.
#ifndef COOLD_SERVICES_ENDPOINTS_STORE_CONFIG_H_
#define COOLD_SERVICES_ENDPOINTS_STORE_CONFIG_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/endpoints/corrosion_backend.h"
#include "services/endpoints/endpoint_store.h"

namespace coolify::endpoints {

struct StoreConfig {
  enum class Kind { kSqlite, kCorrosion };
  Kind kind = Kind::kSqlite;
  std::string sqlite_path = "/var/lib/coolify/endpoints/endpoints.db";
  CorrosionAddress corrosion{"127.0.0.1", 8080};
};

// `env` returns a variable's value or nullptr when unset.
absl::StatusOr<StoreConfig> ParseStoreConfig(const std::function<const char*(const char*)>& env);

// Opens the configured backend and the store on it for `host_id`.
absl::StatusOr<std::unique_ptr<EndpointStore>> OpenStore(const StoreConfig& config, const std::string& host_id);

}  // namespace coolify::endpoints

#endif  // COOLD_SERVICES_ENDPOINTS_STORE_CONFIG_H_
