// Counters of one DNS server (GET /api/v1/dns/stats). Incremented on the serving thread,
// read from any thread; relaxed atomics, since each counter is independent.
#ifndef COOLD_SERVICES_DNS_STATS_H_
#define COOLD_SERVICES_DNS_STATS_H_

#include <atomic>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace coolify::dns {

struct Stats {
  std::atomic<uint64_t> queries_udp{0};
  std::atomic<uint64_t> queries_tcp{0};
  std::atomic<uint64_t> answers{0};    // NOERROR with A records
  std::atomic<uint64_t> nodata{0};     // NOERROR, no records (AAAA and other types)
  std::atomic<uint64_t> nxdomain{0};
  std::atomic<uint64_t> formerr{0};
  std::atomic<uint64_t> notimp{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> badvers{0};
  std::atomic<uint64_t> servfail{0};   // forwarding failed or timed out
  std::atomic<uint64_t> truncated{0};  // UDP answers sent with TC
  std::atomic<uint64_t> dropped{0};    // not answered: no header, a response, forward queue full
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> upstream_answers{0};
  std::atomic<uint64_t> upstream_timeouts{0};
  std::atomic<uint64_t> upstream_errors{0};
  std::atomic<uint64_t> tcp_connections{0};
  std::atomic<uint64_t> tcp_rejected{0};  // over the connection limit
  std::atomic<uint64_t> tcp_idle_closed{0};
  std::atomic<uint64_t> binds{0};         // listening sockets (re)acquired
  std::atomic<uint64_t> bind_failures{0};

  static void Add(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

  // Every counter by name, in declaration order, for the stats API.
  std::vector<std::pair<std::string_view, uint64_t>> Items() const;
};

}  // namespace coolify::dns

#endif  // COOLD_SERVICES_DNS_STATS_H_
