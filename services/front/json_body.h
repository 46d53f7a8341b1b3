// Request bodies: a command's protobuf message in protobuf's JSON mapping, strictly.
#ifndef COOLD_SERVICES_FRONT_JSON_BODY_H_
#define COOLD_SERVICES_FRONT_JSON_BODY_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace coolify::front {

// Parses a JSON body into `message`, refusing unknown fields and naming the culprit
// ("NAME: unknown field"); any other defect is "body: <what protobuf says>".
// The largest body: a firewall bulk of the REST API's most rules.
inline constexpr size_t kMaxJsonBodyBytes = 16 << 20;

absl::Status ParseJsonBody(const std::string& body, google::protobuf::Message* message);

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_JSON_BODY_H_
