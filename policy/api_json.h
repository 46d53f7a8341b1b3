// The JSON face of the deny filter: request bodies in, verdicts out.
//
// A request body is a message in protobuf's JSON mapping (a container create body is a
// ContainerSpec: {"name": ..., "image": ..., "capAdd": [...]}; field names may be
// spelled as in the .proto or in lowerCamelCase). Parsing is strict: an unknown field
// is refused naming it, and so is a key given twice, in the same or the other spelling
// ("read_only_root" and "readOnlyRoot"), which a lenient parser would settle silently
// by keeping the last one, so two readers of one body could disagree about it. Bodies
// are at most kMaxBodyBytes, nest at most kMaxDepth deep, and hold at most
// kMaxKeysPerObject keys in one object and kMaxKeys in all (refused at the first key
// beyond, before protobuf reads anything).
#ifndef COOLD_POLICY_API_JSON_H_
#define COOLD_POLICY_API_JSON_H_

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "boost/json.hpp"
#include "google/protobuf/message.h"
#include "policy/engine.h"
#include "proto/commands.pb.h"

namespace coolify::policy {

inline constexpr size_t kMaxBodyBytes = 1 << 20;
inline constexpr size_t kMaxDepth = 32;
inline constexpr size_t kMaxKeysPerObject = 64;  // ContainerSpec, the largest, has 26 fields
inline constexpr size_t kMaxKeys = 400000;       // a firewall set at its 50,000-rule cap: 300,000

// Parses `json` into `message` (cleared first) as described above. InvalidArgument
// naming the offending key or position.
// `max_bytes` lets a caller with larger bodies (a firewall bulk) raise the cap.
absl::Status ParseStrictJson(std::string_view json, google::protobuf::Message* message,
                             size_t max_bytes = kMaxBodyBytes);

// ParseStrictJson into a ContainerSpec: the body of a container create.
absl::StatusOr<v1::ContainerSpec> ParseContainerSpecJson(std::string_view json);

// {"allowed": bool, "violations": [{"field", "value", "rule", "reason"}, ...]}.
boost::json::object VerdictToJson(const Verdict& verdict);

}  // namespace coolify::policy

#endif  // COOLD_POLICY_API_JSON_H_
