#include "services/commands/json_body.h"

#include "policy/api_json.h"
#include "services/http/status.h"

namespace coolify::commands {

absl::Status ParseJsonBody(const std::string& body, google::protobuf::Message* message) {
  if (body.empty()) return http::InvalidField("body", "empty; expected a JSON object");
  // The one strict parser: unknown fields and keys given twice are refused, as the audit
  // tool and the gatekeeper refuse them, so every reader of a body agrees on what it says.
  absl::Status status = policy::ParseStrictJson(body, message, kMaxJsonBodyBytes);
  if (status.ok()) return status;
  std::string text(status.message().data(), status.message().size());
  // protobuf 3.21 says "NAME: Cannot find field." and has no other way to name it.
  constexpr char kUnknown[] = ": Cannot find field.";
  if (size_t at = text.find(kUnknown); at != std::string::npos) {
    std::string field = text.substr(0, at);
    if (size_t space = field.rfind(' '); space != std::string::npos) field = field.substr(space + 1);
    return http::InvalidField(field, "unknown field");
  }
  return http::InvalidField("body", text);
}

}  // namespace coolify::commands
