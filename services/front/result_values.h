// Building the JSON-shaped data of a v1::CommandResult (google.protobuf.Value), shared by
// every part of the front end that answers a command.
#ifndef COOLD_SERVICES_FRONT_RESULT_VALUES_H_
#define COOLD_SERVICES_FRONT_RESULT_VALUES_H_

#include <string>
#include <utility>

#include "google/protobuf/struct.pb.h"
#include "proto/commands.pb.h"

namespace coolify::front {

inline google::protobuf::Value StringValue(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}

inline google::protobuf::Value NumberValue(double n) {
  google::protobuf::Value v;
  v.set_number_value(n);
  return v;
}

inline google::protobuf::Value BoolValue(bool b) {
  google::protobuf::Value v;
  v.set_bool_value(b);
  return v;
}

inline v1::CommandResult OkResult(unsigned code, google::protobuf::Value data) {
  v1::CommandResult result;
  result.set_code(code);
  *result.mutable_data() = std::move(data);
  return result;
}

}  // namespace coolify::front

#endif  // COOLD_SERVICES_FRONT_RESULT_VALUES_H_
