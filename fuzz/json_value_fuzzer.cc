// The front end's reading of the gatekeeper's answers (Podman's JSON, which carries
// container- and image-controlled strings) and its printing of a result
// (services/commands/json_value.h). No input may crash; what reads prints, and what
// prints reads back as the same value (numbers to within a few units in the last place).
// ReprintJson, the REST API's one pass, refuses exactly what ParseJsonValue refuses and
// prints what reads back as ParseJsonValue's value.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz/protobuf_logs.h"
#include "services/commands/json_value.h"

namespace {

// Equal values, numbers to within a relative 1e-14: Boost.JSON 1.81 reads a decimal
// number to within a few units in the last place, not always to the nearest double.
bool Same(const google::protobuf::Value& a, const google::protobuf::Value& b) {
  if (a.kind_case() != b.kind_case()) return false;
  switch (a.kind_case()) {
    case google::protobuf::Value::kNumberValue: {
      const double x = a.number_value(), y = b.number_value();
      return x == y || std::fabs(x - y) <= 1e-14 * std::max(std::fabs(x), std::fabs(y));
    }
    case google::protobuf::Value::kStringValue:
      return a.string_value() == b.string_value();
    case google::protobuf::Value::kBoolValue:
      return a.bool_value() == b.bool_value();
    case google::protobuf::Value::kListValue: {
      const auto& x = a.list_value().values();
      const auto& y = b.list_value().values();
      if (x.size() != y.size()) return false;
      for (int i = 0; i < x.size(); ++i) {
        if (!Same(x[i], y[i])) return false;
      }
      return true;
    }
    case google::protobuf::Value::kStructValue: {
      const auto& x = a.struct_value().fields();
      const auto& y = b.struct_value().fields();
      if (x.size() != y.size()) return false;
      for (const auto& [key, member] : x) {
        auto other = y.find(key);
        if (other == y.end() || !Same(member, other->second)) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  coolify::fuzz::KeepOnlyFatalProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<google::protobuf::Value> value = coolify::commands::ParseJsonValue(text);
  absl::StatusOr<std::string> reprinted = coolify::commands::ReprintJson(text);
  if (value.ok() != reprinted.ok()) abort();
  if (!value.ok()) return 0;
  absl::StatusOr<google::protobuf::Value> reread = coolify::commands::ParseJsonValue(*reprinted);
  if (!reread.ok() || !Same(*value, *reread)) abort();
  absl::StatusOr<std::string> printed = coolify::commands::JsonValueText(*value);
  if (!printed.ok()) abort();  // JSON text holds no NaN or infinity
  absl::StatusOr<google::protobuf::Value> again = coolify::commands::ParseJsonValue(*printed);
  if (!again.ok()) abort();
  if (!Same(*value, *again)) abort();
  return 0;
}
