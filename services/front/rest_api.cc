#include "services/front/rest_api.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "services/commands/json_body.h"

namespace coolify::front {
namespace {

namespace bhttp = boost::beast::http;
using commands::ParseJsonBody;

constexpr char kFirewallAllow[] = "/api/v1/firewall/allow";
constexpr char kFirewallAllowPrefix[] = "/api/v1/firewall/allow/";
constexpr char kFirewallBulk[] = "/api/v1/firewall/allow/bulk";
constexpr char kFirewallReconcile[] = "/api/v1/firewall/reconcile";

absl::Status MethodNotAllowed(const http::Request& request, const char* allowed) {
  return http::MethodNotAllowed(request.method_text, request.path, allowed);
}

// Decoded path segments after the prefix ("/api/v1/containers/ab%2Fc/start" -> {"ab/c", "start"}).
absl::StatusOr<std::vector<std::string>> Segments(const std::string& path, size_t prefix) {
  std::vector<std::string> segments;
  if (path.size() <= prefix) return segments;
  if (path[prefix] != '/') return absl::NotFoundError(absl::StrCat("no route ", path));
  for (absl::string_view raw : absl::StrSplit(absl::string_view(path).substr(prefix + 1), '/')) {
    auto decoded = http::PercentDecode(std::string_view(raw.data(), raw.size()));
    if (!decoded.ok() || decoded->empty()) return absl::InvalidArgumentError("path: malformed segment");
    segments.push_back(*std::move(decoded));
  }
  return segments;
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
    // The id is one decoded segment, as every other path parameter is.
    auto parts = Segments(path, sizeof(kFirewallAllowPrefix) - 2);
    if (!parts.ok()) return parts.status();
    if (parts->size() != 1) return absl::NotFoundError(absl::StrCat("no route ", path));
    command.mutable_firewall_delete()->set_id((*parts)[0]);
    return command;
  }
  if (path == kFirewallReconcile) {
    if (request.method != bhttp::verb::post) return MethodNotAllowed(request, "POST");
    if (auto s = NoQuery(request); !s.ok()) return s;
    if (auto s = ParseJsonBody(request.body, command.mutable_firewall_reconcile()); !s.ok()) return s;
    if (auto s = CheckRuleCount(command.firewall_reconcile()); !s.ok()) return s;
    return command;
  }
  if (absl::StartsWith(path, "/api/v1/images") || absl::StartsWith(path, "/api/v1/containers") ||
      absl::StartsWith(path, "/api/v1/volumes") || absl::StartsWith(path, "/api/v1/networks") ||
      absl::StartsWith(path, "/api/v1/host/")) {
    return PodmanCommand(request);
  }
  if (absl::StartsWith(path, "/api/v1/services") || absl::StartsWith(path, "/api/v1/dns/")) {
    return ServicesCommand(request);
  }
  return absl::NotFoundError(absl::StrCat("no route ", path));
}

namespace {

// The value of query parameter `key`, refusing any other parameter.
absl::Status OnlyQuery(const http::Request& request, std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : request.query) {
    bool known = false;
    for (const char* name : allowed) known = known || key == name;
    if (!known) return absl::InvalidArgumentError(absl::StrCat(key, ": unknown query parameter"));
  }
  return absl::OkStatus();
}

std::string QueryValue(const http::Request& request, const char* key) {
  for (const auto& [k, v] : request.query) {
    if (k == key) return v;
  }
  return "";
}

// The namespace a verb on an existing container acts in: ?namespace=, or the body's
// "namespace"; both given and different is a 400.
absl::Status NamespaceFromQuery(const http::Request& request, google::protobuf::Message* message) {
  const std::string value = QueryValue(request, "namespace");
  if (value.empty()) return absl::OkStatus();
  const auto* field = message->GetDescriptor()->FindFieldByName("namespace");
  const std::string in_body = message->GetReflection()->GetString(*message, field);
  if (!in_body.empty() && in_body != value) {
    return absl::InvalidArgumentError("namespace: the query and the body name different namespaces");
  }
  message->GetReflection()->SetString(message, field, value);
  return absl::OkStatus();
}

absl::StatusOr<bool> QueryBool(const http::Request& request, const char* key) {
  std::string value = QueryValue(request, key);
  if (value.empty() || value == "false" || value == "0") return false;
  if (value == "true" || value == "1") return true;
  return absl::InvalidArgumentError(absl::StrCat(key, ": \"", value, "\" is not true or false"));
}

}  // namespace

absl::StatusOr<v1::Command> RestApi::PodmanCommand(const http::Request& request) const {
  v1::Command command;
  const std::string& path = request.path;
  const auto method = request.method;
  auto body = [&request](google::protobuf::Message* message) { return ParseJsonBody(request.body, message); };
  auto no_body = [&request]() -> absl::Status {
    if (!request.body.empty()) return absl::InvalidArgumentError("body: this request takes none");
    return absl::OkStatus();
  };
  auto route = [&](const char* prefix) { return absl::StartsWith(path, prefix); };

  if (route("/api/v1/images")) {
    auto parts = Segments(path, sizeof("/api/v1/images") - 1);
    if (!parts.ok()) return parts.status();
    if (parts->size() == 1 && (*parts)[0] == "pull") {
      if (method != bhttp::verb::post) return MethodNotAllowed(request, "POST");
      if (auto s = body(command.mutable_images_pull()); !s.ok()) return s;
    } else if (parts->empty()) {
      if (method != bhttp::verb::get) return MethodNotAllowed(request, "GET");
      if (auto s = no_body(); !s.ok()) return s;
      command.mutable_images_list();
    } else if (parts->size() == 1) {
      if (method != bhttp::verb::delete_) return MethodNotAllowed(request, "DELETE");
      auto force = QueryBool(request, "force");
      if (!force.ok()) return force.status();
      command.mutable_images_delete()->set_ref((*parts)[0]);
      command.mutable_images_delete()->set_force(*force);
    } else {
      return absl::NotFoundError(absl::StrCat("no route ", path));
    }
  } else if (route("/api/v1/containers")) {
    auto parts = Segments(path, sizeof("/api/v1/containers") - 1);
    if (!parts.ok()) return parts.status();
    if (parts->empty()) {
      if (method != bhttp::verb::post) return MethodNotAllowed(request, "POST");
      // The body is the ContainerSpec itself.
      if (auto s = body(command.mutable_containers_create()->mutable_spec()); !s.ok()) return s;
    } else if (parts->size() == 1) {
      const std::string& id = (*parts)[0];
      if (method == bhttp::verb::get) {
        if (auto s = no_body(); !s.ok()) return s;
        command.mutable_containers_inspect()->set_id(id);
        command.mutable_containers_inspect()->set_namespace_(QueryValue(request, "namespace"));
      } else if (method == bhttp::verb::delete_) {
        if (!request.body.empty()) {
          if (auto s = body(command.mutable_containers_delete()); !s.ok()) return s;
        }
        auto force = QueryBool(request, "force");
        if (!force.ok()) return force.status();
        if (*force) command.mutable_containers_delete()->set_force(true);
        command.mutable_containers_delete()->set_id(id);
        if (auto s = NamespaceFromQuery(request, command.mutable_containers_delete()); !s.ok()) return s;
      } else {
        return MethodNotAllowed(request, "GET or DELETE");
      }
    } else if (parts->size() >= 2) {
      const std::string& id = (*parts)[0];
      std::string action = (*parts)[1];
      if (parts->size() == 3) action += "/" + (*parts)[2];
      if (parts->size() > 3) return absl::NotFoundError(absl::StrCat("no route ", path));
      if (action == "logs") {
        if (method != bhttp::verb::get) return MethodNotAllowed(request, "GET");
        if (auto s = OnlyQuery(request, {"follow", "tail", "timestamps", "namespace"}); !s.ok()) return s;
        auto follow = QueryBool(request, "follow");
        if (!follow.ok()) return follow.status();
        auto* logs = command.mutable_containers_logs();
        auto timestamps = QueryBool(request, "timestamps");
        if (!timestamps.ok()) return timestamps.status();
        logs->set_id(id);
        logs->set_namespace_(QueryValue(request, "namespace"));
        logs->set_follow(*follow);
        logs->set_timestamps(*timestamps);
        if (std::string tail = QueryValue(request, "tail"); !tail.empty()) {
          uint32_t lines = 0;
          if (!absl::SimpleAtoi(tail, &lines)) return absl::InvalidArgumentError("tail: not a number");
          logs->set_tail(lines);
        }
        return command;
      }
      if (method != bhttp::verb::post) return MethodNotAllowed(request, "POST");
      if (auto s = OnlyQuery(request, {"namespace"}); !s.ok()) return s;
      google::protobuf::Message* message = nullptr;
      if (action == "start") {
        message = command.mutable_containers_start();
      } else if (action == "stop") {
        message = command.mutable_containers_stop();
      } else if (action == "restart") {
        message = command.mutable_containers_restart();
      } else if (action == "exec") {
        message = command.mutable_containers_exec();
      } else if (action == "healthcheck/run") {
        message = command.mutable_containers_healthcheck_run();
      } else {
        return absl::NotFoundError(absl::StrCat("no route ", path));
      }
      // Optional bodies ({timeout}, {cmd, tty}); the id comes from the path only.
      if (!request.body.empty()) {
        if (auto s = body(message); !s.ok()) return s;
      }
      const auto* id_field = message->GetDescriptor()->FindFieldByName("id");
      message->GetReflection()->SetString(message, id_field, id);
      if (auto s = NamespaceFromQuery(request, message); !s.ok()) return s;
    }
  } else if (route("/api/v1/volumes")) {
    auto parts = Segments(path, sizeof("/api/v1/volumes") - 1);
    if (!parts.ok()) return parts.status();
    if (parts->empty() && method == bhttp::verb::post) {
      if (auto s = body(command.mutable_volumes_create()); !s.ok()) return s;
    } else if (parts->size() == 1 && method == bhttp::verb::get) {
      command.mutable_volumes_inspect()->set_name((*parts)[0]);
    } else if (parts->size() == 1 && method == bhttp::verb::delete_) {
      auto force = QueryBool(request, "force");
      if (!force.ok()) return force.status();
      command.mutable_volumes_delete()->set_name((*parts)[0]);
      command.mutable_volumes_delete()->set_force(*force);
    } else if (parts->size() <= 1) {
      return MethodNotAllowed(request, parts->empty() ? "POST" : "GET or DELETE");
    } else {
      return absl::NotFoundError(absl::StrCat("no route ", path));
    }
  } else if (route("/api/v1/networks")) {
    auto parts = Segments(path, sizeof("/api/v1/networks") - 1);
    if (!parts.ok()) return parts.status();
    if (parts->empty() && method == bhttp::verb::post) {
      if (auto s = body(command.mutable_networks_create()); !s.ok()) return s;
    } else if (parts->empty() && method == bhttp::verb::get) {
      command.mutable_networks_list();
    } else if (parts->size() == 1 && method == bhttp::verb::delete_) {
      auto force = QueryBool(request, "force");
      if (!force.ok()) return force.status();
      command.mutable_networks_delete()->set_name((*parts)[0]);
      command.mutable_networks_delete()->set_force(*force);
    } else if (parts->size() <= 1) {
      return MethodNotAllowed(request, parts->empty() ? "GET or POST" : "DELETE");
    } else {
      return absl::NotFoundError(absl::StrCat("no route ", path));
    }
  } else {
    if (method != bhttp::verb::get) return MethodNotAllowed(request, "GET");
    if (path == "/api/v1/host/info") {
      command.mutable_host_info();
    } else if (path == "/api/v1/host/containers") {
      command.mutable_host_containers();
    } else if (path == "/api/v1/host/stats") {
      command.mutable_host_stats();
    } else {
      return absl::NotFoundError(absl::StrCat("no route ", path));
    }
  }
  if (command.verb_case() != v1::Command::kContainersLogs) {
    if (auto s = OnlyQuery(request, {"force", "namespace"}); !s.ok()) return s;
    if (!QueryValue(request, "namespace").empty() && !absl::StartsWith(path, "/api/v1/containers/")) {
      return absl::InvalidArgumentError("namespace: unknown query parameter");
    }
  }
  return command;
}

// POST /api/v1/services/register; GET /api/v1/services/{id}/endpoints;
// DELETE /api/v1/services/{id}/endpoints/{container_id}; GET /api/v1/dns/lookup/{name};
// GET /api/v1/dns/stats.
absl::StatusOr<v1::Command> RestApi::ServicesCommand(const http::Request& request) const {
  v1::Command command;
  const std::string& path = request.path;
  const auto method = request.method;
  if (auto s = OnlyQuery(request, {}); !s.ok()) return s;
  if (path == "/api/v1/services/register") {
    if (method != bhttp::verb::post) return MethodNotAllowed(request, "POST");
    if (auto s = ParseJsonBody(request.body, command.mutable_services_register()); !s.ok()) return s;
    return command;
  }
  if (method == bhttp::verb::post || method == bhttp::verb::put) return MethodNotAllowed(request, "GET or DELETE");
  if (!request.body.empty()) return absl::InvalidArgumentError("body: this request takes none");
  if (absl::StartsWith(path, "/api/v1/dns/")) {
    auto parts = Segments(path, sizeof("/api/v1/dns") - 1);
    if (!parts.ok()) return parts.status();
    if (method != bhttp::verb::get) return MethodNotAllowed(request, "GET");
    if (parts->size() == 1 && (*parts)[0] == "stats") {
      command.mutable_dns_stats();
      return command;
    }
    if (parts->size() == 2 && (*parts)[0] == "lookup") {
      command.mutable_dns_lookup()->set_name((*parts)[1]);
      return command;
    }
    return absl::NotFoundError(absl::StrCat("no route ", path));
  }
  auto parts = Segments(path, sizeof("/api/v1/services") - 1);
  if (!parts.ok()) return parts.status();
  if (parts->size() == 2 && (*parts)[1] == "endpoints") {
    if (method != bhttp::verb::get) return MethodNotAllowed(request, "GET");
    command.mutable_services_endpoints()->set_service_id((*parts)[0]);
    return command;
  }
  if (parts->size() == 3 && (*parts)[1] == "endpoints") {
    if (method != bhttp::verb::delete_) return MethodNotAllowed(request, "DELETE");
    command.mutable_services_deregister()->set_service_id((*parts)[0]);
    command.mutable_services_deregister()->set_container_id((*parts)[2]);
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
  respond(ToHttpResponse(router_.Route(*command)));
}

http::Response ToHttpResponse(const v1::CommandResult& result) {
  // An error with a body of its own (the gatekeeper's, with its violations) goes out whole.
  if (result.code() >= 400 && !result.has_data()) {
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
