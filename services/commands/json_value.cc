#include "services/commands/json_value.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/strutil.h"
#include "boost/json/monotonic_resource.hpp"
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

// Bytes printed as they are, in runs: printable ASCII but '"', '\\', '<' and '>'.
bool Plain(unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>'; }

// `text` is UTF-8 (Value strings are, and ParseJsonValue checks it).
void AppendString(std::string_view text, std::string& out) {
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    size_t plain = i;
    while (plain < text.size() && Plain(static_cast<unsigned char>(text[plain]))) ++plain;
    if (plain > i) {
      out.append(text.data() + i, plain - i);
      i = plain;
      continue;
    }
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
      out.append(text.data() + i, text.size() - i);
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
      out.append(text.data() + i, length);
    }
    i += length;
  }
  out.push_back('"');
}

// A number as protobuf prints a double: its shortest round-trip form (SimpleDtoa). An
// integer below 1e15 takes printf's "%.15g", which spells it as its digits, so it is
// spelled so without printf; -0 is left to SimpleDtoa ("-0").
absl::Status AppendNumber(double number, std::string& out) {
  if (!std::isfinite(number)) return absl::InvalidArgumentError("a number JSON cannot hold");
  if (std::fabs(number) < 1e15 && number == std::trunc(number) && !(number == 0 && std::signbit(number))) {
    absl::StrAppend(&out, static_cast<int64_t>(number));
    return absl::OkStatus();
  }
  char buffer[google::protobuf::kDoubleToBufferSize];
  out += google::protobuf::DoubleToBuffer(number, buffer);
  return absl::OkStatus();
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
    case google::protobuf::Value::kNumberValue:
      return AppendNumber(value.number_value(), out);
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

// What Append prints for the Value that Convert makes of `value`, members in `value`'s
// order.
absl::Status AppendJson(const json::value& value, std::string& out) {
  switch (value.kind()) {
    case json::kind::null:
      out += "null";
      return absl::OkStatus();
    case json::kind::bool_:
      out += value.get_bool() ? "true" : "false";
      return absl::OkStatus();
    case json::kind::int64:
      return AppendNumber(static_cast<double>(value.get_int64()), out);
    case json::kind::uint64:
      return AppendNumber(static_cast<double>(value.get_uint64()), out);
    case json::kind::double_:
      return AppendNumber(value.get_double(), out);
    case json::kind::string:
      AppendString(std::string_view(value.get_string().data(), value.get_string().size()), out);
      return absl::OkStatus();
    case json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const json::value& element : value.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        if (absl::Status s = AppendJson(element, out); !s.ok()) return s;
      }
      out.push_back(']');
      return absl::OkStatus();
    }
    case json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const json::key_value_pair& member : value.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        AppendString(std::string_view(member.key().data(), member.key().size()), out);
        out.push_back(':');
        if (absl::Status s = AppendJson(member.value(), out); !s.ok()) return s;
      }
      out.push_back('}');
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

// Boost.JSON's reading of `text` with ParseJsonValue's limits, its nodes in `storage`.
absl::StatusOr<json::value> Read(std::string_view text, json::storage_ptr storage) {
  json::parse_options options;
  options.max_depth = kMaxJsonValueDepth;
  boost::system::error_code ec;
  json::value parsed = json::parse(json::string_view(text.data(), text.size()), ec, std::move(storage), options);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("not JSON: ", ec.message()));
  return parsed;
}

}  // namespace

absl::StatusOr<std::string> JsonValueText(const google::protobuf::Value& value) {
  std::string out;
  if (absl::Status s = Append(value, out); !s.ok()) return s;
  return out;
}

absl::StatusOr<google::protobuf::Value> ParseJsonValue(std::string_view text) {
  absl::StatusOr<json::value> parsed = Read(text, {});
  if (!parsed.ok()) return parsed.status();
  google::protobuf::Value value;
  if (!Convert(*parsed, &value)) return absl::InvalidArgumentError("not JSON: a number out of range");
  return value;
}

absl::StatusOr<std::string> ReprintJson(std::string_view text) {
  // The document lives only for this call: its nodes come from one arena, released
  // whole, instead of a heap allocation each.
  unsigned char first_block[16 * 1024];
  json::monotonic_resource arena(first_block, sizeof(first_block));
  absl::StatusOr<json::value> parsed = Read(text, &arena);
  if (!parsed.ok()) return parsed.status();
  std::string out;
  out.reserve(text.size() + text.size() / 8 + 16);
  if (absl::Status s = AppendJson(*parsed, out); !s.ok()) {
    return absl::InvalidArgumentError("not JSON: a number out of range");
  }
  return out;
}

}  // namespace coolify::commands
