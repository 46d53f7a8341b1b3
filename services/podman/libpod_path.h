// Request targets for Podman's libpod API. Every value that lands in a path segment or a
// query parameter (container, image, volume, network and exec ids or names, image refs)
// is checked against the grammar of its kind and then percent-encoded, so no caller
// string can add a segment, a parameter, a header or a second request.
#ifndef COOLD_SERVICES_PODMAN_LIBPOD_PATH_H_
#define COOLD_SERVICES_PODMAN_LIBPOD_PATH_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace coolify::podman {

// The API version prefix every target starts with.
inline constexpr std::string_view kLibpodPrefix = "/v4.0.0/libpod";

enum class SegmentKind {
  kLiteral,    // fixed text chosen by this library ("containers", "json"); [a-z_]+ only
  kName,       // container, volume or network name or id: [A-Za-z0-9][A-Za-z0-9_.-]*,
               // at most 128 characters (Podman's own name rule; ids are 64 hex)
  kExecId,     // exactly 64 lower-case hex digits
  kImageRef,   // an image reference or id: [A-Za-z0-9][A-Za-z0-9._/:@+-]*, at most 512
               // characters, no "//", "..", leading or trailing '/'
  kQueryText,  // free text for a query value (never a path segment): printable ASCII,
               // at most 1024 characters
};

// OK when `value` fits the grammar of `kind`; InvalidArgument naming the problem.
absl::Status ValidateSegment(SegmentKind kind, std::string_view value);

// RFC 3986 percent-encoding: everything but ALPHA / DIGIT / "-" / "." / "_" / "~".
std::string PercentEncode(std::string_view value);

struct PathPart {
  SegmentKind kind;
  std::string_view value;
};

struct QueryParam {
  std::string_view key;  // fixed by this library: [a-z_]+
  SegmentKind kind;      // grammar the value must satisfy
  std::string value;
};

// kLibpodPrefix + "/" + the parts joined by "/" (+ "?" + the parameters), each validated
// and encoded. kQueryText is refused as a path part.
absl::StatusOr<std::string> BuildTarget(std::initializer_list<PathPart> parts,
                                        const std::vector<QueryParam>& query = {});

}  // namespace coolify::podman

#endif  // COOLD_SERVICES_PODMAN_LIBPOD_PATH_H_
