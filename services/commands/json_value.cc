#include "services/commands/json_value.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/strutil.h"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"

namespace coolify::commands {
namespace {

namespace json = boost::json;

// False for a number too large for a double (Boost.JSON reads 1e400 as infinity), which
// JSON text cannot hold again.
bool Convert(const json::value& in, google::protobuf::Value* out) {
  switch (in.kind()) {
    case json::kind::null:
      out->set_null_value(google::protobuf::NULL_VALUE);
      return true;
    case json::kind::bool_:
      out->set_bool_value(in.get_bool());
      return true;
    case json::kind::int64:
      out->set_number_value(static_cast<double>(in.get_int64()));
      return true;
    case json::kind::uint64:
      out->set_number_value(static_cast<double>(in.get_uint64()));
      return true;
    case json::kind::double_:
      out->set_number_value(in.get_double());
      return std::isfinite(in.get_double());
    case json::kind::string:
      out->set_string_value(std::string(in.get_string()));
      return true;
    case json::kind::array: {
      google::protobuf::ListValue* list = out->mutable_list_value();
      for (const json::value& element : in.get_array()) {
        if (!Convert(element, list->add_values())) return false;
      }
      return true;
    }
    case json::kind::object: {
      auto* fields = out->mutable_struct_value()->mutable_fields();
      for (const json::key_value_pair& member : in.get_object()) {
        if (!Convert(member.value(), &(*fields)[std::string(member.key())])) return false;
      }
      return true;
    }
  }
  return false;
}

// The code points protobuf's JSON printer writes as \\u escapes besides the C0 and C1
// controls: format and separator characters that could hide or reorder text.
bool EscapedCodePoint(uint32_t cp) {
  return cp < 0x20 || cp == '<' || cp == '>' || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad ||
         (cp >= 0x600 && cp <= 0x603) || cp == 0x6dd || cp == 0x70f || cp == 0x17b4 || cp == 0x17b5 ||
         (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
         (cp >= 0x206a && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
         (cp >= 0x1d173 && cp <= 0x1d17a) || cp == 0xe0001 || (cp >= 0xe0020 && cp <= 0xe007f);
}

void AppendEscape(uint32_t unit, std::string& out) {
  absl::StrAppend(&out, "\\u", absl::Hex(unit, absl::kZeroPad4));
}

// `text` is UTF-8 (Value strings are, and ParseJsonValue checks it).
void AppendString(const std::string& text, std::string& out) {
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      default: break;
    }
    const size_t length = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (i + length > text.size()) {  // not UTF-8: passed on as it is
      out.append(text, i, std::string::npos);
      break;
    }
    uint32_t cp = length == 1 ? c : length == 2 ? c & 0x1f : length == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < length; ++k) cp = cp << 6 | (static_cast<unsigned char>(text[i + k]) & 0x3f);
    if (EscapedCodePoint(cp)) {
      if (cp >= 0x10000) {
        AppendEscape(0xd800 + ((cp - 0x10000) >> 10), out);
        AppendEscape(0xdc00 + ((cp - 0x10000) & 0x3ff), out);
      } else {
        AppendEscape(cp, out);
      }
    } else {
      out.append(text, i, length);
    }
    i += length;
  }
  out.push_back('"');
}

absl::Status Append(const google::protobuf::Value& value, std::string& out) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      out += "null";
      return absl::OkStatus();
    case google::protobuf::Value::kBoolValue:
      out += value.bool_value() ? "true" : "false";
      return absl::OkStatus();
    case google::protobuf::Value::kNumberValue: {
      const double number = value.number_value();
      if (!std::isfinite(number)) return absl::InvalidArgumentError("a number JSON cannot hold");
      out += google::protobuf::SimpleDtoa(number);
      return absl::OkStatus();
    }
    case google::protobuf::Value::kStringValue:
      AppendString(value.string_value(), out);
      return absl::OkStatus();
    case google::protobuf::Value::kListValue: {
      out.push_back('[');
      bool first = true;
      for (const google::protobuf::Value& element : value.list_value().values()) {
        if (!first) out.push_back(',');
        first = false;
        if (absl::Status s = Append(element, out); !s.ok()) return s;
      }
      out.push_back(']');
      return absl::OkStatus();
    }
    case google::protobuf::Value::kStructValue: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, member] : value.struct_value().fields()) {
        if (!first) out.push_back(',');
        first = false;
        AppendString(key, out);
        out.push_back(':');
        if (absl::Status s = Append(member, out); !s.ok()) return s;
      }
      out.push_back('}');
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> JsonValueText(const google::protobuf::Value& value) {
  std::string out;
  if (absl::Status s = Append(value, out); !s.ok()) return s;
  return out;
}

absl::StatusOr<google::protobuf::Value> ParseJsonValue(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxJsonValueDepth;
  boost::system::error_code ec;
  json::value parsed = json::parse(json::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("not JSON: ", ec.message()));
  google::protobuf::Value value;
  if (!Convert(parsed, &value)) return absl::InvalidArgumentError("not JSON: a number out of range");
  return value;
}

}  // namespace coolify::commands
