#include "policy/pretty_json.h"

namespace coolify::policy {
namespace {

namespace json = boost::json;

void Write(const json::value& value, int indent, std::string* out) {
  const std::string inner(static_cast<size_t>(indent + 2), ' ');
  const std::string outer(static_cast<size_t>(indent), ' ');
  if (const json::object* object = value.if_object(); object != nullptr && !object->empty()) {
    out->append("{\n");
    bool first = true;
    for (const json::key_value_pair& member : *object) {
      if (!first) out->append(",\n");
      first = false;
      out->append(inner);
      out->append(json::serialize(member.key()));
      out->append(": ");
      Write(member.value(), indent + 2, out);
    }
    out->append("\n").append(outer).append("}");
  } else if (const json::array* array = value.if_array(); array != nullptr && !array->empty()) {
    out->append("[\n");
    bool first = true;
    for (const json::value& element : *array) {
      if (!first) out->append(",\n");
      first = false;
      out->append(inner);
      Write(element, indent + 2, out);
    }
    out->append("\n").append(outer).append("]");
  } else {
    out->append(json::serialize(value));
  }
}

}  // namespace

std::string PrettyJson(const json::value& value) {
  std::string out;
  Write(value, 0, &out);
  out.push_back('\n');
  return out;
}

}  // namespace coolify::policy
