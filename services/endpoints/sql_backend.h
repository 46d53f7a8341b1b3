// The two things the endpoint store asks of a database: run statements as one atomic
// transaction, and run one query. SQLite (sqlite_backend.h) and Corrosion's HTTP API
// (corrosion_backend.h) both offer exactly this, so all endpoint logic is written once
// (endpoint_store.h) over either.
#ifndef COOLD_SERVICES_ENDPOINTS_SQL_BACKEND_H_
#define COOLD_SERVICES_ENDPOINTS_SQL_BACKEND_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace coolify::endpoints {

// NULL, INTEGER, REAL or TEXT (no BLOBs in this schema).
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

struct SqlStatement {
  std::string sql;  // with positional ? parameters
  std::vector<SqlValue> params;
};

struct SqlRows {
  std::vector<std::string> columns;
  std::vector<std::vector<SqlValue>> rows;
};

class SqlBackend {
 public:
  virtual ~SqlBackend() = default;
  // All or nothing. Returns each statement's rows_affected. Unavailable when the database
  // cannot be reached (the caller retries later); other codes for a refused statement.
  virtual absl::StatusOr<std::vector<int64_t>> Execute(const std::vector<SqlStatement>& transaction) = 0;
  virtual absl::StatusOr<SqlRows> Query(const SqlStatement& query) = 0;
  // Makes sure `schema` (CREATE TABLE/INDEX IF NOT EXISTS) holds: SQLite applies it;
  // Corrosion takes its schema from files at start, so there it is only checked.
  virtual absl::Status EnsureSchema(const std::string& schema, const std::string& table) = 0;
  // "sqlite:/path" or "corrosion:http://host:port", for logs and errors.
  virtual std::string Describe() const = 0;
};

}  // namespace coolify::endpoints

#endif  // COOLD_SERVICES_ENDPOINTS_SQL_BACKEND_H_
