#include "services/dns/resolver.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace coolify::dns {
namespace {

constexpr size_t kMaxTcpAnswer = 65535;

absl::string_view AbslView(std::string_view v) { return absl::string_view(v.data(), v.size()); }

struct Decision {
  Rcode rcode = Rcode::kNxDomain;
  const std::vector<uint32_t>* addrs = nullptr;  // the name's addresses, when it has some
};

// The in-zone rules of resolver.h for a name known to be in `zone`.
Decision Decide(const WireName& name, const WireName& zone, std::string_view ns, const NameSnapshot::Names* names) {
  Decision d;
  const size_t below = name.label_count - zone.label_count;  // labels left of the zone
  if (below == 0) {
    d.rcode = Rcode::kNoError;
  } else if (below == 1) {
    d.rcode = name.label(0) == ns ? Rcode::kNoError : Rcode::kNxDomain;
  } else if (below == 2 && name.label(1) == ns && names != nullptr) {
    auto it = names->find(AbslView(name.label(0)));
    if (it != names->end()) {
      d.rcode = Rcode::kNoError;
      d.addrs = &it->second;
    }
  }
  return d;
}

bool InZoneOf(const WireName& name, const WireName& zone) {
  const size_t tail = zone.size;  // the zone's labels and the root, at the end of the name
  if (name.label_count < zone.label_count || name.size < tail) return false;
  // The zone must start on a label boundary of the name ("xcoolify.internal" is not in it).
  const size_t at = name.label_count == zone.label_count ? 0 : name.label_offset[name.label_count - zone.label_count];
  return at == name.size - tail && std::memcmp(name.bytes + at, zone.bytes, tail) == 0;
}

}  // namespace

Resolver::Resolver(const WireName& zone, std::string namespace_name, const NameTable* table, Stats* stats)
    : zone_(zone), namespace_(std::move(namespace_name)), table_(table), stats_(stats) {}

void Resolver::Refresh() {
  const uint64_t gen = table_->generation();
  if (gen == generation_) return;
  snapshot_ = table_->Current();
  names_ = snapshot_->Find(namespace_);
  generation_ = gen;
}

bool Resolver::InZone(const WireName& name) const { return InZoneOf(name, zone_); }

Outcome Resolver::Handle(const uint8_t* packet, size_t size, bool over_tcp, Query* q, uint8_t* out, size_t cap) {
  Outcome outcome;
  const ParseStatus status = ParseQuery(packet, size, q);
  const size_t max = over_tcp ? std::min(cap, kMaxTcpAnswer) : q->UdpLimit();
  auto reply = [&](Rcode rcode, bool aa, const std::vector<uint32_t>* addrs) {
    const size_t n = addrs == nullptr ? 0 : addrs->size();
    outcome.size = BuildResponse(*q, packet, rcode, aa, n ? addrs->data() : nullptr, n, max, out, cap);
    outcome.action = outcome.size > 0 ? Action::kReply : Action::kDrop;
    if (outcome.size >= 4 && (out[2] & 0x02)) Stats::Add(stats_->truncated);
    return outcome;
  };
  switch (status) {
    case ParseStatus::kDrop:
      Stats::Add(stats_->dropped);
      return outcome;
    case ParseStatus::kFormErr:
      Stats::Add(stats_->formerr);
      return reply(Rcode::kFormErr, false, nullptr);
    case ParseStatus::kNotImp:
      Stats::Add(stats_->notimp);
      return reply(Rcode::kNotImp, false, nullptr);
    case ParseStatus::kBadVers:
      Stats::Add(stats_->badvers);
      return reply(Rcode::kBadVers, false, nullptr);
    case ParseStatus::kOk:
      break;
  }
  if (!InZone(q->qname)) {
    Stats::Add(stats_->forwarded);
    outcome.action = Action::kForward;
    return outcome;
  }
  if (q->qclass != kClassIN) {
    Stats::Add(stats_->refused);
    return reply(Rcode::kRefused, false, nullptr);
  }
  Refresh();
  const Decision d = Decide(q->qname, zone_, namespace_, names_);
  if (d.rcode == Rcode::kNxDomain) {
    Stats::Add(stats_->nxdomain);
    return reply(Rcode::kNxDomain, true, nullptr);
  }
  if (d.addrs != nullptr && (q->qtype == kTypeA || q->qtype == kTypeANY)) {
    Stats::Add(stats_->answers);
    return reply(Rcode::kNoError, true, d.addrs);
  }
  Stats::Add(stats_->nodata);
  return reply(Rcode::kNoError, true, nullptr);
}

absl::StatusOr<LookupResult> LookupName(const NameTable& table, const WireName& zone, std::string_view text) {
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  absl::StatusOr<WireName> name = ParseName(text);
  if (!name.ok()) return name.status();
  if (!InZoneOf(*name, zone)) {
    return absl::NotFoundError(absl::StrCat("\"", std::string(text), "\" is outside the zone; it is forwarded"));
  }
  LookupResult result;
  std::string ns;
  if (name->label_count - zone.label_count == 2) ns = std::string(name->label(1));
  auto snapshot = table.Current();
  const Decision d = Decide(*name, zone, ns, ns.empty() ? nullptr : snapshot->Find(ns));
  result.rcode = d.rcode;
  if (d.addrs != nullptr) {
    result.namespace_name = ns;
    for (uint32_t ip : *d.addrs) {
      in_addr a{htonl(ip)};
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &a, buf, sizeof(buf));
      result.addresses.emplace_back(buf);
    }
  }
  return result;
}

}  // namespace coolify::dns
