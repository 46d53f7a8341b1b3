// FirewallWriter: the one writer of coold's allow rules in the kernel, over nf_tables
// netlink (libnftnl + libmnl). It needs CAP_NET_ADMIN and nothing else; it never runs
// iptables or nft.
//
// Two planes, one transaction. Every mutation is ONE nf_tables batch that changes both
//   the cross-host plane: ip filter COOLIFY-ALLOW, rules spelled as iptables-nft 1.8.9
//     spells `-s SRC -d DST -p PROTO --dport PORT -m comment --comment ID -j ACCEPT`;
//   the intra-host plane: bridge coolify_bridge coolify_allow, rules spelled as nft
//     spells `ip saddr SRC ip daddr DST meta l4proto PROTO th dport PORT accept
//     comment "ID"`
// (exact encodings in firewall_encoding.h). The kernel applies a batch entirely or not
// at all, so the planes never disagree and a failed mutation leaves the kernel exactly
// as it was. If ip filter / COOLIFY-ALLOW is missing, the first batch that adds a rule
// creates it, as `iptables -N COOLIFY-ALLOW` would (table with only its name, regular
// chain). The bridge table and chain belong to the bridge scaffold and are never created
// here: while they are missing the bridge plane is skipped (permissive mode, one WARN
// when it starts) and the ip plane is still written.
//
// The kernel is the source of truth. Load() reads both chains (a netlink dump filtered
// to each chain) and rebuilds the index; a rule counts as ours only when it is exactly
// what we would write for its tuple and id. Anything else in the chains is reported and
// left alone: never deleted, never snapshotted. The kernel keeps the id, not the
// namespace: Load() takes hints (id -> namespace, e.g. from the last snapshot, see
// firewall_snapshot.h) and accepts one only if the id is the hash of that namespace
// with the rule's tuple; other entries keep an empty namespace.
//
// Cost. A mutation sends only its own messages and learns the new rules' handles from
// the kernel's echo (NLM_F_ECHO) of the first and last NEWRULE of each plane (the kernel
// numbers a batch's new rules in a table consecutively; the two echoes check it):
// nothing it does grows with the number of rules already installed, and only Load()
// lists the chains. The kernel's own commit does grow with the chain (nf_tables rebuilds
// a touched chain's rule blob on every commit), whoever the writer is.
//
// Failure. A refused batch returns the kernel's error naming the refused message; the
// kernel and the index are unchanged. When the refusal shows the index no longer
// describes the kernel (NotFound: a rule or chain we know of was removed behind our
// back; AlreadyExists: the chain appeared), or the outcome is unknown (DataLoss), the
// writer marks itself stale and the next operation first runs Load() again (keeping the
// namespaces it knows).
//
// Not thread-safe: the netlink process serves one request at a time.
#ifndef COOLD_SERVICES_NETLINK_FIREWALL_NFT_H_
#define COOLD_SERVICES_NETLINK_FIREWALL_NFT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "privsep/unique_fd.h"
#include "services/netlink/firewall_encoding.h"
#include "services/netlink/firewall_index.h"
#include "services/netlink/firewall_netlink.h"
#include "services/netlink/firewall_rule.h"

namespace coolify::netlink {

// A rule in one of our chains that we did not write.
struct ForeignRule {
  Plane plane;
  uint64_t handle = 0;
  std::string reason;       // why it is not one of ours
  std::string description;  // the rule as libnftnl prints it
};

struct LoadReport {
  bool ip_chain_exists = false;
  bool bridge_plane_active = false;  // bridge coolify_bridge coolify_allow exists
  size_t rules = 0;                  // entries indexed
  size_t without_namespace = 0;      // entries no hint matched
  std::vector<ForeignRule> foreign;
};

struct ApplyResult {
  std::vector<std::string> added;    // ids of which at least one plane was written
  std::vector<std::string> removed;  // ids deleted from every plane
};

class FirewallWriter {
 public:
  // Opens its own NETLINK_NETFILTER socket.
  static absl::StatusOr<FirewallWriter> Open();
  // Uses `netlink_socket`, an already open NETLINK_NETFILTER socket (e.g. passed down by
  // the monitor).
  static absl::StatusOr<FirewallWriter> Adopt(privsep::UniqueFd netlink_socket);

  FirewallWriter(FirewallWriter&&) = default;
  FirewallWriter& operator=(FirewallWriter&&) = default;

  // Rebuilds the index from the kernel, see above. Operations call it themselves when
  // the writer is stale or was never loaded, with no hints but the namespaces the index
  // already holds; call it directly to pass hints or to get the report.
  absl::StatusOr<LoadReport> Load(const NamespaceHints& hints = {});

  // One batch: every plane of every id in `deletes` is deleted, and every plane missing
  // for each rule of `adds` is added (a rule present on every active plane adds
  // nothing). Refused before the kernel is asked: an invalid rule, two adds with the
  // same id (InvalidArgument), a delete of an id not indexed (NotFound), an id both
  // added and deleted (InvalidArgument).
  absl::StatusOr<ApplyResult> Apply(const std::vector<Rule>& adds,
                                    const std::vector<std::string>& deletes);

  // Allows `rule` (validated, see firewall_rule.h) and returns its id; allowing a rule
  // that is in place returns its id and changes nothing.
  absl::StatusOr<std::string> Allow(const Rule& rule);

  // Deletes rule `id` from both planes. NotFound if it is not indexed.
  absl::Status Delete(const std::string& id);

  // The indexed rules of `namespace_filter` ("" = all), in chain order.
  std::vector<FirewallEntry> List(std::string_view namespace_filter) const;

  // Allows every rule of `rules` in one batch, all or nothing, and returns their ids in
  // order. Two rules with the same id are refused (InvalidArgument).
  absl::StatusOr<std::vector<std::string>> Bulk(const std::vector<Rule>& rules);

  // Makes our rules exactly `desired` (duplicates refused, InvalidArgument) in one
  // batch: adds what is missing, deletes indexed ids not desired. Foreign rules stay.
  absl::StatusOr<ApplyResult> Reconcile(const std::vector<Rule>& desired);

  const FirewallIndex& index() const { return index_; }
  bool bridge_plane_active() const { return bridge_active_; }

 private:
  explicit FirewallWriter(NftSocket socket);

  absl::Status EnsureLoaded();
  absl::StatusOr<LoadReport> LoadOnce(const NamespaceHints& hints);
  absl::StatusOr<bool> ChainExists(Plane plane);
  absl::Status DumpChain(Plane plane, absl::FunctionRef<void(const nftnl_rule*)> on_rule);

  NftSocket socket_;
  FirewallIndex index_;
  bool loaded_ = false;  // the index describes the kernel
  bool ip_chain_exists_ = false;
  bool bridge_active_ = false;
  bool permissive_warned_ = false;  // the WARN for the current permissive spell is out
};

}  // namespace coolify::netlink

#endif  // COOLD_SERVICES_NETLINK_FIREWALL_NFT_H_
