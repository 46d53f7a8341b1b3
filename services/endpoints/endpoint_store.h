// The `service_endpoints` table (service_endpoints.sql) behind one interface, over either
// backend (SQLite file or Corrosion). This host writes only rows whose host_id is its own;
// it reads every host's rows (Corrosion's gossip brings the peers').
//
// Nothing is cached here: when the backend is down every call returns Unavailable and
// changes nothing, and the caller's next tick (ReplaceHostRows with the full set it sees
// in Podman) writes everything that was missed.
#ifndef COOLD_SERVICES_ENDPOINTS_ENDPOINT_STORE_H_
#define COOLD_SERVICES_ENDPOINTS_ENDPOINT_STORE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/endpoints/endpoint.h"
#include "services/endpoints/sql_backend.h"

namespace coolify::endpoints {

// The schema: service_endpoints.sql, embedded.
std::string_view ServiceEndpointsSchema();

struct ReconcileResult {
  size_t written = 0;                // rows inserted or changed
  size_t removed = 0;                // rows of this host no longer present
  std::vector<std::string> skipped;  // desired rows refused, each with the reason
};

class EndpointStore {
 public:
  // Applies or checks the schema (SqlBackend::EnsureSchema). `host_id` is this host's id.
  static absl::StatusOr<std::unique_ptr<EndpointStore>> Open(std::unique_ptr<SqlBackend> backend,
                                                             std::string host_id);

  // Inserts or replaces one row of this host (host_id and updated_at are set here).
  // InvalidArgument for a bad field; FailedPrecondition when another host owns
  // (service_id, container_id).
  absl::Status Upsert(EndpointRow row);
  // Deletes this host's row; NotFound when there is none.
  absl::Status Delete(std::string_view service_id, std::string_view container_id);
  // Every host's rows of a service, ordered by container_id.
  absl::StatusOr<std::vector<EndpointRow>> ListService(std::string_view service_id);
  // Every host's rows DNS answers with: state='running' AND health IN ('healthy','unknown').
  absl::StatusOr<std::vector<EndpointRow>> ListServing();
  // This host's rows.
  absl::StatusOr<std::vector<EndpointRow>> ListHost();
  // Changes whenever a row is added, changed or removed (count, newest updated_at and
  // the sum of updated_at): one aggregate query, so a DNS refresh can skip ListServing
  // when nothing moved.
  absl::StatusOr<std::string> Fingerprint();
  // Makes this host's rows exactly `desired` in one transaction: writes new and changed
  // rows, deletes the others; rows that are the same are not touched (no gossip churn).
  // A desired row that fails validation is skipped and named in the result.
  absl::StatusOr<ReconcileResult> ReplaceHostRows(std::vector<EndpointRow> desired);

  const std::string& host_id() const { return host_id_; }
  std::string Describe() const { return backend_->Describe(); }

 private:
  EndpointStore(std::unique_ptr<SqlBackend> backend, std::string host_id)
      : backend_(std::move(backend)), host_id_(std::move(host_id)) {}
  int64_t NextTimestamp();
  absl::StatusOr<std::vector<EndpointRow>> Select(const std::string& where, std::vector<SqlValue> params);

  std::unique_ptr<SqlBackend> backend_;
  const std::string host_id_;
  absl::Mutex mu_;
  int64_t last_timestamp_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace coolify::endpoints

#endif  // COOLD_SERVICES_ENDPOINTS_ENDPOINT_STORE_H_
