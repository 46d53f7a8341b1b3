#include "services/dns/query_testing.h"

#include <arpa/inet.h>

namespace coolify::dns::testing {
namespace {

void Push16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}

struct Reader {
  const uint8_t* p;
  size_t n, off = 0;
  bool fail = false;
  uint16_t U16() {
    if (off + 2 > n) return fail = true, 0;
    uint16_t v = static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
    off += 2;
    return v;
  }
  uint32_t U32() {
    uint32_t hi = U16();
    return hi << 16 | U16();
  }
  // Follows pointers (at most 16 hops): this side is the trusted test client.
  std::string Name() {
    std::string out;
    size_t o = off;
    bool jumped = false;
    for (int hops = 0; hops < 16;) {
      if (o >= n) return fail = true, out;
      uint8_t len = p[o];
      if ((len & 0xC0) == 0xC0) {
        if (o + 2 > n) return fail = true, out;
        if (!jumped) off = o + 2;
        jumped = true;
        o = static_cast<size_t>((len & 0x3F) << 8 | p[o + 1]);
        ++hops;
        continue;
      }
      if (len == 0) {
        if (!jumped) off = o + 1;
        return out;
      }
      if (o + 1 + len > n) return fail = true, out;
      if (!out.empty()) out += '.';
      out.append(reinterpret_cast<const char*>(p) + o + 1, len);
      o += 1 + len;
    }
    fail = true;
    return out;
  }
};

}  // namespace

std::vector<uint8_t> MakeQuery(std::string_view name, const QueryOptions& o) {
  std::vector<uint8_t> v;
  Push16(v, o.id);
  Push16(v, o.rd ? 0x0100 : 0);
  Push16(v, 1);
  Push16(v, 0);
  Push16(v, 0);
  Push16(v, o.edns_udp_size >= 0 ? 1 : 0);
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    v.push_back(static_cast<uint8_t>(dot - start));
    v.insert(v.end(), name.begin() + start, name.begin() + dot);
    start = dot + 1;
  }
  v.push_back(0);
  Push16(v, o.qtype);
  Push16(v, o.qclass);
  if (o.edns_udp_size >= 0) {
    v.push_back(0);
    Push16(v, 41);
    Push16(v, static_cast<uint16_t>(o.edns_udp_size));
    v.push_back(0);
    v.push_back(o.edns_version);
    Push16(v, 0);
    Push16(v, 0);
  }
  return v;
}

Answer ReadAnswer(const uint8_t* data, size_t size) {
  Answer a;
  Reader r{data, size};
  a.id = r.U16();
  uint16_t flags = r.U16();
  a.qr = flags & 0x8000;
  a.aa = flags & 0x0400;
  a.tc = flags & 0x0200;
  a.rd = flags & 0x0100;
  a.ra = flags & 0x0080;
  a.rcode = flags & 0xF;
  a.qdcount = r.U16();
  a.ancount = r.U16();
  int nscount = r.U16();
  a.arcount = r.U16();
  for (int i = 0; i < a.qdcount; ++i) {
    a.question = r.Name();
    r.U32();
  }
  for (int i = 0; i < a.ancount + nscount + a.arcount && !r.fail; ++i) {
    r.Name();
    uint16_t type = r.U16();
    r.U16();
    uint32_t ttl = r.U32();
    uint16_t len = r.U16();
    if (r.off + len > size) return a;
    if (i < a.ancount && type == 1 && len == 4) {
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, data + r.off, buf, sizeof(buf));
      a.a.emplace_back(buf);
      a.ttls.push_back(ttl);
    }
    if (type == 41) {
      a.has_opt = true;
      a.rcode |= static_cast<int>(ttl >> 24) << 4;
    }
    r.off += len;
  }
  a.ok = !r.fail;
  return a;
}

}  // namespace coolify::dns::testing
