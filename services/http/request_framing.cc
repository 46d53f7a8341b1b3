#include "services/http/request_framing.h"

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "boost/beast/http/field.hpp"

namespace coolify::http {

namespace bhttp = boost::beast::http;

absl::StatusOr<size_t> FindHeaderEnd(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r')) {
      return absl::InvalidArgumentError("a line ends with a bare LF");
    }
    if (bytes[i] == '\r' && i + 1 < bytes.size() && bytes[i + 1] != '\n') {
      return absl::InvalidArgumentError("a line contains a lone CR");
    }
    // "\r\n\r\n" ends the block; i is at its last byte.
    if (bytes[i] == '\n' && i >= 3 && bytes[i - 2] == '\n' && bytes[i - 3] == '\r') return i + 1;
  }
  return 0;
}

absl::Status CheckHeaderBlock(std::string_view block) {
  absl::StatusOr<size_t> end = FindHeaderEnd(block);
  if (!end.ok()) return end.status();
  if (*end != block.size()) return absl::InvalidArgumentError("the header block does not end with an empty line");
  // A line that starts with a space or tab continues the previous field (obs-fold).
  for (size_t i = 0; i + 2 < block.size(); ++i) {
    if (block[i] == '\n' && (block[i + 1] == ' ' || block[i + 1] == '\t')) {
      return absl::InvalidArgumentError("obsolete line folding");
    }
  }
  if (!block.empty() && (block[0] == ' ' || block[0] == '\t')) {
    return absl::InvalidArgumentError("the request line starts with whitespace");
  }
  return absl::OkStatus();
}

absl::Status CheckFraming(const bhttp::request_header<>& header) {
  if (header.count(bhttp::field::transfer_encoding) > 0) {
    return absl::InvalidArgumentError("Transfer-Encoding is not accepted on requests: send Content-Length");
  }
  const size_t lengths = header.count(bhttp::field::content_length);
  if (lengths > 1) return absl::InvalidArgumentError("more than one Content-Length");
  if (lengths == 1) {
    const auto value = header[bhttp::field::content_length];
    if (value.empty() || value.size() > 18) return absl::InvalidArgumentError("Content-Length is not a decimal number");
    for (char c : value) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError("Content-Length is not a decimal number");
      }
    }
  }
  if (header.version() == 11 && header.count(bhttp::field::host) != 1) {
    return absl::InvalidArgumentError("an HTTP/1.1 request needs exactly one Host");
  }
  return absl::OkStatus();
}

}  // namespace coolify::http
