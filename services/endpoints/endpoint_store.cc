#include "services/endpoints/endpoint_store.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "privsep/validate.h"
#include "services/endpoints/embedded_schema.h"

namespace coolify::endpoints {

std::string_view ServiceEndpointsSchema() {
  // The file operators hand to Corrosion, embedded at build time: one text, never two.
  return Embedded("services/endpoints/service_endpoints.sql");
}

namespace {

constexpr char kColumns[] =
    "service_id, container_id, host_id, namespace, container_name, ip, port, state, health, updated_at";

// The upsert only replaces a row this host owns: another host's row with the same key
// stays as it is and the statement affects nothing.
constexpr char kUpsert[] =
    "INSERT INTO service_endpoints (service_id, container_id, host_id, namespace, container_name, ip, port, state, "
    "health, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service_id, container_id) DO UPDATE SET "
    "namespace = excluded.namespace, container_name = excluded.container_name, ip = excluded.ip, "
    "port = excluded.port, state = excluded.state, health = excluded.health, updated_at = excluded.updated_at "
    "WHERE service_endpoints.host_id = excluded.host_id";

constexpr char kDelete[] = "DELETE FROM service_endpoints WHERE service_id = ? AND container_id = ? AND host_id = ?";

SqlStatement UpsertStatement(const EndpointRow& r) {
  return {kUpsert,
          {r.service_id, r.container_id, r.host_id, r.namespace_name, r.container_name, r.ip,
           static_cast<int64_t>(r.port), r.state, r.health, r.updated_at_ms}};
}

const std::string* Text(const SqlValue& v) { return std::get_if<std::string>(&v); }

absl::StatusOr<EndpointRow> RowFrom(const std::vector<SqlValue>& v) {
  EndpointRow r;
  std::string* text[] = {&r.service_id, &r.container_id, &r.host_id,   &r.namespace_name, &r.container_name,
                         &r.ip,         nullptr,           &r.state,     &r.health};
  for (size_t i = 0; i < 9; ++i) {
    if (text[i] == nullptr) continue;
    const std::string* s = Text(v[i]);
    if (s == nullptr) return absl::DataLossError(absl::StrCat("service_endpoints: column ", i + 1, " is not text"));
    *text[i] = *s;
  }
  const int64_t* port = std::get_if<int64_t>(&v[6]);
  const int64_t* updated = std::get_if<int64_t>(&v[9]);
  if (port == nullptr || updated == nullptr || *port < 0 || *port > 65535) {
    return absl::DataLossError("service_endpoints: port or updated_at is not a valid integer");
  }
  r.port = static_cast<uint32_t>(*port);
  r.updated_at_ms = *updated;
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EndpointStore>> EndpointStore::Open(std::unique_ptr<SqlBackend> backend,
                                                                   std::string host_id) {
  if (auto s = privsep::ValidateHostId("host_id", host_id); !s.ok()) return s;
  if (backend == nullptr) return absl::InvalidArgumentError("no backend");
  if (auto s = backend->EnsureSchema(std::string(ServiceEndpointsSchema()), "service_endpoints"); !s.ok()) return s;
  return std::unique_ptr<EndpointStore>(new EndpointStore(std::move(backend), std::move(host_id)));
}

int64_t EndpointStore::NextTimestamp() {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  absl::MutexLock lock(&mu_);
  // Strictly increasing, so every write moves the fingerprint even within a millisecond.
  last_timestamp_ = std::max(now, last_timestamp_ + 1);
  return last_timestamp_;
}

absl::Status EndpointStore::Upsert(EndpointRow row) {
  row.host_id = host_id_;
  if (auto s = ValidateEndpointRow(row); !s.ok()) return s;
  row.updated_at_ms = NextTimestamp();
  absl::StatusOr<std::vector<int64_t>> n = backend_->Execute({UpsertStatement(row)});
  if (!n.ok()) return n.status();
  if ((*n)[0] == 0) {
    return absl::FailedPreconditionError(absl::StrCat("endpoint ", row.service_id, "/", row.container_id,
                                                      " belongs to another host"));
  }
  return absl::OkStatus();
}

absl::Status EndpointStore::Delete(std::string_view service_id, std::string_view container_id) {
  absl::StatusOr<std::vector<int64_t>> n =
      backend_->Execute({{kDelete, {std::string(service_id), std::string(container_id), host_id_}}});
  if (!n.ok()) return n.status();
  if ((*n)[0] == 0) {
    return absl::NotFoundError(absl::StrCat("no endpoint ", std::string(service_id), "/", std::string(container_id),
                                            " on this host"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<EndpointRow>> EndpointStore::Select(const std::string& where,
                                                               std::vector<SqlValue> params) {
  absl::StatusOr<SqlRows> rows =
      backend_->Query({absl::StrCat("SELECT ", kColumns, " FROM service_endpoints ", where), std::move(params)});
  if (!rows.ok()) return rows.status();
  if (rows->columns.size() != 10) return absl::DataLossError("service_endpoints: unexpected columns");
  std::vector<EndpointRow> out;
  out.reserve(rows->rows.size());
  for (const auto& v : rows->rows) {
    if (v.size() != 10) return absl::DataLossError("service_endpoints: a row of the wrong width");
    absl::StatusOr<EndpointRow> r = RowFrom(v);
    if (!r.ok()) return r.status();
    out.push_back(std::move(*r));
  }
  return out;
}

absl::StatusOr<std::vector<EndpointRow>> EndpointStore::ListService(std::string_view service_id) {
  return Select("WHERE service_id = ? ORDER BY container_id", {std::string(service_id)});
}

absl::StatusOr<std::vector<EndpointRow>> EndpointStore::ListServing() {
  return Select("WHERE state = 'running' AND health IN ('healthy', 'unknown')", {});
}

absl::StatusOr<std::vector<EndpointRow>> EndpointStore::ListHost() {
  return Select("WHERE host_id = ?", {host_id_});
}

absl::StatusOr<std::string> EndpointStore::Fingerprint() {
  absl::StatusOr<SqlRows> rows = backend_->Query(
      {"SELECT count(*), coalesce(max(updated_at), 0), coalesce(sum(updated_at), 0) FROM service_endpoints", {}});
  if (!rows.ok()) return rows.status();
  if (rows->rows.size() != 1 || rows->rows[0].size() != 3) return absl::DataLossError("fingerprint: unexpected shape");
  std::string out;
  for (const SqlValue& v : rows->rows[0]) {
    const int64_t* i = std::get_if<int64_t>(&v);
    if (i == nullptr) return absl::DataLossError("fingerprint: not an integer");
    absl::StrAppend(&out, out.empty() ? "" : ":", *i);
  }
  return out;
}

absl::StatusOr<ReconcileResult> EndpointStore::ReplaceHostRows(std::vector<EndpointRow> desired) {
  ReconcileResult result;
  std::map<std::pair<std::string, std::string>, EndpointRow> want;
  for (EndpointRow& row : desired) {
    row.host_id = host_id_;
    if (auto s = ValidateEndpointRow(row); !s.ok()) {
      result.skipped.push_back(absl::StrCat(row.service_id, "/", row.container_id, ": ", s.message()));
      continue;
    }
    auto key = std::make_pair(row.service_id, row.container_id);
    if (want.count(key)) {
      result.skipped.push_back(absl::StrCat(row.service_id, "/", row.container_id, ": given twice"));
      continue;
    }
    want.emplace(std::move(key), std::move(row));
  }
  absl::StatusOr<std::vector<EndpointRow>> current = ListHost();
  if (!current.ok()) return current.status();
  std::vector<SqlStatement> tx;
  for (const EndpointRow& have : *current) {
    auto it = want.find({have.service_id, have.container_id});
    if (it == want.end()) {
      tx.push_back({kDelete, {have.service_id, have.container_id, host_id_}});
      ++result.removed;
    } else if (it->second.SameContent(have)) {
      want.erase(it);  // unchanged: not rewritten
    }
  }
  const size_t first_upsert = tx.size();
  std::vector<const EndpointRow*> upserted;
  for (auto& [key, row] : want) {
    row.updated_at_ms = NextTimestamp();
    tx.push_back(UpsertStatement(row));
    upserted.push_back(&row);
  }
  if (tx.empty()) return result;
  absl::StatusOr<std::vector<int64_t>> n = backend_->Execute(tx);
  if (!n.ok()) return n.status();
  for (size_t i = 0; i < upserted.size(); ++i) {
    if ((*n)[first_upsert + i] == 0) {
      result.skipped.push_back(
          absl::StrCat(upserted[i]->service_id, "/", upserted[i]->container_id, ": belongs to another host"));
    } else {
      ++result.written;
    }
  }
  return result;
}

}  // namespace coolify::endpoints
