// SqlBackend over Corrosion's HTTP API (corrosion_wire.h) with a Boost.Beast client:
// one HTTP/1.1 connection per call, an overall deadline per call, the answer's size
// capped. The address is an IP literal and a port: coold resolves no names for it.
#ifndef COOLD_SERVICES_ENDPOINTS_CORROSION_BACKEND_H_
#define COOLD_SERVICES_ENDPOINTS_CORROSION_BACKEND_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "services/endpoints/sql_backend.h"

namespace coolify::endpoints {

struct CorrosionAddress {
  std::string ip;  // IPv4 literal
  uint16_t port = 8080;
};

// COOLD_CORROSION_API: "IPv4:PORT" or "http://IPv4:PORT" (Corrosion's default API
// address is 127.0.0.1:8080).
absl::StatusOr<CorrosionAddress> ParseCorrosionAddress(std::string_view text);

class CorrosionBackend : public SqlBackend {
 public:
  explicit CorrosionBackend(CorrosionAddress address,
                            std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

  absl::StatusOr<std::vector<int64_t>> Execute(const std::vector<SqlStatement>& transaction) override;
  absl::StatusOr<SqlRows> Query(const SqlStatement& query) override;
  absl::Status EnsureSchema(const std::string& schema, const std::string& table) override;
  std::string Describe() const override;

 private:
  // POSTs a JSON body; the answer's body when the status is 2xx. Unavailable when the
  // agent cannot be reached or answers 5xx without a body we understand.
  absl::StatusOr<std::string> Post(const char* path, const std::string& body, unsigned* status);

  const CorrosionAddress address_;
  const std::chrono::milliseconds timeout_;
};

}  // namespace coolify::endpoints

#endif  // COOLD_SERVICES_ENDPOINTS_CORROSION_BACKEND_H_
