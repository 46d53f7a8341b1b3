#include "services/commands/dispatch_codec.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/string.hpp"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "services/commands/json_body.h"
#include "services/commands/verbs.h"
#include "services/http/status.h"
#include "services/http/utf8.h"

namespace coolify::commands {
namespace {

using google::protobuf::Struct;
using http::WellFormedUtf8;
using google::protobuf::Value;

// A received string as an error message shows it: escaped, at most 64 bytes.
std::string Shown(std::string_view text) {
  std::string shown = absl::CHexEscape(absl::string_view(text.data(), std::min<size_t>(text.size(), 64)));
  if (text.size() > 64) shown += "...";
  return absl::StrCat("\"", shown, "\"");
}

// The answer central degrades gracefully on (HTTP 501, this very wording).
absl::Status UnsupportedVerb(std::string_view type) {
  return absl::UnimplementedError(absl::StrCat("primitive ", absl::string_view(type.data(), type.size()), " is not supported by host"));
}

absl::Status Invalid(const std::string& field, std::string_view what) { return http::InvalidField(field, what); }

// Prefixes the field a parse error names with where it sits in the envelope.
absl::Status Under(const char* prefix, const absl::Status& status) {
  return http::WithField(absl::InvalidArgumentError(absl::StrCat(prefix, status.message())),
                         absl::StrCat(prefix, http::FieldOf(status)));
}

absl::Status Rename(Struct& fields, const char* from, const char* to) {
  auto& map = *fields.mutable_fields();
  auto it = map.find(from);
  if (it == map.end()) return absl::OkStatus();
  if (map.count(to) > 0) return Invalid(absl::StrCat("command.", from), absl::StrCat("given with ", to));
  Value moved = std::move(it->second);
  map.erase(it);
  map[to] = std::move(moved);
  return absl::OkStatus();
}

Value StringValue(std::string s) {
  Value v;
  v.set_string_value(std::move(s));
  return v;
}

// central's container fields where they differ in shape from ContainerSpec's: env and
// labels as "K=V" strings, networks and volumes as strings, protocol and restart policy
// as lower-case words, network_mode "host". Anything else is left for the strict parse.
absl::Status ContainerShapes(Struct& fields) {
  auto& map = *fields.mutable_fields();
  for (const char* name : {"env", "labels"}) {
    auto it = map.find(name);
    if (it == map.end() || !it->second.has_list_value()) continue;
    for (int i = 0; i < it->second.list_value().values_size(); ++i) {
      Value& item = *it->second.mutable_list_value()->mutable_values(i);
      if (!item.has_string_value()) continue;
      std::string text = item.string_value();
      size_t eq = text.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Invalid(absl::StrCat("command.", name, "[", i, "]"), "expected KEY=VALUE");
      }
      Value kv;
      auto& kv_fields = *kv.mutable_struct_value()->mutable_fields();
      kv_fields["key"] = StringValue(text.substr(0, eq));
      kv_fields["value"] = StringValue(text.substr(eq + 1));
      item = std::move(kv);
    }
  }
  if (auto it = map.find("networks"); it != map.end() && it->second.has_list_value()) {
    for (Value& item : *it->second.mutable_list_value()->mutable_values()) {
      if (!item.has_string_value()) continue;
      Value attachment;
      (*attachment.mutable_struct_value()->mutable_fields())["network"] = StringValue(item.string_value());
      item = std::move(attachment);
    }
  }
  if (auto it = map.find("network_aliases"); it != map.end()) {
    // central names the container's aliases once, for every network it joins.
    Value aliases = std::move(it->second);
    map.erase(it);
    if (!aliases.has_list_value()) return Invalid("command.network_aliases", "expected a list of strings");
    auto networks = map.find("networks");
    if (aliases.list_value().values_size() > 0) {
      if (networks == map.end() || !networks->second.has_list_value() || networks->second.list_value().values_size() == 0) {
        return Invalid("command.network_aliases", "needs networks to be named");
      }
      for (Value& attachment : *networks->second.mutable_list_value()->mutable_values()) {
        if (!attachment.has_struct_value()) continue;  // the strict parse names it
        auto& a = *attachment.mutable_struct_value()->mutable_fields();
        if (a.count("aliases") > 0) return Invalid("command.network_aliases", "given with networks[].aliases");
        a["aliases"] = aliases;
      }
    }
  }
  if (auto it = map.find("volumes"); it != map.end() && it->second.has_list_value()) {
    // "name:/dest[:ro|:rw]" is a named volume; "/host/path:/dest[...]" a bind mount,
    // which the gatekeeper's policy then judges like any other.
    Value volumes, binds;
    volumes.mutable_list_value();
    binds.mutable_list_value();
    if (auto existing = map.find("binds"); existing != map.end()) binds = existing->second;
    int i = 0;
    for (const Value& item : it->second.list_value().values()) {
      std::string field = absl::StrCat("command.volumes[", i++, "]");
      if (!item.has_string_value()) {
        *volumes.mutable_list_value()->add_values() = item;
        continue;
      }
      std::vector<std::string> parts = absl::StrSplit(item.string_value(), ':');
      if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
        return Invalid(field, "expected SOURCE:DESTINATION[:ro|rw]");
      }
      bool read_only = false;
      if (parts.size() == 3) {
        if (parts[2] != "ro" && parts[2] != "rw") return Invalid(field, "mode must be ro or rw");
        read_only = parts[2] == "ro";
      }
      bool bind = parts[0][0] == '/';
      Value mount;
      auto& m = *mount.mutable_struct_value()->mutable_fields();
      m[bind ? "source" : "volume"] = StringValue(parts[0]);
      m["destination"] = StringValue(parts[1]);
      m["read_only"].set_bool_value(read_only);
      *(bind ? binds : volumes).mutable_list_value()->add_values() = std::move(mount);
    }
    it->second = std::move(volumes);
    if (binds.list_value().values_size() > 0) map["binds"] = std::move(binds);
  }
  if (auto it = map.find("ports"); it != map.end() && it->second.has_list_value()) {
    for (Value& port : *it->second.mutable_list_value()->mutable_values()) {
      if (!port.has_struct_value()) continue;
      auto& p = *port.mutable_struct_value()->mutable_fields();
      auto protocol = p.find("protocol");
      if (protocol == p.end() || !protocol->second.has_string_value()) continue;
      std::string word = absl::AsciiStrToLower(protocol->second.string_value());
      if (word == "tcp" || word == "udp") protocol->second.set_string_value("PORT_PROTOCOL_" + absl::AsciiStrToUpper(word));
    }
  }
  if (auto it = map.find("restart_policy"); it != map.end() && it->second.has_string_value()) {
    std::string word = absl::AsciiStrToLower(it->second.string_value());
    const std::pair<const char*, const char*> words[] = {{"no", "RESTART_POLICY_NO"},
                                                          {"on-failure", "RESTART_POLICY_ON_FAILURE"},
                                                          {"always", "RESTART_POLICY_ALWAYS"},
                                                          {"unless-stopped", "RESTART_POLICY_UNLESS_STOPPED"}};
    for (const auto& [from, to] : words) {
      if (word == from) it->second.set_string_value(to);
    }
    if (word.empty()) map.erase(it);
  }
  if (auto it = map.find("network_mode"); it != map.end()) {
    if (!it->second.has_string_value()) return Invalid("command.network_mode", "expected a string");
    std::string mode = it->second.string_value();
    map.erase(it);
    if (mode == "host") {
      if (map.count("host_network") > 0) return Invalid("command.network_mode", "given with host_network");
      map["host_network"].set_bool_value(true);
    } else if (!mode.empty() && mode != "bridge") {
      return Invalid("command.network_mode", absl::StrCat(Shown(mode), " is not host or bridge"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    return absl::InternalError("not representable as JSON");
  }
  return json;
}

// The "type" of a command object, removed from it.
absl::StatusOr<std::string> TakeType(Struct& command) {
  auto& map = *command.mutable_fields();
  auto it = map.find("type");
  if (it == map.end()) return Invalid("command.type", "missing");
  if (!it->second.has_string_value()) return Invalid("command.type", "expected a string");
  std::string type = it->second.string_value();
  map.erase(it);
  return type;
}

std::string Quote(std::string_view text) {
  std::string valid = WellFormedUtf8(text);
  return boost::json::serialize(boost::json::string(boost::json::string_view(valid.data(), valid.size())));
}

}  // namespace

absl::Status ValidateRequestId(std::string_view id) {
  if (id.empty()) return Invalid("request_id", "missing");
  if (id.size() > 128) return Invalid("request_id", "longer than 128 characters");
  auto ok = [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-'; };
  if (!absl::ascii_isalnum(id[0])) return Invalid("request_id", absl::StrCat(Shown(id), " must start with a letter or digit"));
  for (char c : id) {
    if (!ok(c)) return Invalid("request_id", absl::StrCat(Shown(id), " may hold only A-Z a-z 0-9 _ . -"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHostId(std::string_view id) {
  if (id.empty()) return Invalid("host_id", "missing");
  if (id.size() > 253) return Invalid("host_id", "longer than 253 characters");
  auto ok = [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-' || c == ':'; };
  if (!absl::ascii_isalnum(id[0])) return Invalid("host_id", absl::StrCat(Shown(id), " must start with a letter or digit"));
  for (char c : id) {
    if (!ok(c)) return Invalid("host_id", absl::StrCat(Shown(id), " may hold only A-Z a-z 0-9 _ . - :"));
  }
  return absl::OkStatus();
}

namespace {

// The command object's fields (a Struct without "type") -> the typed command. The JSON
// text of the fields is printed once here for protobuf's strict parser, which alone
// knows the verb's message; nothing else reparses the command.
absl::StatusOr<v1::Command> CommandFromStruct(std::string_view type, Struct fields) {
  const Verb* verb = FindVerb(type);
  if (verb == nullptr) return Invalid("command.type", absl::StrCat("unknown type ", Shown(type)));
  if (verb->field == 0) return UnsupportedVerb(type);
  for (const auto& [from, to] : verb->renames) {
    if (absl::Status s = Rename(fields, from, to); !s.ok()) return s;
  }
  v1::Command command;
  const auto* field = v1::Command::descriptor()->FindFieldByNumber(verb->field);
  google::protobuf::Message* target = command.GetReflection()->MutableMessage(&command, field);
  // The command object fills what the REST API's body fills: a create's spec itself.
  if (*verb->body != '\0') {
    target = target->GetReflection()->MutableMessage(target, target->GetDescriptor()->FindFieldByName(verb->body));
  }
  switch (verb->field) {
    case v1::Command::kContainersCreateFieldNumber:
      if (absl::Status s = ContainerShapes(fields); !s.ok()) return s;
      break;
    case v1::Command::kFirewallAllowFieldNumber: {
      // The rule's fields, flat, beside the caller's id for it.
      auto id = fields.mutable_fields()->find("id");
      if (id != fields.mutable_fields()->end()) {
        if (!id->second.has_string_value()) return Invalid("command.id", "expected a string");
        command.mutable_firewall_allow()->set_id(id->second.string_value());
        fields.mutable_fields()->erase(id);
      }
      break;
    }
    case v1::Command::kContainersLogsFieldNumber:
      // central asks for both streams by name; both are always returned.
      for (const char* stream : {"stdout", "stderr"}) {
        auto it = fields.mutable_fields()->find(stream);
        if (it == fields.mutable_fields()->end()) continue;
        if (!it->second.has_bool_value() || !it->second.bool_value()) {
          return Invalid(absl::StrCat("command.", stream), "only true is served: both streams are returned");
        }
        fields.mutable_fields()->erase(it);
      }
      break;
    default:
      break;
  }
  absl::StatusOr<std::string> json = ToJson(fields);
  if (!json.ok()) return json.status();
  if (absl::Status s = ParseJsonBody(*json, target); !s.ok()) return Under("command.", s);
  return command;
}

}  // namespace

absl::StatusOr<v1::Command> CommandFromJson(std::string_view type, std::string_view fields_json) {
  Struct fields;
  if (absl::Status s = ParseJsonBody(std::string(fields_json), &fields); !s.ok()) return Under("command.", s);
  return CommandFromStruct(type, std::move(fields));
}

std::vector<std::string> VerbNames(const v1::Command& command) {
  // From the registry (services/commands/verbs.h).
  const Verb* verb = VerbOf(command);
  if (verb == nullptr) return {};
  return std::vector<std::string>(verb->names.begin(), verb->names.end());
}

v1::Capability RequiredCapability(const v1::Command& command) {
  const Verb* verb = VerbOf(command);
  return verb == nullptr ? v1::CAPABILITY_UNSPECIFIED : verb->capability;
}

std::string RequestIdOf(std::string_view body) {
  if (body.size() > kMaxDispatchBytes) return "";
  boost::json::error_code ec;
  boost::json::value parsed = boost::json::parse(boost::json::string_view(body.data(), body.size()), ec);
  if (ec || !parsed.is_object()) return "";
  const boost::json::value* id = parsed.as_object().if_contains("request_id");
  if (id == nullptr || !id->is_string()) return "";
  std::string text(id->as_string());
  return ValidateRequestId(text).ok() ? text : "";
}

absl::StatusOr<Dispatch> ParseDispatch(std::string_view body) {
  if (body.size() > kMaxDispatchBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("body: ", body.size(), " bytes; at most ", kMaxDispatchBytes));
  }
  v1::DispatchEnvelope envelope;
  if (absl::Status s = ParseJsonBody(std::string(body), &envelope); !s.ok()) return s;
  if (absl::Status s = ValidateRequestId(envelope.request_id()); !s.ok()) return s;
  if (absl::Status s = ValidateHostId(envelope.host_id()); !s.ok()) return s;
  if (!envelope.has_command()) return Invalid("command", "missing");
  absl::StatusOr<std::string> type = TakeType(*envelope.mutable_command());
  if (!type.ok()) return type.status();
  absl::StatusOr<v1::Command> command = CommandFromStruct(*type, std::move(*envelope.mutable_command()));
  if (!command.ok()) return command.status();
  Dispatch dispatch;
  dispatch.host_id = envelope.host_id();
  dispatch.request_id = envelope.request_id();
  dispatch.type = VerbNames(*command).front();
  dispatch.command = *std::move(command);
  return dispatch;
}

absl::StatusOr<BuildDispatch> ParseBuildDispatch(std::string_view body) {
  if (body.size() > kMaxDispatchBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("body: ", body.size(), " bytes; at most ", kMaxDispatchBytes));
  }
  v1::BuildDispatchEnvelope envelope;
  if (absl::Status s = ParseJsonBody(std::string(body), &envelope); !s.ok()) return s;
  if (absl::Status s = ValidateRequestId(envelope.request_id()); !s.ok()) return s;
  if (!envelope.host_id().empty()) {
    if (absl::Status s = ValidateHostId(envelope.host_id()); !s.ok()) return s;
  }
  if (!envelope.has_command()) return Invalid("command", "missing");
  absl::StatusOr<std::string> type = TakeType(*envelope.mutable_command());
  if (!type.ok()) return type.status();
  v1::BuildStack stack;
  if (*type == "static_build") {
    stack = v1::BUILD_STACK_STATIC;
  } else if (*type == "dockerfile_build") {
    stack = v1::BUILD_STACK_DOCKERFILE;
  } else if (*type == "cancel") {
    return Invalid("command.type", "cancel goes to POST /v1/build/{request_id}/cancel");
  } else {
    return Invalid("command.type", absl::StrCat("unknown build type ", Shown(*type),
                                                "; expected static_build or dockerfile_build"));
  }
  // The broker sets these; a caller's value would be a second, conflicting source.
  for (const char* reserved : {"request_id", "stack"}) {
    if (envelope.command().fields().count(reserved) > 0) return Invalid(absl::StrCat("command.", reserved), "unknown field");
  }
  absl::StatusOr<std::string> fields = ToJson(envelope.command());
  if (!fields.ok()) return fields.status();
  BuildDispatch dispatch;
  if (absl::Status s = ParseJsonBody(*fields, &dispatch.build); !s.ok()) return Under("command.", s);
  const v1::BuildRequest& b = dispatch.build;
  if (b.repo_url().empty()) return Invalid("command.repo_url", "missing");
  if (b.git_ref().empty()) return Invalid("command.git_ref", "missing");
  if (b.target_image().empty()) return Invalid("command.target_image", "missing");
  if (stack == v1::BUILD_STACK_STATIC && !b.dockerfile_path().empty()) {
    return Invalid("command.dockerfile_path", "only for dockerfile_build");
  }
  if (stack == v1::BUILD_STACK_DOCKERFILE && (!b.base_image().empty() || !b.output_dir().empty())) {
    return Invalid(!b.base_image().empty() ? "command.base_image" : "command.output_dir", "only for static_build");
  }
  dispatch.build.set_stack(stack);
  dispatch.build.set_request_id(envelope.request_id());
  dispatch.host_id = envelope.host_id();
  dispatch.request_id = envelope.request_id();
  return dispatch;
}

v1::CommandResult DispatchLaneResult(const v1::Command& command, v1::CommandResult result) {
  if (command.has_firewall_list() && result.code() < 400) {
    Value rules = (*result.mutable_data()->mutable_struct_value()->mutable_fields())["rules"];
    if (!rules.has_list_value()) rules.mutable_list_value();
    *result.mutable_data() = std::move(rules);
  }
  return result;
}

std::string ValueJson(const Value& value) {
  if (value.kind_case() == Value::KIND_NOT_SET) return "null";
  absl::StatusOr<std::string> json = ToJson(value);
  // protobuf copies a string's bytes as they are; a host's ill-formed UTF-8 is replaced
  // here (only string contents can hold such bytes, so the structure is untouched).
  return json.ok() ? WellFormedUtf8(*json) : "null";
}

Envelope ErrorEnvelope(const std::string& request_id, unsigned code, std::string_view message) {
  if (code < 400 || code > 599) code = 500;
  return Envelope{code, absl::StrCat("{\"request_id\":", Quote(request_id), ",\"status\":\"error\",\"code\":", code,
                                     ",\"message\":", Quote(message), "}")};
}

Envelope PollTimeoutEnvelope(const std::string& request_id, const std::vector<v1::BuildEvent>& progress) {
  std::string body = absl::StrCat("{\"request_id\":", Quote(request_id),
                                  ",\"status\":\"error\",\"code\":408,\"message\":\"result poll timed out\",\"progress\":[");
  for (size_t i = 0; i < progress.size(); ++i) {
    absl::StrAppend(&body, i == 0 ? "" : ",", "{\"phase\":", Quote(progress[i].phase()), ",\"line\":",
                    Quote(progress[i].line()), ",\"unix_ms\":", progress[i].unix_ms(), "}");
  }
  body += "]}";
  return Envelope{408, std::move(body)};
}

Envelope CommandEnvelope(const std::string& request_id, const v1::CommandResult& result) {
  if (result.code() >= 400 || result.code() < 100) {
    std::string message = result.message();
    if (message.empty()) message = "command failed";
    return ErrorEnvelope(request_id, result.code(), message);
  }
  return Envelope{200, absl::StrCat("{\"request_id\":", Quote(request_id), ",\"status\":\"ok\",\"data\":",
                                    ValueJson(result.data()), "}")};
}

Envelope BuildEnvelope(const std::string& request_id, const v1::CommandResult& result) {
  const auto& fields = result.data().struct_value().fields();
  auto text = [&fields](const char* name) -> std::string {
    auto it = fields.find(name);
    return it != fields.end() && it->second.has_string_value() ? it->second.string_value() : "";
  };
  if (result.code() >= 400 || result.code() < 100) {
    unsigned code = result.code() >= 400 && result.code() <= 599 ? result.code() : 500;
    std::string message = result.message().empty() ? "build failed" : result.message();
    return Envelope{code, absl::StrCat("{\"request_id\":", Quote(request_id), ",\"status\":\"error\",\"code\":", code,
                                       ",\"message\":", Quote(message), ",\"stage\":", Quote(text("stage")), "}")};
  }
  double duration = 0;
  if (auto it = fields.find("duration_ms"); it != fields.end() && it->second.has_number_value()) {
    duration = it->second.number_value();
  }
  uint64_t duration_ms = std::isfinite(duration) && duration > 0 ? static_cast<uint64_t>(duration) : 0;
  return Envelope{200, absl::StrCat("{\"request_id\":", Quote(request_id), ",\"status\":\"ok\",\"digest\":",
                                    Quote(text("digest")), ",\"registry_ref\":", Quote(text("registry_ref")),
                                    ",\"duration_ms\":", duration_ms, "}")};
}

}  // namespace coolify::commands
