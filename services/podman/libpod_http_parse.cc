// Hand-written rather than Beast's parser so that the exact set of accepted inputs is
// visible in one file and each function can be fuzzed alone. The rules lean strict: Podman
// itself (Go's net/http) never sends obsolete forms, so anything unusual is more likely a
// different peer or a corrupted stream than something to tolerate.
#include "services/podman/libpod_http_parse.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace coolify::podman {
namespace {

constexpr size_t kMaxLineBytes = 1024;

bool IsTokenChar(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

// Field values may hold visible characters, blanks and obs-text; never CR, LF, NUL or
// other controls.
bool IsValueChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

absl::StatusOr<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 19) return absl::InvalidArgumentError("bad Content-Length");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return absl::InvalidArgumentError("bad Content-Length");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed HTTP response: ", absl::string_view(what.data(), what.size())));
}

}  // namespace

std::string_view HttpResponseHead::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

size_t FindHeadEnd(std::string_view buf) {
  size_t pos = buf.find("\r\n\r\n");
  return pos == std::string_view::npos ? 0 : pos + 4;
}

absl::StatusOr<HttpResponseHead> ParseHttpResponseHead(std::string_view head,
                                                       const HeadLimits& limits,
                                                       bool request_was_head) {
  if (head.size() > limits.max_head_bytes) {
    return absl::ResourceExhaustedError("HTTP response head too large");
  }
  size_t end = FindHeadEnd(head);
  if (end == 0 || end != head.size()) return Bad("head does not end with one blank line");
  head.remove_suffix(2);  // the blank line's CRLF; every remaining line ends with CRLF

  HttpResponseHead out;
  bool first = true;
  bool have_length = false;
  bool chunked = false;
  while (!head.empty()) {
    size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) return Bad("line without CRLF");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    if (line.find('\n') != std::string_view::npos || line.find('\r') != std::string_view::npos) {
      return Bad("bare CR or LF");
    }
    if (first) {
      first = false;
      // "HTTP/1.1 200 OK": version, one space, three digits, then space + reason or end.
      if (line.size() < 12 || (line.substr(0, 9) != "HTTP/1.1 " && line.substr(0, 9) != "HTTP/1.0 ")) {
        return Bad("status line");
      }
      unsigned status = 0;
      for (size_t i = 9; i < 12; ++i) {
        if (line[i] < '0' || line[i] > '9') return Bad("status code");
        status = status * 10 + static_cast<unsigned>(line[i] - '0');
      }
      if (status < 100) return Bad("status code");
      if (line.size() > 12) {
        if (line[12] != ' ') return Bad("status line");
        for (unsigned char c : line.substr(13)) {
          if (!IsValueChar(c)) return Bad("reason phrase");
        }
        out.reason = std::string(line.substr(13));
      }
      out.status = status;
      out.persistent = line.substr(0, 9) == "HTTP/1.1 ";
      continue;
    }
    if (line.empty()) return Bad("empty header line");
    if (line[0] == ' ' || line[0] == '\t') return Bad("obsolete line folding");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Bad("header without name");
    std::string_view name = line.substr(0, colon);
    for (unsigned char c : name) {
      if (!IsTokenChar(c)) return Bad("header name");
    }
    std::string_view value = TrimBlanks(line.substr(colon + 1));
    for (unsigned char c : value) {
      if (!IsValueChar(c)) return Bad("header value");
    }
    if (out.headers.size() >= limits.max_headers) {
      return absl::ResourceExhaustedError("too many HTTP response headers");
    }
    std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
    if (lower == "content-length") {
      absl::StatusOr<uint64_t> n = ParseDecimal(value);
      if (!n.ok()) return n.status();
      if (have_length && *n != out.content_length) return Bad("conflicting Content-Length");
      have_length = true;
      out.content_length = *n;
    } else if (lower == "transfer-encoding") {
      if (chunked || !absl::EqualsIgnoreCase(absl::string_view(value.data(), value.size()), "chunked")) {
        return Bad("unsupported Transfer-Encoding");
      }
      chunked = true;
    } else if (lower == "connection") {
      // A list of tokens; "close" among them ends the connection after this response.
      for (absl::string_view token : absl::StrSplit(absl::string_view(value.data(), value.size()), ',')) {
        if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(token), "close")) out.persistent = false;
      }
    }
    out.headers.emplace_back(std::move(lower), std::string(value));
  }
  if (first) return Bad("empty head");
  if (have_length && chunked) return Bad("both Content-Length and Transfer-Encoding");

  if (request_was_head || out.status < 200 || out.status == 204 || out.status == 304) {
    out.framing = BodyFraming::kNone;
    out.content_length = 0;
  } else if (chunked) {
    out.framing = BodyFraming::kChunked;
  } else if (have_length) {
    out.framing = BodyFraming::kContentLength;
  } else {
    out.framing = BodyFraming::kUntilClose;
  }
  return out;
}

// Accumulates one CRLF-terminated line into line_. Returns how much of `in` it used and
// sets *complete when the line (CRLF stripped) is in line_.
absl::StatusOr<size_t> ChunkedDecoder::ConsumeLine(std::string_view in, bool* complete) {
  *complete = false;
  size_t nl = in.find('\n');
  size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
  if (line_.size() + take > kMaxLineBytes) {
    return absl::ResourceExhaustedError("chunk size or trailer line too long");
  }
  line_.append(in.data(), take);
  if (nl == std::string_view::npos) return take;
  if (line_.size() < 2 || line_[line_.size() - 2] != '\r') return Bad("chunk line without CRLF");
  line_.resize(line_.size() - 2);
  if (line_.find('\r') != std::string::npos) return Bad("bare CR in chunk line");
  *complete = true;
  return take;
}

absl::StatusOr<size_t> ChunkedDecoder::Feed(std::string_view in, std::string* out) {
  size_t used = 0;
  while (used < in.size() && state_ != State::kDone) {
    std::string_view rest = in.substr(used);
    switch (state_) {
      case State::kSize: {
        bool complete = false;
        absl::StatusOr<size_t> n = ConsumeLine(rest, &complete);
        if (!n.ok()) return n.status();
        used += *n;
        if (!complete) break;
        // chunk-size [; chunk-ext]: extensions are allowed by the grammar and ignored.
        std::string_view size_text = line_;
        size_t semi = size_text.find(';');
        if (semi != std::string_view::npos) size_text = size_text.substr(0, semi);
        size_text = TrimBlanks(size_text);
        if (size_text.empty() || size_text.size() > 15) return Bad("chunk size");
        uint64_t size = 0;
        for (char c : size_text) {
          int digit;
          if (c >= '0' && c <= '9') digit = c - '0';
          else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
          else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
          else return Bad("chunk size");
          size = size * 16 + static_cast<uint64_t>(digit);
        }
        line_.clear();
        if (size > max_body_bytes_ - decoded_) {
          return absl::ResourceExhaustedError("chunked body exceeds its cap");
        }
        remaining_ = size;
        state_ = size == 0 ? State::kTrailer : State::kData;
        break;
      }
      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        out->append(rest.data(), take);
        used += take;
        remaining_ -= take;
        decoded_ += take;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (rest[0] != '\r') return Bad("chunk data not followed by CRLF");
        ++used;
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (rest[0] != '\n') return Bad("chunk data not followed by CRLF");
        ++used;
        state_ = State::kSize;
        break;
      case State::kTrailer: {
        bool complete = false;
        absl::StatusOr<size_t> n = ConsumeLine(rest, &complete);
        if (!n.ok()) return n.status();
        used += *n;
        if (!complete) break;
        // Trailer fields are read past and dropped; the empty line ends the body.
        if (line_.empty()) state_ = State::kDone;
        line_.clear();
        break;
      }
      case State::kDone:
        break;
    }
  }
  return used;
}

absl::StatusOr<std::string> DecodeChunked(std::string_view body, uint64_t max_body_bytes) {
  ChunkedDecoder decoder(max_body_bytes);
  std::string out;
  absl::StatusOr<size_t> used = decoder.Feed(body, &out);
  if (!used.ok()) return used.status();
  if (!decoder.done()) return Bad("truncated chunked body");
  if (*used != body.size()) return Bad("bytes after the end of a chunked body");
  return out;
}

}  // namespace coolify::podman
