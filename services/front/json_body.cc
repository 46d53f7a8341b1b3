#include "services/front/json_body.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace coolify::front {

absl::Status ParseJsonBody(const std::string& body, google::protobuf::Message* message) {
  if (body.empty()) return absl::InvalidArgumentError("body: empty; expected a JSON object");
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(body, message, options);
  if (status.ok()) return absl::OkStatus();
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
