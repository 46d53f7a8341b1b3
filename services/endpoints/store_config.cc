#include "services/endpoints/store_config.h"

#include "absl/strings/str_cat.h"
#include "services/endpoints/sqlite_backend.h"

namespace coolify::endpoints {

absl::StatusOr<StoreConfig> ParseStoreConfig(const std::function<const char*(const char*)>& env) {
  auto get = [&](const char* name) -> std::string {
    const char* v = env(name);
    return v == nullptr ? "" : v;
  };
  StoreConfig config;
  const std::string kind = get("COOLD_ENDPOINT_STORE");
  if (kind == "corrosion") {
    config.kind = StoreConfig::Kind::kCorrosion;
  } else if (!kind.empty() && kind != "sqlite") {
    return absl::InvalidArgumentError(
        absl::StrCat("COOLD_ENDPOINT_STORE: expected sqlite or corrosion, got \"", kind, "\""));
  }
  if (std::string path = get("COOLD_ENDPOINT_DB"); !path.empty()) {
    if (path[0] != '/' || path.back() == '/' || path.find("/../") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("COOLD_ENDPOINT_DB: must be an absolute file path, got \"", path, "\""));
    }
    config.sqlite_path = path;
  }
  if (std::string api = get("COOLD_CORROSION_API"); !api.empty()) {
    absl::StatusOr<CorrosionAddress> address = ParseCorrosionAddress(api);
    if (!address.ok()) return address.status();
    config.corrosion = *address;
  }
  return config;
}

absl::StatusOr<std::unique_ptr<EndpointStore>> OpenStore(const StoreConfig& config, const std::string& host_id) {
  std::unique_ptr<SqlBackend> backend;
  if (config.kind == StoreConfig::Kind::kCorrosion) {
    backend = std::make_unique<CorrosionBackend>(config.corrosion);
  } else {
    absl::StatusOr<std::unique_ptr<SqliteBackend>> sqlite = SqliteBackend::Open(config.sqlite_path);
    if (!sqlite.ok()) return sqlite.status();
    backend = std::move(*sqlite);
  }
  return EndpointStore::Open(std::move(backend), host_id);
}

}  // namespace coolify::endpoints
