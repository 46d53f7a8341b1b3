#include "policy/api_json.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "boost/json/basic_parser_impl.hpp"
#include "google/protobuf/util/json_util.h"
#include "policy/shown_value.h"

namespace coolify::policy {
namespace {

namespace json = boost::json;
using boost::system::error_code;

// A key as the duplicate check compares it: ASCII lower case without "_", so a field's
// .proto spelling and its lowerCamelCase spelling compare equal. No two fields of the
// request messages collide under this folding.
std::string FoldKey(std::string_view key) {
  std::string folded;
  folded.reserve(key.size());
  for (char c : key) {
    if (c == '_') continue;
    folded.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return folded;
}

// Event handler for Boost.JSON's push parser: tracks the keys of every open object and
// stops at the first repeated one. Values are not kept; protobuf's parser reads them.
class DuplicateKeyHandler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  const std::string& duplicate() const { return duplicate_; }
  bool too_many() const { return too_many_; }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) {
    open_.emplace_back();  // Arrays hold no keys; the empty set keeps the stack simple.
    return true;
  }
  bool on_array_end(std::size_t, error_code&) { return Close(); }
  bool on_object_begin(error_code&) {
    open_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, error_code&) { return Close(); }
  bool on_string_part(json::string_view, std::size_t, error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code& ec) {
    key_.append(s.data(), s.size());
    // Bounded before anything is kept: no message has more fields than kMaxKeysPerObject,
    // and the largest body (a firewall set at its cap) has far fewer keys in all than
    // kMaxKeys, so a body of a million keys stops here after a few, not after seconds.
    if (open_.back().size() >= kMaxKeysPerObject || ++keys_ > kMaxKeys) {
      too_many_ = true;
      ec = json::error::syntax;
      return false;
    }
    if (!open_.back().insert(FoldKey(key_)).second) {
      duplicate_ = key_;
      ec = json::error::syntax;  // Any error stops the parser; duplicate_ says why.
      return false;
    }
    key_.clear();
    return true;
  }
  bool on_number_part(json::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, error_code&) { return true; }
  bool on_double(double, json::string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

 private:
  bool Close() {
    open_.pop_back();
    return true;
  }

  std::vector<absl::flat_hash_set<std::string>> open_;
  std::string key_;
  std::string duplicate_;
  size_t keys_ = 0;
  bool too_many_ = false;
};

absl::Status CheckDuplicateKeys(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxDepth;
  json::basic_parser<DuplicateKeyHandler> parser(options);
  error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (parser.handler().too_many()) {
    return absl::InvalidArgumentError(absl::StrCat("body: more than ", kMaxKeysPerObject,
                                                   " keys in one object or ", kMaxKeys, " in all"));
  }
  if (!parser.handler().duplicate().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(parser.handler().duplicate()), ": key given more than once"));
  }
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("not JSON at byte ", used, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseStrictJson(std::string_view json, google::protobuf::Message* message,
                             size_t max_bytes) {
  message->Clear();
  if (json.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("body is ", json.size(), " bytes, at most ", max_bytes));
  }
  if (absl::Status s = CheckDuplicateKeys(json); !s.ok()) return s;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message, options);
  if (!status.ok()) {
    // Protobuf's text names the field ("bogus: Cannot find field.") but may quote the
    // received bytes; it is shown escaped like every received value.
    return absl::InvalidArgumentError(
        ShownValue(std::string_view(status.message().data(), status.message().size())));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ContainerSpec> ParseContainerSpecJson(std::string_view json) {
  v1::ContainerSpec spec;
  if (absl::Status s = ParseStrictJson(json, &spec); !s.ok()) return s;
  return spec;
}

json::object VerdictToJson(const Verdict& verdict) {
  json::object out;
  out.emplace("allowed", verdict.allowed());
  json::array violations;
  for (const Violation& v : verdict.violations) {
    json::object o;
    o.emplace("field", v.field);
    o.emplace("value", v.value);
    o.emplace("rule", v.rule);
    o.emplace("reason", v.reason);
    violations.emplace_back(std::move(o));
  }
  out.emplace("violations", std::move(violations));
  return out;
}

}  // namespace coolify::policy
