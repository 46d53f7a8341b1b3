// Request bodies: a command's protobuf message in protobuf's JSON mapping, strictly. The
// one reader of a command's JSON at both edges (the REST API, the broker's socket).
#ifndef COOLD_SERVICES_COMMANDS_JSON_BODY_H_
#define COOLD_SERVICES_COMMANDS_JSON_BODY_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace coolify::commands {

// The largest body: a firewall bulk of the REST API's most rules.
inline constexpr size_t kMaxJsonBodyBytes = 16 << 20;

// Parses a JSON body into `message`, refusing unknown fields and naming the culprit
// ("NAME: unknown field", carrying NAME as its field: services/http/status.h); any other
// defect is "body: <what protobuf says>", carrying "body".
absl::Status ParseJsonBody(const std::string& body, google::protobuf::Message* message);

}  // namespace coolify::commands

#endif  // COOLD_SERVICES_COMMANDS_JSON_BODY_H_
