#include "services/dns/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ip/udp.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "privsep/log.h"
#include "privsep/validate.h"
#include "services/dns/resolver.h"

namespace coolify::dns {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// Queries are small; a TCP "query" larger than this is not one, and the connection is
// closed rather than buffered.
constexpr size_t kMaxTcpQuery = 4096;
constexpr size_t kUdpBuffer = 4096;
// Answers from the upstream can be as large as DNS allows over TCP.
constexpr size_t kMaxMessage = 65535;
// Datagrams are read and answered in batches (recvmmsg/sendmmsg): one pair of system
// calls for up to kUdpBatch queries under load, which is most of a query's cost. At
// most kUdpBatchesPerWake batches per wake-up, so TCP and the upstream get their turn.
constexpr int kUdpBatch = 32;
constexpr int kUdpBatchesPerWake = 4;
constexpr std::chrono::milliseconds kSweepInterval{100};

absl::StatusOr<sockaddr_in> LocalAddress(int fd) {
  sockaddr_in sin{};
  socklen_t len = sizeof(sin);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("getsockname: ", strerror(errno)));
  }
  if (sin.sin_family != AF_INET || len != sizeof(sin)) return absl::InvalidArgumentError("not an IPv4 socket");
  return sin;
}

absl::Status CheckSocket(int fd, int want_type, const std::string& gateway) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != want_type) {
    return absl::InvalidArgumentError(want_type == SOCK_DGRAM ? "the UDP descriptor is not a datagram socket"
                                                              : "the TCP descriptor is not a stream socket");
  }
  absl::StatusOr<sockaddr_in> sin = LocalAddress(fd);
  if (!sin.ok()) return sin.status();
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
  if (gateway != ip || sin->sin_port == 0) {
    return absl::InvalidArgumentError(absl::StrCat("socket bound to ", ip, ":", ntohs(sin->sin_port),
                                                   ", expected the gateway ", gateway));
  }
  if (want_type == SOCK_STREAM) {
    int listening = 0;
    len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
      return absl::InvalidArgumentError("the TCP socket is not listening");
    }
  }
  return absl::OkStatus();
}

void Put16(uint8_t* p, size_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

}  // namespace

absl::StatusOr<ListenSockets> BindListenSockets(const std::string& ip, uint16_t port) {
  if (auto s = privsep::ValidateIpv4("ip", ip); !s.ok()) return s;
  if (ip == "0.0.0.0") return absl::InvalidArgumentError("DNS never binds 0.0.0.0; bind the bridge gateway");
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &sin.sin_addr);
  ListenSockets s;
  s.udp.reset(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  s.tcp.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.udp || !s.tcp) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  int one = 1;
  setsockopt(s.tcp.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(s.udp.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
    return absl::UnavailableError(absl::StrCat("bind udp ", ip, ":", port, ": ", strerror(errno)));
  }
  // Port 0 for a test: TCP takes the port UDP got, so both serve the same number.
  if (port == 0) {
    absl::StatusOr<sockaddr_in> got = LocalAddress(s.udp.get());
    if (!got.ok()) return got.status();
    sin.sin_port = got->sin_port;
  }
  if (bind(s.tcp.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 || listen(s.tcp.get(), 128) != 0) {
    return absl::UnavailableError(absl::StrCat("bind tcp ", ip, ":", ntohs(sin.sin_port), ": ", strerror(errno)));
  }
  return s;
}

bool AddressPresent(const std::string& ip) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  if (inet_pton(AF_INET, ip.c_str(), &sin.sin_addr) != 1) return false;
  privsep::UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  return fd && bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0;
}

class TcpConnection;

class DnsServer::Impl : public std::enable_shared_from_this<DnsServer::Impl> {
 public:
  Impl(asio::io_context& io, ServerOptions options, const NameTable* table, SocketSource source)
      : io_(io),
        opt_(std::move(options)),
        resolver_(opt_.zone, opt_.namespace_name, table, &stats_),
        source_(std::move(source)),
        upstream_endpoint_(asio::ip::make_address_v4(opt_.upstream_ip), opt_.upstream_port),
        sweep_timer_(io),
        probe_timer_(io),
        rebind_timer_(io),
        backoff_(opt_.rebind_backoff_min),
        rng_(std::random_device{}()) {}

  void Start();
  void Stop();

  struct Listener {
    explicit Listener(asio::io_context& io) : datagram(io), stream(io) {}
    udp::socket datagram;
    tcp::acceptor stream;
    bool closed = false;
    // Batch buffers: queries in, answers out, with their peers.
    uint8_t in[kUdpBatch][kUdpBuffer];
    uint8_t out[kUdpBatch][kOurUdpSize];
    sockaddr_in peer[kUdpBatch];
    iovec in_iov[kUdpBatch];
    iovec out_iov[kUdpBatch];
    mmsghdr in_msg[kUdpBatch];
    mmsghdr out_msg[kUdpBatch];
  };

  asio::io_context& io_;
  const ServerOptions opt_;
  Stats stats_;
  Resolver resolver_;
  SocketSource source_;
  bool stopped_ = false;
  std::shared_ptr<Listener> listener_;
  std::atomic<bool> serving_{false};  // listener_ != nullptr, readable from other threads
  absl::flat_hash_set<TcpConnection*> connections_;

 private:
  friend class TcpConnection;
  // A UDP query forwarded upstream, on a socket of its own: the kernel picks a random
  // source port for each, so an off-path spoofer must guess it and the 16-bit id.
  struct Pending {
    Query query;
    std::vector<uint8_t> packet;  // the client's query, for a SERVFAIL answer
    udp::endpoint client;
    Clock::time_point deadline;
    uint16_t upstream_id = 0;
    std::unique_ptr<udp::socket> socket;
    std::vector<uint8_t> answer;
  };

  void Acquire();
  void ScheduleAcquire();
  absl::Status Adopt(ListenSockets sockets);
  void LoseListener(const std::string& why);
  void Probe();
  void ReceiveUdp(const std::shared_ptr<Listener>& l);
  // Reads and answers what is queued; false when the socket failed.
  bool DrainUdp(Listener& l);
  void ForwardUdp(const Query& q, const uint8_t* packet, size_t n, const udp::endpoint& client);
  void ReceiveUpstream(uint64_t key);
  void OnUpstream(uint64_t key, size_t n);
  void Sweep();
  void ServFail(const Pending& p);
  void Accept(const std::shared_ptr<Listener>& l);

  udp::endpoint upstream_endpoint_;
  absl::flat_hash_map<uint64_t, Pending> pending_;  // by a sequence number
  uint64_t next_forward_ = 0;
  asio::steady_timer sweep_timer_, probe_timer_, rebind_timer_;
  std::chrono::milliseconds backoff_;
  std::mt19937 rng_;
};

// One TCP client: queries read one at a time (2-byte length, message), each answered
// before the next is read, at most max_tcp_queries_per_connection of them; the idle
// timer bounds each read, so a silent or trickling client loses its slot.
class TcpConnection : public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(std::shared_ptr<DnsServer::Impl> server, tcp::socket socket)
      : server_(std::move(server)), socket_(std::move(socket)), idle_(server_->io_), upstream_timer_(server_->io_) {
    server_->connections_.insert(this);
  }
  ~TcpConnection() { server_->connections_.erase(this); }

  void Start() { ReadLength(); }

  void Close() {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    socket_.close(ec);
    idle_.cancel();
    upstream_timer_.cancel();
    if (upstream_) upstream_->close(ec);
  }

 private:
  void ArmIdle(std::chrono::milliseconds d) {
    idle_.expires_after(d);
    idle_.async_wait([weak = weak_from_this()](error_code ec) {
      if (ec) return;
      if (auto self = weak.lock(); self && !self->closed_) {
        Stats::Add(self->server_->stats_.tcp_idle_closed);
        self->Close();
      }
    });
  }

  void ReadLength() {
    if (closed_) return;
    if (served_ >= server_->opt_.max_tcp_queries_per_connection) return Close();
    ArmIdle(server_->opt_.tcp_idle_timeout);
    asio::async_read(socket_, asio::buffer(length_), [self = shared_from_this()](error_code ec, size_t) {
      if (ec || self->closed_) return self->Close();
      const size_t size = static_cast<size_t>(self->length_[0] << 8 | self->length_[1]);
      if (size == 0 || size > kMaxTcpQuery) return self->Close();
      self->in_.resize(size);
      asio::async_read(self->socket_, asio::buffer(self->in_), [self](error_code ec2, size_t) {
        if (ec2 || self->closed_) return self->Close();
        self->OnQuery();
      });
    });
  }

  void OnQuery() {
    ++served_;
    Stats::Add(server_->stats_.queries_tcp);
    Outcome o = server_->resolver_.Handle(in_.data(), in_.size(), true, &query_, out_.data() + 2, out_.size() - 2);
    switch (o.action) {
      case Action::kReply:
        return Write(o.size);
      case Action::kForward:
        return Forward();
      case Action::kDrop:
        return ReadLength();
    }
  }

  void Write(size_t size) {
    Put16(out_.data(), size);
    ArmIdle(server_->opt_.tcp_idle_timeout);  // a client that does not read loses its slot too
    asio::async_write(socket_, asio::buffer(out_.data(), size + 2), [self = shared_from_this()](error_code ec, size_t) {
      if (ec || self->closed_) return self->Close();
      self->ReadLength();
    });
  }

  // Over TCP to the upstream, on a connection of this query's own.
  void Forward() {
    forward_done_ = false;
    idle_.cancel();
    upstream_ = std::make_unique<tcp::socket>(server_->io_);
    upstream_timer_.expires_after(server_->opt_.upstream_timeout);
    upstream_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        Stats::Add(self->server_->stats_.upstream_timeouts);
        self->FinishForward(false);
      }
    });
    Put16(up_length_.data(), in_.size());
    upstream_->async_connect(tcp::endpoint(server_->upstream_endpoint_.address(), server_->upstream_endpoint_.port()), [self = shared_from_this()](error_code ec) {
      if (self->forward_done_) return;
      if (ec) return self->UpstreamError();
      std::array<asio::const_buffer, 2> request = {asio::buffer(self->up_length_), asio::buffer(self->in_)};
      asio::async_write(*self->upstream_, request, [self](error_code ec2, size_t) {
        if (self->forward_done_) return;
        if (ec2) return self->UpstreamError();
        asio::async_read(*self->upstream_, asio::buffer(self->up_length_), [self](error_code ec3, size_t) {
          if (self->forward_done_) return;
          if (ec3) return self->UpstreamError();
          const size_t size = static_cast<size_t>(self->up_length_[0] << 8 | self->up_length_[1]);
          if (size < kHeaderSize) return self->UpstreamError();
          self->answer_size_ = size;
          asio::async_read(*self->upstream_, asio::buffer(self->out_.data() + 2, size), [self](error_code ec4, size_t) {
            if (self->forward_done_) return;
            uint16_t id = 0;
            if (ec4 || !ReadResponseId(self->out_.data() + 2, self->answer_size_, &id) || id != self->query_.id ||
                !SameQuestion(self->query_, self->out_.data() + 2, self->answer_size_)) {
              return self->UpstreamError();
            }
            Stats::Add(self->server_->stats_.upstream_answers);
            self->FinishForward(true);
          });
        });
      });
    });
  }

  void UpstreamError() {
    Stats::Add(server_->stats_.upstream_errors);
    FinishForward(false);
  }

  void FinishForward(bool answered) {
    if (forward_done_) return;
    forward_done_ = true;
    upstream_timer_.cancel();
    error_code ec;
    upstream_->close(ec);
    if (closed_) return;
    if (answered) return Write(answer_size_);
    Stats::Add(server_->stats_.servfail);
    size_t size = BuildResponse(query_, in_.data(), Rcode::kServFail, false, nullptr, 0, kMaxMessage, out_.data() + 2,
                                out_.size() - 2);
    if (size == 0) return Close();
    Write(size);
  }

  std::shared_ptr<DnsServer::Impl> server_;
  tcp::socket socket_;
  asio::steady_timer idle_;
  asio::steady_timer upstream_timer_;
  std::unique_ptr<tcp::socket> upstream_;
  std::array<uint8_t, 2> length_{};
  std::array<uint8_t, 2> up_length_{};
  std::vector<uint8_t> in_;
  std::vector<uint8_t> out_ = std::vector<uint8_t>(kMaxMessage + 2);
  Query query_;
  size_t answer_size_ = 0;
  size_t served_ = 0;
  bool closed_ = false;
  bool forward_done_ = true;
};

void DnsServer::Impl::Start() {
  Acquire();
  Probe();
  Sweep();
}

void DnsServer::Impl::Stop() {
  stopped_ = true;
  error_code ec;
  if (listener_) {
    listener_->closed = true;
    listener_->datagram.close(ec);
    listener_->stream.close(ec);
    listener_.reset();
  }
  serving_ = false;
  pending_.clear();  // closes their sockets
  sweep_timer_.cancel();
  probe_timer_.cancel();
  rebind_timer_.cancel();
  std::vector<TcpConnection*> open(connections_.begin(), connections_.end());
  for (TcpConnection* c : open) c->Close();
}

void DnsServer::Impl::Acquire() {
  if (stopped_ || listener_) return;
  if (!AddressPresent(opt_.gateway_ip)) return ScheduleAcquire();
  absl::StatusOr<ListenSockets> sockets = source_();
  absl::Status status = sockets.ok() ? Adopt(std::move(*sockets)) : sockets.status();
  if (!status.ok()) {
    Stats::Add(stats_.bind_failures);
    LogWarn("dns %s: no listening sockets on %s: %s", opt_.namespace_name, opt_.gateway_ip,
            std::string(status.message()));
    return ScheduleAcquire();
  }
  Stats::Add(stats_.binds);
  backoff_ = opt_.rebind_backoff_min;
  LogInfo("dns %s: serving on %s", opt_.namespace_name, opt_.gateway_ip);
}

void DnsServer::Impl::ScheduleAcquire() {
  rebind_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, opt_.rebind_backoff_max);
  rebind_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec && !self->stopped_) self->Acquire();
  });
}

absl::Status DnsServer::Impl::Adopt(ListenSockets s) {
  if (auto st = CheckSocket(s.udp.get(), SOCK_DGRAM, opt_.gateway_ip); !st.ok()) return st;
  if (auto st = CheckSocket(s.tcp.get(), SOCK_STREAM, opt_.gateway_ip); !st.ok()) return st;
  auto l = std::make_shared<Listener>(io_);
  error_code ec;
  l->datagram.assign(udp::v4(), s.udp.get(), ec);
  if (ec) return absl::InternalError(absl::StrCat("adopt udp: ", ec.message()));
  s.udp.release();
  l->stream.assign(tcp::v4(), s.tcp.get(), ec);
  if (ec) return absl::InternalError(absl::StrCat("adopt tcp: ", ec.message()));
  s.tcp.release();
  l->datagram.non_blocking(true, ec);
  l->stream.non_blocking(true, ec);
  listener_ = l;
  serving_ = true;
  ReceiveUdp(l);
  Accept(l);
  return absl::OkStatus();
}

void DnsServer::Impl::LoseListener(const std::string& why) {
  if (!listener_) return;
  LogWarn("dns %s: closing the sockets on %s (%s); rebinding when it is back", opt_.namespace_name, opt_.gateway_ip,
          why);
  error_code ec;
  listener_->closed = true;
  listener_->datagram.close(ec);
  listener_->stream.close(ec);
  listener_.reset();
  serving_ = false;
  backoff_ = opt_.rebind_backoff_min;
  ScheduleAcquire();
}

void DnsServer::Impl::Probe() {
  if (stopped_) return;
  if (listener_ && !AddressPresent(opt_.gateway_ip)) LoseListener("the gateway address is gone");
  probe_timer_.expires_after(opt_.probe_interval);
  probe_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->Probe();
  });
}

void DnsServer::Impl::ReceiveUdp(const std::shared_ptr<Listener>& l) {
  l->datagram.async_wait(udp::socket::wait_read, [self = shared_from_this(), l](error_code ec) {
    if (l->closed || self->stopped_) return;
    if (ec) return self->LoseListener(absl::StrCat("udp wait: ", ec.message()));
    if (!self->DrainUdp(*l)) return self->LoseListener(absl::StrCat("udp receive: ", strerror(errno)));
    if (!l->closed) self->ReceiveUdp(l);
  });
}

bool DnsServer::Impl::DrainUdp(Listener& l) {
  const int fd = l.datagram.native_handle();
  for (int round = 0; round < kUdpBatchesPerWake && !l.closed; ++round) {
    for (int i = 0; i < kUdpBatch; ++i) {
      l.in_iov[i] = {l.in[i], kUdpBuffer};
      l.in_msg[i] = {};
      l.in_msg[i].msg_hdr.msg_iov = &l.in_iov[i];
      l.in_msg[i].msg_hdr.msg_iovlen = 1;
      l.in_msg[i].msg_hdr.msg_name = &l.peer[i];
      l.in_msg[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    }
    const int n = recvmmsg(fd, l.in_msg, kUdpBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    int replies = 0;
    for (int i = 0; i < n; ++i) {
      Stats::Add(stats_.queries_udp);
      if (l.in_msg[i].msg_hdr.msg_namelen != sizeof(sockaddr_in)) continue;
      Query q;
      Outcome o = resolver_.Handle(l.in[i], l.in_msg[i].msg_len, false, &q, l.out[replies], kOurUdpSize);
      if (o.action == Action::kReply) {
        l.out_iov[replies] = {l.out[replies], o.size};
        l.out_msg[replies] = {};
        l.out_msg[replies].msg_hdr.msg_iov = &l.out_iov[replies];
        l.out_msg[replies].msg_hdr.msg_iovlen = 1;
        l.out_msg[replies].msg_hdr.msg_name = &l.peer[i];
        l.out_msg[replies].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        ++replies;
      } else if (o.action == Action::kForward) {
        udp::endpoint client(asio::ip::address_v4(ntohl(l.peer[i].sin_addr.s_addr)), ntohs(l.peer[i].sin_port));
        ForwardUdp(q, l.in[i], l.in_msg[i].msg_len, client);
      }
    }
    // Non-blocking: when the send buffer is full the rest are dropped, as a busy
    // server drops datagrams; the clients retry.
    for (int sent = 0; sent < replies;) {
      const int m = sendmmsg(fd, l.out_msg + sent, static_cast<unsigned>(replies - sent), MSG_DONTWAIT);
      if (m <= 0) {
        if (m < 0 && errno == EINTR) continue;
        for (; sent < replies; ++sent) Stats::Add(stats_.dropped);
        break;
      }
      sent += m;
    }
    if (n < kUdpBatch) break;
  }
  return true;
}

void DnsServer::Impl::ForwardUdp(const Query& q, const uint8_t* packet, size_t n, const udp::endpoint& client) {
  Pending p;
  p.query = q;
  p.packet.assign(packet, packet + n);
  p.client = client;
  p.deadline = Clock::now() + opt_.upstream_timeout;
  if (pending_.size() >= opt_.max_pending_forwards) {
    Stats::Add(stats_.dropped);
    return ServFail(p);
  }
  error_code ec;
  p.socket = std::make_unique<udp::socket>(io_);
  p.socket->open(udp::v4(), ec);
  // Connected: the kernel delivers only the upstream's datagrams, and reports its ICMP
  // unreachable as an error on this socket alone.
  if (!ec) p.socket->connect(upstream_endpoint_, ec);
  if (!ec) p.socket->non_blocking(true, ec);
  p.upstream_id = static_cast<uint16_t>(rng_());
  std::vector<uint8_t> upstream_query = p.packet;
  WriteId(upstream_query.data(), p.upstream_id);
  if (!ec) p.socket->send(asio::buffer(upstream_query), 0, ec);
  if (ec) {
    Stats::Add(stats_.upstream_errors);
    return ServFail(p);
  }
  p.answer.resize(kUdpBuffer);
  const uint64_t key = ++next_forward_;
  pending_.emplace(key, std::move(p));
  ReceiveUpstream(key);
}

void DnsServer::Impl::ServFail(const Pending& p) {
  if (!listener_) return;
  Stats::Add(stats_.servfail);
  std::array<uint8_t, kUdpBuffer> out;
  size_t size = BuildResponse(p.query, p.packet.data(), Rcode::kServFail, false, nullptr, 0, p.query.UdpLimit(),
                              out.data(), out.size());
  error_code ec;
  if (size > 0) listener_->datagram.send_to(asio::buffer(out.data(), size), p.client, 0, ec);
}

void DnsServer::Impl::ReceiveUpstream(uint64_t key) {
  Pending& p = pending_.at(key);
  p.socket->async_receive(asio::buffer(p.answer), [self = shared_from_this(), key](error_code ec, size_t n) {
    if (self->stopped_ || ec == asio::error::operation_aborted) return;
    auto it = self->pending_.find(key);
    if (it == self->pending_.end()) return;  // timed out meanwhile
    if (ec) {
      // ICMP port or host unreachable: the upstream is down; fail now, not at the deadline.
      Stats::Add(self->stats_.upstream_errors);
      Pending failed = std::move(it->second);
      self->pending_.erase(it);
      return self->ServFail(failed);
    }
    self->OnUpstream(key, n);
  });
}

void DnsServer::Impl::OnUpstream(uint64_t key, size_t n) {
  Pending& p = pending_.at(key);
  uint16_t id = 0;
  if (!ReadResponseId(p.answer.data(), n, &id) || id != p.upstream_id || !(p.answer[2] & 0x80) ||
      !SameQuestion(p.query, p.answer.data(), n)) {
    return ReceiveUpstream(key);  // not the answer to what was asked: keep waiting
  }
  Pending done = std::move(p);
  pending_.erase(key);
  Stats::Add(stats_.upstream_answers);
  if (!listener_) return;
  WriteId(done.answer.data(), done.query.id);
  // Too large for this client (or for our buffer): header and question only, TC set, so
  // it asks again over TCP.
  if (n > done.query.UdpLimit() || n >= kUdpBuffer) {
    n = done.query.question_end;
    done.answer[2] |= 0x02;
    std::memset(done.answer.data() + 6, 0, 6);
    Stats::Add(stats_.truncated);
  }
  error_code ec;
  listener_->datagram.send_to(asio::buffer(done.answer.data(), n), done.client, 0, ec);
}

void DnsServer::Impl::Sweep() {
  if (stopped_) return;
  const Clock::time_point now = Clock::now();
  std::vector<uint64_t> expired;
  for (const auto& [key, p] : pending_) {
    if (p.deadline <= now) expired.push_back(key);
  }
  for (uint64_t key : expired) {
    auto it = pending_.find(key);
    Pending p = std::move(it->second);
    pending_.erase(it);
    Stats::Add(stats_.upstream_timeouts);
    ServFail(p);
  }
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->Sweep();
  });
}

void DnsServer::Impl::Accept(const std::shared_ptr<Listener>& l) {
  l->stream.async_accept([self = shared_from_this(), l](error_code ec, tcp::socket socket) {
    if (l->closed || self->stopped_) return;
    if (ec) {
      // A client that gave up before accept() is normal; anything else (descriptors
      // exhausted, the socket gone) goes through the rebind path with its backoff.
      if (ec == asio::error::connection_aborted) return self->Accept(l);
      return self->LoseListener(absl::StrCat("tcp accept: ", ec.message()));
    }
    if (self->connections_.size() >= self->opt_.max_tcp_connections) {
      Stats::Add(self->stats_.tcp_rejected);
      error_code ignored;
      socket.close(ignored);
    } else {
      Stats::Add(self->stats_.tcp_connections);
      std::make_shared<TcpConnection>(self, std::move(socket))->Start();
    }
    self->Accept(l);
  });
}

absl::StatusOr<std::unique_ptr<DnsServer>> DnsServer::Create(asio::io_context& io, ServerOptions options,
                                                             const NameTable* table, SocketSource source) {
  if (auto s = privsep::ValidateNamespaceName("namespace", options.namespace_name); !s.ok()) return s;
  if (auto s = privsep::ValidateIpv4("gateway", options.gateway_ip); !s.ok()) return s;
  if (options.gateway_ip == "0.0.0.0") {
    return absl::InvalidArgumentError("DNS never binds 0.0.0.0; give the namespace's bridge gateway");
  }
  if (auto s = privsep::ValidateIpv4("upstream", options.upstream_ip); !s.ok()) return s;
  if (options.zone.size == 0) return absl::InvalidArgumentError("no DNS zone");
  if (table == nullptr || !source) return absl::InvalidArgumentError("a name table and a socket source are required");
  if (options.max_tcp_connections == 0 || options.max_pending_forwards == 0 ||
      options.rebind_backoff_min.count() <= 0 || options.rebind_backoff_max < options.rebind_backoff_min) {
    return absl::InvalidArgumentError("limits and backoff must be positive");
  }
  return std::unique_ptr<DnsServer>(
      new DnsServer(std::make_shared<Impl>(io, std::move(options), table, std::move(source))));
}

DnsServer::DnsServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
DnsServer::~DnsServer() { impl_->Stop(); }
void DnsServer::Start() { impl_->Start(); }
void DnsServer::Stop() { impl_->Stop(); }
const Stats& DnsServer::stats() const { return impl_->stats_; }
bool DnsServer::serving() const { return impl_->serving_; }

}  // namespace coolify::dns
