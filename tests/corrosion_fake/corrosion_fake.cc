// A stand-in for a Corrosion agent's HTTP API, for tests: the request and answer shapes
// of Corrosion's documentation (doc/api/transactions.md, doc/api/queries.md) served over
// a real SQLite file. Corrosion itself (and its cr-sqlite extension) is not packaged for
// Debian, so the Corrosion backend is tested against this.
//
//   corrosion_fake --db /abs/path.db --listen 127.0.0.1:PORT [--no-schema]
//
// Prints "listening on IP:PORT" once it accepts connections. At start it applies
// services/endpoints/service_endpoints.sql as Corrosion applies its schema files, unless
// --no-schema. Statements are accepted in every form Corrosion's API types accept:
// "sql", ["sql", [params]] and {"query": "sql", "params": [params]}.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/json.hpp"
#include "services/endpoints/endpoint_store.h"
#include "services/endpoints/sqlite_backend.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using coolify::endpoints::SqlRows;
using coolify::endpoints::SqlStatement;
using coolify::endpoints::SqlValue;

absl::StatusOr<SqlValue> Param(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return SqlValue(std::monostate());
    case json::kind::bool_:
      return SqlValue(int64_t{v.get_bool() ? 1 : 0});
    case json::kind::int64:
      return SqlValue(v.get_int64());
    case json::kind::uint64:
      return SqlValue(static_cast<int64_t>(v.get_uint64()));
    case json::kind::double_:
      return SqlValue(v.get_double());
    case json::kind::string:
      return SqlValue(std::string(v.get_string()));
    default:
      return absl::InvalidArgumentError("unsupported parameter");
  }
}

absl::StatusOr<SqlStatement> Statement(const json::value& v) {
  SqlStatement st;
  const json::array* params = nullptr;
  if (v.is_string()) {
    st.sql = std::string(v.get_string());
  } else if (v.is_array() && v.get_array().size() == 2 && v.get_array()[0].is_string() &&
             v.get_array()[1].is_array()) {
    st.sql = std::string(v.get_array()[0].get_string());
    params = &v.get_array()[1].get_array();
  } else if (v.is_object() && v.get_object().contains("query") && v.get_object().at("query").is_string()) {
    st.sql = std::string(v.get_object().at("query").get_string());
    if (const json::value* p = v.get_object().if_contains("params"); p != nullptr && p->is_array()) {
      params = &p->get_array();
    }
  } else {
    return absl::InvalidArgumentError("not a statement");
  }
  if (params != nullptr) {
    for (const json::value& p : *params) {
      absl::StatusOr<SqlValue> value = Param(p);
      if (!value.ok()) return value.status();
      st.params.push_back(std::move(*value));
    }
  }
  return st;
}

json::value Cell(const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* s = std::get_if<std::string>(&v)) return json::string(*s);
  return nullptr;
}

struct Reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

Reply Error(unsigned status, absl::string_view message) {
  return {status, "application/json", json::serialize(json::object{{"error", json::string(std::string(message))}})};
}

class Fake {
 public:
  explicit Fake(std::unique_ptr<coolify::endpoints::SqliteBackend> db) : db_(std::move(db)) {}

  Reply Handle(const http::request<http::string_body>& req) {
    if (req.method() != http::verb::post) return Error(405, "method not allowed");
    json::error_code ec;
    json::value body = json::parse(req.body(), ec);
    if (ec) return Error(400, absl::StrCat("invalid JSON body: ", ec.message()));
    if (req.target() == "/v1/transactions") return Transactions(body);
    if (req.target() == "/v1/queries") return Queries(body);
    return Error(404, "not found");
  }

 private:
  Reply Transactions(const json::value& body) {
    if (!body.is_array()) return Error(400, "expected an array of statements");
    std::vector<SqlStatement> statements;
    for (const json::value& v : body.get_array()) {
      absl::StatusOr<SqlStatement> st = Statement(v);
      if (!st.ok()) return Error(400, st.status().message());
      statements.push_back(std::move(*st));
    }
    absl::StatusOr<std::vector<int64_t>> affected = db_->Execute(statements);
    json::array results;
    if (!affected.ok()) {
      results.push_back(json::object{{"error", json::string(std::string(affected.status().message()))}});
      return {500, "application/json", json::serialize(json::object{{"results", results}, {"time", 0.0}})};
    }
    for (int64_t n : *affected) results.push_back(json::object{{"rows_affected", n}, {"time", 0.0}});
    ++version_;
    return {200, "application/json",
            json::serialize(json::object{{"results", results}, {"time", 0.0}, {"version", version_}})};
  }

  Reply Queries(const json::value& body) {
    absl::StatusOr<SqlStatement> st = Statement(body);
    if (!st.ok()) return Error(400, st.status().message());
    absl::StatusOr<SqlRows> rows = db_->Query(*st);
    if (!rows.ok()) return Error(500, rows.status().message());
    Reply r{200, "application/x-ndjson", ""};
    json::array columns;
    for (const std::string& c : rows->columns) columns.push_back(json::string(c));
    r.body = json::serialize(json::object{{"columns", columns}}) + "\n";
    int64_t rowid = 0;
    for (const auto& row : rows->rows) {
      json::array cells;
      for (const SqlValue& v : row) cells.push_back(Cell(v));
      r.body += json::serialize(json::object{{"row", json::array{++rowid, cells}}}) + "\n";
    }
    r.body += json::serialize(json::object{{"eoq", json::object{{"time", 0.0}}}}) + "\n";
    return r;
  }

  std::unique_ptr<coolify::endpoints::SqliteBackend> db_;
  int64_t version_ = 0;
};

void Serve(Fake& fake, asio::ip::tcp::socket socket) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    Reply reply = fake.Handle(req);
    http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
    res.set(http::field::content_type, reply.content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(reply.body);
    res.prepare_payload();
    http::write(socket, res, ec);
    if (ec || !req.keep_alive()) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string db_path, listen;
  bool schema = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--db") && i + 1 < argc) {
      db_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--listen") && i + 1 < argc) {
      listen = argv[++i];
    } else if (!std::strcmp(argv[i], "--no-schema")) {
      schema = false;
    } else {
      std::fprintf(stderr, "usage: corrosion_fake --db PATH --listen IP:PORT [--no-schema]\n");
      return 2;
    }
  }
  size_t colon = listen.rfind(':');
  int port = 0;
  if (db_path.empty() || colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port)) {
    std::fprintf(stderr, "corrosion_fake: --db and --listen IP:PORT are required\n");
    return 2;
  }
  auto db = coolify::endpoints::SqliteBackend::Open(db_path);
  if (!db.ok()) {
    std::fprintf(stderr, "corrosion_fake: %s\n", std::string(db.status().message()).c_str());
    return 1;
  }
  if (schema) {
    if (auto s = (*db)->EnsureSchema(std::string(coolify::endpoints::ServiceEndpointsSchema()), "service_endpoints"); !s.ok()) {
      std::fprintf(stderr, "corrosion_fake: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  Fake fake(std::move(*db));
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io);
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address_v4(listen.substr(0, colon)), static_cast<uint16_t>(port));
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen();
  std::printf("listening on %s\n", listen.c_str());
  std::fflush(stdout);
  for (;;) Serve(fake, acceptor.accept());
}
