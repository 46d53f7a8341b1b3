#include "services/front/rest_routes.h"

#include <optional>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "services/commands/json_body.h"
#include "services/http/status.h"

namespace coolify::front {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

bool IsParam(const std::string& segment) { return segment.size() > 2 && segment.front() == '{'; }
std::string ParamName(const std::string& segment) { return segment.substr(1, segment.size() - 2); }

RestRoute Parse(const commands::Verb& verb) {
  RestRoute route;
  route.verb = &verb;
  const std::string rest = verb.rest;
  const size_t space = rest.find(' ');
  route.method = rest.substr(0, space);
  std::string target = space == std::string::npos ? "" : rest.substr(space + 1);
  if (const size_t question = target.find('?'); question != std::string::npos) {
    route.query = absl::StrSplit(target.substr(question + 1), '&', absl::SkipEmpty());
    target.resize(question);
  }
  route.segments = absl::StrSplit(target, '/', absl::SkipEmpty());
  return route;
}

// The verb's message inside `command`, set as the command's verb.
Message* VerbMessage(const commands::Verb& verb, v1::Command& command) {
  const FieldDescriptor* field = v1::Command::descriptor()->FindFieldByNumber(verb.field);
  return command.GetReflection()->MutableMessage(&command, field);
}

const FieldDescriptor* FieldNamed(const Message& message, const std::string& name) {
  return message.GetDescriptor()->FindFieldByName(name);
}

// Whether `a` is more specific than `b` (both of one length): a literal segment where the
// other has a {param}, at the first place they differ in kind.
bool MoreSpecific(const RestRoute& a, const RestRoute& b) {
  for (size_t i = 0; i < a.segments.size(); ++i) {
    const bool a_param = IsParam(a.segments[i]), b_param = IsParam(b.segments[i]);
    if (a_param != b_param) return !a_param;
  }
  return false;
}

// Whether two routes have one path: the same literals, {params} in the same places.
bool SamePath(const RestRoute& a, const RestRoute& b) {
  if (a.segments.size() != b.segments.size()) return false;
  for (size_t i = 0; i < a.segments.size(); ++i) {
    const bool a_param = IsParam(a.segments[i]);
    if (a_param != IsParam(b.segments[i])) return false;
    if (!a_param && a.segments[i] != b.segments[i]) return false;
  }
  return true;
}

// The methods a path has, in the order a reader expects them.
std::string AllowedMethods(const std::vector<const RestRoute*>& routes) {
  std::vector<std::string> allowed;
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
    for (const RestRoute* route : routes) {
      if (route->method == method) {
        allowed.emplace_back(method);
        break;
      }
    }
  }
  return absl::StrJoin(allowed, " or ");
}

absl::StatusOr<bool> QueryBool(const std::string& key, const std::string& value) {
  if (value.empty() || value == "false" || value == "0") return false;
  if (value == "true" || value == "1") return true;
  return http::InvalidField(key, absl::StrCat("\"", value, "\" is not true or false"));
}

// Sets query parameter `key` on `message` (the field was checked by CheckRestRoutes).
absl::Status SetQuery(Message& message, const std::string& key, const std::string& value) {
  const FieldDescriptor* field = FieldNamed(message, key);
  if (field == nullptr) return absl::InternalError(absl::StrCat(key, ": not a field of the verb"));
  const auto* reflection = message.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_BOOL: {
      absl::StatusOr<bool> on = QueryBool(key, value);
      if (!on.ok()) return on.status();
      // false leaves what the body says.
      if (*on) reflection->SetBool(&message, field, true);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      if (value.empty()) return absl::OkStatus();
      uint32_t number = 0;
      if (!absl::SimpleAtoi(value, &number)) return http::InvalidField(key, "not a number");
      reflection->SetUInt32(&message, field, number);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      if (value.empty()) return absl::OkStatus();
      const std::string in_body = reflection->GetString(message, field);
      if (!in_body.empty() && in_body != value) {
        return http::InvalidField(key, absl::StrCat("the query and the body name different ", key, "s"));
      }
      reflection->SetString(&message, field, value);
      return absl::OkStatus();
    }
    default:
      return absl::InternalError(absl::StrCat(key, ": not settable from a query"));
  }
}

absl::Status CheckRuleCount(const Message& message) {
  const FieldDescriptor* rules = FieldNamed(message, "rules");
  if (rules == nullptr || !rules->is_repeated()) return absl::OkStatus();
  const int count = message.GetReflection()->FieldSize(message, rules);
  if (count > kMaxRulesPerRequest) {
    return absl::ResourceExhaustedError(
        absl::StrCat("rules: ", count, " rules; at most ", kMaxRulesPerRequest, " per request"));
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<RestRoute>& RestRoutes() {
  static const auto* routes = [] {
    auto* parsed = new std::vector<RestRoute>;
    for (const commands::Verb& verb : commands::Verbs()) {
      if (*verb.rest != '\0') parsed->push_back(Parse(verb));
    }
    return parsed;
  }();
  return *routes;
}

absl::Status CheckRestRoutes() {
  std::set<std::string> seen;
  for (const RestRoute& route : RestRoutes()) {
    const std::string name = route.verb->names[0];
    if (boost::beast::http::string_to_verb(route.method) == boost::beast::http::verb::unknown) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": unknown method ", route.method));
    }
    if (route.verb->field == 0) return absl::InvalidArgumentError(absl::StrCat(name, ": a route needs a field"));
    std::string shape = route.method;
    for (const std::string& segment : route.segments) absl::StrAppend(&shape, "/", IsParam(segment) ? "{}" : segment);
    if (!seen.insert(shape).second) return absl::InvalidArgumentError(absl::StrCat(name, ": a second route ", shape));
    v1::Command command;
    const Message& message = *VerbMessage(*route.verb, command);
    if (*route.verb->body != '\0') {
      const FieldDescriptor* body = FieldNamed(message, route.verb->body);
      if (body == nullptr || body->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || body->is_repeated()) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": body ", route.verb->body, " is not a message field"));
      }
    }
    for (const std::string& segment : route.segments) {
      if (!IsParam(segment)) continue;
      const FieldDescriptor* field = FieldNamed(message, ParamName(segment));
      if (field == nullptr || field->cpp_type() != FieldDescriptor::CPPTYPE_STRING || field->is_repeated()) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": ", segment, " is not a string field"));
      }
    }
    for (const std::string& key : route.query) {
      const FieldDescriptor* field = FieldNamed(message, key);
      const bool settable = field != nullptr && !field->is_repeated() &&
                            (field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL ||
                             field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32 ||
                             field->cpp_type() == FieldDescriptor::CPPTYPE_STRING);
      if (!settable) return absl::InvalidArgumentError(absl::StrCat(name, ": query ", key, " is not a scalar field"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Command> CommandOfRequest(const http::Request& request) {
  // The path's segments as sent and decoded; one that does not decode (or is empty) can
  // stand only for a {param}, which then refuses it.
  std::vector<std::string> raw = absl::StrSplit(request.path, '/');
  if (!raw.empty() && raw.front().empty()) raw.erase(raw.begin());
  std::vector<std::optional<std::string>> decoded;
  for (const std::string& segment : raw) {
    absl::StatusOr<std::string> text = http::PercentDecode(segment);
    decoded.push_back(text.ok() && !text->empty() ? std::optional<std::string>(*std::move(text)) : std::nullopt);
  }
  const RestRoute* best = nullptr;
  for (const RestRoute& route : RestRoutes()) {
    if (route.segments.size() != decoded.size()) continue;
    bool matches = true;
    for (size_t i = 0; i < decoded.size() && matches; ++i) {
      matches = IsParam(route.segments[i]) || route.segments[i] == decoded[i];
    }
    if (matches && (best == nullptr || MoreSpecific(route, *best))) best = &route;
  }
  if (best == nullptr) return absl::NotFoundError(absl::StrCat("no route ", request.path));
  for (size_t i = 0; i < decoded.size(); ++i) {
    if (!decoded[i].has_value()) return http::InvalidField("path", "malformed segment");
  }
  std::vector<const RestRoute*> same_path;
  const RestRoute* route = nullptr;
  for (const RestRoute& candidate : RestRoutes()) {
    if (!SamePath(candidate, *best)) continue;
    same_path.push_back(&candidate);
    if (candidate.method == request.method_text) route = &candidate;
  }
  if (route == nullptr) return http::MethodNotAllowed(request.method_text, request.path, AllowedMethods(same_path));

  for (const auto& [key, value] : request.query) {
    bool known = false;
    for (const std::string& name : route->query) known = known || key == name;
    if (!known) return http::InvalidField(key, "unknown query parameter");
  }
  v1::Command command;
  Message* message = VerbMessage(*route->verb, command);
  Message* body_target = message;
  if (*route->verb->body != '\0') {
    body_target = message->GetReflection()->MutableMessage(message, FieldNamed(*message, route->verb->body));
  }
  bool names_object = false;
  for (const std::string& segment : route->segments) names_object = names_object || IsParam(segment);
  if (route->method == "GET") {
    if (!request.body.empty()) return http::InvalidField("body", "this request takes none");
  } else if (!request.body.empty() || !names_object) {
    if (absl::Status s = commands::ParseJsonBody(request.body, body_target); !s.ok()) return s;
  }
  // The path names the object, whatever a body says.
  for (size_t i = 0; i < route->segments.size(); ++i) {
    if (!IsParam(route->segments[i])) continue;
    message->GetReflection()->SetString(message, FieldNamed(*message, ParamName(route->segments[i])), *decoded[i]);
  }
  for (const auto& [key, value] : request.query) {
    if (absl::Status s = SetQuery(*message, key, value); !s.ok()) return s;
  }
  if (absl::Status s = CheckRuleCount(*body_target); !s.ok()) return s;
  return command;
}

}  // namespace coolify::front
