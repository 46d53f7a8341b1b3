#include "services/broker/uds_api.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

}  // namespace

http::Limits UdsLimits() {
  http::Limits limits;
  limits.max_body_bytes = commands::kMaxDispatchBytes;
  limits.max_header_bytes = 8 * 1024;
  limits.max_header_count = 32;
  limits.max_connections = 1024;
  limits.read_timeout = absl::Seconds(10);
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
    identity_.Handle(request, std::move(respond));
    return;
  }
  absl::StatusOr<Route> route = RouteOf(request);
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
    case Route::kDispatch: {
      absl::StatusOr<commands::Dispatch> dispatch = commands::ParseDispatch(request.body);
      if (!dispatch.ok()) {
        reply(commands::ErrorEnvelope(commands::RequestIdOf(request.body), http::HttpStatusOf(dispatch.status()),
                                      std::string(dispatch.status().message())));
        return;
      }
      hub_.Dispatch(*std::move(dispatch), std::move(reply));
      return;
    }
    case Route::kBuildDispatch: {
      absl::StatusOr<commands::BuildDispatch> dispatch = commands::ParseBuildDispatch(request.body);
      if (!dispatch.ok()) {
        reply(commands::ErrorEnvelope(commands::RequestIdOf(request.body), http::HttpStatusOf(dispatch.status()),
                                      std::string(dispatch.status().message())));
        return;
      }
      reply(hub_.DispatchBuild(*std::move(dispatch)));
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
