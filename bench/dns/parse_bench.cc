// Why the DNS wire code is our own: the same work with libknot (Knot DNS's library) and
// with services/dns, per query, on one core.
//   parse:  a query with an OPT record → header, question, EDNS fields
//           (libknot: knot_pkt_new + knot_pkt_parse + knot_pkt_free; ours: ParseQuery)
//   answer: parse, look the name up in a 1,000-name table, build the answer with one A
//           record and an OPT record (libknot: init_response + rrset + knot_pkt_put;
//           ours: Resolver::Handle, the server's whole per-query path)
// Prints ns per query; no assertions.
#include <arpa/inet.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "services/dns/message.h"
#include "services/dns/name_table.h"
#include "services/dns/query_testing.h"
#include "services/dns/resolver.h"
#include "services/dns/stats.h"
#include "services/endpoints/endpoint.h"

extern "C" {
#include <libknot/libknot.h>
}

namespace {

using namespace coolify;
using Clock = std::chrono::steady_clock;
constexpr int kNames = 1000;
constexpr int kRounds = 2000;  // kRounds * kNames queries per measurement

template <typename F>
double NsPerQuery(const std::vector<std::vector<uint8_t>>& queries, F&& f) {
  for (const auto& q : queries) f(q);  // warm up
  auto start = Clock::now();
  for (int r = 0; r < kRounds; ++r) {
    for (const auto& q : queries) f(q);
  }
  double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  return ns / (static_cast<double>(kRounds) * queries.size());
}

}  // namespace

int main() {
  std::vector<std::vector<uint8_t>> queries;
  std::vector<endpoints::EndpointRow> rows;
  for (int i = 0; i < kNames; ++i) {
    dns::testing::QueryOptions o;
    o.edns_udp_size = 1232;
    o.id = static_cast<uint16_t>(i);
    queries.push_back(dns::testing::MakeQuery("web" + std::to_string(i) + ".default.coolify.internal", o));
    endpoints::EndpointRow r;
    r.service_id = "svc";
    r.container_id = "0123456789ab" + std::to_string(i);
    r.host_id = "host-a";
    r.namespace_name = "default";
    r.container_name = "web" + std::to_string(i);
    r.ip = "10.210." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    r.state = "running";
    r.health = "healthy";
    rows.push_back(r);
  }
  dns::NameTable table;
  table.Replace(rows);
  dns::WireName zone = *dns::ParseName("coolify.internal");
  dns::Stats stats;
  dns::Resolver resolver(zone, "default", &table, &stats);
  static uint8_t out[4096];
  volatile size_t sink = 0;

  double ours_parse = NsPerQuery(queries, [&](const std::vector<uint8_t>& q) {
    dns::Query parsed;
    sink = sink + static_cast<size_t>(dns::ParseQuery(q.data(), q.size(), &parsed));
  });
  double ours_answer = NsPerQuery(queries, [&](const std::vector<uint8_t>& q) {
    dns::Query parsed;
    sink = sink + resolver.Handle(q.data(), q.size(), false, &parsed, out, sizeof(out)).size;
  });

  double knot_parse = NsPerQuery(queries, [&](const std::vector<uint8_t>& q) {
    knot_pkt_t* pkt = knot_pkt_new(const_cast<uint8_t*>(q.data()), static_cast<uint16_t>(q.size()), nullptr);
    sink = sink + static_cast<size_t>(knot_pkt_parse(pkt, 0));
    knot_pkt_free(pkt);
  });
  // The same table for libknot's side: lower-cased first label → address.
  absl::flat_hash_map<std::string, uint32_t> names;
  for (const auto& r : rows) {
    in_addr a{};
    inet_pton(AF_INET, r.ip.c_str(), &a);
    names[r.container_name] = a.s_addr;
  }
  double knot_answer = NsPerQuery(queries, [&](const std::vector<uint8_t>& q) {
    knot_pkt_t* query = knot_pkt_new(const_cast<uint8_t*>(q.data()), static_cast<uint16_t>(q.size()), nullptr);
    if (knot_pkt_parse(query, 0) != KNOT_EOK) return;
    knot_pkt_t* resp = knot_pkt_new(out, 1232, nullptr);
    knot_pkt_init_response(resp, query);
    const knot_dname_t* qname = knot_pkt_qname(query);
    knot_dname_t lower[KNOT_DNAME_MAXLEN];
    knot_dname_to_wire(lower, qname, sizeof(lower));
    knot_dname_to_lower(lower);
    auto it = names.find(std::string(reinterpret_cast<const char*>(lower) + 1, lower[0]));
    knot_pkt_begin(resp, KNOT_ANSWER);
    if (it != names.end()) {
      knot_rrset_t rr;
      knot_rrset_init(&rr, const_cast<knot_dname_t*>(qname), KNOT_RRTYPE_A, KNOT_CLASS_IN, 5);
      knot_rrset_add_rdata(&rr, reinterpret_cast<const uint8_t*>(&it->second), 4, nullptr);
      knot_pkt_put(resp, KNOT_COMPR_HINT_QNAME, &rr, 0);
      knot_rdataset_clear(&rr.rrs, nullptr);
    }
    knot_pkt_begin(resp, KNOT_ADDITIONAL);
    knot_rrset_t opt;
    knot_edns_init(&opt, 1232, 0, 0, nullptr);
    knot_pkt_put(resp, 0, &opt, KNOT_PF_FREE);
    sink = sink + resp->size;
    knot_pkt_free(resp);
    knot_pkt_free(query);
  });

  std::printf("DNS wire code, ns per query (%d names, %d queries each)\n", kNames, kNames * kRounds);
  std::printf("  %-34s %10s %10s %8s\n", "", "libknot", "ours", "ours/knot");
  std::printf("  %-34s %10.1f %10.1f %8.2f\n", "parse query (+EDNS0)", knot_parse, ours_parse, ours_parse / knot_parse);
  std::printf("  %-34s %10.1f %10.1f %8.2f\n", "parse + lookup + build A answer", knot_answer, ours_answer,
              ours_answer / knot_answer);
  std::printf("  (answers served by ours in this run: %lu)\n",
              static_cast<unsigned long>(stats.answers.load()));
  return sink == 0xdeadbeef;
}
