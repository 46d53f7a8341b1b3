// The broker's JSON contract with Laravel, in one place: the dispatch envelopes of the
// Unix-socket lane to typed protobuf (v1::Command, v1::BuildRequest) and CommandResults
// back to the envelopes Laravel reads. The contract is the one Coolify's central already
// speaks: {"host_id", "request_id", "command": {"type": "<dotted verb>", ...fields}} in,
// {"request_id", "status": "ok", "data"} or {"request_id", "status": "error", "code",
// "message"} out.
//
// Parsing is strict: unknown fields, keys given twice and unknown types are refused with
// InvalidArgument naming them. A verb's fields are its protobuf message in protobuf's
// JSON mapping (the REST API's bodies), through the project's one strict JSON parser;
// the few field names central spells differently ("reference" for "ref", "command" for
// "cmd", flat container fields) are renamed by an explicit table before that parse.
#ifndef COOLD_SERVICES_COMMANDS_DISPATCH_CODEC_H_
#define COOLD_SERVICES_COMMANDS_DISPATCH_CODEC_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/agent.pb.h"
#include "proto/commands.pb.h"

namespace coolify::commands {

// The largest dispatch body: a firewall bulk or reconcile of many rules.
inline constexpr size_t kMaxDispatchBytes = 4 << 20;

// [A-Za-z0-9][A-Za-z0-9_.-]{0,127}: safe in a path, a log line and a unit name.
absl::Status ValidateRequestId(std::string_view request_id);
// [A-Za-z0-9][A-Za-z0-9_.:-]{0,252} (a hostname or an address).
absl::Status ValidateHostId(std::string_view host_id);

struct Dispatch {
  std::string host_id;
  std::string request_id;
  std::string type;  // the verb's canonical dotted name ("images.pull")
  v1::Command command;
};

// The body's top-level "request_id" when it is a valid one, else "": what an error
// envelope echoes for a body that did not parse as a whole.
std::string RequestIdOf(std::string_view body);

// POST /v1/coold/dispatch body -> Dispatch.
absl::StatusOr<Dispatch> ParseDispatch(std::string_view body);

// The dispatch "type" -> the command it carries, from the command object (a JSON object
// without "type"). For tests and the fuzz target.
absl::StatusOr<v1::Command> CommandFromJson(std::string_view type, std::string_view fields_json);

// Every name the verb of `command` answers to ("firewall.delete" and central's
// "firewall.revoke"); the first is canonical. Empty when no verb is set.
std::vector<std::string> VerbNames(const v1::Command& command);

// The Hello capability a host must advertise to serve `command`.
v1::Capability RequiredCapability(const v1::Command& command);

struct BuildDispatch {
  std::string host_id;  // "" = any builder
  std::string request_id;
  v1::BuildRequest build;  // request_id set
};

// POST /v1/build/dispatch body -> BuildDispatch.
absl::StatusOr<BuildDispatch> ParseBuildDispatch(std::string_view body);

// An envelope as it goes out: the HTTP status and the JSON body.
struct Envelope {
  unsigned http_status = 200;
  std::string body;
};

// A coold-lane result: 200 {"request_id","status":"ok","data"} for codes below 400,
// else {"request_id","status":"error","code","message"} with the HTTP status = code.
Envelope CommandEnvelope(const std::string& request_id, const v1::CommandResult& result);

// A build result: {"request_id","status":"ok","digest","registry_ref","duration_ms"}, or
// {"request_id","status":"error","code","message","stage"} with the HTTP status = code.
Envelope BuildEnvelope(const std::string& request_id, const v1::CommandResult& result);

// {"request_id","status":"error","code","message"} with the HTTP status = code.
Envelope ErrorEnvelope(const std::string& request_id, unsigned code, std::string_view message);

// A build poll that timed out while the build runs: 408 {"request_id","status":"error",
// "code":408,"message":"result poll timed out","progress":[{"phase","line","unix_ms"}]}
// with the newest progress lines the host streamed, oldest first.
Envelope PollTimeoutEnvelope(const std::string& request_id, const std::vector<v1::BuildEvent>& progress);

// `result` of `command` as the dispatch lane answers it, where central reads another
// shape than the REST API's: firewall.list's data is the list of rules itself.
v1::CommandResult DispatchLaneResult(const v1::Command& command, v1::CommandResult result);

// The JSON text of a Value (protobuf's mapping), "null" when empty.
std::string ValueJson(const google::protobuf::Value& value);

}  // namespace coolify::commands

#endif  // COOLD_SERVICES_COMMANDS_DISPATCH_CODEC_H_
