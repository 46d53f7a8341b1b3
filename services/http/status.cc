#include "services/http/status.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace coolify::http {
namespace {

absl::string_view View(std::string_view text) { return absl::string_view(text.data(), text.size()); }

// Payload type URLs: private to this file, so only these functions set or read them.
constexpr char kHttpStatusUrl[] = "coolify.http/status";
constexpr char kFieldUrl[] = "coolify.http/field";

}  // namespace

unsigned HttpStatusOf(const absl::Status& status) {
  if (auto marked = status.GetPayload(kHttpStatusUrl)) {
    unsigned code = 0;
    if (absl::SimpleAtoi(std::string(*marked), &code) && code >= 100 && code <= 599) return code;
  }
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 413;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

absl::Status WithHttpStatus(absl::Status status, unsigned http_status) {
  status.SetPayload(kHttpStatusUrl, absl::Cord(absl::StrCat(http_status)));
  return status;
}

absl::Status WithField(absl::Status status, std::string_view field) {
  status.SetPayload(kFieldUrl, absl::Cord(View(field)));
  return status;
}

absl::Status InvalidField(std::string_view field, std::string_view what) {
  return WithField(absl::InvalidArgumentError(absl::StrCat(View(field), ": ", View(what))), field);
}

std::string FieldOf(const absl::Status& status) {
  if (auto field = status.GetPayload(kFieldUrl)) return std::string(*field);
  return "";
}

absl::Status UpstreamFailure(std::string_view upstream, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return status;
    case absl::StatusCode::kUnavailable:
      return absl::UnavailableError(absl::StrCat(View(upstream), " unavailable: ", status.message()));
    default:
      return WithHttpStatus(absl::Status(status.code(), absl::StrCat(View(upstream), ": ", status.message())), 502);
  }
}

absl::Status MethodNotAllowed(std::string_view method, std::string_view path, std::string_view allowed) {
  return WithHttpStatus(
      absl::UnimplementedError(absl::StrCat("method ", View(method), " not allowed on ", View(path), "; use ", View(allowed))), 405);
}

}  // namespace coolify::http
