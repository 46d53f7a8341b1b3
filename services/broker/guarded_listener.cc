#include "services/broker/guarded_listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstring>
#include <type_traits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "privsep/log.h"
#include "services/http/server.h"

namespace coolify::broker {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = H2Guard::Clock;

void PeerAddresses::Set(int fd, std::string address) {
  absl::MutexLock lock(&mu_);
  by_fd_[fd] = std::move(address);
}

std::string PeerAddresses::Resolve(const std::string& grpc_peer) const {
  if (grpc_peer.rfind("fd:", 0) != 0) return grpc_peer;
  int fd = 0;
  if (!absl::SimpleAtoi(grpc_peer.substr(3), &fd)) return grpc_peer;
  absl::MutexLock lock(&mu_);
  auto it = by_fd_.find(fd);
  return it == by_fd_.end() ? grpc_peer : it->second;
}

namespace {

int SelectH2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
             void*) {
  static const unsigned char kH2[] = {2, 'h', '2'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kH2, sizeof(kH2), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // gRPC speaks h2 only
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// "ipv4:1.2.3.4:5678" / "ipv6:[::1]:5678", as gRPC names its peers.
std::string PeerName(const asio::ip::tcp::endpoint& endpoint) {
  const asio::ip::address a = endpoint.address();
  if (a.is_v4()) return absl::StrCat("ipv4:", a.to_string(), ":", endpoint.port());
  return absl::StrCat("ipv6:[", a.to_string(), "]:", endpoint.port());
}

}  // namespace

absl::StatusOr<std::shared_ptr<asio::ssl::context>> MakeGrpcTlsContext(const std::string& cert_pem,
                                                                      const std::string& key_pem) {
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> ctx = http::MakeTlsContext(cert_pem, key_pem);
  if (!ctx.ok()) return ctx.status();
  SSL_CTX* native = (*ctx)->native_handle();
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
  // An idle connection keeps no 17 KiB record buffers (thousands of idle hosts).
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(native, SelectH2, nullptr);
  return ctx;
}

struct GuardedListener::Shared {
  Shared(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls, std::function<void(int)> to_grpc,
         PeerAddresses* peers, GuardStats* stats)
      : io(io), acceptor(io), retry(io), tls(std::move(tls)), to_grpc(std::move(to_grpc)), peers(peers), stats(stats) {}

  void Refused(GuardRefusal reason, const std::string& peer, std::vector<LogField> more = {}) {
    ++stats->refused[static_cast<size_t>(reason)];
    std::vector<LogField> fields = {{"reason", GuardRefusalName(reason)}, {"peer", peer}};
    for (LogField& f : more) fields.push_back(std::move(f));
    LogEvent(LogLevel::kWarn, "grpc_connection_refused", fields);
  }

  asio::io_context& io;
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer retry;
  std::shared_ptr<asio::ssl::context> tls;
  std::function<void(int)> to_grpc;
  PeerAddresses* peers;
  GuardStats* stats;
  std::atomic<bool> stopped{false};
};

namespace {

using Shared = GuardedListener::Shared;
using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;
using PlainStream = asio::ip::tcp::socket;

// One peer's connection. Every handler runs on the connection's strand (the executor of
// its sockets and timers).
template <typename Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  // Read in pieces of this size each way: small, since thousands of connections idle.
  static constexpr size_t kChunk = 4096;

 public:
  Connection(std::shared_ptr<Shared> shared, Stream peer, std::string address)
      : shared_(std::move(shared)),
        peer_(std::move(peer)),
        grpc_(peer_.get_executor()),
        deadline_(peer_.get_executor()),
        linger_(peer_.get_executor()),
        address_(std::move(address)) {
    ++shared_->stats->open;
  }
  ~Connection() { --shared_->stats->open; }

  void Start() {
    if constexpr (kTls) {
      deadline_.expires_after(kTlsHandshakeDeadline);
      deadline_.async_wait([self = this->shared_from_this()](const error_code& ec) {
        if (ec || self->handshaken_ || self->closed_) return;
        self->shared_->Refused(GuardRefusal::kTlsHandshake, self->address_, {{"error", "deadline"}});
        self->Close();
      });
      peer_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](const error_code& ec) {
        if (self->closed_) return;
        self->handshaken_ = true;
        self->deadline_.cancel();
        if (ec) {
          self->shared_->Refused(GuardRefusal::kTlsHandshake, self->address_, {{"error", ec.message()}});
          return self->Close();
        }
        self->Begin();
      });
    } else {
      Begin();
    }
  }

 private:
  enum class State { kOpen, kRefusing, kClosed };

  void Begin() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      LogWarn("grpc connection from %s dropped: socketpair: %s", address_, std::strerror(errno));
      return Close();
    }
    error_code ec;
    grpc_.assign(asio::local::stream_protocol(), fds[0], ec);
    if (ec) {
      close(fds[0]);
      close(fds[1]);
      return Close();
    }
    // Recorded before gRPC can name the connection.
    shared_->peers->Set(fds[1], address_);
    shared_->to_grpc(fds[1]);
    up_ = std::make_unique<char[]>(kChunk);
    down_ = std::make_unique<char[]>(kChunk);
    // The preface is owed from now: a peer that sends nothing is refused at its deadline.
    size_t none = 0;
    Arm(guard_.Feed(std::string_view(), Clock::now(), &none));
    ReadPeer();
    ReadGrpc();
  }

  // Peer -> guard -> gRPC. Once refusing, what the peer sends is read and dropped.
  void ReadPeer() {
    peer_.async_read_some(asio::buffer(up_.get(), kChunk), [self = this->shared_from_this()](const error_code& ec,
                                                                                           size_t n) {
      if (self->closed_) return;
      if (ec) return self->Close();
      if (self->refusing_) return self->ReadPeer();
      size_t forward = 0;
      H2Guard::Verdict v = self->guard_.Feed(std::string_view(self->up_.get(), n), Clock::now(), &forward);
      if (v.kind == H2Guard::Verdict::Kind::kRefuse) {
        self->Refuse(v);
        return self->ReadPeer();
      }
      self->Arm(v);
      asio::async_write(self->grpc_, asio::buffer(self->up_.get(), forward),
                        [self](const error_code& ec, size_t) {
                          if (self->closed_) return;
                          if (ec && !self->refusing_) return self->Close();
                          self->ReadPeer();
                        });
    });
  }

  // gRPC -> peer. Once refusing: only up to the end of the frame under way, then the
  // GOAWAY.
  void ReadGrpc() {
    grpc_.async_read_some(asio::buffer(down_.get(), kChunk), [self = this->shared_from_this()](const error_code& ec,
                                                                                             size_t n) {
      if (self->closed_) return;
      if (ec) {
        // gRPC closed its side: at a frame boundary the GOAWAY can still go out.
        if (self->refusing_ && self->server_frames_.ToBoundary() == 0) return self->SendGoaway();
        return self->Close();
      }
      size_t give = n;
      if (self->refusing_) {
        give = 0;
        while (give < n && self->server_frames_.ToBoundary() > 0) {
          size_t k = std::min(n - give, self->server_frames_.ToBoundary());
          self->server_frames_.Consume(reinterpret_cast<const uint8_t*>(self->down_.get() + give), k);
          give += k;
        }
      } else {
        self->server_frames_.Consume(reinterpret_cast<const uint8_t*>(self->down_.get()), n);
      }
      asio::async_write(self->peer_, asio::buffer(self->down_.get(), give), [self](const error_code& ec, size_t) {
        if (self->closed_) return;
        if (ec) return self->Close();
        if (self->refusing_ && self->server_frames_.ToBoundary() == 0) return self->SendGoaway();
        self->ReadGrpc();
      });
    });
  }

  void Arm(const H2Guard::Verdict& v) {
    if (v.kind != H2Guard::Verdict::Kind::kDeadline) {
      if (armed_ != Clock::time_point::max()) deadline_.cancel();
      armed_ = Clock::time_point::max();
      return;
    }
    if (v.deadline == armed_) return;
    armed_ = v.deadline;
    deadline_.expires_at(v.deadline);
    deadline_.async_wait([self = this->shared_from_this()](const error_code& ec) {
      if (ec || self->closed_ || self->refusing_) return;
      self->armed_ = Clock::time_point::max();
      H2Guard::Verdict e = self->guard_.Expired(Clock::now());
      if (e.kind == H2Guard::Verdict::Kind::kRefuse) return self->Refuse(e);
      self->Arm(e);
    });
  }

  void Refuse(const H2Guard::Verdict& v) {
    if (refusing_) return;
    refusing_ = true;
    deadline_.cancel();
    shared_->Refused(v.reason, address_,
                     {{"code", static_cast<uint32_t>(v.code)}, {"last_stream", guard_.last_stream_id()}});
    goaway_ = guard_.Goaway(v);
    // gRPC reads the end of the stream and drops the connection, its streams and buffers;
    // what it wrote before is forwarded up to a frame boundary, then the GOAWAY.
    error_code ignored;
    grpc_.shutdown(asio::socket_base::shutdown_send, ignored);
    linger_.expires_after(kRefusalLinger * 2);
    linger_.async_wait([self = this->shared_from_this()](const error_code& ec) {
      if (!ec) self->Close();
    });
  }

  void SendGoaway() {
    if (goaway_sent_) return;
    goaway_sent_ = true;
    error_code ignored;
    grpc_.close(ignored);
    asio::async_write(peer_, asio::buffer(goaway_), [self = this->shared_from_this()](const error_code& ec, size_t) {
      if (self->closed_) return;
      if (ec) return self->Close();
      // The peer's side stays readable (ReadPeer drops what comes) until the linger ends:
      // closing with unread bytes would reset the connection and could lose the GOAWAY.
      error_code ignored;
      self->peer_.lowest_layer().shutdown(asio::socket_base::shutdown_send, ignored);
      self->linger_.expires_after(kRefusalLinger);
      self->linger_.async_wait([self](const error_code& ec) {
        if (!ec) self->Close();
      });
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    peer_.lowest_layer().close(ignored);
    grpc_.close(ignored);
    deadline_.cancel();
    linger_.cancel();
  }

  std::shared_ptr<Shared> shared_;
  Stream peer_;
  asio::local::stream_protocol::socket grpc_;
  asio::steady_timer deadline_;
  asio::steady_timer linger_;
  const std::string address_;
  H2Guard guard_;
  H2FrameBoundary server_frames_;
  std::unique_ptr<char[]> up_;
  std::unique_ptr<char[]> down_;
  Clock::time_point armed_ = Clock::time_point::max();
  std::string goaway_;
  bool handshaken_ = false;
  bool refusing_ = false;
  bool goaway_sent_ = false;
  bool closed_ = false;
};

void Accept(std::shared_ptr<Shared> shared) {
  shared->acceptor.async_accept(
      asio::make_strand(shared->io), [shared](const error_code& ec, asio::ip::tcp::socket socket) {
        if (shared->stopped) return;
        if (ec) {
          // Out of descriptors or memory: try again shortly rather than spin.
          LogWarn("grpc accept: %s", ec.message());
          shared->retry.expires_after(std::chrono::milliseconds(100));
          shared->retry.async_wait([shared](const error_code& ec) {
            if (!ec) Accept(shared);
          });
          return;
        }
        error_code ignored;
        asio::ip::tcp::endpoint remote = socket.remote_endpoint(ignored);
        std::string address = PeerName(remote);
        if (shared->stats->open.load() >= kMaxConnections) {
          shared->Refused(GuardRefusal::kConnectionCap, address);
          socket.close(ignored);
        } else {
          socket.set_option(asio::ip::tcp::no_delay(true), ignored);
          if (shared->tls) {
            std::make_shared<Connection<TlsStream>>(shared, TlsStream(std::move(socket), *shared->tls), address)
                ->Start();
          } else {
            std::make_shared<Connection<PlainStream>>(shared, std::move(socket), address)->Start();
          }
        }
        Accept(shared);
      });
}

}  // namespace

GuardedListener::GuardedListener(privsep::UniqueFd listen_fd, std::shared_ptr<asio::ssl::context> tls,
                                 std::function<void(int fd)> to_grpc, PeerAddresses* peers)
    : io_(kGuardThreads), shared_(std::make_shared<Shared>(io_, std::move(tls), std::move(to_grpc), peers, &stats_)) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(listen_fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  shared_->acceptor.assign(addr.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(),
                           listen_fd.release());
}

GuardedListener::~GuardedListener() { Stop(); }

void GuardedListener::Start() {
  Accept(shared_);
  for (int i = 0; i < kGuardThreads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void GuardedListener::Stop() {
  if (shared_->stopped.exchange(true)) return;
  asio::post(shared_->acceptor.get_executor(), [shared = shared_] {
    error_code ignored;
    shared->acceptor.close(ignored);
    shared->retry.cancel();
  });
  io_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

}  // namespace coolify::broker
