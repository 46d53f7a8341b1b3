#include "services/front/rest_api.h"

#include "absl/strings/match.h"
#include "services/commands/json_value.h"

namespace coolify::front {
namespace {

// Equal-length comparison whose time does not depend on where the strings differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

absl::StatusOr<v1::Command> RestApi::ToCommand(const http::Request& request) const {
  // The routes are the verb registry's (services/front/rest_routes.h).
  return CommandOfRequest(request);
}

bool RestApi::Authorized(const http::Request& request) const {
  constexpr char kBearer[] = "Bearer ";
  if (!absl::StartsWith(request.authorization, kBearer)) return false;
  return ConstantTimeEquals(request.authorization.substr(sizeof(kBearer) - 1), token_);
}

void RestApi::Handle(http::Request request, http::Responder respond) {
  if (!Authorized(request)) {
    respond(http::ErrorResponse(401, "missing or wrong bearer token"));
    return;
  }
  if (request.path == "/metrics" && metrics_ != nullptr) {
    if (request.method != boost::beast::http::verb::get) {
      const absl::Status refused = http::MethodNotAllowed(request.method_text, request.path, "GET");
      respond(http::ErrorResponse(HttpStatusOf(refused), std::string(refused.message())));
    } else if (!request.query.empty() || !request.body.empty()) {
      respond(http::ErrorResponse(400, "/metrics takes no query and no body"));
    } else {
      respond(http::Response{200, metrics_->Text(), metrics::kContentType, nullptr, {}});
    }
    return;
  }
  absl::StatusOr<v1::Command> command = ToCommand(request);
  if (!command.ok()) {
    const unsigned status = HttpStatusOf(command.status());
    respond(http::ErrorResponse(status, std::string(command.status().message()), FieldOf(command.status())));
    return;
  }
  if (command->has_containers_logs() && command->containers_logs().follow()) {
    if (!follower_) {
      respond(http::ErrorResponse(501, "followed logs are not served here"));
      return;
    }
    respond(follower_(*command));
    return;
  }
  std::string data_text;
  const v1::CommandResult result = router_.RouteToText(*command, &data_text);
  http::Response response = ToHttpResponse(result, std::move(data_text));
  response.log_fields = {{"verb", VerbNameOf(*command)}};
  respond(std::move(response));
}

http::Response ToHttpResponse(const v1::CommandResult& result, std::string data_text) {
  // An error with a body of its own (the gatekeeper's, with its violations) goes out whole.
  if (result.code() >= 400 && !result.has_data() && data_text.empty()) {
    return http::ErrorResponse(result.code(), result.message(), result.code() == 400 ? result.field() : "");
  }
  http::Response response;
  response.status = result.code();
  if (!data_text.empty()) {
    response.body = std::move(data_text);
    return response;
  }
  if (result.data().kind_case() == google::protobuf::Value::KIND_NOT_SET) {
    response.body = "{}";
    return response;
  }
  absl::StatusOr<std::string> json = commands::JsonValueText(result.data());
  if (!json.ok()) return http::ErrorResponse(500, "result is not representable as JSON");
  response.body = *std::move(json);
  return response;
}

}  // namespace coolify::front
