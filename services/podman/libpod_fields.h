// The few fixed fields the gatekeeper decides on, read out of Podman's JSON without
// building it.
//
// Podman's answers carry strings that containers and images control (labels, env,
// names, log lines): they are untrusted bytes, and coold-podman runs as uid 0. So the
// gatekeeper never turns an answer into a document: it relays the bytes for the front
// end to parse, and reads only the fields named here (an id, an exit code, coold's two
// ownership labels) with a streaming pass that keeps nothing but those fields:
//
//   - memory: the path being read (at most kMaxDepth levels, each key cut at
//     kMaxKeyBytes; a longer key matches nothing) and the wanted values, each at most
//     max_value_bytes (a longer one is an error, never cut);
//   - the grammar is RFC 8259 as Boost.JSON's basic_parser reads it (invalid UTF-8,
//     trailing bytes, comments and nesting beyond kMaxDepth are errors);
//   - time: one pass over the input.
//
// A path is a sequence of object keys from the top-level value; "[]" stands for any
// element of an array. Every value found at a path is returned, in document order, so a
// caller that needs one value can refuse two (a duplicate key).
#ifndef COOLD_SERVICES_PODMAN_LIBPOD_FIELDS_H_
#define COOLD_SERVICES_PODMAN_LIBPOD_FIELDS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace coolify::podman {

inline constexpr size_t kMaxDepth = 64;
inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr std::string_view kAnyElement = "[]";

struct JsonScalar {
  enum class Kind { kString, kBool, kInt, kNull, kOther };  // kOther: a number that is not
                                                            // an int64, an object, an array
  Kind kind = Kind::kNull;
  std::string text;  // kString
  bool boolean = false;
  int64_t integer = 0;
};

using FieldPath = std::vector<std::string_view>;

// For each of `paths`, every value found there. InvalidArgument when `json` is not one
// well-formed JSON value within the limits above.
absl::StatusOr<std::vector<std::vector<JsonScalar>>> ExtractFields(std::string_view json,
                                                                   const std::vector<FieldPath>& paths,
                                                                   size_t max_value_bytes = 4096);

// The one string at `path`: NotFound when absent, InvalidArgument when it is there more
// than once or is not a string.
absl::StatusOr<std::string> OneString(const std::vector<JsonScalar>& found, std::string_view what);

}  // namespace coolify::podman

#endif  // COOLD_SERVICES_PODMAN_LIBPOD_FIELDS_H_
