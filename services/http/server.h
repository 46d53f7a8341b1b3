// A small HTTP/1.1 server on Boost.Beast for coold's local REST API and the broker's
// Unix-socket lane: one listening descriptor (TCP or Unix, opened and passed by whoever
// holds the privilege), optional TLS, strict limits, keep-alive, asynchronous handlers.
//
// Limits exist because every byte here is untrusted: a body, header block or header count
// over its cap is answered 413/431 and the connection closed; a request with both
// Content-Length and Transfer-Encoding is refused (request smuggling); a client that sends
// nothing for `read_timeout` is dropped; connections beyond `max_connections` get 503.
#ifndef COOLD_SERVICES_HTTP_SERVER_H_
#define COOLD_SERVICES_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/beast/http/verb.hpp"

namespace coolify::http {

struct Request {
  boost::beast::http::verb method = boost::beast::http::verb::unknown;
  std::string method_text;
  std::string path;  // the target before '?', still percent-encoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  std::string authorization;
  std::string content_type;
  std::string body;
};

// A body produced over time (a followed log), sent with chunked transfer encoding on a
// connection that closes after it. The server asks for one piece at a time, so a client
// that reads slowly slows the source instead of filling memory.
class BodyStream {
 public:
  using Deliver = std::function<void(std::string piece, bool done)>;
  virtual ~BodyStream() = default;
  // Calls `deliver` exactly once, now or later on the server's io_context, with the next
  // piece (not empty unless done), or with done = true when the body is complete.
  virtual void Next(Deliver deliver) = 0;
  // The client went away or stopped reading: release what feeds the body. No Deliver
  // call is expected after this one.
  virtual void Cancel() = 0;
};

struct Response {
  unsigned status = 200;
  std::string body;  // JSON unless content_type says otherwise; ignored with `stream`
  std::string content_type = "application/json";
  std::shared_ptr<BodyStream> stream;
  // What the handler adds to the request log line (Limits::request_log) after the
  // server's own fields: what the request was (a verb, a request id), never its contents.
  std::vector<std::pair<std::string, std::string>> log_fields;
};

using Responder = std::function<void(Response)>;
// Called once per request; must call the responder exactly once, now or later.
using Handler = std::function<void(Request, Responder)>;

struct Limits {
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 * 1024;
  size_t max_header_count = 64;
  size_t max_connections = 256;
  absl::Duration read_timeout = absl::Seconds(10);
  // The longest a client may take to accept one piece of a streamed body.
  absl::Duration write_timeout = absl::Seconds(30);
  // Set: every answer leaves one line "event=http_request server=<this> method= path=
  // status= duration_ms=" (privsep/log.h), the path without its query and cut at 256
  // bytes, "-" for what a refused request never said. Never a header, a body or a query.
  std::string request_log;
};

struct ServerStats {
  uint64_t accepted = 0;
  uint64_t active = 0;
  uint64_t requests = 0;
  uint64_t refused_busy = 0;
  uint64_t bad_requests = 0;
};

class Server {
 public:
  // Takes ownership of `listen_fd`, a bound and listening AF_INET or AF_UNIX stream
  // socket. `tls` null means plain HTTP.
  static absl::StatusOr<std::shared_ptr<Server>> Create(boost::asio::io_context& io, int listen_fd,
                                                        std::shared_ptr<boost::asio::ssl::context> tls,
                                                        Limits limits, Handler handler);
  virtual ~Server() = default;

  // Starts accepting; the io_context runs everything.
  virtual void Start() = 0;
  virtual void Stop() = 0;
  virtual const ServerStats& stats() const = 0;
};

// {"error": message} or {"error": message, "field": field}, JSON-escaped.
Response ErrorResponse(unsigned status, std::string_view message, std::string_view field = {});

// A query parameter whose name or value does not decode (a malformed escape, a NUL, text
// that is not UTF-8) is kept under this name, which no handler knows, so the handler's
// own "unknown query parameter" check refuses the request.
inline constexpr char kUndecodableQueryParameter[] = "(undecodable)";

// Splits a request target into `out.path` (still percent-encoded) and `out.query`
// (decoded), as the server does for every request.
void SplitTarget(std::string_view target, Request& out);

// Decodes %XX escapes; fails on a malformed escape, a decoded NUL or a result that is not
// well-formed UTF-8.
absl::StatusOr<std::string> PercentDecode(std::string_view text);

// Builds a TLS 1.2+ server context from PEM text.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> MakeTlsContext(const std::string& cert_pem,
                                                                          const std::string& key_pem);

}  // namespace coolify::http

#endif  // COOLD_SERVICES_HTTP_SERVER_H_
