#include "services/commands/json_value.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"

namespace coolify::commands {
namespace {

namespace json = boost::json;

void Convert(const json::value& in, google::protobuf::Value* out) {
  switch (in.kind()) {
    case json::kind::null:
      out->set_null_value(google::protobuf::NULL_VALUE);
      break;
    case json::kind::bool_:
      out->set_bool_value(in.get_bool());
      break;
    case json::kind::int64:
      out->set_number_value(static_cast<double>(in.get_int64()));
      break;
    case json::kind::uint64:
      out->set_number_value(static_cast<double>(in.get_uint64()));
      break;
    case json::kind::double_:
      out->set_number_value(in.get_double());
      break;
    case json::kind::string:
      out->set_string_value(std::string(in.get_string()));
      break;
    case json::kind::array: {
      google::protobuf::ListValue* list = out->mutable_list_value();
      for (const json::value& element : in.get_array()) Convert(element, list->add_values());
      break;
    }
    case json::kind::object: {
      auto* fields = out->mutable_struct_value()->mutable_fields();
      for (const json::key_value_pair& member : in.get_object()) {
        Convert(member.value(), &(*fields)[std::string(member.key())]);
      }
      break;
    }
  }
}

}  // namespace

absl::StatusOr<google::protobuf::Value> ParseJsonValue(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxJsonValueDepth;
  boost::system::error_code ec;
  json::value parsed = json::parse(json::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("not JSON: ", ec.message()));
  google::protobuf::Value value;
  Convert(parsed, &value);
  return value;
}

}  // namespace coolify::commands
