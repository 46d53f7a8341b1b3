// The broker's gRPC port: accepts hosts' TCP connections itself, does TLS (OpenSSL on
// the non-blocking socket, Boost.Asio only waiting for readiness; ALPN "h2") or plaintext, runs H2Guard (h2_guard.h) on every byte
// a peer sends, and hands gRPC one end of a socketpair per connection
// (grpc::AddInsecureChannelFromFd), forwarding what the guard lets through. What gRPC
// writes goes back to the peer unchanged; the listener follows its frame boundaries only
// to put a GOAWAY between two frames when it refuses a connection.
//
// A refused connection gets the guard's GOAWAY, its gRPC side is closed at once (gRPC
// drops the streams and their buffers), what the peer still sends is read and dropped
// for at most kRefusalLinger so the GOAWAY is not lost to a TCP reset, then it is closed.
// Closing either side closes the other. Limits of its own: kTlsHandshakeDeadline,
// kMaxConnections and a cap per source address (a connection beyond either is accepted
// and closed at once).
//
// It runs on its own io_context with kGuardThreads threads, each connection on a strand.
// An idle connection holds no buffer: reads go to a per-thread scratch buffer, and only
// what a socket does not take at once is kept until it does.
#ifndef COOLD_SERVICES_BROKER_GUARDED_LISTENER_H_
#define COOLD_SERVICES_BROKER_GUARDED_LISTENER_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "privsep/unique_fd.h"
#include "services/broker/h2_guard.h"

namespace coolify::broker {

// A peer that has not finished TLS by then is closed: an honest handshake takes a few
// round trips.
inline constexpr std::chrono::seconds kTlsHandshakeDeadline{10};
// Connections held at once. Each costs three descriptors (the peer's, both ends of the
// socketpair) of broker.service's 65536, and about 100 KiB: 16384 is 1.6 GiB at worst,
// three times the largest fleet the broker is measured with.
inline constexpr size_t kMaxConnections = 16384;
// How long a refused peer's remaining bytes are read and dropped after the GOAWAY.
inline constexpr std::chrono::seconds kRefusalLinger{1};
// TLS costs CPU; the machine the broker is sized for has two cores.
inline constexpr int kGuardThreads = 2;

// gRPC names a connection it was handed by descriptor "fd:N"; the listener records the
// peer's real address under N before handing it over. A number is reused only after
// gRPC closed the descriptor, and the listener writes the new address before handing the
// new one over, so a lookup never finds a stale address for a live connection.
class PeerAddresses {
 public:
  void Set(int fd, std::string address);
  // "fd:N" -> "ipv4:1.2.3.4:5678" (gRPC's own form); anything else as it is.
  std::string Resolve(const std::string& grpc_peer) const;

 private:
  mutable absl::Mutex mu_;
  std::map<int, std::string> by_fd_ ABSL_GUARDED_BY(mu_);
};

// The part of a peer's address its per-source cap counts under: the IPv4 address (an
// IPv4-mapped IPv6 one as IPv4), or the /64 of an IPv6 address, the least a site is given.
std::string SourceKey(const boost::asio::ip::address& address);

// Refusals by reason, for broker_refusals_total.
struct GuardStats {
  std::array<std::atomic<uint64_t>, static_cast<size_t>(GuardRefusal::kCount)> refused{};
  std::atomic<uint64_t> open{0};  // connections held now
};

// The TLS context for the listener: TLS 1.2 or later from PEM text, ALPN selecting "h2"
// (a peer offering other protocols only is refused in the handshake), no renegotiation,
// and OpenSSL's record buffers released while a connection is idle.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> MakeGrpcTlsContext(const std::string& cert_pem,
                                                                               const std::string& key_pem);

class GuardedListener {
 public:
  // `listen_fd`: a bound, listening TCP socket. `tls`: null for plaintext. `to_grpc`
  // takes ownership of a connected stream socket (AddInsecureChannelFromFd).
  // `per_address`: connections held at once from one SourceKey; one more is accepted and
  // closed at once.
  GuardedListener(privsep::UniqueFd listen_fd, std::shared_ptr<boost::asio::ssl::context> tls,
                  std::function<void(int fd)> to_grpc, PeerAddresses* peers, size_t per_address);
  ~GuardedListener();

  // Starts accepting on kGuardThreads threads of its own.
  void Start();
  // Stops accepting and ends every connection; joins the threads.
  void Stop();

  const GuardStats& stats() const { return stats_; }

  struct Shared;

 private:
  // Declared first, destroyed last: connections still queued in io_ count themselves out.
  GuardStats stats_;
  boost::asio::io_context io_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
};

}  // namespace coolify::broker

#endif  // COOLD_SERVICES_BROKER_GUARDED_LISTENER_H_
