#include "services/endpoints/corrosion_wire.h"

#include "absl/strings/str_cat.h"
#include "boost/json.hpp"

namespace coolify::endpoints {
namespace json = boost::json;
namespace {

json::value ToJson(const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* s = std::get_if<std::string>(&v)) return json::string(*s);
  return nullptr;
}

json::array StatementJson(const SqlStatement& st) {
  json::array params;
  for (const SqlValue& v : st.params) params.push_back(ToJson(v));
  return json::array{json::string(st.sql), std::move(params)};
}

absl::Status Bad(std::string_view what) {
  return absl::DataLossError(absl::StrCat("corrosion: unexpected answer: ", std::string(what)));
}

absl::StatusOr<json::value> ParseJson(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return Bad(absl::StrCat("not JSON (", ec.message(), ")"));
  return v;
}

absl::StatusOr<SqlValue> FromJson(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return SqlValue(std::monostate());
    case json::kind::int64:
      return SqlValue(v.get_int64());
    case json::kind::uint64:
      if (v.get_uint64() > static_cast<uint64_t>(INT64_MAX)) return Bad("integer out of range");
      return SqlValue(static_cast<int64_t>(v.get_uint64()));
    case json::kind::double_:
      return SqlValue(v.get_double());
    case json::kind::string:
      return SqlValue(std::string(v.get_string()));
    default:
      return Bad("a value that is not null, a number or text");
  }
}

}  // namespace

std::string EncodeTransaction(const std::vector<SqlStatement>& statements) {
  json::array body;
  for (const SqlStatement& st : statements) body.push_back(StatementJson(st));
  return json::serialize(body);
}

std::string EncodeQuery(const SqlStatement& statement) { return json::serialize(StatementJson(statement)); }

absl::StatusOr<std::vector<int64_t>> ParseExecResponse(std::string_view body, size_t statements) {
  absl::StatusOr<json::value> v = ParseJson(body);
  if (!v.ok()) return v.status();
  const json::object* obj = v->if_object();
  const json::value* results = obj ? obj->if_contains("results") : nullptr;
  if (results == nullptr || !results->is_array()) return Bad("no \"results\" array");
  std::vector<int64_t> affected;
  for (const json::value& r : results->get_array()) {
    const json::object* ro = r.if_object();
    if (ro == nullptr) return Bad("a result that is not an object");
    if (const json::value* err = ro->if_contains("error")) {
      return absl::InternalError(
          absl::StrCat("corrosion: statement ", affected.size() + 1, " failed: ",
                       err->is_string() ? std::string(err->get_string()) : std::string("(no message)")));
    }
    const json::value* n = ro->if_contains("rows_affected");
    if (n == nullptr || !(n->is_int64() || n->is_uint64()) || (n->is_int64() && n->get_int64() < 0) ||
        (n->is_uint64() && n->get_uint64() > static_cast<uint64_t>(INT64_MAX))) {
      return Bad("a result without a valid rows_affected");
    }
    affected.push_back(n->is_int64() ? n->get_int64() : static_cast<int64_t>(n->get_uint64()));
  }
  if (affected.size() != statements) {
    return Bad(absl::StrCat(affected.size(), " results for ", statements, " statements"));
  }
  return affected;
}

absl::StatusOr<SqlRows> ParseQueryResponse(std::string_view ndjson) {
  SqlRows out;
  bool have_columns = false, done = false;
  size_t start = 0;
  while (start < ndjson.size()) {
    size_t end = ndjson.find('\n', start);
    if (end == std::string_view::npos) end = ndjson.size();
    std::string_view line = ndjson.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (done) return Bad("events after eoq");
    absl::StatusOr<json::value> v = ParseJson(line);
    if (!v.ok()) return v.status();
    const json::object* obj = v->if_object();
    if (obj == nullptr || obj->size() != 1) return Bad("an event that is not a one-key object");
    const auto& [key, value] = *obj->begin();
    if (key == "error") {
      return absl::InternalError(absl::StrCat(
          "corrosion: query failed: ", value.is_string() ? std::string(value.get_string()) : std::string("(no message)")));
    }
    if (key == "columns") {
      if (have_columns || !value.is_array()) return Bad("a second or malformed columns event");
      for (const json::value& c : value.get_array()) {
        if (!c.is_string()) return Bad("a column name that is not text");
        out.columns.emplace_back(c.get_string());
      }
      have_columns = true;
    } else if (key == "row") {
      if (!have_columns) return Bad("a row before the columns");
      const json::array* row = value.if_array();
      if (row == nullptr || row->size() != 2 || !((*row)[0].is_int64() || (*row)[0].is_uint64()) ||
          !(*row)[1].is_array()) {
        return Bad("a row that is not [rowid, [values]]");
      }
      const json::array& values = (*row)[1].get_array();
      if (values.size() != out.columns.size()) return Bad("a row with the wrong number of values");
      if (out.rows.size() >= kMaxQueryRows) return Bad("more rows than the limit");
      std::vector<SqlValue>& r = out.rows.emplace_back();
      for (const json::value& cell : values) {
        absl::StatusOr<SqlValue> sv = FromJson(cell);
        if (!sv.ok()) return sv.status();
        r.push_back(std::move(*sv));
      }
    } else if (key == "eoq") {
      if (!have_columns) return Bad("eoq before the columns");
      done = true;
    } else {
      return Bad(absl::StrCat("an unknown event \"", std::string(key), "\""));
    }
  }
  if (!done) return Bad("no eoq: the answer was cut short");
  return out;
}

}  // namespace coolify::endpoints
