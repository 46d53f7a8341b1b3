// SqlBackend on an SQLite file: WAL journal (readers never block the writer), a busy
// timeout for other processes holding the lock, every transaction BEGIN IMMEDIATE.
// Thread-safe (one connection behind a mutex).
#ifndef COOLD_SERVICES_ENDPOINTS_SQLITE_BACKEND_H_
#define COOLD_SERVICES_ENDPOINTS_SQLITE_BACKEND_H_

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "services/endpoints/sql_backend.h"

struct sqlite3;

namespace coolify::endpoints {

class SqliteBackend : public SqlBackend {
 public:
  // Opens (creating if needed) the database file at `path`, an absolute path.
  static absl::StatusOr<std::unique_ptr<SqliteBackend>> Open(const std::string& path);
  ~SqliteBackend() override;

  absl::StatusOr<std::vector<int64_t>> Execute(const std::vector<SqlStatement>& transaction) override;
  absl::StatusOr<SqlRows> Query(const SqlStatement& query) override;
  absl::Status EnsureSchema(const std::string& schema, const std::string& table) override;
  std::string Describe() const override { return "sqlite:" + path_; }

 private:
  SqliteBackend(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The statements of one transaction, between BEGIN and COMMIT or ROLLBACK.
  absl::StatusOr<std::vector<int64_t>> ExecuteInTransaction(const std::vector<SqlStatement>& transaction)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  const std::string path_;
};

}  // namespace coolify::endpoints

#endif  // COOLD_SERVICES_ENDPOINTS_SQLITE_BACKEND_H_
