#include "services/dns/message.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace coolify::dns {
namespace {

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
         p[3];
}
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}
uint8_t Lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + ('a' - 'A')) : c; }

// Reads an uncompressed name at `*off` into `name` (lower-cased). False on a pointer,
// a reserved label type, a name over 255 octets or a read past `size`.
bool ReadName(const uint8_t* p, size_t size, size_t* off, WireName* name) {
  size_t o = *off;
  name->size = 0;
  name->label_count = 0;
  for (;;) {
    if (o >= size) return false;
    const uint8_t len = p[o];
    if (len & 0xC0) return false;  // a pointer (0xC0) or the reserved 0x40/0x80 types
    if (static_cast<size_t>(name->size) + 1 + len > kMaxNameWire) return false;
    if (len == 0) {
      name->bytes[name->size++] = 0;
      *off = o + 1;
      return true;
    }
    if (o + 1 + len > size) return false;
    name->label_offset[name->label_count++] = name->size;
    name->bytes[name->size] = len;
    for (size_t i = 0; i < len; ++i) name->bytes[name->size + 1 + i] = Lower(p[o + 1 + i]);
    name->size = static_cast<uint8_t>(name->size + 1 + len);
    o += 1 + len;
  }
}

// Steps over a name in a record we do not interpret. A pointer ends a name, so it is
// never followed and cannot loop.
bool SkipName(const uint8_t* p, size_t size, size_t* off) {
  size_t o = *off, total = 0;
  for (;;) {
    if (o >= size) return false;
    const uint8_t len = p[o];
    if ((len & 0xC0) == 0xC0) {
      if (o + 2 > size) return false;
      *off = o + 2;
      return true;
    }
    if (len & 0xC0) return false;
    total += 1 + len;
    if (total > kMaxNameWire) return false;
    if (len == 0) {
      *off = o + 1;
      return true;
    }
    o += 1 + len;
  }
}

}  // namespace

absl::StatusOr<WireName> ParseName(std::string_view text) {
  WireName name;
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("DNS name \"", std::string(text), "\": ", std::string(why)));
  };
  if (text.empty()) return bad("empty");
  if (text.front() == '.' || text.back() == '.') return bad("no leading or trailing dot");
  size_t start = 0;
  while (start <= text.size()) {
    size_t dot = text.find('.', start);
    if (dot == std::string_view::npos) dot = text.size();
    std::string_view label = text.substr(start, dot - start);
    if (label.empty() || label.size() > 63) return bad("labels are 1..63 characters");
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!ok) return bad("labels are [A-Za-z0-9_-]");
    }
    if (name.size + 1 + label.size() + 1 > kMaxNameWire) return bad("longer than 255 octets in wire form");
    name.label_offset[name.label_count++] = name.size;
    name.bytes[name.size] = static_cast<uint8_t>(label.size());
    for (size_t i = 0; i < label.size(); ++i) {
      name.bytes[name.size + 1 + i] = Lower(static_cast<uint8_t>(label[i]));
    }
    name.size = static_cast<uint8_t>(name.size + 1 + label.size());
    start = dot + 1;
  }
  name.bytes[name.size++] = 0;
  return name;
}

size_t Query::UdpLimit() const {
  if (!has_edns) return kClassicUdpSize;
  return std::clamp<size_t>(edns_udp_size, kClassicUdpSize, kOurUdpSize);
}

ParseStatus ParseQuery(const uint8_t* p, size_t size, Query* q) {
  *q = Query();
  if (size < kHeaderSize) return ParseStatus::kDrop;
  const uint16_t flags = Get16(p + 2);
  if (flags & 0x8000) return ParseStatus::kDrop;  // a response: answering could start a loop
  q->id = Get16(p);
  q->opcode = static_cast<uint8_t>((flags >> 11) & 0xF);
  q->rd = flags & 0x0100;
  q->cd = flags & 0x0010;
  const uint16_t qdcount = Get16(p + 4), ancount = Get16(p + 6), nscount = Get16(p + 8), arcount = Get16(p + 10);
  if (qdcount != 1) return ParseStatus::kFormErr;
  size_t off = kHeaderSize;
  if (!ReadName(p, size, &off, &q->qname) || off + 4 > size) return ParseStatus::kFormErr;
  q->qtype = Get16(p + off);
  q->qclass = Get16(p + off + 2);
  off += 4;
  q->question_end = off;
  q->question_parsed = true;
  if (q->opcode != 0) return ParseStatus::kNotImp;
  if (ancount != 0 || nscount != 0) return ParseStatus::kFormErr;
  // An OPT record and perhaps one more (a TSIG or SIG(0) we do not check): anything
  // beyond is not a query a stub resolver sends.
  if (arcount > 2) return ParseStatus::kFormErr;
  bool edns_seen = false;
  uint16_t udp_size = 0;
  uint32_t ttl = 0;
  for (uint16_t i = 0; i < arcount; ++i) {
    const size_t name_at = off;
    if (!SkipName(p, size, &off) || off + 10 > size) return ParseStatus::kFormErr;
    const uint16_t type = Get16(p + off);
    const uint16_t rclass = Get16(p + off + 2);
    const uint32_t rttl = Get32(p + off + 4);
    const uint16_t rdlen = Get16(p + off + 8);
    off += 10;
    if (off + rdlen > size) return ParseStatus::kFormErr;
    if (type == kTypeOPT) {
      // RFC 6891 6.1.1: one OPT record, owned by the root.
      if (edns_seen || off - 10 - name_at != 1) return ParseStatus::kFormErr;
      size_t o = off;
      while (o < off + rdlen) {  // options are code, length, data
        if (o + 4 > off + rdlen) return ParseStatus::kFormErr;
        const uint16_t olen = Get16(p + o + 2);
        if (o + 4 + olen > off + rdlen) return ParseStatus::kFormErr;
        o += 4 + olen;
      }
      edns_seen = true;
      udp_size = rclass;
      ttl = rttl;
    }
    off += rdlen;
  }
  if (off != size) return ParseStatus::kFormErr;  // trailing bytes
  if (edns_seen) {
    q->has_edns = true;
    q->edns_udp_size = udp_size;
    q->edns_version = static_cast<uint8_t>(ttl >> 16);
    q->edns_do = ttl & 0x8000;
    if (q->edns_version != 0) return ParseStatus::kBadVers;
  }
  return ParseStatus::kOk;
}

size_t BuildResponse(const Query& q, const uint8_t* packet, Rcode rcode, bool flags_aa, const uint32_t* addrs,
                     size_t addr_count, size_t max_size, uint8_t* out, size_t cap) {
  constexpr size_t kRecord = 16;  // pointer to the question name, type, class, TTL, length, IPv4
  constexpr size_t kOpt = 11;
  const size_t question = q.question_parsed ? q.question_end - kHeaderSize : 0;
  const size_t fixed = kHeaderSize + question + (q.has_edns ? kOpt : 0);
  max_size = std::min(max_size, cap);
  if (fixed > max_size) return 0;
  if (rcode != Rcode::kNoError) addr_count = 0;
  bool truncated = false;
  if (fixed + addr_count * kRecord > max_size) {
    truncated = true;
    addr_count = 0;
  }
  const uint8_t code = static_cast<uint8_t>(rcode);
  uint16_t flags = 0x8000 | static_cast<uint16_t>(q.opcode) << 11 | 0x0080;  // QR, opcode, RA
  if (flags_aa) flags |= 0x0400;
  if (truncated) flags |= 0x0200;
  if (q.rd) flags |= 0x0100;
  if (q.cd) flags |= 0x0010;
  flags |= code & 0xF;
  Put16(out, q.id);
  Put16(out + 2, flags);
  Put16(out + 4, q.question_parsed ? 1 : 0);
  Put16(out + 6, static_cast<uint16_t>(addr_count));
  Put16(out + 8, 0);
  Put16(out + 10, q.has_edns ? 1 : 0);
  size_t o = kHeaderSize;
  if (question > 0) {
    std::memcpy(out + o, packet + kHeaderSize, question);
    o += question;
  }
  for (size_t i = 0; i < addr_count; ++i) {
    Put16(out + o, 0xC000 | kHeaderSize);  // the question's name
    Put16(out + o + 2, kTypeA);
    Put16(out + o + 4, kClassIN);
    Put32(out + o + 6, kAnswerTtl);
    Put16(out + o + 10, 4);
    Put32(out + o + 12, addrs[i]);
    o += kRecord;
  }
  if (q.has_edns) {
    out[o] = 0;  // root owner
    Put16(out + o + 1, kTypeOPT);
    Put16(out + o + 3, static_cast<uint16_t>(kOurUdpSize));
    // Extended rcode (upper 8 of 12 bits), version 0, DO echoed (RFC 3225 3).
    Put32(out + o + 5, static_cast<uint32_t>(code >> 4) << 24 | (q.edns_do ? 0x8000u : 0u));
    Put16(out + o + 9, 0);
    o += kOpt;
  }
  return o;
}

bool ReadResponseId(const uint8_t* p, size_t size, uint16_t* id) {
  if (size < kHeaderSize) return false;
  *id = Get16(p);
  return true;
}

void WriteId(uint8_t* p, uint16_t id) { Put16(p, id); }

bool SameQuestion(const Query& q, const uint8_t* p, size_t size) {
  if (size < kHeaderSize || Get16(p + 4) != 1) return false;
  size_t off = kHeaderSize;
  WireName name;
  if (!ReadName(p, size, &off, &name) || off + 4 > size) return false;
  return name.size == q.qname.size && std::memcmp(name.bytes, q.qname.bytes, name.size) == 0 &&
         Get16(p + off) == q.qtype && Get16(p + off + 2) == q.qclass;
}

}  // namespace coolify::dns
