// Pure parsers for the bytes Podman's API socket sends back: the HTTP/1.1 response head
// and chunked transfer coding. Nothing here does I/O, so every function can be fed
// arbitrary bytes by a fuzzer.
//
// Contract: the input is untrusted. Every function either returns a value that respects
// the caps it was given or an error status (InvalidArgument for malformed bytes,
// ResourceExhausted for a cap crossed); none reads past its input or aborts.
#ifndef COOLD_SERVICES_PODMAN_LIBPOD_HTTP_PARSE_H_
#define COOLD_SERVICES_PODMAN_LIBPOD_HTTP_PARSE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace coolify::podman {

// How the body that follows a response head is delimited.
enum class BodyFraming {
  kNone,           // 1xx, 204, 304, or a response to HEAD: no body at all
  kContentLength,  // exactly content_length bytes
  kChunked,        // Transfer-Encoding: chunked
  kUntilClose,     // neither header: the body runs to end of stream (Podman's hijacked
                   // exec/attach streams)
};

struct HttpResponseHead {
  unsigned status = 0;
  std::string reason;
  // Header names lower-cased, values with surrounding blanks trimmed, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;  // meaningful for kContentLength
  // HTTP/1.1 and no "close" in Connection: the peer keeps the connection open after the
  // body (RFC 9112, 9.3).
  bool persistent = false;

  // The first value of header `lower_name`, or empty.
  std::string_view Header(std::string_view lower_name) const;
};

struct HeadLimits {
  size_t max_head_bytes = 64 * 1024;
  size_t max_headers = 100;
};

// Offset just past the "\r\n\r\n" that ends a response head within `buf`, or 0 when
// `buf` does not hold a complete head yet.
size_t FindHeadEnd(std::string_view buf);

// Parses one complete response head: the status line, the header lines and the blank
// line (what FindHeadEnd delimits; trailing bytes are an error). Only HTTP/1.0 and
// HTTP/1.1 are accepted; bare LF line ends, obsolete line folding, control characters in
// values, a non-numeric or repeated-and-different Content-Length, a Transfer-Encoding
// other than exactly "chunked", and both framing headers together are refused, because
// each is a way for two parsers to disagree on where a body ends.
absl::StatusOr<HttpResponseHead> ParseHttpResponseHead(std::string_view head,
                                                       const HeadLimits& limits = {},
                                                       bool request_was_head = false);

// Incremental decoder for a chunked body. Feed it bytes as they arrive; it appends the
// decoded payload to `out` and keeps partial size lines to itself, so no input is ever
// buffered beyond one size line (at most 1 KiB).
class ChunkedDecoder {
 public:
  // `max_body_bytes` caps the decoded total; crossing it is ResourceExhausted.
  explicit ChunkedDecoder(uint64_t max_body_bytes) : max_body_bytes_(max_body_bytes) {}

  // Consumes a prefix of `in` and returns its length. Stops at the end of the body (the
  // last-chunk, optional trailers and the final CRLF), so a return smaller than
  // in.size() means the rest belongs to whatever follows. After an error the decoder
  // is unusable.
  absl::StatusOr<size_t> Feed(std::string_view in, std::string* out);

  bool done() const { return state_ == State::kDone; }
  uint64_t decoded_bytes() const { return decoded_; }

 private:
  enum class State { kSize, kData, kDataCr, kDataLf, kTrailer, kDone };
  absl::StatusOr<size_t> ConsumeLine(std::string_view in, bool* complete);

  uint64_t max_body_bytes_;
  uint64_t decoded_ = 0;
  uint64_t remaining_ = 0;  // data bytes left in the current chunk
  State state_ = State::kSize;
  std::string line_;  // partial size or trailer line
};

// Decodes a complete chunked body in one call. Truncated input (no last-chunk and final
// CRLF) is InvalidArgument, and so are bytes after the end.
absl::StatusOr<std::string> DecodeChunked(std::string_view body, uint64_t max_body_bytes);

}  // namespace coolify::podman

#endif  // COOLD_SERVICES_PODMAN_LIBPOD_HTTP_PARSE_H_
