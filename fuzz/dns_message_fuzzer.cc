// A DNS server's untrusted input: one datagram (or TCP message) from a container, through
// the parser and the whole answer path of a listener with a small table. The first byte
// picks the transport (UDP limits and TC, or TCP), the rest is the packet. Invariants
// checked: an answer fits its limit, carries the query's id with QR set, and parses back;
// the response-matching helper never reads out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "services/dns/message.h"
#include "services/dns/name_table.h"
#include "services/dns/resolver.h"
#include "services/dns/stats.h"
#include "services/endpoints/endpoint.h"

namespace {

using namespace coolify;

struct World {
  World() : zone(*dns::ParseName("coolify.internal")), resolver(zone, "default", &table, &stats) {
    std::vector<endpoints::EndpointRow> rows;
    for (int i = 0; i < 70; ++i) {
      endpoints::EndpointRow r;
      r.service_id = "svc";
      r.container_id = "0123456789ab" + std::to_string(i);
      r.host_id = "host-a";
      r.namespace_name = i % 2 ? "default" : "alpha";
      r.container_name = i < 40 ? "big" : "web" + std::to_string(i);
      r.ip = "10.210." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1);
      r.state = "running";
      r.health = "healthy";
      rows.push_back(r);
    }
    table.Replace(rows);
  }
  dns::WireName zone;
  dns::NameTable table;
  dns::Stats stats;
  dns::Resolver resolver;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  if (size == 0) return 0;
  const bool tcp = data[0] & 1;
  const uint8_t* packet = data + 1;
  const size_t n = size - 1;
  static uint8_t out[65535];
  dns::Query q;
  dns::Outcome o = world->resolver.Handle(packet, n, tcp, &q, out, sizeof(out));
  if (o.action == dns::Action::kReply) {
    const size_t limit = tcp ? sizeof(out) : q.UdpLimit();
    if (o.size < dns::kHeaderSize || o.size > limit) abort();
    if (!(out[2] & 0x80) || out[0] != packet[0] || out[1] != packet[1]) abort();
    // The answer is a message a client (and our own response check) can read.
    if (q.question_parsed && !dns::SameQuestion(q, out, o.size)) abort();
  }
  // The forwarder's check on an upstream answer, fed the raw input as the "answer".
  dns::SameQuestion(q, packet, n);
  return 0;
}
