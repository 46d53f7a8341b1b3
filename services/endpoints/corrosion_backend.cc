#include "services/endpoints/corrosion_backend.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "privsep/validate.h"
#include "services/endpoints/corrosion_wire.h"

namespace coolify::endpoints {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// All service_endpoints rows of a large fleet fit well within this.
constexpr uint64_t kMaxAnswer = 256ull << 20;

}  // namespace

absl::StatusOr<CorrosionAddress> ParseCorrosionAddress(std::string_view text) {
  constexpr char kVar[] = "COOLD_CORROSION_API";
  std::string_view rest = text;
  if (absl::StartsWith(absl::string_view(rest.data(), rest.size()), "http://")) rest.remove_prefix(7);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(kVar, ": expected IPv4:PORT, got \"", std::string(text), "\""));
  }
  CorrosionAddress a;
  a.ip = std::string(rest.substr(0, colon));
  if (auto s = privsep::ValidateIpv4(kVar, a.ip); !s.ok()) return s;
  int port = 0;
  if (!absl::SimpleAtoi(absl::string_view(rest.data() + colon + 1, rest.size() - colon - 1), &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(kVar, ": port must be 1..65535 in \"", std::string(text), "\""));
  }
  a.port = static_cast<uint16_t>(port);
  return a;
}

CorrosionBackend::CorrosionBackend(CorrosionAddress address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout) {}

std::string CorrosionBackend::Describe() const {
  return absl::StrCat("corrosion:http://", address_.ip, ":", address_.port);
}

absl::StatusOr<std::string> CorrosionBackend::Post(const char* path, const std::string& body, unsigned* status) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  http::request<http::string_body> req{http::verb::post, path, 11};
  req.set(http::field::host, absl::StrCat(address_.ip, ":", address_.port));
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxAnswer);
  parser.header_limit(16 * 1024);
  beast::error_code result;
  const char* stage = "connect";
  // One deadline for the whole exchange: async operations so tcp_stream can enforce it.
  stream.expires_after(timeout_);
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address_v4(address_.ip), address_.port);
  stream.async_connect(endpoint, [&](beast::error_code ec) {
    if (ec) {
      result = ec;
      return;
    }
    stage = "send";
    http::async_write(stream, req, [&](beast::error_code ec2, size_t) {
      if (ec2) {
        result = ec2;
        return;
      }
      stage = "read";
      http::async_read(stream, buffer, parser, [&](beast::error_code ec3, size_t) { result = ec3; });
    });
  });
  io.run();
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  if (result) {
    return absl::UnavailableError(absl::StrCat("corrosion at ", address_.ip, ":", address_.port, ": ", stage, ": ",
                                               result == beast::error::timeout ? "timed out" : result.message()));
  }
  *status = parser.get().result_int();
  return std::move(parser.get().body());
}

absl::StatusOr<std::vector<int64_t>> CorrosionBackend::Execute(const std::vector<SqlStatement>& transaction) {
  unsigned status = 0;
  absl::StatusOr<std::string> body = Post("/v1/transactions", EncodeTransaction(transaction), &status);
  if (!body.ok()) return body.status();
  // A refused statement comes back as 500 with {"results":[{"error":…}]}: report that
  // message rather than the status alone.
  absl::StatusOr<std::vector<int64_t>> parsed = ParseExecResponse(*body, transaction.size());
  if (status / 100 == 2) return parsed;
  if (!parsed.ok() && parsed.status().code() == absl::StatusCode::kInternal) return parsed.status();
  return absl::UnavailableError(absl::StrCat("corrosion: /v1/transactions answered HTTP ", status, ": ",
                                             body->substr(0, 200)));
}

absl::StatusOr<SqlRows> CorrosionBackend::Query(const SqlStatement& query) {
  unsigned status = 0;
  absl::StatusOr<std::string> body = Post("/v1/queries", EncodeQuery(query), &status);
  if (!body.ok()) return body.status();
  absl::StatusOr<SqlRows> parsed = ParseQueryResponse(*body);
  if (status / 100 == 2) return parsed;
  if (!parsed.ok() && parsed.status().code() == absl::StatusCode::kInternal) return parsed.status();
  return absl::UnavailableError(absl::StrCat("corrosion: /v1/queries answered HTTP ", status, ": ",
                                             body->substr(0, 200)));
}

absl::Status CorrosionBackend::EnsureSchema(const std::string&, const std::string& table) {
  // Corrosion applies schema files at start and refuses ad-hoc DDL; check the table is there.
  absl::StatusOr<SqlRows> probe = Query({absl::StrCat("SELECT count(*) FROM ", table), {}});
  if (probe.ok()) return absl::OkStatus();
  if (probe.status().code() == absl::StatusCode::kUnavailable) return probe.status();
  return absl::FailedPreconditionError(absl::StrCat("corrosion has no table ", table,
                                                    ": add services/endpoints/service_endpoints.sql to its schema "
                                                    "paths (",
                                                    probe.status().message(), ")"));
}

}  // namespace coolify::endpoints
