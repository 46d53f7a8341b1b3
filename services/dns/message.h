// DNS wire format for the one thing a per-namespace server receives: a query with one
// question and at most an EDNS0 OPT record (RFC 1035 section 4, RFC 6891). Parsing is
// strict and bounded: every read is checked against the packet's length, a name is at
// most 255 octets of at most 63-octet labels, and a compression pointer is never followed
// (a query's question has nothing before it to point at; in skipped records a pointer
// simply ends the name), so no input can make the parser loop.
//
// The answer builder writes into a caller's buffer: header, the question exactly as the
// client sent it (RFC 1035 4.1.2; a client using 0x20 case randomisation checks it), the A
// records, and an OPT record when the query had one. When the answer does not fit the
// client's UDP limit it is sent without records and with TC set (RFC 2181 9).
#ifndef COOLD_SERVICES_DNS_MESSAGE_H_
#define COOLD_SERVICES_DNS_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace coolify::dns {

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeAAAA = 28;
inline constexpr uint16_t kTypeOPT = 41;
inline constexpr uint16_t kTypeANY = 255;
inline constexpr uint16_t kClassIN = 1;

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxNameWire = 255;
// The classic UDP limit (RFC 1035 2.3.4), used when the query has no OPT record.
inline constexpr size_t kClassicUdpSize = 512;
// What we advertise and the most we send over UDP (the DNS flag day 2020 value).
inline constexpr size_t kOurUdpSize = 1232;
// TTL of every answer: short, because containers come and go (the seed's 5 s).
inline constexpr uint32_t kAnswerTtl = 5;

enum class Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,  // extended: the low 4 bits go in the header, the rest in the OPT record
};

// A domain name in wire form with its labels lower-cased (ASCII only): the form every
// comparison uses, so names are case-insensitive.
struct WireName {
  uint8_t bytes[kMaxNameWire];
  uint8_t size = 0;         // includes the terminating zero octet
  uint8_t label_count = 0;  // not counting the root
  uint8_t label_offset[128];

  std::string_view label(size_t i) const {
    return std::string_view(reinterpret_cast<const char*>(bytes) + label_offset[i] + 1, bytes[label_offset[i]]);
  }
};

// "web.default.coolify.internal" (no trailing dot, not empty, labels 1..63 of
// [A-Za-z0-9_-], 255 octets at most in wire form) to wire form, lower-cased; an error
// names what is wrong. Zones and names typed by operators go through it.
absl::StatusOr<WireName> ParseName(std::string_view text);

enum class ParseStatus {
  kOk,
  kDrop,     // not a query we may answer: shorter than a header, or a response (QR set)
  kFormErr,  // header read, the rest malformed: answer FORMERR (question echoed if it parsed)
  kNotImp,   // an opcode other than QUERY
  kBadVers,  // EDNS version above 0
};

struct Query {
  uint16_t id = 0;
  uint8_t opcode = 0;
  bool rd = false;
  bool cd = false;
  bool question_parsed = false;
  WireName qname;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  size_t question_end = kHeaderSize;  // offset just past the question in the packet
  bool has_edns = false;
  uint16_t edns_udp_size = 0;  // as the client advertised it
  uint8_t edns_version = 0;
  bool edns_do = false;

  // The most a UDP answer to this query may be: the client's EDNS0 size, at least 512,
  // at most kOurUdpSize; 512 without EDNS0.
  size_t UdpLimit() const;
};

ParseStatus ParseQuery(const uint8_t* packet, size_t size, Query* query);

// Writes the response to `query` (parsed from `packet`) into `out` (capacity `cap`, at
// least 512) and returns its size, or 0 when it cannot be built (cap too small). `flags_aa`
// marks an authoritative answer (in-zone names). At most `max_size` bytes are written:
// beyond that the records are left out and TC is set. `addrs` are IPv4 addresses in host
// byte order; A records are added only for rcode NOERROR.
size_t BuildResponse(const Query& query, const uint8_t* packet, Rcode rcode, bool flags_aa, const uint32_t* addrs,
                     size_t addr_count, size_t max_size, uint8_t* out, size_t cap);

// Reads a response's header fields the forwarder needs; false when shorter than a header.
bool ReadResponseId(const uint8_t* packet, size_t size, uint16_t* id);
void WriteId(uint8_t* packet, uint16_t id);

// True when the response `resp` carries a question equal (case-insensitively) to the
// query's: the forwarder accepts only answers to what it asked.
bool SameQuestion(const Query& query, const uint8_t* resp, size_t size);

}  // namespace coolify::dns

#endif  // COOLD_SERVICES_DNS_MESSAGE_H_
