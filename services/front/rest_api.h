// coold's local REST API: bearer-token authentication, then the registry's routes
// (rest_routes.h) turn the request into a v1::Command for the CommandRouter. Bodies are the commands' protobuf messages in
// protobuf's JSON mapping, with unknown fields refused.
#ifndef COOLD_SERVICES_FRONT_REST_API_H_
#define COOLD_SERVICES_FRONT_REST_API_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "proto/commands.pb.h"
#include "services/front/command_router.h"
#include "services/front/front_metrics.h"
#include "services/front/rest_routes.h"
#include "services/http/server.h"

namespace coolify::front {

// Answers GET /api/v1/containers/{id}/logs?follow=true: a streamed body, or the refusal.
using LogFollower = std::function<http::Response(const v1::Command& command)>;

class RestApi {
 public:
  // `token` is the expected bearer token; it must not be empty. Without `follower`,
  // followed logs are answered 501.
  RestApi(CommandRouter& router, std::string token, LogFollower follower = {})
      : router_(router), token_(std::move(token)), follower_(std::move(follower)) {}

  void Handle(http::Request request, http::Responder respond);
  // Serves GET /metrics (behind the same token) from `metrics`; unset, it is 404.
  void set_metrics(const FrontMetrics* metrics) { metrics_ = metrics; }

  // The request as a command, or the 4xx response refusing it. Public for tests and fuzzing.
  absl::StatusOr<v1::Command> ToCommand(const http::Request& request) const;

 private:
  bool Authorized(const http::Request& request) const;

  CommandRouter& router_;
  std::string token_;
  LogFollower follower_;
  const FrontMetrics* metrics_ = nullptr;
};

// The JSON text of a CommandResult as the HTTP body: its data, or {"error", "field"?}.
// `data_text`, when not empty, is its data printed already (CommandRouter::RouteToText).
http::Response ToHttpResponse(const v1::CommandResult& result, std::string data_text = {});

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_REST_API_H_
