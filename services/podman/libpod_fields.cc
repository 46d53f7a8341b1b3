#include "services/podman/libpod_fields.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/json/basic_parser_impl.hpp"

namespace coolify::podman {
namespace {

namespace json = boost::json;

JsonScalar Of(JsonScalar::Kind kind) {
  JsonScalar v;
  v.kind = kind;
  return v;
}

// Receives Boost.JSON's parse events and keeps only what a wanted path names.
class FieldHandler {
 public:
  static constexpr size_t max_array_size = static_cast<size_t>(-1);
  static constexpr size_t max_object_size = static_cast<size_t>(-1);
  static constexpr size_t max_string_size = static_cast<size_t>(-1);
  static constexpr size_t max_key_size = static_cast<size_t>(-1);

  FieldHandler(const std::vector<FieldPath>* paths, size_t max_value_bytes)
      : paths_(paths), max_value_bytes_(max_value_bytes), found_(paths->size()) {}

  std::vector<std::vector<JsonScalar>> TakeFound() { return std::move(found_); }
  const std::string& problem() const { return problem_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_array_begin(json::error_code& ec) { return Open(/*array=*/true, ec); }
  bool on_array_end(size_t, json::error_code&) { return Close(); }
  bool on_object_begin(json::error_code& ec) { return Open(/*array=*/false, ec); }
  bool on_object_end(size_t, json::error_code&) { return Close(); }

  bool on_string_part(json::string_view s, size_t, json::error_code& ec) { return StringPart(s, ec); }
  bool on_string(json::string_view s, size_t, json::error_code& ec) {
    if (!StringPart(s, ec)) return false;
    if (target_ >= 0) {
      JsonScalar v;
      v.kind = JsonScalar::Kind::kString;
      v.text = std::move(text_);
      Record(std::move(v));
    }
    text_.clear();
    string_started_ = false;
    return true;
  }

  bool on_key_part(json::string_view s, size_t, json::error_code&) {
    KeyPart(s);
    return true;
  }
  bool on_key(json::string_view s, size_t, json::error_code&) {
    KeyPart(s);
    key_done_ = true;
    return true;
  }

  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t i, json::string_view, json::error_code&) {
    JsonScalar v;
    v.kind = JsonScalar::Kind::kInt;
    v.integer = i;
    return Scalar(std::move(v));
  }
  bool on_uint64(uint64_t, json::string_view, json::error_code&) { return Scalar(Of(JsonScalar::Kind::kOther)); }
  bool on_double(double, json::string_view, json::error_code&) { return Scalar(Of(JsonScalar::Kind::kOther)); }
  bool on_bool(bool b, json::error_code&) {
    JsonScalar v;
    v.kind = JsonScalar::Kind::kBool;
    v.boolean = b;
    return Scalar(std::move(v));
  }
  bool on_null(json::error_code&) { return Scalar(Of(JsonScalar::Kind::kNull)); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  // One open object or array, and in an object the key whose value comes next.
  struct Level {
    bool array = false;
    std::string key;
    bool key_too_long = false;
  };

  void KeyPart(json::string_view s) {
    Level& top = levels_.back();
    if (key_done_) {  // the first part of a new key
      top.key.clear();
      top.key_too_long = false;
      key_done_ = false;
    }
    if (top.key_too_long) return;
    if (top.key.size() + s.size() > kMaxKeyBytes) {
      top.key_too_long = true;
      top.key.clear();
      return;
    }
    top.key.append(s.data(), s.size());
  }

  // The index of the wanted path the next value sits at, or -1.
  int Target() const {
    for (size_t p = 0; p < paths_->size(); ++p) {
      const FieldPath& path = (*paths_)[p];
      if (path.size() != levels_.size()) continue;
      bool match = true;
      for (size_t i = 0; i < path.size() && match; ++i) {
        const Level& level = levels_[i];
        if (level.array) {
          match = path[i] == kAnyElement;
        } else {
          match = !level.key_too_long && path[i] == level.key;
        }
      }
      if (match) return static_cast<int>(p);
    }
    return -1;
  }

  bool Open(bool array, json::error_code& ec) {
    // A container at a wanted path is recorded as kOther.
    if (const int t = Target(); t >= 0) found_[t].push_back(Of(JsonScalar::Kind::kOther));
    if (levels_.size() >= kMaxDepth) {
      problem_ = absl::StrCat("nested deeper than ", kMaxDepth);
      ec = json::error::too_deep;
      return false;
    }
    levels_.push_back(Level{array, {}, false});
    key_done_ = true;
    return true;
  }

  bool Close() {
    levels_.pop_back();
    key_done_ = true;
    return true;
  }

  bool StringPart(json::string_view s, json::error_code& ec) {
    if (!string_started_) {
      string_started_ = true;
      target_ = Target();
    }
    if (target_ < 0) return true;
    if (text_.size() + s.size() > max_value_bytes_) {
      problem_ = absl::StrCat("a wanted value is longer than ", max_value_bytes_, " bytes");
      ec = json::error::string_too_large;
      return false;
    }
    text_.append(s.data(), s.size());
    return true;
  }

  bool Scalar(JsonScalar v) {
    target_ = Target();
    if (target_ >= 0) Record(std::move(v));
    return true;
  }

  void Record(JsonScalar v) {
    found_[target_].push_back(std::move(v));
    target_ = -1;
  }

  const std::vector<FieldPath>* paths_;
  size_t max_value_bytes_;
  std::vector<std::vector<JsonScalar>> found_;
  std::vector<Level> levels_;
  bool key_done_ = true;
  bool string_started_ = false;
  int target_ = -1;
  std::string text_;
  std::string problem_;
};

}  // namespace

absl::StatusOr<std::vector<std::vector<JsonScalar>>> ExtractFields(std::string_view json_text,
                                                                   const std::vector<FieldPath>& paths,
                                                                   size_t max_value_bytes) {
  json::parse_options options;
  options.max_depth = kMaxDepth + 1;  // the handler's own limit speaks first
  json::basic_parser<FieldHandler> parser(options, &paths, max_value_bytes);
  json::error_code ec;
  const size_t used = parser.write_some(false, json_text.data(), json_text.size(), ec);
  if (ec) {
    const std::string& problem = parser.handler().problem();
    return absl::InvalidArgumentError(
        absl::StrCat("podman sent JSON that is not acceptable: ", problem.empty() ? ec.message() : problem));
  }
  if (used != json_text.size()) return absl::InvalidArgumentError("podman sent bytes after its JSON value");
  return parser.handler().TakeFound();
}

absl::StatusOr<std::string> OneString(const std::vector<JsonScalar>& found, std::string_view what) {
  if (found.empty()) return absl::NotFoundError(absl::StrCat(std::string(what), " is missing"));
  if (found.size() > 1) return absl::InvalidArgumentError(absl::StrCat(std::string(what), " appears more than once"));
  if (found[0].kind != JsonScalar::Kind::kString) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(what), " is not a string"));
  }
  return found[0].text;
}

}  // namespace coolify::podman
