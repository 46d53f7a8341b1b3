// Snapshots of coold's allow rules, from which the boot services restore the kernel
// before coold runs:
//
//   iptables snapshot (restore: iptables-restore --noflush FILE)
//     *filter
//     :COOLIFY-ALLOW - [0:0]        creates the chain if missing
//     -F COOLIFY-ALLOW              replaces whatever the chain holds
//     # id 3f2a9c0d1e4b namespace web
//     -A COOLIFY-ALLOW -s 10.0.0.1/32 -d 10.1.0.0/16 -p tcp -m tcp --dport 80 -m comment --comment 3f2a9c0d1e4b -j ACCEPT
//     COMMIT
//   Each -A line is what iptables-save prints for the rule. The "# id ID namespace NS"
//   line before it, a comment to iptables-restore, keeps what the kernel does not: the
//   rule's namespace (ParseSnapshotNamespaces reads it back as Load() hints).
//
//   bridge snapshot (restore: nft -f FILE)
//     add table bridge coolify_bridge                     creates what is missing, leaves
//     add chain bridge coolify_bridge coolify_allow       an existing base chain as it is
//     flush chain bridge coolify_bridge coolify_allow
//     add rule bridge coolify_bridge coolify_allow ip saddr 10.0.0.1/32 ip daddr 10.1.0.0/16 meta l4proto tcp th dport 80 accept comment "3f2a9c0d1e4b"
//   It restores at boot, before whatever hooks the bridge scaffold into the forward
//   path has run: an unhooked chain filters nothing until then. The writer itself never
//   creates the bridge table or chain.
//
// Both hold every indexed rule in chain order, whichever planes the kernel has it on:
// a snapshot is the set coold allows. Rendering is string building over the index,
// linear in the number of rules; nothing asks the kernel.
#ifndef COOLD_SERVICES_NETLINK_FIREWALL_SNAPSHOT_H_
#define COOLD_SERVICES_NETLINK_FIREWALL_SNAPSHOT_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/netlink/firewall_index.h"

namespace coolify::netlink {

std::string RenderIptablesSnapshot(const FirewallIndex& index);
std::string RenderBridgeSnapshot(const FirewallIndex& index);

// File names of the two snapshots inside the snapshot directory (no '/').
struct SnapshotNames {
  std::string iptables;
  std::string bridge;
};

// Renders both snapshots and replaces the files `names` in the directory `dir_fd`
// (opened O_RDONLY | O_DIRECTORY: it is fsync'ed) atomically: each is written to a
// temporary file beside it and fsync'ed, both are renamed over their targets, and the
// directory is fsync'ed. When this returns OK both files are durable; a crash at any
// point leaves each file either wholly old or wholly new.
absl::Status WriteSnapshots(int dir_fd, const SnapshotNames& names, const FirewallIndex& index);

// The same with each snapshot in its own directory (COOLD_RULES_PATH and
// COOLD_BRIDGE_RULES_PATH may differ).
struct SnapshotTarget {
  int dir_fd;
  std::string name;
};
absl::Status WriteSnapshots(const SnapshotTarget& iptables, const SnapshotTarget& bridge,
                            const FirewallIndex& index);

// The "# id ID namespace NS" lines of an iptables snapshot, as Load() hints. Lines
// that do not parse are skipped: hints are checked against the ids anyway.
NamespaceHints ParseSnapshotNamespaces(std::string_view iptables_snapshot);

// ParseSnapshotNamespaces of the file `name` in `dir_fd`; no hints when it does not
// exist (first start).
absl::StatusOr<NamespaceHints> ReadSnapshotNamespaces(int dir_fd, const std::string& name);

}  // namespace coolify::netlink

#endif  // COOLD_SERVICES_NETLINK_FIREWALL_SNAPSHOT_H_
