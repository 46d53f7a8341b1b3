// Builds DNS queries and reads answers for tests and benchmarks: the client side, written
// independently of the parser under test.
#ifndef COOLD_SERVICES_DNS_QUERY_TESTING_H_
#define COOLD_SERVICES_DNS_QUERY_TESTING_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace coolify::dns::testing {

struct QueryOptions {
  uint16_t id = 0x1234;
  uint16_t qtype = 1;
  uint16_t qclass = 1;
  bool rd = true;
  int edns_udp_size = -1;  // -1: no OPT record
  uint8_t edns_version = 0;
};

// `name` in dotted form ("web.default.coolify.internal"), kept as given (case included).
std::vector<uint8_t> MakeQuery(std::string_view name, const QueryOptions& options = {});

struct Answer {
  bool ok = false;  // parsed
  uint16_t id = 0;
  bool qr = false, aa = false, tc = false, rd = false, ra = false;
  int rcode = -1;  // with the extended bits from OPT
  int qdcount = 0, ancount = 0, arcount = 0;
  std::string question;           // dotted, as echoed
  std::vector<std::string> a;     // A records' addresses
  std::vector<uint32_t> ttls;
  bool has_opt = false;
};

Answer ReadAnswer(const uint8_t* data, size_t size);
inline Answer ReadAnswer(const std::vector<uint8_t>& v) { return ReadAnswer(v.data(), v.size()); }

}  // namespace coolify::dns::testing

#endif  // COOLD_SERVICES_DNS_QUERY_TESTING_H_
