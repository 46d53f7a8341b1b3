// The strict reading of a request's framing (RFC 9112), applied before a request is
// dispatched. A server and a proxy in front of it that disagree on where a request ends
// give an attacker a request the server never saw framed (request smuggling), so
// anything a lenient parser would repair or guess is refused with 400 and the
// connection closed, and nothing after a refused request is ever read:
//
// - every line ends with CRLF: a bare LF or a lone CR is refused (a lenient reader and a
//   strict one disagree on where such a line ends);
// - obsolete line folding (a field line that starts with a space or tab) is refused;
// - an HTTP/1.1 request carries exactly one Host field;
// - a body is framed by one Content-Length of decimal digits only (`78, 78`, signs and
//   spaces are refused); Transfer-Encoding is refused on every request, whatever its
//   value: no client of these servers sends chunked requests (central, Guzzle, coolctl
//   and the Go CLI all send Content-Length), and refusing it removes every disagreement
//   about codings, chunk extensions and chunk-line endings at once.
#ifndef COOLD_SERVICES_HTTP_REQUEST_FRAMING_H_
#define COOLD_SERVICES_HTTP_REQUEST_FRAMING_H_

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "boost/beast/http/message.hpp"

namespace coolify::http {

// Where the header block at the start of `bytes` ends: the offset just past its empty
// line, 0 while it is incomplete. A bare LF or a lone CR anywhere in what has arrived
// is an error at once, so a client cannot hold a connection with lines that never end.
absl::StatusOr<size_t> FindHeaderEnd(std::string_view bytes);

// The raw header block (request line, fields, empty line), as it arrived.
absl::Status CheckHeaderBlock(std::string_view block);

// The parsed header: Host, Content-Length and Transfer-Encoding as above.
absl::Status CheckFraming(const boost::beast::http::request_header<>& header);

}  // namespace coolify::http

#endif  // COOLD_SERVICES_HTTP_REQUEST_FRAMING_H_
