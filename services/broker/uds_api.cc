#include "services/broker/uds_api.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "privsep/log.h"
#include "services/http/status.h"

namespace coolify::broker {
namespace {

namespace bhttp = boost::beast::http;

constexpr char kResultPrefix[] = "/v1/build/result/";
constexpr char kBuildPrefix[] = "/v1/build/";
constexpr char kCancelSuffix[] = "/cancel";

absl::Status MethodNotAllowed(const http::Request& request, const char* allowed) {
  return http::MethodNotAllowed(request.method_text, request.path, allowed);
}

absl::Status NoQuery(const http::Request& request) {
  if (!request.query.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(request.query[0].first, ": unknown query parameter"));
  }
  return absl::OkStatus();
}

http::Response ToHttp(commands::Envelope envelope) {
  http::Response response;
  response.status = envelope.http_status;
  response.body = std::move(envelope.body);
  return response;
}

const char* RouteName(Route::Kind kind) {
  switch (kind) {
    case Route::kHealth:
      return "health";
    case Route::kDispatch:
      return "dispatch";
    case Route::kBuildDispatch:
      return "build_dispatch";
    case Route::kBuildResult:
      return "build_result";
    case Route::kBuildCancel:
      return "build_cancel";
    case Route::kMetrics:
      return "metrics";
  }
  return "unrouted";
}

// The answer to a dispatch, counted, with what its request log line adds: the host, the
// request id and the verb ("-" for what a refused body did not say). One line per
// dispatch, the request's own: at thousands a second, a second line is a cost.
http::Response DispatchAnswer(BrokerMetrics* metrics, const std::string& host_id, const std::string& request_id,
                              const std::string& verb, commands::Envelope envelope,
                              std::chrono::steady_clock::time_point started) {
  if (metrics != nullptr) metrics->Dispatched(verb, envelope.http_status, metrics::SecondsSince(started));
  http::Response response = ToHttp(std::move(envelope));
  response.log_fields = {{"host_id", host_id.empty() ? "-" : host_id},
                         {"request_id", request_id.empty() ? "-" : request_id},
                         {"verb", verb}};
  return response;
}

}  // namespace

http::Limits UdsLimits() {
  http::Limits limits;
  limits.max_body_bytes = commands::kMaxDispatchBytes;
  limits.max_header_bytes = 8 * 1024;
  limits.max_header_count = 32;
  limits.max_connections = 1024;
  limits.read_timeout = absl::Seconds(10);
  limits.request_log = "uds";
  return limits;
}

absl::StatusOr<Route> RouteOf(const http::Request& request) {
  Route route;
  const std::string& path = request.path;
  if (path == "/v1/health") {
    if (request.method != bhttp::verb::get) return MethodNotAllowed(request, "GET");
    if (auto s = NoQuery(request); !s.ok()) return s;
    route.kind = Route::kHealth;
    return route;
  }
  if (path == "/metrics") {
    if (request.method != bhttp::verb::get) return MethodNotAllowed(request, "GET");
    if (auto s = NoQuery(request); !s.ok()) return s;
    route.kind = Route::kMetrics;
    return route;
  }
  if (path == "/v1/coold/dispatch" || path == "/v1/build/dispatch") {
    if (request.method != bhttp::verb::post) return MethodNotAllowed(request, "POST");
    if (auto s = NoQuery(request); !s.ok()) return s;
    route.kind = path == "/v1/coold/dispatch" ? Route::kDispatch : Route::kBuildDispatch;
    return route;
  }
  if (absl::StartsWith(path, kResultPrefix)) {
    if (request.method != bhttp::verb::get) return MethodNotAllowed(request, "GET");
    route.kind = Route::kBuildResult;
    route.request_id = path.substr(sizeof(kResultPrefix) - 1);
    for (const auto& [key, value] : request.query) {
      if (key != "timeout_ms") return absl::InvalidArgumentError(absl::StrCat(key, ": unknown query parameter"));
      uint32_t ms = 0;
      if (!absl::SimpleAtoi(value, &ms) || ms > 300000) {
        return absl::InvalidArgumentError("timeout_ms: expected milliseconds, 0 to 300000");
      }
      route.poll = absl::Milliseconds(ms);
    }
  } else if (absl::StartsWith(path, kBuildPrefix) && absl::EndsWith(path, kCancelSuffix) &&
             path.size() > sizeof(kBuildPrefix) - 1 + sizeof(kCancelSuffix) - 1) {
    if (request.method != bhttp::verb::post) return MethodNotAllowed(request, "POST");
    if (auto s = NoQuery(request); !s.ok()) return s;
    route.kind = Route::kBuildCancel;
    route.request_id =
        path.substr(sizeof(kBuildPrefix) - 1, path.size() - (sizeof(kBuildPrefix) - 1) - (sizeof(kCancelSuffix) - 1));
  } else {
    return absl::NotFoundError(absl::StrCat("no route ", path));
  }
  // The id comes from the path raw: the request_id grammar needs no escapes, and a
  // percent sign or slash in it is simply not an id.
  if (auto s = commands::ValidateRequestId(route.request_id); !s.ok()) return s;
  // HTTP clients (Laravel's among them) send "[]" or "{}" for a POST without data.
  if (!request.body.empty() && request.body != "[]" && request.body != "{}") {
    return absl::InvalidArgumentError("body: this request takes none");
  }
  return route;
}

void UdsApi::Handle(http::Request request, http::Responder respond) {
  if (IdentityApi::Serves(request.path)) {
    if (metrics_ != nullptr) {
      respond = [respond = std::move(respond), metrics = metrics_](http::Response response) {
        metrics->Answered("identity", response.status);
        respond(std::move(response));
      };
    }
    identity_.Handle(request, std::move(respond));
    return;
  }
  absl::StatusOr<Route> route = RouteOf(request);
  if (metrics_ != nullptr) {
    respond = [respond = std::move(respond), metrics = metrics_,
               name = route.ok() ? RouteName(route->kind) : "unrouted"](http::Response response) {
      metrics->Answered(name, response.status);
      respond(std::move(response));
    };
  }
  Serve(request, route, std::move(respond));
}

void UdsApi::Serve(const http::Request& request, const absl::StatusOr<Route>& route, http::Responder respond) {
  if (!route.ok()) {
    respond(http::ErrorResponse(http::HttpStatusOf(route.status()), std::string(route.status().message())));
    return;
  }
  auto reply = [respond](commands::Envelope envelope) { respond(ToHttp(std::move(envelope))); };
  switch (route->kind) {
    case Route::kHealth: {
      HubStats stats = hub_.stats();
      http::Response response;
      response.body = absl::StrCat("{\"ok\":true,\"hosts\":", stats.hosts, ",\"pending\":", stats.pending, "}");
      respond(std::move(response));
      return;
    }
    case Route::kMetrics: {
      if (metrics_ == nullptr) {
        respond(http::ErrorResponse(404, "no route /metrics"));
        return;
      }
      respond(http::Response{200, metrics_->Text(), metrics::kContentType, nullptr, {}});
      return;
    }
    case Route::kDispatch: {
      const auto started = std::chrono::steady_clock::now();
      absl::StatusOr<commands::Dispatch> dispatch = commands::ParseDispatch(request.body);
      if (!dispatch.ok()) {
        commands::Envelope refused = commands::ErrorEnvelope(commands::RequestIdOf(request.body),
                                                             http::HttpStatusOf(dispatch.status()),
                                                             std::string(dispatch.status().message()));
        respond(DispatchAnswer(metrics_, "-", commands::RequestIdOf(request.body), "-", std::move(refused), started));
        return;
      }
      // Each field below passed its grammar in ParseDispatch: the log shows them as they are.
      std::string host = dispatch->host_id, id = dispatch->request_id, verb = dispatch->type;
      hub_.Dispatch(*std::move(dispatch),
                    [respond, metrics = metrics_, host = std::move(host), id = std::move(id), verb = std::move(verb),
                     started](commands::Envelope envelope) {
                      respond(DispatchAnswer(metrics, host, id, verb, std::move(envelope), started));
                    });
      return;
    }
    case Route::kBuildDispatch: {
      absl::StatusOr<commands::BuildDispatch> dispatch = commands::ParseBuildDispatch(request.body);
      commands::Envelope answer =
          dispatch.ok() ? hub_.DispatchBuild(*dispatch)
                        : commands::ErrorEnvelope(commands::RequestIdOf(request.body),
                                                  http::HttpStatusOf(dispatch.status()),
                                                  std::string(dispatch.status().message()));
      if (metrics_ != nullptr) metrics_->BuildDispatched(answer.http_status);
      const std::string answer_id = dispatch.ok() ? dispatch->request_id : commands::RequestIdOf(request.body);
      http::Response response = ToHttp(std::move(answer));
      response.log_fields = {{"host_id", dispatch.ok() && !dispatch->host_id.empty() ? dispatch->host_id : "-"},
                             {"request_id", answer_id.empty() ? "-" : answer_id}};
      respond(std::move(response));
      return;
    }
    case Route::kBuildResult:
      hub_.BuildResult(route->request_id, route->poll, std::move(reply));
      return;
    case Route::kBuildCancel:
      reply(hub_.CancelBuild(route->request_id));
      return;
  }
}

}  // namespace coolify::broker
