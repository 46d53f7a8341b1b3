#include "services/front/rest_api.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "services/front/json_body.h"

namespace coolify::front {
namespace {

namespace bhttp = boost::beast::http;

constexpr char kFirewallAllow[] = "/api/v1/firewall/allow";
constexpr char kFirewallAllowPrefix[] = "/api/v1/firewall/allow/";
constexpr char kFirewallBulk[] = "/api/v1/firewall/allow/bulk";
constexpr char kFirewallReconcile[] = "/api/v1/firewall/reconcile";

absl::Status MethodNotAllowed(const http::Request& request, const char* allowed) {
  // Unimplemented is what ToCommand returns only for this; Handle answers it 405.
  return absl::Status(absl::StatusCode::kUnimplemented,
                      absl::StrCat("method ", request.method_text, " not allowed on ", request.path, "; use ",
                                   allowed));
}

absl::Status NoQuery(const http::Request& request) {
  if (!request.query.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(request.query[0].first, ": unknown query parameter"));
  }
  return absl::OkStatus();
}

// Equal-length comparison whose time does not depend on where the strings differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

template <typename RuleSet>
absl::Status CheckRuleCount(const RuleSet& set) {
  if (set.rules_size() > kMaxRulesPerRequest) {
    return absl::ResourceExhaustedError(
        absl::StrCat("rules: ", set.rules_size(), " rules; at most ", kMaxRulesPerRequest, " per request"));
  }
  return absl::OkStatus();
}

}  // namespace


absl::StatusOr<v1::Command> RestApi::ToCommand(const http::Request& request) const {
  v1::Command command;
  const std::string& path = request.path;
  if (path == kFirewallAllow) {
    if (request.method == bhttp::verb::post) {
      if (auto s = NoQuery(request); !s.ok()) return s;
      if (auto s = ParseJsonBody(request.body, command.mutable_firewall_allow()->mutable_rule()); !s.ok()) return s;
      return command;
    }
    if (request.method == bhttp::verb::get) {
      for (const auto& [key, value] : request.query) {
        if (key != "namespace") return absl::InvalidArgumentError(absl::StrCat(key, ": unknown query parameter"));
        command.mutable_firewall_list()->set_namespace_(value);
      }
      if (!request.body.empty()) return absl::InvalidArgumentError("body: GET takes no body");
      command.mutable_firewall_list();
      return command;
    }
    return MethodNotAllowed(request, "GET or POST");
  }
  if (path == kFirewallBulk) {
    if (request.method != bhttp::verb::post) return MethodNotAllowed(request, "POST");
    if (auto s = NoQuery(request); !s.ok()) return s;
    if (auto s = ParseJsonBody(request.body, command.mutable_firewall_bulk()); !s.ok()) return s;
    if (auto s = CheckRuleCount(command.firewall_bulk()); !s.ok()) return s;
    return command;
  }
  if (absl::StartsWith(path, kFirewallAllowPrefix)) {
    if (request.method != bhttp::verb::delete_) return MethodNotAllowed(request, "DELETE");
    if (auto s = NoQuery(request); !s.ok()) return s;
    command.mutable_firewall_delete()->set_id(path.substr(sizeof(kFirewallAllowPrefix) - 1));
    return command;
  }
  if (path == kFirewallReconcile) {
    if (request.method != bhttp::verb::post) return MethodNotAllowed(request, "POST");
    if (auto s = NoQuery(request); !s.ok()) return s;
    if (auto s = ParseJsonBody(request.body, command.mutable_firewall_reconcile()); !s.ok()) return s;
    if (auto s = CheckRuleCount(command.firewall_reconcile()); !s.ok()) return s;
    return command;
  }
  return absl::NotFoundError(absl::StrCat("no route ", path));
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
  absl::StatusOr<v1::Command> command = ToCommand(request);
  if (!command.ok()) {
    unsigned status = HttpStatusOf(command.status());
    // A known path with the wrong method is 405, not "not implemented".
    if (command.status().code() == absl::StatusCode::kUnimplemented) status = 405;
    respond(http::ErrorResponse(status, std::string(command.status().message()), FieldOf(command.status())));
    return;
  }
  respond(ToHttpResponse(router_.Route(*command)));
}

http::Response ToHttpResponse(const v1::CommandResult& result) {
  if (result.code() >= 400) {
    absl::Status as_status(absl::StatusCode::kInvalidArgument, result.message());
    return http::ErrorResponse(result.code(), result.message(), result.code() == 400 ? FieldOf(as_status) : "");
  }
  http::Response response;
  response.status = result.code();
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(result.data(), &json, options).ok()) {
    return http::ErrorResponse(500, "result is not representable as JSON");
  }
  response.body = json.empty() ? "{}" : json;
  return response;
}

}  // namespace coolify::front
