// Request bodies: a command's protobuf message in protobuf's JSON mapping, strictly.
#ifndef COOLD_SERVICES_FRONT_JSON_BODY_H_
#define COOLD_SERVICES_FRONT_JSON_BODY_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace coolify::front {

// Parses a JSON body into `message`, refusing unknown fields and naming the culprit
// ("NAME: unknown field"); any other defect is "body: <what protobuf says>".
absl::Status ParseJsonBody(const std::string& body, google::protobuf::Message* message);

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_JSON_BODY_H_
