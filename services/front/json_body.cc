#include "services/front/json_body.h"

#include "absl/strings/str_cat.h"
#include "policy/api_json.h"

namespace coolify::front {

absl::Status ParseJsonBody(const std::string& body, google::protobuf::Message* message) {
  if (body.empty()) return absl::InvalidArgumentError("body: empty; expected a JSON object");
  // The one strict parser: unknown fields and keys given twice are refused, as the audit
  // tool and the gatekeeper refuse them, so every reader of a body agrees on what it says.
  absl::Status status = policy::ParseStrictJson(body, message, kMaxJsonBodyBytes);
  if (status.ok()) return status;
  std::string text(status.message().data(), status.message().size());
  // protobuf 3.21 says "NAME: Cannot find field."; name the field in our form.
  constexpr char kUnknown[] = ": Cannot find field.";
  if (size_t at = text.find(kUnknown); at != std::string::npos) {
    std::string field = text.substr(0, at);
    if (size_t space = field.rfind(' '); space != std::string::npos) field = field.substr(space + 1);
    return absl::InvalidArgumentError(absl::StrCat(field, ": unknown field"));
  }
  return absl::InvalidArgumentError(absl::StrCat("body: ", text));
}

}  // namespace coolify::front
