// The broker's Unix-socket lane for Laravel: five routes, JSON envelopes, no
// authentication (the socket's mode and group are the access control).
//
//   GET  /v1/health                     200 {"ok":true,"hosts":N,"pending":M}
//   POST /v1/coold/dispatch             the host's answer (sync, dispatch timeout)
//   POST /v1/build/dispatch             202 {"request_id"}
//   GET  /v1/build/result/:id           the result; long-poll ?timeout_ms= (default 30000)
//   POST /v1/build/:id/cancel           204
//   GET  /metrics                       Prometheus' text format (broker_metrics.h)
//
// and the identity routes of identity_api.h (/v1/tokens/revoke, /v1/hosts...).
#ifndef COOLD_SERVICES_BROKER_UDS_API_H_
#define COOLD_SERVICES_BROKER_UDS_API_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/broker/broker_metrics.h"
#include "services/broker/hub.h"
#include "services/broker/identity_api.h"
#include "services/http/server.h"

namespace coolify::broker {

inline constexpr absl::Duration kDefaultPoll = absl::Milliseconds(30000);

// What a request asks for, once its path, method and query are checked.
struct Route {
  enum Kind { kHealth, kDispatch, kBuildDispatch, kBuildResult, kBuildCancel, kMetrics } kind = kHealth;
  std::string request_id;  // kBuildResult, kBuildCancel
  absl::Duration poll = kDefaultPoll;
};

// The route of `request`, or the error response refusing it (404, 405, 400).
absl::StatusOr<Route> RouteOf(const http::Request& request);

class UdsApi {
 public:
  // Without `metrics`, GET /metrics is 404 and nothing is counted.
  UdsApi(Hub& hub, IdentityStore& store, IdentityApiOptions identity = {}, BrokerMetrics* metrics = nullptr)
      : hub_(hub), identity_(hub, store, std::move(identity)), metrics_(metrics) {}
  // A dispatch's request log line (UdsLimits().request_log) also names its host_id,
  // request_id and verb; never the command's fields.
  void Handle(http::Request request, http::Responder respond);

 private:
  void Serve(const http::Request& request, const absl::StatusOr<Route>& route, http::Responder respond);

  Hub& hub_;
  IdentityApi identity_;
  BrokerMetrics* metrics_;
};

// The HTTP server limits of the Unix-socket lane.
http::Limits UdsLimits();

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_UDS_API_H_
