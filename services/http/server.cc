#include "services/http/server.h"

#include <sys/socket.h>

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "privsep/log.h"
#include "services/http/request_framing.h"
#include "services/http/utf8.h"

namespace coolify::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using beast::error_code;

std::chrono::nanoseconds ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

// The most of a request's path the request log writes.
constexpr size_t kLoggedPathBytes = 256;

// Lowest layer of a stream: where timeouts are set and the connection is closed.
template <typename Stream>
auto& Lowest(Stream& s) {
  return beast::get_lowest_layer(s);
}

Request ToRequest(bhttp::request<bhttp::string_body>&& in) {
  Request out;
  out.method = in.method();
  out.method_text = std::string(in.method_string());
  SplitTarget(std::string_view(in.target().data(), in.target().size()), out);
  out.authorization = std::string(in[bhttp::field::authorization]);
  out.content_type = std::string(in[bhttp::field::content_type]);
  out.body = std::move(in.body());
  return out;
}

class ServerBase;

template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(std::shared_ptr<ServerBase> server, Stream stream)
      : server_(std::move(server)), stream_(std::move(stream)) {}
  ~Session();

  void Run(bool refuse_busy);

 private:
  void Handshake();
  void ReadHeader();
  void ReadHeaderBlock();
  void OnHeader(error_code ec);
  void Refuse(unsigned status, absl::string_view reason);
  void OnBody(error_code ec);
  void Write(Response response, bool keep_alive);
  void WriteStream(Response response);
  void NextPiece();
  void WatchForHangUp();
  void EndStream();
  void Close();
  // The request log line (Limits::request_log) for the answer being written.
  void LogAnswer(const Response& response);

  std::shared_ptr<ServerBase> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  bool keep_alive_ = false;
  // A streamed body in progress.
  std::shared_ptr<BodyStream> body_stream_;
  std::optional<bhttp::response<bhttp::empty_body>> stream_head_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> stream_serializer_;
  std::string piece_;
  bool writing_ = false;
  bool stream_done_ = false;
  char hang_up_probe_[1];
  // What the request log says of the request being answered: "-" until its header parsed.
  std::string log_method_ = "-";
  std::string log_path_ = "-";
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

class ServerBase : public Server, public std::enable_shared_from_this<ServerBase> {
 public:
  ServerBase(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls, Limits limits, Handler handler)
      : io_(io), tls_(std::move(tls)), limits_(limits), handler_(std::move(handler)) {}

  const ServerStats& stats() const override { return stats_; }
  const Limits& limits() const { return limits_; }
  asio::ssl::context* tls() const { return tls_.get(); }
  ServerStats& mutable_stats() { return stats_; }
  void Dispatch(Request request, Responder respond) { handler_(std::move(request), std::move(respond)); }

 protected:
  asio::io_context& io_;
  std::shared_ptr<asio::ssl::context> tls_;
  Limits limits_;
  Handler handler_;
  ServerStats stats_;
};

template <typename Stream>
Session<Stream>::~Session() {
  --server_->mutable_stats().active;
}

template <typename Stream>
void Session<Stream>::Run(bool refuse_busy) {
  ++server_->mutable_stats().active;
  if (refuse_busy) {
    ++server_->mutable_stats().refused_busy;
    // Answered without reading the request: the server is at its connection cap.
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      Close();
    } else {
      Write(ErrorResponse(503, "too many connections"), /*keep_alive=*/false);
    }
    return;
  }
  if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
    Handshake();
  } else {
    ReadHeader();
  }
}

template <typename Stream>
void Session<Stream>::Handshake() {
  if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
    Lowest(stream_).expires_after(ToChrono(server_->limits().read_timeout));
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = this->shared_from_this()](error_code ec) {
                              if (ec) return self->Close();
                              self->ReadHeader();
                            });
  }
}

template <typename Stream>
void Session<Stream>::ReadHeader() {
  log_method_ = "-";
  log_path_ = "-";
  started_ = std::chrono::steady_clock::now();
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(server_->limits().max_header_bytes));
  parser_->body_limit(server_->limits().max_body_bytes);
  Lowest(stream_).expires_after(ToChrono(server_->limits().read_timeout));
  ReadHeaderBlock();
}

// The header block is read and checked as raw bytes first (request_framing.h), then
// handed to Beast's parser from the buffer: Beast repairs what the strict reading
// refuses (bare LF, folded lines), and a repair is where two readers start to disagree.
template <typename Stream>
void Session<Stream>::ReadHeaderBlock() {
  const auto data = buffer_.data();
  std::string_view arrived(static_cast<const char*>(data.data()), data.size());
  absl::StatusOr<size_t> end = FindHeaderEnd(arrived);
  if (!end.ok()) return Refuse(400, end.status().message());
  const size_t limit = server_->limits().max_header_bytes;
  if (*end > limit || (*end == 0 && arrived.size() > limit)) {
    ++server_->mutable_stats().requests;
    return Write(ErrorResponse(431, "request header block too large"), false);
  }
  if (*end > 0) {
    if (absl::Status s = CheckHeaderBlock(arrived.substr(0, *end)); !s.ok()) return Refuse(400, s.message());
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](error_code ec, size_t) { self->OnHeader(ec); });
    return;
  }
  stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](error_code ec, size_t n) {
    self->buffer_.commit(n);
    // The client left or went quiet before its request was whole: nothing to answer.
    if (ec) return self->Close();
    self->ReadHeaderBlock();
  });
}

// A request whose framing is refused: the answer, then the connection closes without
// reading another byte, so whatever followed can never be taken for a request.
template <typename Stream>
void Session<Stream>::Refuse(unsigned status, absl::string_view reason) {
  ++server_->mutable_stats().requests;
  ++server_->mutable_stats().bad_requests;
  Write(ErrorResponse(status, absl::StrCat("malformed request: ", reason)), false);
}

template <typename Stream>
void Session<Stream>::OnHeader(error_code ec) {
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
    return Close();
  }
  ++server_->mutable_stats().requests;
  started_ = std::chrono::steady_clock::now();
  if (!ec) {
    const auto& parsed = parser_->get();
    log_method_ = std::string(parsed.method_string());
    // The path only: a query may carry what an operator's log has no need of.
    absl::string_view target(parsed.target().data(), parsed.target().size());
    log_path_ = std::string(target.substr(0, std::min(target.find('?'), kLoggedPathBytes)));
  }
  if (ec == bhttp::error::header_limit) {
    return Write(ErrorResponse(431, "request header block too large"), false);
  }
  // Beast checks a declared Content-Length against the body limit with the header.
  if (ec == bhttp::error::body_limit) return Write(ErrorResponse(413, "request body too large"), false);
  if (ec) {
    ++server_->mutable_stats().bad_requests;
    return Write(ErrorResponse(400, absl::StrCat("malformed request: ", ec.message())), false);
  }
  const auto& header = parser_->get();
  size_t count = 0;
  for (auto it = header.begin(); it != header.end(); ++it) ++count;
  if (count > server_->limits().max_header_count) {
    return Write(ErrorResponse(431, "too many request headers"), false);
  }
  if (absl::Status s = CheckFraming(header); !s.ok()) {
    ++server_->mutable_stats().bad_requests;
    return Write(ErrorResponse(400, absl::StrCat("malformed request: ", s.message())), false);
  }
  if (auto length = parser_->content_length(); length && *length > server_->limits().max_body_bytes) {
    return Write(ErrorResponse(413, "request body too large"), false);
  }
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = this->shared_from_this()](error_code ec, size_t) { self->OnBody(ec); });
}

template <typename Stream>
void Session<Stream>::OnBody(error_code ec) {
  if (ec == bhttp::error::body_limit) return Write(ErrorResponse(413, "request body too large"), false);
  if (ec == beast::error::timeout || ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
      ec == bhttp::error::partial_message) {
    return Close();
  }
  if (ec) {
    ++server_->mutable_stats().bad_requests;
    return Write(ErrorResponse(400, absl::StrCat("malformed request: ", ec.message())), false);
  }
  // No read deadline while the handler works: a long-poll may legitimately take long.
  Lowest(stream_).expires_never();
  bool keep_alive = parser_->get().keep_alive();
  Request request = ToRequest(parser_->release());
  server_->Dispatch(std::move(request), [self = this->shared_from_this(), keep_alive](Response response) {
    // Handlers may answer from another completion; hop back onto the stream's executor.
    asio::dispatch(self->stream_.get_executor(), [self, keep_alive, response = std::move(response)]() mutable {
      self->Write(std::move(response), keep_alive);
    });
  });
}

template <typename Stream>
void Session<Stream>::LogAnswer(const Response& response) {
  const std::string& server = server_->limits().request_log;
  if (server.empty()) return;
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  std::vector<LogField> fields = {
      {"server", server},
      {"method", log_method_},
      {"path", log_path_},
      {"status", response.status},
      {"duration_ms", std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()}};
  for (const auto& [key, value] : response.log_fields) fields.emplace_back(key, value);
  LogEvent(LogLevel::kInfo, "http_request", fields);
}

template <typename Stream>
void Session<Stream>::Write(Response response, bool keep_alive) {
  if (response.stream) {
    LogAnswer(response);
    return WriteStream(std::move(response));
  }
  keep_alive_ = keep_alive;
  response_ = {};
  response_.version(11);
  response_.result(response.status);
  response_.set(bhttp::field::content_type, response.content_type);
  response_.keep_alive(keep_alive);
  response_.body() = std::move(response.body);
  response_.prepare_payload();
  Lowest(stream_).expires_after(ToChrono(server_->limits().read_timeout));
  bhttp::async_write(stream_, response_, [self = this->shared_from_this()](error_code ec, size_t) {
    if (ec || !self->keep_alive_) return self->Close();
    self->ReadHeader();
  });
  // After starting the write, which sends at once when the socket has room (the
  // completion comes later, never from here): the client does not wait for the log's
  // write. `response` still holds the status and fields (only its body moved).
  LogAnswer(response);
}

// The head, then each piece as one chunk as the source delivers it, then the last chunk;
// the connection closes after it. Meanwhile a one-byte read watches the client: a
// streamed answer expects nothing more from it, so its end (or anything it sends) ends
// the stream. The stream's one timer bounds only writes: it is armed before each chunk
// and disarmed after, so a quiet source never times a client out, a stalled client does.
template <typename Stream>
void Session<Stream>::WriteStream(Response response) {
  keep_alive_ = false;
  body_stream_ = std::move(response.stream);
  stream_head_.emplace();
  stream_head_->version(11);
  stream_head_->result(response.status);
  stream_head_->set(bhttp::field::content_type, response.content_type);
  stream_head_->keep_alive(false);
  stream_head_->chunked(true);
  stream_serializer_.emplace(*stream_head_);
  writing_ = true;
  Lowest(stream_).expires_after(ToChrono(server_->limits().write_timeout));
  bhttp::async_write_header(stream_, *stream_serializer_, [self = this->shared_from_this()](error_code ec, size_t) {
    self->writing_ = false;
    Lowest(self->stream_).expires_never();
    if (ec) return self->EndStream();
    self->WatchForHangUp();
    self->NextPiece();
  });
}

template <typename Stream>
void Session<Stream>::WatchForHangUp() {
  stream_.async_read_some(asio::buffer(hang_up_probe_), [self = this->shared_from_this()](error_code ec, size_t) {
    if (self->stream_done_) return;
    // The timer fires only during a write: then it is the client that stalls.
    if (ec == beast::error::timeout && !self->writing_) return self->WatchForHangUp();
    self->EndStream();
  });
}

template <typename Stream>
void Session<Stream>::NextPiece() {
  if (stream_done_) return;
  body_stream_->Next([weak = this->weak_from_this()](std::string piece, bool done) {
    auto self = weak.lock();
    if (!self) return;
    asio::dispatch(self->stream_.get_executor(), [self, piece = std::move(piece), done]() mutable {
      if (self->stream_done_) return;
      self->writing_ = true;
      Lowest(self->stream_).expires_after(ToChrono(self->server_->limits().write_timeout));
      if (done || piece.empty()) {
        self->stream_done_ = true;
        asio::async_write(self->stream_, bhttp::make_chunk_last(), [self](error_code, size_t) {
          self->body_stream_.reset();
          self->Close();
        });
        return;
      }
      self->piece_ = std::move(piece);
      asio::async_write(self->stream_, bhttp::make_chunk(asio::buffer(self->piece_)), [self](error_code ec, size_t) {
        self->writing_ = false;
        Lowest(self->stream_).expires_never();
        if (ec) return self->EndStream();
        self->NextPiece();
      });
    });
  });
}

// The client is gone or stalled: the source is told, and the connection closed.
template <typename Stream>
void Session<Stream>::EndStream() {
  if (stream_done_) return;
  stream_done_ = true;
  if (body_stream_) body_stream_->Cancel();
  body_stream_.reset();
  Close();
}

template <typename Stream>
void Session<Stream>::Close() {
  error_code ignored;
  Lowest(stream_).socket().shutdown(asio::socket_base::shutdown_both, ignored);
  Lowest(stream_).close();
}

template <typename Protocol>
class ServerImpl : public ServerBase {
 public:
  using Acceptor = typename Protocol::acceptor;
  using Plain = beast::basic_stream<Protocol>;

  ServerImpl(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls, Limits limits, Handler handler)
      : ServerBase(io, std::move(tls), limits, std::move(handler)), acceptor_(io) {}

  absl::Status Adopt(const Protocol& protocol, int fd) {
    error_code ec;
    acceptor_.assign(protocol, fd, ec);
    if (ec) return absl::InternalError(absl::StrCat("listener: ", ec.message()));
    return absl::OkStatus();
  }

  void Start() override { Accept(); }
  void Stop() override {
    error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void Accept() {
    acceptor_.async_accept([self = std::static_pointer_cast<ServerImpl>(shared_from_this())](
                               error_code ec, typename Protocol::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) self->OnAccept(std::move(socket));
      self->Accept();
    });
  }

  void OnAccept(typename Protocol::socket socket) {
    ++stats_.accepted;
    bool busy = stats_.active >= limits_.max_connections;
    if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
      if (tls_) {
        auto session = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
            shared_from_this(), beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls_));
        session->Run(busy);
        return;
      }
    }
    auto session = std::make_shared<Session<Plain>>(shared_from_this(), Plain(std::move(socket)));
    session->Run(busy);
  }

  Acceptor acceptor_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<Server>> Server::Create(asio::io_context& io, int listen_fd,
                                                       std::shared_ptr<asio::ssl::context> tls, Limits limits,
                                                       Handler handler) {
  sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  if (getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InvalidArgumentError("listener is not a socket");
  }
  if (addr.ss_family == AF_UNIX) {
    if (tls) return absl::InvalidArgumentError("TLS over a Unix socket is not offered");
    auto server = std::make_shared<ServerImpl<asio::local::stream_protocol>>(io, nullptr, limits, std::move(handler));
    if (auto s = server->Adopt(asio::local::stream_protocol(), listen_fd); !s.ok()) return s;
    return server;
  }
  if (addr.ss_family == AF_INET || addr.ss_family == AF_INET6) {
    auto server = std::make_shared<ServerImpl<asio::ip::tcp>>(io, std::move(tls), limits, std::move(handler));
    auto protocol = addr.ss_family == AF_INET ? asio::ip::tcp::v4() : asio::ip::tcp::v6();
    if (auto s = server->Adopt(protocol, listen_fd); !s.ok()) return s;
    return server;
  }
  return absl::InvalidArgumentError("listener has an unsupported address family");
}

Response ErrorResponse(unsigned status, std::string_view message, std::string_view field) {
  boost::json::object body;
  body["error"] = boost::json::string_view(message.data(), message.size());
  if (!field.empty()) body["field"] = boost::json::string_view(field.data(), field.size());
  return Response{status, boost::json::serialize(body), "application/json", nullptr, {}};
}

void SplitTarget(std::string_view target_text, Request& out) {
  const absl::string_view target(target_text.data(), target_text.size());
  size_t q = target.find('?');
  out.path = std::string(target.substr(0, q));
  out.query.clear();
  if (q == absl::string_view::npos) return;
  for (absl::string_view pair : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    auto key = PercentDecode(std::string_view(pair.data(), std::min(eq, pair.size())));
    auto value = PercentDecode(eq == absl::string_view::npos
                                   ? std::string_view()
                                   : std::string_view(pair.data() + eq + 1, pair.size() - eq - 1));
    if (key.ok() && value.ok()) {
      out.query.emplace_back(std::move(*key), std::move(*value));
    } else {
      out.query.emplace_back(kUndecodableQueryParameter, "");
    }
  }
}

absl::StatusOr<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out.push_back(' ');
      continue;
    }
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= text.size()) {
      return absl::InvalidArgumentError("truncated percent escape");
    }
    auto hex = [](char h) -> int {
      if (h >= '0' && h <= '9') return h - '0';
      h = absl::ascii_tolower(h);
      if (h >= 'a' && h <= 'f') return h - 'a' + 10;
      return -1;
    };
    int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("malformed percent escape");
    char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '\0') return absl::InvalidArgumentError("percent escape decodes to NUL");
    out.push_back(decoded);
    i += 2;
  }
  // What is decoded lands in protobuf string fields, which hold UTF-8 only: a command
  // that could not cross the channel to a child must not get that far.
  if (!IsWellFormedUtf8(out)) return absl::InvalidArgumentError("decodes to text that is not UTF-8");
  return out;
}

absl::StatusOr<std::shared_ptr<asio::ssl::context>> MakeTlsContext(const std::string& cert_pem,
                                                                   const std::string& key_pem) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  if (!ec) ctx->use_certificate_chain(asio::buffer(cert_pem), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("TLS certificate: ", ec.message()));
  ctx->use_private_key(asio::buffer(key_pem), asio::ssl::context::pem, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("TLS key: ", ec.message()));
  return ctx;
}

}  // namespace coolify::http
