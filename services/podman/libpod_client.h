// A blocking HTTP/1.1 client for Podman's libpod API over its Unix socket.
//
// A GET answered in full may leave its connection open for the next GET; every other
// call has a connection of its own ("Connection: close"). A kept connection is used again
// only when nothing on it can be mistaken for the next answer:
//   - the response was HTTP/1.1 without "Connection: close", its end known from its head
//     (Content-Length, chunked coding, or no body; never a body that runs to the end of
//     the stream), and read without error to that end with no byte after it (an error
//     status such as 404 is an answer like any other);
//   - at its next use, it has been idle less than ClientOptions::keep_idle and polls
//     neither readable nor hung up (Podman sends nothing unasked, so anything there is
//     either its close or bytes that belong to no request).
// A GET sent on a kept connection that fails before any byte of an answer arrives (Podman
// restarted, or closed the connection at its idle timeout as the request went out) is
// sent again, once, on a new connection: a GET changes nothing, so the resend is safe.
// Writes, streams (logs, events, exec and attach, which end by closing the connection)
// and uploads never use or leave a kept connection.
//
// Everything read from the socket is untrusted and goes through the pure parsers of
// libpod_http_parse.h with caps. Status mapping, so a caller can answer 502/503:
//   socket missing, refused, or closed before a response head  -> Unavailable
//   no progress within io_timeout                              -> DeadlineExceeded
//   a response that does not parse or crosses a cap           -> Internal / ResourceExhausted
//   cancel_fd became readable during a stream                 -> Cancelled
// HTTP error statuses are returned as responses; StatusFromResponse maps them.
#ifndef COOLD_SERVICES_PODMAN_LIBPOD_CLIENT_H_
#define COOLD_SERVICES_PODMAN_LIBPOD_CLIENT_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/podman/libpod_http_parse.h"

namespace coolify::podman {

struct ClientOptions {
  std::string socket_path = "/run/podman/podman.sock";
  // The longest wait for connect, for each write, and for each read of a buffered call.
  absl::Duration io_timeout = absl::Seconds(60);
  size_t max_body_bytes = 32 << 20;  // buffered calls only; streams are never buffered
  HeadLimits head_limits;
  // Whether a GET answered in full keeps its connection for the next GET (above).
  bool keep_alive = true;
  // The longest a kept connection waits unused; older, it is closed and a new one opened.
  // Below Podman's own idle timeout, so that Podman rarely closes one first.
  absl::Duration keep_idle = absl::Seconds(2);
};

struct HttpResult {
  unsigned status = 0;
  std::string content_type;
  std::string body;  // de-chunked
};

enum class Method { kGet, kPost, kDelete };

// The bytes of one request; `keep_alive` leaves out "Connection: close". `target` must
// be what BuildTarget made: it starts with '/' and holds only visible ASCII (no blank,
// CR, LF), which is checked again here so that no path can carry a header. A body is always sent as application/json, which Podman
// requires (a POST without it is parsed as a form and its body is lost).
//
// `registry_auth`, when not empty, is sent as X-Registry-Auth; it must be base64url text
// (RegistryAuthHeader makes it), so it cannot carry a header of its own either.
absl::StatusOr<std::string> SerializeRequest(Method method, std::string_view target,
                                             std::string_view json_body,
                                             std::string_view registry_auth = {},
                                             bool keep_alive = false);

// OK for 1xx-3xx; otherwise the absl status for Podman's error, carrying its "message":
// 400 InvalidArgument, 401/403 PermissionDenied, 404 NotFound, 409 AlreadyExists when
// the cause says something already exists or is in use, else FailedPrecondition; 500
// the same two refinements (Podman reports "volume already exists" and "name already in
// use" as 500, and "container state improper" too), else Internal; 503 Unavailable.
absl::Status StatusFromResponse(unsigned status, std::string_view body);

class PodmanConnection;  // libpod_client.cc

class LibpodClient {
 public:
  // Copies share the kept connection; any number of threads may call at once (one of
  // them gets the kept connection, the others open their own).
  explicit LibpodClient(ClientOptions options);
  ~LibpodClient();
  LibpodClient(const LibpodClient&);
  LibpodClient& operator=(const LibpodClient&) = delete;

  const ClientOptions& options() const { return options_; }

  // Sends one request and reads the whole response, body capped at max_body_bytes. Only
  // here may a GET use or keep a connection (above).
  absl::StatusOr<HttpResult> Call(Method method, std::string_view target,
                                  std::string_view json_body = {}) const;

  // Receives body bytes as they arrive; returning a non-OK status stops the stream and
  // becomes Stream's result.
  using Sink = std::function<absl::Status(std::string_view bytes)>;

  struct StreamOptions {
    // When >= 0, the stream stops with Cancelled as soon as this descriptor is readable
    // (an eventfd or pipe the caller signals when its own client goes away).
    int cancel_fd = -1;
    // The longest silence tolerated between two pieces of body.
    absl::Duration idle_timeout = absl::InfiniteDuration();
    // X-Registry-Auth for a pull (see SerializeRequest).
    std::string registry_auth;
  };

  // Sends one request and streams the body to `sink` piece by piece, de-chunked, without
  // ever holding more than one read's worth. A success status (< 400) is streamed and
  // returned when the body ends; an error status is read whole (capped) and returned
  // mapped by StatusFromResponse, and `sink` is not called.
  absl::StatusOr<unsigned> Stream(Method method, std::string_view target,
                                  std::string_view json_body, const Sink& sink,
                                  const StreamOptions& stream_options) const;

  // The next piece of an upload's body (empty: none is left), or the error that stops it.
  using Source = std::function<absl::StatusOr<std::string_view>()>;

  // POSTs a body of exactly `length` bytes of `content_type` (a fixed type such as
  // "application/x-tar"), pulled from `next` piece by piece, and reads the whole response
  // (capped at max_body_bytes). When `next` fails, the connection is closed before the
  // body is complete, so Podman never receives its end, and that error is returned.
  absl::StatusOr<HttpResult> Upload(std::string_view target, std::string_view content_type,
                                    uint64_t length, const Source& next) const;

 private:
  struct Kept;
  // The kept connection when `reuse` and it may be used (*reused set), else a new one.
  absl::StatusOr<std::unique_ptr<PodmanConnection>> Connect(bool reuse, bool* reused) const;
  void Keep(std::unique_ptr<PodmanConnection> connection) const;

  ClientOptions options_;
  std::shared_ptr<Kept> kept_;  // null when options_.keep_alive is false
};

}  // namespace coolify::podman

#endif  // COOLD_SERVICES_PODMAN_LIBPOD_CLIENT_H_
