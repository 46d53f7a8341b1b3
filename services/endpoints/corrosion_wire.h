// Corrosion's HTTP API bodies (its doc/api/transactions.md and queries.md):
//   POST /v1/transactions  body: a JSON array of statements, each [sql, [params]]
//                          answer: {"results":[{"rows_affected":N,"time":T} | {"error":"…"}],
//                                   "time":T, "version":V?}
//   POST /v1/queries       body: one statement, [sql, [params]]
//                          answer: NDJSON events, one per line:
//                            {"columns":["a","b"]}  {"row":[rowid,[va,vb]]}  …  {"eoq":{"time":T}}
//                          or {"error":"…"} in their place.
// The parsers take untrusted bytes (whatever answers on that address) and are fuzzed.
#ifndef COOLD_SERVICES_ENDPOINTS_CORROSION_WIRE_H_
#define COOLD_SERVICES_ENDPOINTS_CORROSION_WIRE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "services/endpoints/sql_backend.h"

namespace coolify::endpoints {

std::string EncodeTransaction(const std::vector<SqlStatement>& statements);
std::string EncodeQuery(const SqlStatement& statement);

// rows_affected per statement; the first {"error"} (or a count mismatch) is an error.
absl::StatusOr<std::vector<int64_t>> ParseExecResponse(std::string_view body, size_t statements);

// At most kMaxQueryRows rows; the columns event first, rows of exactly that many values
// (null, integer, real or text), then eoq and nothing after it.
inline constexpr size_t kMaxQueryRows = 1'000'000;
absl::StatusOr<SqlRows> ParseQueryResponse(std::string_view ndjson);

}  // namespace coolify::endpoints

#endif  // COOLD_SERVICES_ENDPOINTS_CORROSION_WIRE_H_
