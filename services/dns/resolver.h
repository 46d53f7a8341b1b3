// What one namespace's listener answers, decided without any I/O (the server does the
// sockets; this is also what the fuzz target drives). The rules, with zone Z and the
// listener's namespace N:
//   <container>.N.Z, A (or ANY)  → the container's A records, TTL 5 s, authoritative
//   <container>.N.Z, other types → NODATA (NOERROR, no records): IPv4 only
//   Z and N.Z                    → NODATA (they exist: they have names below them)
//   <container>.Z                → NXDOMAIN, on purpose: a name always says its namespace
//   <container>.M.Z, M ≠ N       → NXDOMAIN: a namespace cannot see, or enumerate, another
//   anything else in Z           → NXDOMAIN
//   class other than IN in Z     → REFUSED
//   out of Z                     → forwarded upstream by the server
//   malformed                    → FORMERR (or dropped when not even a query header)
#ifndef COOLD_SERVICES_DNS_RESOLVER_H_
#define COOLD_SERVICES_DNS_RESOLVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "services/dns/message.h"
#include "services/dns/name_table.h"
#include "services/dns/stats.h"

namespace coolify::dns {

enum class Action { kReply, kForward, kDrop };

struct Outcome {
  Action action = Action::kDrop;
  size_t size = 0;  // kReply: the answer's size in `out`
};

class Resolver {
 public:
  // `table` and `stats` must outlive the resolver.
  Resolver(const WireName& zone, std::string namespace_name, const NameTable* table, Stats* stats);

  // Handles one query. `query` receives what was parsed (the forwarder needs it).
  // `out` must hold at least 512 bytes; a TCP answer may use all of `cap`.
  Outcome Handle(const uint8_t* packet, size_t size, bool over_tcp, Query* query, uint8_t* out, size_t cap);

  const std::string& namespace_name() const { return namespace_; }

 private:
  bool InZone(const WireName& name) const;
  void Refresh();

  WireName zone_;
  std::string namespace_;
  const NameTable* table_;
  Stats* stats_;
  uint64_t generation_ = ~uint64_t{0};
  std::shared_ptr<const NameSnapshot> snapshot_;
  const NameSnapshot::Names* names_ = nullptr;  // this namespace's, inside snapshot_
};

// The diagnostics lookup (GET /api/v1/dns/lookup/{name}): what a listener of the name's
// own namespace would answer for an A query. InvalidArgument for a name that is not a DNS
// name, NotFound for an out-of-zone name (coold answers those by forwarding).
struct LookupResult {
  Rcode rcode = Rcode::kNxDomain;
  std::string namespace_name;      // "" unless the name is <container>.<namespace>.<zone>
  std::vector<std::string> addresses;
};
absl::StatusOr<LookupResult> LookupName(const NameTable& table, const WireName& zone, std::string_view name);

}  // namespace coolify::dns

#endif  // COOLD_SERVICES_DNS_RESOLVER_H_
