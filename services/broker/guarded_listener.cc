#include "services/broker/guarded_listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"
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
  // An IPv4 peer of the dual-stack socket ([::] or 0.0.0.0 binds): named as IPv4, as
  // gRPC names it.
  if (a.to_v6().is_v4_mapped()) {
    return absl::StrCat("ipv4:", asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string(), ":",
                        endpoint.port());
  }
  return absl::StrCat("ipv6:[", a.to_string(), "]:", endpoint.port());
}

}  // namespace

std::string SourceKey(const asio::ip::address& address) {
  if (address.is_v4()) return address.to_string();
  const asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

absl::StatusOr<std::shared_ptr<asio::ssl::context>> MakeGrpcTlsContext(const std::string& cert_pem,
                                                                      const std::string& key_pem) {
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> ctx = http::MakeTlsContext(cert_pem, key_pem);
  if (!ctx.ok()) return ctx.status();
  SSL_CTX* native = (*ctx)->native_handle();
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
  // An idle connection keeps no 17 KiB record buffers (thousands of idle hosts). Writes
  // may complete in part, and a write retried after WANT_WRITE may come from another
  // address (the same bytes): the listener drives OpenSSL on a non-blocking socket.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                               SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_alpn_select_cb(native, SelectH2, nullptr);
  return ctx;
}

struct GuardedListener::Shared {
  Shared(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls, std::function<void(int)> to_grpc,
         PeerAddresses* peers, GuardStats* stats, size_t per_address)
      : io(io),
        acceptor(io),
        retry(io),
        tls(std::move(tls)),
        to_grpc(std::move(to_grpc)),
        peers(peers),
        stats(stats),
        per_address(per_address) {}

  // Counts a connection from `source` in, unless it already holds per_address of them.
  bool TakeSlot(const std::string& source) {
    absl::MutexLock lock(&slots_mu);
    size_t& held = slots[source];
    if (held >= per_address) return false;
    ++held;
    return true;
  }
  void GiveSlot(const std::string& source) {
    absl::MutexLock lock(&slots_mu);
    auto it = slots.find(source);
    if (it != slots.end() && --it->second == 0) slots.erase(it);
  }

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
  const size_t per_address;
  absl::Mutex slots_mu;
  // Connections held now per SourceKey; a source with none has no entry.
  absl::flat_hash_map<std::string, size_t> slots ABSL_GUARDED_BY(slots_mu);
  std::atomic<bool> stopped{false};
};

namespace {

using Shared = GuardedListener::Shared;

// Each read takes up to this much, into the thread's scratch buffer: a connection holds
// a buffer only while a write of what it read cannot complete (thousands idle).
constexpr size_t kChunk = 16384;
// Reads in a row before a connection lets others of its thread run.
constexpr int kReadsPerTurn = 16;

char* Scratch() {
  thread_local std::unique_ptr<char[]> buffer = std::make_unique<char[]>(kChunk);
  return buffer.get();
}

// One peer's connection. OpenSSL (or plain send/recv) runs directly on the non-blocking
// socket and Asio only says when the socket is ready, so an idle connection holds no
// buffer: OpenSSL's record buffers are released (SSL_MODE_RELEASE_BUFFERS) and the
// listener's come from Scratch(). Every handler runs on the connection's strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `source` holds a slot taken for this connection (Shared::TakeSlot); it is given back
  // when the connection ends.
  Connection(std::shared_ptr<Shared> shared, asio::ip::tcp::socket peer, std::string address, std::string source)
      : shared_(std::move(shared)),
        peer_(std::move(peer)),
        grpc_(peer_.get_executor()),
        deadline_(peer_.get_executor()),
        linger_(peer_.get_executor()),
        address_(std::move(address)),
        source_(std::move(source)) {
    ++shared_->stats->open;
  }
  ~Connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    shared_->GiveSlot(source_);
    --shared_->stats->open;
  }

  void Start() {
    error_code ec;
    peer_.non_blocking(true, ec);
    if (ec) return Close();
    if (shared_->tls == nullptr) return Begin();
    ssl_ = SSL_new(shared_->tls->native_handle());
    if (ssl_ == nullptr || SSL_set_fd(ssl_, peer_.native_handle()) != 1) return Close();
    SSL_set_accept_state(ssl_);
    deadline_.expires_after(kTlsHandshakeDeadline);
    deadline_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->handshaken_ || self->closed_) return;
      self->shared_->Refused(GuardRefusal::kTlsHandshake, self->address_, {{"error", "deadline"}});
      self->Close();
    });
    Handshake();
  }

 private:
  enum class Io { kDone, kWantRead, kWantWrite, kClosed };

  void Handshake() {
    if (closed_) return;
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      handshaken_ = true;
      deadline_.cancel();
      return Begin();
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      return peer_.async_wait(err == SSL_ERROR_WANT_READ ? asio::socket_base::wait_read : asio::socket_base::wait_write,
                              [self = shared_from_this()](const error_code& ec) {
                                if (ec) return self->Close();
                                self->Handshake();
                              });
    }
    const char* reason = ERR_reason_error_string(ERR_get_error());
    ERR_clear_error();
    handshaken_ = true;
    deadline_.cancel();
    shared_->Refused(GuardRefusal::kTlsHandshake, address_, {{"error", reason != nullptr ? reason : "closed"}});
    Close();
  }

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
    // The preface is owed from now: a peer that sends nothing is refused at its deadline.
    size_t none = 0;
    Arm(guard_.Feed(std::string_view(), Clock::now(), &none));
    PumpUp();
    PumpDown();
  }

  Io PeerRead(char* buf, size_t size, size_t* n) {
    if (ssl_ != nullptr) {
      int r = SSL_read(ssl_, buf, static_cast<int>(size));
      if (r > 0) {
        *n = static_cast<size_t>(r);
        return Io::kDone;
      }
      return SslWants(r);
    }
    for (;;) {
      ssize_t r = recv(peer_.native_handle(), buf, size, 0);
      if (r > 0) {
        *n = static_cast<size_t>(r);
        return Io::kDone;
      }
      if (r < 0 && errno == EINTR) continue;
      return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? Io::kWantRead : Io::kClosed;
    }
  }

  // SSL_MODE_ENABLE_PARTIAL_WRITE: `*n` may be less than `size`. A write that wants the
  // socket is retried with the same bytes (from down_pending_).
  Io PeerWrite(const char* buf, size_t size, size_t* n) {
    if (ssl_ != nullptr) {
      int r = SSL_write(ssl_, buf, static_cast<int>(size));
      if (r > 0) {
        *n = static_cast<size_t>(r);
        return Io::kDone;
      }
      return SslWants(r);
    }
    for (;;) {
      ssize_t r = send(peer_.native_handle(), buf, size, MSG_NOSIGNAL);
      if (r >= 0) {
        *n = static_cast<size_t>(r);
        return Io::kDone;
      }
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Io::kWantWrite : Io::kClosed;
    }
  }

  Io SslWants(int r) {
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ) return Io::kWantRead;
    if (err == SSL_ERROR_WANT_WRITE) return Io::kWantWrite;
    ERR_clear_error();
    return Io::kClosed;
  }

  // Waits for the peer's socket, then runs `next` (PumpUp or PumpDown). A TLS write can
  // want a read and the other way round (a key update): each pump waits for what
  // OpenSSL asked.
  void WaitPeer(Io want, void (Connection::*next)()) {
    peer_.async_wait(want == Io::kWantRead ? asio::socket_base::wait_read : asio::socket_base::wait_write,
                     [self = shared_from_this(), next](const error_code& ec) {
                       if (self->closed_) return;
                       if (ec) return self->Close();
                       ((*self).*next)();
                     });
  }
  void WaitGrpc(asio::socket_base::wait_type what, void (Connection::*next)()) {
    grpc_.async_wait(what, [self = shared_from_this(), next](const error_code& ec) {
      if (self->closed_) return;
      // Refusing, gRPC's side is closed on purpose: the pumps go on to the GOAWAY.
      if (ec && !self->refusing_) return self->Close();
      ((*self).*next)();
    });
  }

  // Writes to gRPC's end what it takes now; false when that end is gone.
  bool ToGrpc(const char* data, size_t size, size_t* sent) {
    *sent = 0;
    while (*sent < size) {
      ssize_t w = send(grpc_.native_handle(), data + *sent, size - *sent, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (w < 0) return false;
      *sent += static_cast<size_t>(w);
    }
    return true;
  }

  // An idle connection keeps no buffer: the string's memory goes back.
  static void Release(std::string& buffer) { std::string().swap(buffer); }
  void Yield(void (Connection::*next)()) {
    asio::post(peer_.get_executor(), [self = shared_from_this(), next] {
      if (!self->closed_) ((*self).*next)();
    });
  }

  // Peer -> guard -> gRPC. Once refusing, what the peer sends is read and dropped.
  void PumpUp() {
    for (int turn = 0; turn < kReadsPerTurn; ++turn) {
      if (closed_) return;
      if (refusing_) Release(up_pending_);
      if (!up_pending_.empty()) {
        size_t sent = 0;
        if (!ToGrpc(up_pending_.data(), up_pending_.size(), &sent)) return Close();
        up_pending_.erase(0, sent);
        if (!up_pending_.empty()) return WaitGrpc(asio::socket_base::wait_write, &Connection::PumpUp);
        Release(up_pending_);
      }
      char* buf = Scratch();
      size_t n = 0;
      Io io = PeerRead(buf, kChunk, &n);
      if (io == Io::kClosed) return Close();
      if (io != Io::kDone) return WaitPeer(io, &Connection::PumpUp);
      if (refusing_) continue;
      size_t forward = 0;
      H2Guard::Verdict v = guard_.Feed(std::string_view(buf, n), Clock::now(), &forward);
      if (v.kind == H2Guard::Verdict::Kind::kRefuse) {
        Refuse(v);
        continue;
      }
      Arm(v);
      // What the socketpair does not take now waits in up_pending_, and the peer is not
      // read again until it is taken: gRPC's pace is the peer's.
      size_t sent = 0;
      if (!ToGrpc(buf, forward, &sent)) return Close();
      up_pending_.assign(buf + sent, forward - sent);
    }
    Yield(&Connection::PumpUp);
  }

  // gRPC -> peer. Once refusing: only up to the end of the frame under way, then the
  // GOAWAY.
  void PumpDown() {
    for (int turn = 0; turn < kReadsPerTurn; ++turn) {
      if (closed_) return;
      if (!down_pending_.empty()) {
        size_t n = 0;
        Io io = PeerWrite(down_pending_.data(), down_pending_.size(), &n);
        if (io == Io::kClosed) return Close();
        if (io != Io::kDone) return WaitPeer(io, &Connection::PumpDown);
        down_pending_.erase(0, n);
        if (!down_pending_.empty()) continue;
        Release(down_pending_);
      }
      if (goaway_sent_) return Linger();
      if (refusing_ && server_frames_.ToBoundary() == 0) {
        goaway_sent_ = true;
        error_code ignored;
        grpc_.close(ignored);
        down_pending_ = goaway_;
        continue;
      }
      char* buf = Scratch();
      ssize_t r = recv(grpc_.native_handle(), buf, kChunk, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return WaitGrpc(asio::socket_base::wait_read, &Connection::PumpDown);
      }
      if (r <= 0) {
        // gRPC closed its side. Refusing and between frames: the GOAWAY still goes out
        // (the check above, next turn); otherwise the peer is closed too.
        if (refusing_ && server_frames_.ToBoundary() == 0) continue;
        return Close();
      }
      size_t give = static_cast<size_t>(r);
      if (refusing_) {
        give = 0;
        while (give < static_cast<size_t>(r) && server_frames_.ToBoundary() > 0) {
          size_t k = std::min(static_cast<size_t>(r) - give, server_frames_.ToBoundary());
          server_frames_.Consume(reinterpret_cast<const uint8_t*>(buf + give), k);
          give += k;
        }
      } else {
        server_frames_.Consume(reinterpret_cast<const uint8_t*>(buf), give);
      }
      size_t n = 0;
      Io io = PeerWrite(buf, give, &n);
      if (io == Io::kClosed) return Close();
      // Not written, or in part: the rest waits in down_pending_ (a TLS write that wants
      // the socket is retried with the same bytes, from there).
      if (io != Io::kDone) n = 0;
      down_pending_.assign(buf + n, give - n);
    }
    Yield(&Connection::PumpDown);
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
    deadline_.async_wait([self = shared_from_this()](const error_code& ec) {
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
    // what it wrote before is forwarded up to a frame boundary (PumpDown), then the GOAWAY.
    error_code ignored;
    grpc_.shutdown(asio::socket_base::shutdown_send, ignored);
    linger_.expires_after(kRefusalLinger * 2);
    linger_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec) self->Close();
    });
  }

  // The GOAWAY is out. The peer's side stays readable (PumpUp drops what comes) until the
  // linger ends: closing with unread bytes would reset the connection and could lose it.
  void Linger() {
    if (lingering_) return;
    lingering_ = true;
    error_code ignored;
    peer_.shutdown(asio::socket_base::shutdown_send, ignored);
    linger_.expires_after(kRefusalLinger);
    linger_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec) self->Close();
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    peer_.close(ignored);
    grpc_.close(ignored);
    deadline_.cancel();
    linger_.cancel();
  }

  std::shared_ptr<Shared> shared_;
  asio::ip::tcp::socket peer_;
  asio::local::stream_protocol::socket grpc_;
  asio::steady_timer deadline_;
  asio::steady_timer linger_;
  const std::string address_;
  const std::string source_;
  SSL* ssl_ = nullptr;
  H2Guard guard_;
  H2FrameBoundary server_frames_;
  // Bytes read but not yet written on: empty (no allocation) while the connection idles.
  std::string up_pending_;
  std::string down_pending_;
  Clock::time_point armed_ = Clock::time_point::max();
  std::string goaway_;
  bool handshaken_ = false;
  bool refusing_ = false;
  bool goaway_sent_ = false;
  bool lingering_ = false;
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
        std::string source = SourceKey(remote.address());
        if (shared->stats->open.load() >= kMaxConnections) {
          shared->Refused(GuardRefusal::kConnectionCap, address);
          socket.close(ignored);
        } else if (!shared->TakeSlot(source)) {
          shared->Refused(GuardRefusal::kAddressCap, address);
          socket.close(ignored);
        } else {
          socket.set_option(asio::ip::tcp::no_delay(true), ignored);
          std::make_shared<Connection>(shared, std::move(socket), address, std::move(source))->Start();
        }
        Accept(shared);
      });
}

}  // namespace

GuardedListener::GuardedListener(privsep::UniqueFd listen_fd, std::shared_ptr<asio::ssl::context> tls,
                                 std::function<void(int fd)> to_grpc, PeerAddresses* peers, size_t per_address)
    : io_(kGuardThreads),
      shared_(std::make_shared<Shared>(io_, std::move(tls), std::move(to_grpc), peers, &stats_, per_address)) {
  // OpenSSL writes to the socket with write(2): a peer gone must be an error (EPIPE),
  // not a signal that ends the broker.
  signal(SIGPIPE, SIG_IGN);
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
