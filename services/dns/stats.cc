#include "services/dns/stats.h"

namespace coolify::dns {

std::vector<std::pair<std::string_view, uint64_t>> Stats::Items() const {
  auto v = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return {
      {"queries_udp", v(queries_udp)},
      {"queries_tcp", v(queries_tcp)},
      {"answers", v(answers)},
      {"nodata", v(nodata)},
      {"nxdomain", v(nxdomain)},
      {"formerr", v(formerr)},
      {"notimp", v(notimp)},
      {"refused", v(refused)},
      {"badvers", v(badvers)},
      {"servfail", v(servfail)},
      {"truncated", v(truncated)},
      {"dropped", v(dropped)},
      {"forwarded", v(forwarded)},
      {"upstream_answers", v(upstream_answers)},
      {"upstream_timeouts", v(upstream_timeouts)},
      {"upstream_errors", v(upstream_errors)},
      {"tcp_connections", v(tcp_connections)},
      {"tcp_rejected", v(tcp_rejected)},
      {"tcp_idle_closed", v(tcp_idle_closed)},
      {"binds", v(binds)},
      {"bind_failures", v(bind_failures)},
  };
}

}  // namespace coolify::dns
