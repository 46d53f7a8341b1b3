// The one map from absl::Status to an HTTP status, and the two facts a Status may carry
// for it as payloads rather than in its text: the HTTP status a refusal must answer when
// its code alone does not say it (405 for a known path and the wrong method), and the
// request field a 400 is about. Every edge (the REST API, the broker's Unix socket, the
// command router, the gatekeeper) answers through these, so one code means one status
// everywhere.
#ifndef COOLD_SERVICES_HTTP_STATUS_H_
#define COOLD_SERVICES_HTTP_STATUS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace coolify::http {

// InvalidArgument 400, PermissionDenied 403, NotFound 404, AlreadyExists/Aborted/
// FailedPrecondition 409, ResourceExhausted 413, Unimplemented 501, Unavailable 503,
// DeadlineExceeded 504, anything else 500; a status marked WithHttpStatus answers that.
unsigned HttpStatusOf(const absl::Status& status);

// `status` answering `http_status` whatever its code.
absl::Status WithHttpStatus(absl::Status status, unsigned http_status);

// `status` naming `field` ("rules[3].src") as the request field it is about.
absl::Status WithField(absl::Status status, std::string_view field);

// InvalidArgument "FIELD: WHAT", carrying FIELD.
absl::Status InvalidField(std::string_view field, std::string_view what);

// The field `status` carries, "" for none. Never read from the message: a status that
// crosses a process boundary carries its field beside its text (privsep.Status.field,
// CommandResult.field).
std::string FieldOf(const absl::Status& status);

// A failure of the service behind coold (`upstream`: Podman) as coold answers it: its
// refusal of the request keeps the request's status (InvalidArgument, PermissionDenied,
// NotFound, AlreadyExists, FailedPrecondition); its unavailability is 503 "<upstream>
// unavailable: ..."; any other failure is its own, 502 Bad Gateway "<upstream>: ...".
absl::Status UpstreamFailure(std::string_view upstream, const absl::Status& status);

// 405: "method M not allowed on PATH; use ALLOWED".
absl::Status MethodNotAllowed(std::string_view method, std::string_view path, std::string_view allowed);

}  // namespace coolify::http

#endif  // COOLD_SERVICES_HTTP_STATUS_H_
