// JSON text to google.protobuf.Value and back, as protobuf's JSON utilities do it
// (numbers as doubles, objects as Struct), without their type-resolver machinery: an
// order of magnitude faster on a container inspect, which every inspect through coold
// reads and writes once in the front end. One difference: Boost.JSON 1.81 reads a
// decimal number that is not an exact integer to within a few units in its last place,
// where protobuf's strtod gives the nearest double.
#ifndef COOLD_SERVICES_COMMANDS_JSON_VALUE_H_
#define COOLD_SERVICES_COMMANDS_JSON_VALUE_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"

namespace coolify::commands {

// Deeper nesting than any answer of Podman's is refused, as is text that is not JSON
// (or not UTF-8) and a number beyond a double's range. A key given twice keeps its last value, as protobuf's parser does.
inline constexpr int kMaxJsonValueDepth = 64;
absl::StatusOr<google::protobuf::Value> ParseJsonValue(std::string_view text);

// `value` as JSON text, byte for byte what protobuf's MessageToJsonString prints for it
// (members in the map's order, numbers as its shortest round-trip form, its escapes), or
// an error for a number JSON cannot hold (NaN, infinity).
absl::StatusOr<std::string> JsonValueText(const google::protobuf::Value& value);

// JsonValueText of ParseJsonValue's Value for `text`, without building the Value: the
// same refusals and the same bytes for every string and number, with an object's
// members in the order `text` gives them (a key given twice once, where it first
// appears, with its last value) rather than in a map's order. For an answer relayed as
// it came: on a container inspect, a fifth of the time of reading into a Value and
// printing that.
absl::StatusOr<std::string> ReprintJson(std::string_view text);

}  // namespace coolify::commands

#endif  // COOLD_SERVICES_COMMANDS_JSON_VALUE_H_
