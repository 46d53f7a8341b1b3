// Plain sockets and poll() rather than Asio: the caller (the gatekeeper's request loop)
// is synchronous per request, and a blocking client with explicit deadlines is easier to
// reason about under seccomp than an event loop. Every wait goes through poll() with a
// deadline so that a silent Podman cannot hang the caller forever.
#include "services/podman/libpod_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/podman/libpod_fields.h"

namespace coolify::podman {
namespace {

constexpr size_t kReadBytes = 64 * 1024;

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Errno(absl::StatusCode code, std::string_view what, int err) {
  return absl::Status(code, absl::StrCat("podman socket: ", AV(what), ": ", strerror(err)));
}

int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  if (ms < 0) return 0;
  return ms > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max()
                                              : static_cast<int>(ms);
}

}  // namespace

// One non-blocking connection; every wait is bounded by a deadline and, for streams, by
// a cancel descriptor.
class PodmanConnection {
 public:
  ~PodmanConnection() {
    if (fd_ >= 0) close(fd_);
  }

  absl::Status Open(const std::string& path, absl::Duration timeout) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError("podman socket path empty or too long");
    }
    memcpy(addr.sun_path, path.data(), path.size());
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return Errno(absl::StatusCode::kInternal, "socket", errno);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return absl::OkStatus();
    }
    // A Unix socket whose listener is gone or absent fails at once (ENOENT,
    // ECONNREFUSED); EAGAIN means the backlog is full, which is also "not now".
    if (errno != EINPROGRESS) {
      return Errno(absl::StatusCode::kUnavailable, absl::StrCat("connect ", path), errno);
    }
    if (absl::Status s = Wait(POLLOUT, absl::Now() + timeout, -1); !s.ok()) return s;
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Errno(absl::StatusCode::kUnavailable, absl::StrCat("connect ", path), err);
    return absl::OkStatus();
  }

  // Whether a kept connection may carry another request: nothing has arrived on it and
  // it is not hung up (a zero-timeout poll).
  bool Quiet() {
    pollfd fds = {fd_, POLLIN, 0};
    return poll(&fds, 1, 0) == 0;
  }

  absl::Status WriteAll(std::string_view bytes, absl::Duration timeout) {
    while (!bytes.empty()) {
      ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n > 0) {
        bytes.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        if (absl::Status s = Wait(POLLOUT, absl::Now() + timeout, -1); !s.ok()) return s;
        continue;
      }
      return Errno(absl::StatusCode::kUnavailable, "send", errno);
    }
    return absl::OkStatus();
  }

  // Appends what is available to *buf (at most kReadBytes); false at end of stream.
  absl::StatusOr<bool> Read(std::string* buf, absl::Time deadline, int cancel_fd) {
    // Received on the stack and appended: growing *buf by kReadBytes first would zero
    // that much for every read, however little arrives.
    char bytes[kReadBytes];
    for (;;) {
      ssize_t n = recv(fd_, bytes, kReadBytes, 0);
      if (n > 0) {
        buf->append(bytes, static_cast<size_t>(n));
        return true;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return Errno(absl::StatusCode::kUnavailable, "recv", errno);
      if (absl::Status s = Wait(POLLIN, deadline, cancel_fd); !s.ok()) return s;
    }
  }

 private:
  absl::Status Wait(short events, absl::Time deadline, int cancel_fd) {
    for (;;) {
      pollfd fds[2] = {{fd_, events, 0}, {cancel_fd, POLLIN, 0}};
      int r = poll(fds, cancel_fd >= 0 ? 2 : 1, PollTimeoutMs(deadline));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Errno(absl::StatusCode::kInternal, "poll", errno);
      if (cancel_fd >= 0 && fds[1].revents != 0) return absl::CancelledError("stream cancelled");
      if (r == 0) return absl::DeadlineExceededError("podman socket: no progress before the deadline");
      return absl::OkStatus();  // readable, writable, or an error/hang-up the next call reports
    }
  }

  int fd_ = -1;
};

namespace {

// Reads up to the end of the response head; the bytes after it stay in *buf.
absl::StatusOr<HttpResponseHead> ReadHead(PodmanConnection& conn, const ClientOptions& options,
                                          bool streaming, int cancel_fd, std::string* buf) {
  size_t end = 0;
  while ((end = FindHeadEnd(*buf)) == 0) {
    if (buf->size() > options.head_limits.max_head_bytes) {
      return absl::ResourceExhaustedError("podman response head too large");
    }
    absl::Time deadline = absl::Now() + options.io_timeout;
    absl::StatusOr<bool> more = conn.Read(buf, deadline, streaming ? cancel_fd : -1);
    if (!more.ok()) return more.status();
    if (!*more) return absl::UnavailableError("podman closed the connection before responding");
  }
  absl::StatusOr<HttpResponseHead> head =
      ParseHttpResponseHead(std::string_view(*buf).substr(0, end), options.head_limits);
  if (!head.ok()) {
    return absl::Status(head.status().code() == absl::StatusCode::kResourceExhausted
                            ? absl::StatusCode::kResourceExhausted
                            : absl::StatusCode::kInternal,
                        absl::StrCat("podman response: ", head.status().message()));
  }
  buf->erase(0, end);
  return head;
}

// Delivers the body that follows `head` to `sink`: `pending` holds bytes already read.
// `max_bytes` caps the body; `idle` bounds each wait. `*exact_end`, when given, tells
// whether the body ended where the bytes read so far end, so that nothing after it was
// received (a body that runs to the end of the stream never ends that way).
absl::Status ReadBody(PodmanConnection& conn, const HttpResponseHead& head, std::string pending,
                      uint64_t max_bytes, absl::Duration idle, int cancel_fd,
                      const LibpodClient::Sink& sink, bool* exact_end = nullptr) {
  bool ignored = false;
  if (exact_end == nullptr) exact_end = &ignored;
  *exact_end = false;
  auto next_deadline = [&] {
    return idle == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + idle;
  };
  auto malformed = [](const absl::Status& s) {
    return absl::Status(s.code() == absl::StatusCode::kResourceExhausted
                            ? absl::StatusCode::kResourceExhausted
                            : absl::StatusCode::kInternal,
                        absl::StrCat("podman response body: ", s.message()));
  };
  switch (head.framing) {
    case BodyFraming::kNone:
      *exact_end = pending.empty();
      return absl::OkStatus();
    case BodyFraming::kContentLength: {
      if (head.content_length > max_bytes) {
        return absl::ResourceExhaustedError("podman response body exceeds its cap");
      }
      uint64_t left = head.content_length;
      for (;;) {
        size_t take = static_cast<size_t>(std::min<uint64_t>(left, pending.size()));
        if (take > 0) {
          if (absl::Status s = sink(std::string_view(pending).substr(0, take)); !s.ok()) return s;
          left -= take;
        }
        if (left == 0) {
          *exact_end = take == pending.size();
          return absl::OkStatus();
        }
        pending.clear();
        absl::StatusOr<bool> more = conn.Read(&pending, next_deadline(), cancel_fd);
        if (!more.ok()) return more.status();
        if (!*more) return absl::UnavailableError("podman closed the connection mid-body");
      }
    }
    case BodyFraming::kChunked: {
      ChunkedDecoder decoder(max_bytes);
      std::string decoded;
      for (;;) {
        decoded.clear();
        absl::StatusOr<size_t> used = decoder.Feed(pending, &decoded);
        if (!used.ok()) return malformed(used.status());
        if (!decoded.empty()) {
          if (absl::Status s = sink(decoded); !s.ok()) return s;
        }
        if (decoder.done()) {
          *exact_end = *used == pending.size();
          return absl::OkStatus();
        }
        pending.clear();
        absl::StatusOr<bool> more = conn.Read(&pending, next_deadline(), cancel_fd);
        if (!more.ok()) return more.status();
        if (!*more) return absl::UnavailableError("podman closed the connection mid-body");
      }
    }
    case BodyFraming::kUntilClose: {
      uint64_t total = 0;
      for (;;) {
        if (!pending.empty()) {
          total += pending.size();
          if (total > max_bytes) return absl::ResourceExhaustedError("podman response body exceeds its cap");
          if (absl::Status s = sink(pending); !s.ok()) return s;
        }
        pending.clear();
        absl::StatusOr<bool> more = conn.Read(&pending, next_deadline(), cancel_fd);
        if (!more.ok()) return more.status();
        if (!*more) return absl::OkStatus();
      }
    }
  }
  return absl::InternalError("unreachable framing");
}

std::string_view MethodName(Method method) {
  switch (method) {
    case Method::kGet: return "GET";
    case Method::kPost: return "POST";
    case Method::kDelete: return "DELETE";
  }
  return "GET";
}

}  // namespace

absl::StatusOr<std::string> SerializeRequest(Method method, std::string_view target,
                                             std::string_view json_body,
                                             std::string_view registry_auth, bool keep_alive) {
  if (target.empty() || target[0] != '/' || target.size() > 8192) {
    return absl::InvalidArgumentError("request target must start with '/'");
  }
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError("request target holds a blank or control character");
    }
  }
  std::string out = absl::StrCat(AV(MethodName(method)), " ", AV(target),
                                 " HTTP/1.1\r\nHost: podman\r\nUser-Agent: coold\r\n",
                                 keep_alive ? "" : "Connection: close\r\n");
  if (!registry_auth.empty()) {
    if (registry_auth.size() > 16384 ||
        registry_auth.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=") !=
            std::string_view::npos) {
      return absl::InvalidArgumentError("registry auth must be base64url text");
    }
    absl::StrAppend(&out, "X-Registry-Auth: ", AV(registry_auth), "\r\n");
  }
  if (method == Method::kPost || !json_body.empty()) {
    absl::StrAppend(&out, "Content-Type: application/json\r\nContent-Length: ", json_body.size(),
                    "\r\n");
  }
  out += "\r\n";
  out.append(json_body.data(), json_body.size());
  return out;
}

absl::Status StatusFromResponse(unsigned status, std::string_view body) {
  if (status < 400) return absl::OkStatus();
  // Podman's error body: {"cause": ..., "message": ..., "response": code}.
  std::string message;
  std::string cause;
  // Read with the bounded field reader: this runs as uid 0 (libpod_fields.h).
  if (absl::StatusOr<std::vector<std::vector<JsonScalar>>> f = ExtractFields(body, {{"message"}, {"cause"}});
      f.ok()) {
    if ((*f)[0].size() == 1 && (*f)[0][0].kind == JsonScalar::Kind::kString) message = (*f)[0][0].text;
    if ((*f)[1].size() == 1 && (*f)[1][0].kind == JsonScalar::Kind::kString) cause = (*f)[1][0].text;
  }
  if (message.empty()) message = std::string(body.substr(0, 512));
  message = absl::StrCat("podman ", status, ": ", message);
  const bool exists = absl::StrContains(cause, "already exists") ||
                      absl::StrContains(cause, "already in use") ||
                      absl::StrContains(cause, "already used");
  const bool improper = absl::StrContains(cause, "state improper");
  switch (status) {
    case 400: return absl::InvalidArgumentError(message);
    case 401:
    case 403: return absl::PermissionDeniedError(message);
    case 404: return absl::NotFoundError(message);
    case 409:
      return exists ? absl::AlreadyExistsError(message) : absl::FailedPreconditionError(message);
    case 500:
      if (exists) return absl::AlreadyExistsError(message);
      if (improper) return absl::FailedPreconditionError(message);
      return absl::InternalError(message);
    case 503: return absl::UnavailableError(message);
    default: return absl::UnknownError(message);
  }
}

struct LibpodClient::Kept {
  absl::Mutex mu;
  std::unique_ptr<PodmanConnection> connection ABSL_GUARDED_BY(mu);
  absl::Time idle_since ABSL_GUARDED_BY(mu);
};

LibpodClient::LibpodClient(ClientOptions options)
    : options_(std::move(options)), kept_(options_.keep_alive ? std::make_shared<Kept>() : nullptr) {}
LibpodClient::~LibpodClient() = default;
LibpodClient::LibpodClient(const LibpodClient&) = default;

absl::StatusOr<std::unique_ptr<PodmanConnection>> LibpodClient::Connect(bool reuse, bool* reused) const {
  *reused = false;
  if (reuse && kept_ != nullptr) {
    std::unique_ptr<PodmanConnection> kept;
    absl::Time idle_since;
    {
      absl::MutexLock lock(&kept_->mu);
      kept = std::move(kept_->connection);
      idle_since = kept_->idle_since;
    }
    // A connection too long idle, or one on which something arrived, is closed here.
    if (kept != nullptr && absl::Now() - idle_since < options_.keep_idle && kept->Quiet()) {
      *reused = true;
      return kept;
    }
  }
  auto fresh = std::make_unique<PodmanConnection>();
  if (absl::Status s = fresh->Open(options_.socket_path, options_.io_timeout); !s.ok()) return s;
  return fresh;
}

void LibpodClient::Keep(std::unique_ptr<PodmanConnection> connection) const {
  absl::MutexLock lock(&kept_->mu);
  // Another thread's connection may already be kept: one is enough, the other closes.
  if (kept_->connection != nullptr) return;
  kept_->connection = std::move(connection);
  kept_->idle_since = absl::Now();
}

absl::StatusOr<HttpResult> LibpodClient::Call(Method method, std::string_view target,
                                              std::string_view json_body) const {
  const bool keep_alive = kept_ != nullptr && method == Method::kGet;
  absl::StatusOr<std::string> request = SerializeRequest(method, target, json_body, {}, keep_alive);
  if (!request.ok()) return request.status();
  // A kept connection is tried once at most: the second pass, if any, opens a new one.
  for (bool may_reuse = keep_alive;; may_reuse = false) {
    bool reused = false;
    absl::StatusOr<std::unique_ptr<PodmanConnection>> conn = Connect(may_reuse, &reused);
    if (!conn.ok()) return conn.status();
    std::string buf;
    absl::Status sent = (*conn)->WriteAll(*request, options_.io_timeout);
    absl::StatusOr<HttpResponseHead> head =
        sent.ok() ? ReadHead(**conn, options_, false, -1, &buf) : absl::StatusOr<HttpResponseHead>(sent);
    if (!head.ok()) {
      // Closed by Podman before a byte of the answer: its close of an idle connection
      // crossed the request, or Podman restarted. Once, on a new connection.
      if (reused && buf.empty() && head.status().code() == absl::StatusCode::kUnavailable) continue;
      return head.status();
    }
    HttpResult result;
    result.status = head->status;
    result.content_type = std::string(head->Header("content-type"));
    bool exact_end = false;
    absl::Status body = ReadBody(**conn, *head, std::move(buf), options_.max_body_bytes, options_.io_timeout, -1,
                                 [&](std::string_view bytes) {
                                   result.body.append(bytes.data(), bytes.size());
                                   return absl::OkStatus();
                                 },
                                 &exact_end);
    if (!body.ok()) return body;
    // exact_end is never set for a body that runs to the end of the stream.
    if (keep_alive && head->persistent && exact_end) Keep(*std::move(conn));
    return result;
  }
}

absl::StatusOr<unsigned> LibpodClient::Stream(Method method, std::string_view target,
                                              std::string_view json_body, const Sink& sink,
                                              const StreamOptions& stream_options) const {
  absl::StatusOr<std::string> request =
      SerializeRequest(method, target, json_body, stream_options.registry_auth);
  if (!request.ok()) return request.status();
  PodmanConnection conn;
  if (absl::Status s = conn.Open(options_.socket_path, options_.io_timeout); !s.ok()) return s;
  if (absl::Status s = conn.WriteAll(*request, options_.io_timeout); !s.ok()) return s;
  std::string buf;
  // The head of a follow stream may be the only thing Podman sends for a long time, so
  // waiting for it honours the cancel descriptor too.
  absl::StatusOr<HttpResponseHead> head =
      ReadHead(conn, options_, true, stream_options.cancel_fd, &buf);
  if (!head.ok()) return head.status();
  if (head->status >= 400) {
    std::string error_body;
    absl::Status body = ReadBody(conn, *head, std::move(buf), 64 * 1024, options_.io_timeout,
                                 stream_options.cancel_fd, [&](std::string_view bytes) {
                                   error_body.append(bytes.data(), bytes.size());
                                   return absl::OkStatus();
                                 });
    if (!body.ok()) return body;
    return StatusFromResponse(head->status, error_body);
  }
  absl::Status body = ReadBody(conn, *head, std::move(buf), std::numeric_limits<uint64_t>::max(),
                               stream_options.idle_timeout, stream_options.cancel_fd, sink);
  if (!body.ok()) return body;
  return head->status;
}

absl::StatusOr<HttpResult> LibpodClient::Upload(std::string_view target, std::string_view content_type,
                                                uint64_t length, const Source& next) const {
  // The request line and target checked as for every other call; the JSON content type
  // replaced by the body's own.
  absl::StatusOr<std::string> request = SerializeRequest(Method::kGet, target, {});
  if (!request.ok()) return request.status();
  if (content_type.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789/.+-") != std::string_view::npos) {
    return absl::InvalidArgumentError("content type holds a character outside [a-z0-9/.+-]");
  }
  std::string head = absl::StrCat("POST", request->substr(3, request->size() - 5), "Content-Type: ", AV(content_type),
                                  "\r\nContent-Length: ", length, "\r\n\r\n");
  PodmanConnection conn;
  if (absl::Status s = conn.Open(options_.socket_path, options_.io_timeout); !s.ok()) return s;
  if (absl::Status s = conn.WriteAll(head, options_.io_timeout); !s.ok()) return s;
  uint64_t sent = 0;
  while (sent < length) {
    absl::StatusOr<std::string_view> piece = next();
    // Returning here closes the connection short of `length`: Podman sees a cut body.
    if (!piece.ok()) return piece.status();
    if (piece->empty() || piece->size() > length - sent) {
      return absl::InternalError("upload: the body is not the length announced");
    }
    if (absl::Status s = conn.WriteAll(*piece, options_.io_timeout); !s.ok()) return s;
    sent += piece->size();
  }
  std::string buf;
  absl::StatusOr<HttpResponseHead> response = ReadHead(conn, options_, false, -1, &buf);
  if (!response.ok()) return response.status();
  HttpResult result;
  result.status = response->status;
  result.content_type = std::string(response->Header("content-type"));
  absl::Status body = ReadBody(conn, *response, std::move(buf), options_.max_body_bytes, options_.io_timeout, -1,
                               [&](std::string_view bytes) {
                                 result.body.append(bytes.data(), bytes.size());
                                 return absl::OkStatus();
                               });
  if (!body.ok()) return body;
  return result;
}

}  // namespace coolify::podman
