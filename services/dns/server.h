// One namespace's DNS server: UDP and TCP on sockets bound to the namespace's bridge
// gateway, answering from the NameTable (resolver.h) and forwarding out-of-zone queries
// to the upstream. Runs on the caller's boost::asio::io_context (one thread); every
// socket is non-blocking, so one slow client or a dead upstream never stalls the others.
//
// Sockets come from a SocketSource the owner provides: in coold the monitor opens them
// (port 53 needs privilege) and passes the descriptors; tests and benches use
// BindListenSockets. The server checks what it is given (IPv4, bound to the gateway, the
// TCP one listening) and never binds 0.0.0.0.
//
// Rebinding: every probe_interval the server checks the gateway address still exists (a
// bind to <gateway>:0 on a throwaway UDP socket: no privilege, no netlink). When netavark
// tears the bridge down the address goes, the server closes its sockets and asks the
// source again with exponential backoff (rebind_backoff_min doubling to _max) until the
// address is back and the source delivers.
//
// Forwarding: a UDP query goes upstream over UDP from a socket of its own (a random
// source port) with a fresh random id (the client's is restored on the way back), and
// only an answer to the same question is relayed; a TCP query goes upstream over its own
// TCP connection. No answer within upstream_timeout, or the upstream refusing (ICMP
// unreachable), is SERVFAIL. At most max_pending_forwards UDP queries are upstream at
// once (each holds a descriptor); beyond that the answer is SERVFAIL at once.
#ifndef COOLD_SERVICES_DNS_SERVER_H_
#define COOLD_SERVICES_DNS_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "privsep/unique_fd.h"
#include "services/dns/message.h"
#include "services/dns/name_table.h"
#include "services/dns/stats.h"

namespace coolify::dns {

struct ListenSockets {
  privsep::UniqueFd udp;  // SOCK_DGRAM, bound
  privsep::UniqueFd tcp;  // SOCK_STREAM, bound and listening
};

// Supplies freshly bound sockets; called on the server's thread at start and after the
// gateway address came back. An error is retried with backoff.
using SocketSource = std::function<absl::StatusOr<ListenSockets>()>;

// Opens both sockets on ip:port (TCP with SO_REUSEADDR, backlog 128): what the monitor
// does in coold, here for tests and benches. Refuses 0.0.0.0.
absl::StatusOr<ListenSockets> BindListenSockets(const std::string& ip, uint16_t port);

// True when `ip` is an address of this network namespace right now.
bool AddressPresent(const std::string& ip);

struct ServerOptions {
  std::string namespace_name;
  std::string gateway_ip;  // the sockets must be bound to it; never 0.0.0.0
  WireName zone;
  std::string upstream_ip;
  uint16_t upstream_port = 53;
  std::chrono::milliseconds upstream_timeout{2000};
  std::chrono::milliseconds tcp_idle_timeout{10000};
  size_t max_tcp_connections = 64;
  size_t max_tcp_queries_per_connection = 256;
  size_t max_pending_forwards = 256;
  std::chrono::milliseconds probe_interval{1000};
  std::chrono::milliseconds rebind_backoff_min{50};
  std::chrono::milliseconds rebind_backoff_max{2000};
};

class DnsServer {
 public:
  // Checks the options (namespace, gateway not 0.0.0.0, upstream). `table` must outlive
  // the server.
  static absl::StatusOr<std::unique_ptr<DnsServer>> Create(boost::asio::io_context& io, ServerOptions options,
                                                           const NameTable* table, SocketSource source);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Asks the source for sockets and starts serving (on the io_context's thread).
  void Start();
  // Closes every socket and timer; pending handlers finish when the io_context runs
  // again. Call on the io_context's thread (or when it is not running).
  void Stop();

  const Stats& stats() const;
  // True while listening sockets are open (false while waiting for the gateway); any thread.
  bool serving() const;

  class Impl;

 private:
  explicit DnsServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace coolify::dns

#endif  // COOLD_SERVICES_DNS_SERVER_H_
