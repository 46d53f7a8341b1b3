#include "services/endpoints/sqlite_backend.h"

#include <sqlite3.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace coolify::endpoints {
namespace {

absl::Status Error(sqlite3* db, std::string_view what) {
  return absl::InternalError(absl::StrCat("sqlite: ", std::string(what), ": ", sqlite3_errmsg(db)));
}

absl::Status Bind(sqlite3* db, sqlite3_stmt* stmt, const std::vector<SqlValue>& params) {
  if (static_cast<int>(params.size()) != sqlite3_bind_parameter_count(stmt)) {
    return absl::InvalidArgumentError(absl::StrCat("sqlite: statement takes ", sqlite3_bind_parameter_count(stmt),
                                                   " parameters, got ", params.size()));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const int at = static_cast<int>(i) + 1;
    int rc = SQLITE_OK;
    if (const auto* v = std::get_if<int64_t>(&params[i])) {
      rc = sqlite3_bind_int64(stmt, at, *v);
    } else if (const auto* d = std::get_if<double>(&params[i])) {
      rc = sqlite3_bind_double(stmt, at, *d);
    } else if (const auto* s = std::get_if<std::string>(&params[i])) {
      rc = sqlite3_bind_text(stmt, at, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
    } else {
      rc = sqlite3_bind_null(stmt, at);
    }
    if (rc != SQLITE_OK) return Error(db, "bind");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteBackend>> SqliteBackend::Open(const std::string& path) {
  if (path.empty() || path[0] != '/') return absl::InvalidArgumentError("sqlite: the database path must be absolute");
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("sqlite: open ", path, ": ", message));
  }
  std::unique_ptr<SqliteBackend> backend(new SqliteBackend(db, path));
  absl::MutexLock lock(&backend->mu_);
  sqlite3_busy_timeout(db, 5000);
  // WAL: a reader (the DNS refresh) never waits for the writer. synchronous=NORMAL is
  // durable against a crash of coold; only a power loss can drop the last commits, which
  // the next reconcile writes again.
  if (auto s = backend->Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
  if (auto s = backend->Exec("PRAGMA synchronous=NORMAL"); !s.ok()) return s;
  return backend;
}

SqliteBackend::~SqliteBackend() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status SqliteBackend::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status s = absl::InternalError(absl::StrCat("sqlite: ", sql, ": ", err ? err : "error"));
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> SqliteBackend::Execute(const std::vector<SqlStatement>& transaction) {
  absl::MutexLock lock(&mu_);
  if (auto s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::StatusOr<std::vector<int64_t>> affected = ExecuteInTransaction(transaction);
  if (affected.ok()) {
    absl::Status committed = Exec("COMMIT");
    if (committed.ok()) return affected;
    affected = committed;
  }
  Exec("ROLLBACK").IgnoreError();
  return affected;
}

absl::StatusOr<std::vector<int64_t>> SqliteBackend::ExecuteInTransaction(
    const std::vector<SqlStatement>& transaction) {
  std::vector<int64_t> affected;
  for (const SqlStatement& st : transaction) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, st.sql.c_str(), static_cast<int>(st.sql.size()), &stmt, nullptr) != SQLITE_OK) {
      return Error(db_, "prepare");
    }
    absl::Cleanup finalize = [stmt] { sqlite3_finalize(stmt); };
    if (auto s = Bind(db_, stmt, st.params); !s.ok()) return s;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return Error(db_, "step");
    affected.push_back(sqlite3_changes(db_));
  }
  return affected;
}

absl::StatusOr<SqlRows> SqliteBackend::Query(const SqlStatement& query) {
  absl::MutexLock lock(&mu_);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, query.sql.c_str(), static_cast<int>(query.sql.size()), &stmt, nullptr) != SQLITE_OK) {
    return Error(db_, "prepare");
  }
  absl::Cleanup finalize = [stmt] { sqlite3_finalize(stmt); };
  if (auto s = Bind(db_, stmt, query.params); !s.ok()) return s;
  SqlRows out;
  const int n = sqlite3_column_count(stmt);
  for (int i = 0; i < n; ++i) out.columns.emplace_back(sqlite3_column_name(stmt, i));
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    std::vector<SqlValue>& row = out.rows.emplace_back();
    for (int i = 0; i < n; ++i) {
      switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
          row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, i)));
          break;
        case SQLITE_FLOAT:
          row.emplace_back(sqlite3_column_double(stmt, i));
          break;
        case SQLITE_NULL:
          row.emplace_back(std::monostate());
          break;
        default:
          row.emplace_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)),
                                       static_cast<size_t>(sqlite3_column_bytes(stmt, i))));
      }
    }
  }
  if (rc != SQLITE_DONE) return Error(db_, "step");
  return out;
}

absl::Status SqliteBackend::EnsureSchema(const std::string& schema, const std::string&) {
  absl::MutexLock lock(&mu_);
  return Exec(schema.c_str());
}

}  // namespace coolify::endpoints
