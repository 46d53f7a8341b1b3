#include "services/front/command_router.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "privsep/log.h"
#include "services/commands/json_value.h"
#include "services/commands/verbs.h"
#include "privsep/validate.h"
#include "services/http/status.h"
#include "services/front/result_values.h"

namespace coolify::front {
namespace {

using google::protobuf::Value;

Value String(const std::string& s) { return StringValue(s); }
Value Number(double n) { return NumberValue(n); }
Value Bool(bool b) { return BoolValue(b); }

Value StringList(const google::protobuf::RepeatedPtrField<std::string>& items) {
  Value v;
  auto* list = v.mutable_list_value();
  for (const std::string& item : items) *list->add_values() = String(item);
  return v;
}

v1::CommandResult Ok(unsigned code, Value data) { return OkResult(code, std::move(data)); }

// {"id", "namespace", "src", "dst", "proto", "port"}: one flat object per rule, as the
// allow request spells a rule plus its id.
Value EntryValue(const privsep::FirewallEntry& entry) {
  Value v;
  auto& fields = *v.mutable_struct_value()->mutable_fields();
  fields["id"] = String(entry.id());
  fields["namespace"] = String(entry.rule().namespace_());
  fields["src"] = String(entry.rule().src());
  fields["dst"] = String(entry.rule().dst());
  fields["proto"] = String(entry.rule().proto());
  fields["port"] = Number(entry.rule().port());
  return v;
}

std::vector<v1::FirewallRule> Rules(const google::protobuf::RepeatedPtrField<v1::FirewallRule>& rules) {
  return std::vector<v1::FirewallRule>(rules.begin(), rules.end());
}

// A rule's src or dst that is not an address or network: addresses begin with a digit.
bool IsContainerName(const std::string& text) { return !text.empty() && absl::ascii_isalpha(text[0]); }

// The rules a gatekeeper 403 names: each violation's "rule", or one "-" for a refusal
// that lists none.
void CountDenials(const Value& answer, FrontMetrics& metrics) {
  const auto& fields = answer.struct_value().fields();
  auto violations = fields.find("violations");
  if (violations == fields.end() || violations->second.list_value().values_size() == 0) {
    metrics.PolicyDenial("-");
    return;
  }
  for (const Value& violation : violations->second.list_value().values()) {
    const auto& v = violation.struct_value().fields();
    auto rule = v.find("rule");
    metrics.PolicyDenial(rule != v.end() && rule->second.has_string_value() ? rule->second.string_value() : "-");
  }
}

}  // namespace

v1::CommandResult ErrorResult(const absl::Status& status) {
  v1::CommandResult result;
  result.set_code(http::HttpStatusOf(status));
  result.set_message(std::string(status.message()));
  result.set_field(http::FieldOf(status));
  return result;
}


namespace {

// The answer central degrades on.
v1::CommandResult NotSupported(const commands::Verb& verb) {
  return ErrorResult(absl::UnimplementedError(absl::StrCat("primitive ", verb.names[0], " is not supported by host")));
}

}  // namespace

// The router's own verbs: per Command field, its handler. The registry says which verbs
// are the router's (Server::kFirewall, Server::kFront); rest_api_test holds the two to
// each other.
struct CommandRouter::Handler {
  int field;
  v1::CommandResult (CommandRouter::*serve)(const v1::Command& command);
};

const std::vector<CommandRouter::Handler>& CommandRouter::Handlers() {
  using C = v1::Command;
  static const auto* handlers = new std::vector<Handler>{
      {C::kFirewallAllowFieldNumber, &CommandRouter::Allow},
      {C::kFirewallDeleteFieldNumber, &CommandRouter::DeleteRule},
      {C::kFirewallListFieldNumber, &CommandRouter::ListRules},
      {C::kFirewallBulkFieldNumber, &CommandRouter::Bulk},
      {C::kFirewallReconcileFieldNumber, &CommandRouter::Reconcile},
      {C::kContainersListFieldNumber, &CommandRouter::ContainersList},
      {C::kCooldLogsFieldNumber, &CommandRouter::CooldLogs},
      {C::kHostJwtSetFieldNumber, &CommandRouter::JwtSetWithoutKeys},
  };
  return *handlers;
}

std::vector<int> CommandRouter::HandledVerbs() {
  std::vector<int> fields;
  for (const Handler& handler : Handlers()) fields.push_back(handler.field);
  return fields;
}

v1::CommandResult CommandRouter::Route(const v1::Command& command, Lane lane) {
  return Counted(command, lane, nullptr);
}

v1::CommandResult CommandRouter::RouteToText(const v1::Command& command, std::string* data_text) {
  data_text->clear();
  return Counted(command, Lane::kRest, data_text);
}

v1::CommandResult CommandRouter::Counted(const v1::Command& command, Lane lane, std::string* data_text) {
  const auto started = std::chrono::steady_clock::now();
  v1::CommandResult result = RouteVerb(command, data_text);
  if (metrics_ != nullptr) {
    metrics_->Command(lane, command, result.code(), metrics::SecondsSince(started));
    metrics_->FirewallMutation(command, result);
  }
  return result;
}

v1::CommandResult CommandRouter::RouteVerb(const v1::Command& command, std::string* data_text) {
  // Where a verb goes is the registry's (services/commands/verbs.h) to say.
  const commands::Verb* verb = commands::VerbOf(command);
  if (verb == nullptr) return ErrorResult(http::InvalidField("command", "no verb"));
  switch (verb->server) {
    case commands::Server::kDirectory:
      if (services_) return services_(command);
      return ErrorResult(absl::UnimplementedError("services and DNS are not served by this coold"));
    case commands::Server::kPodman:
      return Podman(command, data_text);
    case commands::Server::kFirewall:
    case commands::Server::kFront:
      for (const Handler& handler : Handlers()) {
        if (handler.field == verb->field) return (this->*handler.serve)(command);
      }
      break;
    case commands::Server::kNone:
      break;
  }
  return NotSupported(*verb);
}

// The front end answers host.jwt.set before the router when it holds central's keys; a
// coold without them cannot check a pushed token, and says so as central expects.
v1::CommandResult CommandRouter::JwtSetWithoutKeys(const v1::Command& command) {
  return NotSupported(*commands::VerbOf(command));
}

v1::CommandResult CommandRouter::Podman(const v1::Command& command, std::string* data_text) {
  // A followed log is a stream; a command answers once (REST API: LogFollower).
  if (command.has_containers_logs() && command.containers_logs().follow()) {
    return ErrorResult(http::InvalidField(
        "follow", "a followed log streams only from the REST API (GET /api/v1/containers/{id}/logs?follow=true)"));
  }
  absl::StatusOr<PodmanAnswer> answer = podman_.Run(command);
  if (!answer.ok()) return ErrorResult(answer.status());
  v1::CommandResult result;
  result.set_code(answer->http_status);
  // The gatekeeper answers JSON; parsing it here keeps Podman's bytes out of every
  // privileged process and makes the data one shape for both transports. An answer
  // relayed as it came, for a caller that wants text, is read and printed in one pass.
  if (data_text != nullptr && answer->http_status < 400 && !command.has_containers_logs()) {
    absl::StatusOr<std::string> text = commands::ReprintJson(answer->body);
    if (!text.ok()) return ErrorResult(absl::InternalError("gatekeeper answered something that is not JSON"));
    *data_text = *std::move(text);
    return result;
  }
  absl::StatusOr<google::protobuf::Value> data = commands::ParseJsonValue(answer->body);
  if (!data.ok()) return ErrorResult(absl::InternalError("gatekeeper answered something that is not JSON"));
  *result.mutable_data() = *std::move(data);
  if (answer->http_status >= 400) {
    const auto& fields = result.data().struct_value().fields();
    auto error = fields.find("error");
    result.set_message(error != fields.end() ? error->second.string_value() : "podman request failed");
    if (answer->http_status == 403 && metrics_ != nullptr) CountDenials(result.data(), *metrics_);
  } else if (command.has_containers_logs()) {
    // central reads one text: the output of both streams, stdout's first.
    auto& fields = *result.mutable_data()->mutable_struct_value()->mutable_fields();
    fields["output"] = String(absl::StrCat(fields["stdout"].string_value(), fields["stderr"].string_value()));
  }
  return result;
}

absl::StatusOr<std::string> CommandRouter::ContainerAddress(const char* field, const std::string& name,
                                                             const std::string& rule_namespace) {
  const std::string ns = rule_namespace.empty() ? "default" : rule_namespace;
  if (absl::Status valid = privsep::ValidateNamespaceName("namespace", ns); !valid.ok()) return valid;
  v1::Command inspect;
  inspect.mutable_containers_inspect()->set_id(name);
  // The gatekeeper validates the name as it does every container id, and answers only
  // for a container coold created in this namespace (its labels).
  inspect.mutable_containers_inspect()->set_namespace_(ns);
  v1::CommandResult found = Podman(inspect);
  if (found.code() == 404) {
    return http::InvalidField(field, absl::StrCat("no container ", name, " on this host"));
  }
  if (found.code() == 403) {
    return http::InvalidField(field, absl::StrCat("container ", name, " is not one of namespace ", ns,
                                                  "'s containers: ", found.message()));
  }
  if (found.code() >= 400) {
    return absl::Status(found.code() == 503 ? absl::StatusCode::kUnavailable : absl::StatusCode::kInternal,
                        absl::StrCat(field, ": ", found.message()));
  }
  // Only an address on one of the namespace's own networks: the gatekeeper lets a
  // container join those only when it belongs to the namespace, so a name never resolves
  // to another namespace's container. The mesh bridge first, then per-app networks.
  const std::string mesh = absl::StrCat("coolify-", ns, "-mesh");
  const std::string prefix = absl::StrCat(ns, ".");
  std::map<std::string, std::string> addresses;  // network -> address, in name order
  const auto& root = found.data().struct_value().fields();
  auto settings = root.find("NetworkSettings");
  if (settings != root.end()) {
    const auto& s = settings->second.struct_value().fields();
    auto networks = s.find("Networks");
    if (networks != s.end()) {
      for (const auto& [network, attachment] : networks->second.struct_value().fields()) {
        if (network != mesh && !absl::StartsWith(network, prefix)) continue;
        const auto& a = attachment.struct_value().fields();
        auto ip = a.find("IPAddress");
        if (ip == a.end() || !ip->second.has_string_value()) continue;
        if (!privsep::ValidateIpv4("", ip->second.string_value()).ok()) continue;
        addresses[network] = ip->second.string_value();
      }
    }
  }
  if (auto it = addresses.find(mesh); it != addresses.end()) return it->second;
  if (!addresses.empty()) return addresses.begin()->second;
  return http::InvalidField(field, absl::StrCat("container ", name, " has no address on a network of namespace ", ns));
}

v1::CommandResult CommandRouter::ContainersList(const v1::Command&) {
  v1::Command list;
  list.mutable_host_containers();
  v1::CommandResult raw = Podman(list);
  if (raw.code() >= 400) return raw;
  // Podman's list, one entry per container, cut to what central reads: the full id, the
  // first name, the image, the state word and the networks' names.
  Value data;
  auto* entries = data.mutable_list_value();
  for (const Value& item : raw.data().list_value().values()) {
    const auto& c = item.struct_value().fields();
    auto text = [&c](const char* key) {
      auto it = c.find(key);
      return it != c.end() && it->second.has_string_value() ? it->second.string_value() : std::string();
    };
    auto first = [&c](const char* key) {
      auto it = c.find(key);
      if (it == c.end() || it->second.list_value().values_size() == 0) return std::string();
      return it->second.list_value().values(0).string_value();
    };
    Value entry;
    auto& e = *entry.mutable_struct_value()->mutable_fields();
    e["id"] = String(text("Id"));
    e["name"] = String(first("Names"));
    e["image"] = String(text("Image"));
    e["state"] = String(text("State"));
    Value networks;
    networks.mutable_list_value();
    if (auto it = c.find("Networks"); it != c.end()) {
      for (const Value& network : it->second.list_value().values()) {
        if (network.has_string_value()) *networks.mutable_list_value()->add_values() = network;
      }
    }
    e["networks"] = std::move(networks);
    *entries->add_values() = std::move(entry);
  }
  return Ok(200, std::move(data));
}

v1::CommandResult CommandRouter::CooldLogs(const v1::Command& command) {
  const v1::CooldLogs& request = command.coold_logs();
  if (request.tail() > kMaxCooldLogLines) {
    return ErrorResult(http::InvalidField("tail", absl::StrCat(request.tail(), " is over ", kMaxCooldLogLines)));
  }
  std::vector<std::string> lines = RecentLogLines(request.tail() == 0 ? kDefaultCooldLogLines : request.tail());
  Value data;
  auto& fields = *data.mutable_struct_value()->mutable_fields();
  std::string output;
  Value list;
  list.mutable_list_value();
  for (const std::string& line : lines) {
    absl::StrAppend(&output, line, "\n");
    *list.mutable_list_value()->add_values() = String(line);
  }
  fields["output"] = String(output);
  fields["lines"] = std::move(list);
  return Ok(200, std::move(data));
}

v1::CommandResult CommandRouter::Allow(const v1::Command& command) {
  if (!command.firewall_allow().has_rule()) return ErrorResult(http::InvalidField("rule", "missing"));
  v1::FirewallRule rule = command.firewall_allow().rule();
  for (auto [field, value] : {std::pair{"src", rule.mutable_src()}, std::pair{"dst", rule.mutable_dst()}}) {
    if (!IsContainerName(*value)) continue;
    absl::StatusOr<std::string> address = ContainerAddress(field, *value, rule.namespace_());
    if (!address.ok()) return ErrorResult(address.status());
    *value = *address;
  }
  auto allowed = firewall_.Allow(rule, command.firewall_allow().id());
  if (!allowed.ok()) return ErrorResult(allowed.status());
  Value data;
  auto& fields = *data.mutable_struct_value()->mutable_fields();
  fields["id"] = String(allowed->id());
  fields["created"] = Bool(allowed->created());
  return Ok(allowed->created() ? 201 : 200, std::move(data));
}

v1::CommandResult CommandRouter::DeleteRule(const v1::Command& command) {
  absl::Status deleted = firewall_.Delete(command.firewall_delete().id());
  if (!deleted.ok()) return ErrorResult(deleted);
  Value data;
  (*data.mutable_struct_value()->mutable_fields())["id"] = String(command.firewall_delete().id());
  return Ok(200, std::move(data));
}

v1::CommandResult CommandRouter::ListRules(const v1::Command& command) {
  auto entries = firewall_.List(command.firewall_list().namespace_());
  if (!entries.ok()) return ErrorResult(entries.status());
  Value data;
  Value rules;
  auto* list = rules.mutable_list_value();
  for (const auto& entry : *entries) *list->add_values() = EntryValue(entry);
  (*data.mutable_struct_value()->mutable_fields())["rules"] = std::move(rules);
  return Ok(200, std::move(data));
}

v1::CommandResult CommandRouter::Bulk(const v1::Command& command) {
  auto changes = firewall_.Bulk(Rules(command.firewall_bulk().rules()));
  if (!changes.ok()) return ErrorResult(changes.status());
  Value data;
  auto& fields = *data.mutable_struct_value()->mutable_fields();
  fields["ids"] = StringList(changes->ids());
  fields["added"] = StringList(changes->added());
  return Ok(200, std::move(data));
}

v1::CommandResult CommandRouter::Reconcile(const v1::Command& command) {
  auto changes = firewall_.Reconcile(Rules(command.firewall_reconcile().rules()));
  if (!changes.ok()) return ErrorResult(changes.status());
  Value data;
  auto& fields = *data.mutable_struct_value()->mutable_fields();
  fields["added"] = StringList(changes->added());
  fields["removed"] = StringList(changes->removed());
  return Ok(200, std::move(data));
}

}  // namespace coolify::front
